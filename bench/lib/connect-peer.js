'use strict'
// One swarm peer for bench/connect-time.js, run inside the lab.
//   node connect-peer.js <impl> <bootstrap host:port>
// impl: 'ours' (this package's seed entry, multicast: false),
// 'ours-hyperswarm' (its ./hyperswarm entry, the same API as the
// reference's) or 'hyperswarm' (2.15.3,
// with a silent stand-in for multicast-dns). Discovery is over the lab's
// DHT only.
//
// Commands: { cmd: 'join', topic, at } joins `topic` (announce + lookup) at
// the process.hrtime instant `at` (CLOCK_MONOTONIC: one clock for every
// process on the machine); { cmd: 'exit' }.
// Messages: ready, joined { t }, peer { t } (first only), connection { t,
// client } (first only), error. Times are process.hrtime.bigint() strings.
const guard = require('./guard')
guard.child({ deadlineMs: 90000 })

const path = require('path')

const [impl, bootstrap] = process.argv.slice(2)
const send = m => process.send(m)
const now = () => process.hrtime.bigint()

if (impl === 'hyperswarm') {
  // LAN discovery off for the reference: multicast-dns becomes a stand-in
  // that never sends (as __test__/helpers/peer.js does with `noMdns`).
  require('../../__test__/helpers/silence-mdns')
}

function create () {
  if (impl === 'ours') return require(path.join(__dirname, '..', '..'))({ bootstrap: [bootstrap], multicast: false })
  if (impl === 'ours-hyperswarm') return require(path.join(__dirname, '..', '..', 'hyperswarm'))({ bootstrap: [bootstrap], multicast: false })
  if (impl === 'hyperswarm') return require('hyperswarm')({ bootstrap: [bootstrap] })
  throw new Error('unknown impl ' + impl)
}

function fail (err) {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
}

let swarm
try {
  swarm = create()
} catch (err) {
  fail(err)
}

let sawPeer = false
let sawConnection = false
swarm.on('peer', () => {
  if (sawPeer) return
  sawPeer = true
  send({ type: 'peer', t: now().toString() })
})
swarm.on('connection', (socket, details) => {
  socket.on('error', () => {})
  if (sawConnection) return
  sawConnection = true
  send({ type: 'connection', t: now().toString(), client: !!(details && details.client) })
})
swarm.on('error', fail)

process.on('message', m => {
  if (m.cmd === 'join') {
    const at = BigInt(m.at)
    const go = () => {
      const ms = Number(at - now()) / 1e6
      if (ms > 2) return setTimeout(go, Math.min(ms - 2, 10000))
      // The last stretch (< 2 ms) is a spin: setTimeout is only ms-accurate.
      while (now() < at) {}
      const t = now()
      try {
        swarm.join(Buffer.from(m.topic, 'hex'), { announce: true, lookup: true })
      } catch (err) {
        return fail(err)
      }
      send({ type: 'joined', t: t.toString() })
    }
    go()
  } else if (m.cmd === 'exit') {
    setTimeout(() => process.exit(0), 1000).unref()
    try {
      swarm.destroy(() => process.exit(0))
    } catch {
      process.exit(0)
    }
  }
})

send({ type: 'ready', pid: process.pid })
