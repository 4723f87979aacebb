'use strict'
// A relay client written from the README's "Relay wire format" alone (not
// from the Rust code), run inside a lab host: it joins sessions of a
// `hyperswarm-dht --relay` and sends and counts data under IPC commands.
//
//   {cmd:'join', key, token, relay}   join session `token` (hex) at relay 'ip:port'
//   {cmd:'send', key, text}           one data datagram (a text of at most SHORT bytes is reported back as 'data')
//   {cmd:'flood', key, count, size, everyMs}  `count` datagrams of `size` bytes
//   {cmd:'count', key}                datagrams and bytes received so far
//   {cmd:'forge', relay, id, text}    one data datagram under someone else's id, from a fresh socket
// Reports {type:'waiting'|'paired'|'refused'|'ended'|'data'|'count'|'flooded', key, ...}.
const dgram = require('dgram')
const os = require('os')

const addrs = Object.values(os.networkInterfaces()).flat().filter(a => a.family === 'IPv4')
if (!addrs.every(a => a.address.startsWith('127.') || a.address.startsWith('10.201.0.'))) {
  console.error('refusing to send: not inside a lab namespace (see __test__/helpers/netns.js)')
  process.exit(3)
}

const MAGIC = [0xff, 0x52]
const VERSION = 1
const T = { JOIN: 1, CHALLENGE: 2, WAITING: 3, PAIRED: 4, REFUSED: 5, DATA: 6, CLOSE: 7, ENDED: 8 }
// A join is retried this often until answered, at most JOIN_TRIES times.
const JOIN_RETRY_MS = 300
const JOIN_TRIES = 20
// Payloads up to this size are reported to the parent one by one.
const SHORT = 64

const header = type => Buffer.from([...MAGIC, VERSION, type])
const idBytes = id => { const b = Buffer.alloc(8); b.writeBigUInt64BE(id); return b }

const sessions = new Map()

function join ({ key, token, relay }) {
  const [host, port] = relay.split(':')
  const sock = dgram.createSocket('udp4')
  const s = { key, token: Buffer.from(token, 'hex'), host, port: Number(port), sock, cookie: Buffer.alloc(16), id: null, state: 'joining', got: 0, gotBytes: 0, tries: 0 }
  sessions.set(key, s)
  const sendJoin = () => sock.send(Buffer.concat([header(T.JOIN), s.token, s.cookie]), s.port, s.host)
  sock.on('message', msg => {
    if (msg[0] !== MAGIC[0] || msg[1] !== MAGIC[1] || msg[2] !== VERSION) return
    const type = msg[3]
    if (type === T.DATA) {
      s.got++
      s.gotBytes += msg.length - 12
      // Short payloads (the texts) are reported; floods only counted.
      if (msg.length - 12 <= SHORT) process.send({ type: 'data', key, text: msg.subarray(12).toString() })
      return
    }
    if (!msg.subarray(4, 36).equals(s.token)) return
    if (type === T.CHALLENGE) {
      s.cookie = msg.subarray(36, 52)
      sendJoin()
    } else if (type === T.WAITING || type === T.PAIRED) {
      s.id = msg.readBigUInt64BE(36)
      const expiresIn = msg.readUInt32BE(44)
      const state = type === T.WAITING ? 'waiting' : 'paired'
      if (s.state !== state) process.send({ type: state, key, expiresIn, id: String(s.id) })
      s.state = state
    } else if (type === T.REFUSED || type === T.ENDED) {
      s.state = type === T.REFUSED ? 'refused' : 'ended'
      process.send({ type: s.state, key, reason: msg[36] })
    }
  })
  sock.bind(0, () => {
    sendJoin()
    s.timer = setInterval(() => {
      if (s.state !== 'joining' || ++s.tries >= JOIN_TRIES) return clearInterval(s.timer)
      sendJoin()
    }, JOIN_RETRY_MS)
  })
}

function data (s, payload) {
  s.sock.send(Buffer.concat([header(T.DATA), idBytes(s.id), payload]), s.port, s.host)
}

process.on('message', m => {
  const s = sessions.get(m.key)
  if (m.cmd === 'join') join(m)
  else if (m.cmd === 'send') data(s, Buffer.from(m.text))
  else if (m.cmd === 'forge') {
    const [host, port] = m.relay.split(':')
    const sock = dgram.createSocket('udp4')
    sock.send(Buffer.concat([header(T.DATA), idBytes(BigInt(m.id)), Buffer.from(m.text)]), Number(port), host, () => {
      sock.close()
      process.send({ type: 'forged' })
    })
  } else if (m.cmd === 'count') process.send({ type: 'count', key: m.key, datagrams: s.got, bytes: s.gotBytes })
  else if (m.cmd === 'flood') {
    let left = m.count
    const t = setInterval(() => {
      data(s, Buffer.alloc(m.size, 0x61))
      if (--left === 0) { clearInterval(t); process.send({ type: 'flooded', key: m.key }) }
    }, m.everyMs)
  } else if (m.cmd === 'exit') process.exit(0)
})
process.send({ type: 'ready' })
