'use strict'
// One swarm peer for bench/connect-time.js, run inside the lab.
//   node connect-peer.js <impl> <bootstrap host:port>
// impl: 'ours' (this package's seed entry, multicast: false),
// 'ours-hyperswarm' (its ./hyperswarm entry, the same API as the
// reference's) or 'hyperswarm' (2.15.3,
// with a silent stand-in for multicast-dns). Discovery is over the lab's
// DHT only.
//
// A `-cold` suffix ('ours-cold', 'ours-hyperswarm-cold') makes the swarm at
// the join instant, then joins: the time includes binding and the DHT
// bootstrap. Without it the swarm is made at start and is bound and
// bootstrapped by the join: the seed entry binds in its constructor, and the
// './hyperswarm' peer calls listen() first (that entry, like hyperswarm
// 2.x, binds at its first join or listen() otherwise). hyperswarm 2.15.3
// itself is made at start and binds at its join, as its users run it.
//
// Commands: { cmd: 'join', topic, at } joins `topic` (announce + lookup) at
// the process.hrtime instant `at` (CLOCK_MONOTONIC: one clock for every
// process on the machine); { cmd: 'exit' }.
// Messages: ready, joined { t }, peer { t } (first only), connection { t,
// client } (first only), error. Times are process.hrtime.bigint() strings.
const guard = require('./guard')
guard.child({ deadlineMs: 90000 })

const path = require('path')

const [name, bootstrap] = process.argv.slice(2)
const cold = name.endsWith('-cold')
const impl = cold ? name.slice(0, -'-cold'.length) : name
const send = m => process.send(m)
const now = () => process.hrtime.bigint()

if (impl === 'hyperswarm') {
  // LAN discovery off for the reference: multicast-dns becomes a stand-in
  // that never sends (as __test__/helpers/peer.js does with `noMdns`).
  require('../../__test__/helpers/silence-mdns')
}

// Loaded at start, so that a cold peer's time has no module loading in it.
const factory = {
  ours: () => require(path.join(__dirname, '..', '..')),
  'ours-hyperswarm': () => require(path.join(__dirname, '..', '..', 'hyperswarm')),
  hyperswarm: () => require('hyperswarm')
}[impl]
if (!factory) throw new Error('unknown impl ' + name)
const swarmOf = factory()

function create () {
  if (impl === 'hyperswarm') return swarmOf({ bootstrap: [bootstrap] })
  return swarmOf({ bootstrap: [bootstrap], multicast: false })
}

function fail (err) {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
}

let swarm = null
let sawPeer = false
let sawConnection = false
function make () {
  swarm = create()
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
}

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
        if (cold) make()
        swarm.join(Buffer.from(m.topic, 'hex'), { announce: true, lookup: true })
      } catch (err) {
        return fail(err)
      }
      send({ type: 'joined', t: t.toString() })
    }
    go()
  } else if (m.cmd === 'exit') {
    setTimeout(() => process.exit(0), 1000).unref()
    if (!swarm) process.exit(0)
    try {
      swarm.destroy(() => process.exit(0))
    } catch {
      process.exit(0)
    }
  }
})

const ready = () => send({ type: 'ready', pid: process.pid })
if (cold) {
  ready()
} else {
  try {
    make()
    // Bound and bootstrapped by the join, as the seed entry is: its
    // constructor binds and bootstraps, which takes a few ms (the bench
    // waits its lead time after 'ready' anyway).
    if (impl === 'ours-hyperswarm') swarm.listen(0, ready)
    else ready()
  } catch (err) {
    fail(err)
  }
}
