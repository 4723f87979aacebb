'use strict'
// The processes of bench/dht-flood.js, run inside its loopback-only lab.
//   node dht-flood-peer.js net                       a DHT testnet of ours: one ephemeral
//                                                    bootstrap node and 8 members
//   node dht-flood-peer.js target <impl> <boot> <topic>
//                                                    one swarm announcing <topic>; impl
//                                                    'ours' (seed entry) or 'hyperswarm' (2.15.3)
//   node dht-flood-peer.js flood <port> <rate> <seconds>
//                                                    garbage, valid-looking queries and forged
//                                                    responses at 127.0.0.1:<port>, from 127.0.5.x
//   node dht-flood-peer.js looker <boot> <topic> <port>
//                                                    our swarm looking <topic> up; reports when it
//                                                    finds the announcer at 127.0.0.1:<port>
const guard = require('./guard')
guard.child({ deadlineMs: 180000 })

const path = require('path')
const crypto = require('crypto')
const ROOT = path.join(__dirname, '..', '..')
const [role, ...args] = process.argv.slice(2)
const send = m => process.send(m)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function fail (err) {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
}

async function net () {
  const { DhtNode } = require(ROOT)
  const boot = new DhtNode({ ephemeral: true })
  const bootstrap = [`127.0.0.1:${boot.port}`]
  const members = []
  for (let i = 0; i < 8; i++) members.push(new DhtNode({ bootstrap }))
  await sleep(2000)
  send({ type: 'ready', bootstrap: bootstrap[0] })
}

function target (impl, boot, topic) {
  let swarm
  if (impl === 'ours') {
    swarm = require(ROOT)({ bootstrap: [boot], multicast: false })
  } else {
    require('../../__test__/helpers/silence-mdns')
    swarm = require('hyperswarm')({ bootstrap: [boot] })
  }
  swarm.on('error', err => send({ type: 'warning', message: err.message }))
  swarm.join(Buffer.from(topic, 'hex'), { announce: true, lookup: false })
  const wait = () => {
    const a = swarm.address()
    if (!a || !a.port) return setTimeout(wait, 100)
    setTimeout(() => send({ type: 'ready', port: a.port, pid: process.pid }), 2000)
  }
  wait()
}

// Three kinds of datagram, in turn.
function floodMessages () {
  const { Message, Holepunch } = require(path.join(ROOT, 'node_modules', 'dht-rpc', 'lib', 'messages'))
  const peers = require('ipv4-peers')
  const nodes = peers.idLength(32)
  let n = 0
  return () => {
    n++
    const rid = n & 0xffff
    switch (n % 6) {
      case 0: { // garbage; never a uTP header (version nibble 1), so it reaches the DHT
        const b = crypto.randomBytes(1 + (n % 300))
        b[0] &= 0xfe
        return b
      }
      case 1: return Message.encode({ version: 1, type: 1, rid, id: crypto.randomBytes(32), command: '_find_node', target: crypto.randomBytes(32) })
      case 2: return Message.encode({ version: 1, type: 1, rid, command: 'peers', target: crypto.randomBytes(32), value: Buffer.alloc(0) })
      case 3: return Message.encode({ version: 1, type: 1, rid, id: crypto.randomBytes(32), command: '_ping' })
      case 4: return Message.encode({ version: 1, type: 1, rid, command: '_holepunch', value: Holepunch.encode({ to: peers.encode([{ host: '127.0.0.1', port: 53 }]) }) })
      default: return Message.encode({ // a forged response naming fresh nodes
        version: 1,
        type: 3,
        rid,
        id: crypto.randomBytes(32),
        roundtripToken: crypto.randomBytes(32),
        closerNodes: nodes.encode([0, 1, 2, 3].map(i => ({ id: crypto.randomBytes(32), host: '127.0.6.' + (1 + (n + i) % 250), port: 1000 + (n % 5000) })))
      })
    }
  }
}

async function flood (port, rate, seconds) {
  const dgram = require('dgram')
  // 16 sources on 127.0.5.x: more than one per-source budget in play.
  const socks = []
  for (let i = 0; i < 16; i++) {
    const s = dgram.createSocket('udp4')
    s.on('error', () => {})
    s.on('message', (buf) => { replies++; replyBytes += buf.length })
    await new Promise(resolve => s.bind(0, '127.0.5.' + (1 + i), resolve))
    socks.push(s)
  }
  let replies = 0
  let replyBytes = 0
  const next = floodMessages()
  let sent = 0
  let bytes = 0
  const start = Date.now()
  const total = rate * seconds
  // Batches every 10 ms, paced against the clock.
  while (sent < total && Date.now() - start < (seconds + 5) * 1000) {
    const due = Math.min(total, Math.floor((Date.now() - start) / 1000 * rate))
    while (sent < due) {
      const buf = next()
      bytes += buf.length
      socks[sent % socks.length].send(buf, port, '127.0.0.1')
      sent++
    }
    await sleep(10)
  }
  const secs = (Date.now() - start) / 1000
  await sleep(500)
  for (const s of socks) s.close()
  send({ type: 'done', sent, bytes, seconds: secs, replies, replyBytes })
}

function looker (boot, topic, port) {
  const swarm = require(ROOT)({ bootstrap: [boot], multicast: false })
  const start = Date.now()
  swarm.on('peer', p => {
    if (p.port === Number(port)) send({ type: 'found', ms: Date.now() - start, host: p.host, port: p.port })
  })
  swarm.join(Buffer.from(topic, 'hex'), { announce: false, lookup: true })
}

process.on('message', m => { if (m.cmd === 'exit') process.exit(0) })
try {
  if (role === 'net') net().catch(fail)
  else if (role === 'target') target(args[0], args[1], args[2])
  else if (role === 'flood') flood(Number(args[0]), Number(args[1]), Number(args[2])).catch(fail)
  else if (role === 'looker') looker(args[0], args[1], args[2])
  else throw new Error('unknown role ' + role)
} catch (err) {
  fail(err)
}
