#!/usr/bin/env node
// Records what a real dht-rpc 4.9.6 relay does with a `_holepunch` whose
// `target` holds our capability record (src/dht/capability.rs), for
// tests/golden_dht.rs (`capability_record_survives_a_reference_relay`).
//
// Run it ONLY inside a fresh, loopback-only network namespace:
//
//   unshare -n sh -c 'ip link set lo up && node scripts/capture-dht-capability.js'
//
// It refuses to run when any interface other than `lo` exists, sends only
// to 127.0.0.1, gives every reference node an explicit empty bootstrap list
// and exits by itself (a watchdog ends it after 30 s whatever happens).
//
// The asker and the punched peer are raw UDP sockets: the script writes the
// asker's punch itself (with the reference's own Message encoder) and
// reads what the relay forwards. dht-rpc 4.9.6 `_onholepunch` relays to any
// `Holepunch.to` that decodes and is not the asker's own address (it does
// not look the target up), so the punched peer needs no announce first.
//
// A second part checks the other direction: a reference node that punches
// (`holepunch(peer, cb)`) and gets an answer carrying a record in `target`
// completes its punch as usual, and keeps answering afterwards.
//
// Output: tests/fixtures/dht/capability/holepunch_capability.json (a
// subdirectory, so that scripts/capture-dht.js, which empties
// tests/fixtures/dht/*.json, leaves it alone).
'use strict'

const fs = require('fs')
const path = require('path')

require('./capture-guard')('capture-dht-capability', 30000)

// Deterministic rids, so that re-running gives the same fixture.
let seed = 0x5eed2019
Math.random = function () {
  seed = (seed + 0x6D2B79F5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const dgram = require('dgram')
const rpc = require('dht-rpc')
const { Message } = require('dht-rpc/lib/messages')
const ipv4peers = require('ipv4-peers')

const HOST = '127.0.0.1'
const OUT_DIR = path.join(__dirname, '..', 'tests', 'fixtures', 'dht', 'capability')
const { hex, jsonMessage } = require('./capture-json')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Our record, written out by hand from its layout (README, "Capability
// exchange"): "HSN", version 1, NAT code 2 (consistent), 2 candidates.
const RECORD = Buffer.concat([
  Buffer.from('HSN'), Buffer.from([1, 2, 2]),
  ipv4peers.encode([{ host: '203.0.113.7', port: 4000 }, { host: '192.168.1.20', port: 4000 }])
])
// A punch back that starts a relay session (both NATs random): "HSN",
// version 1, NAT code 3 (random), 1 candidate, then kind 3 and a 16-byte
// relay nonce (README, "Relay of last resort"): 29 bytes.
const RELAY_RECORD = Buffer.concat([
  Buffer.from('HSN'), Buffer.from([1, 3, 1]), ipv4peers.encode([{ host: '198.51.100.9', port: 5000 }]),
  Buffer.from([3]), Buffer.from('0123456789abcdef')
])
const B_RECORD = Buffer.concat([
  Buffer.from('HSN'), Buffer.from([1, 3, 1]), ipv4peers.encode([{ host: '198.51.100.9', port: 5000 }])
])

const origSend = dgram.Socket.prototype.send
dgram.Socket.prototype.send = function (buf, ...args) {
  const host = typeof args[0] === 'number' && typeof args[1] === 'number' && typeof args[2] === 'number' ? args[3] : args[1]
  if (host !== HOST) throw new Error('capture-dht-capability: refusing to send to ' + host)
  return origSend.call(this, buf, ...args)
}

async function bound (port) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, HOST, () => { socket.removeListener('error', reject); resolve() })
  })
  return socket
}

// A raw socket's next datagram (or null after `ms`).
function next (socket, ms = 3000) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { socket.removeListener('message', on); resolve(null) }, ms)
    function on (buf, rinfo) { clearTimeout(t); resolve({ buf, rinfo }) }
    socket.once('message', on)
  })
}

async function relayCase (name, relayPort, ephemeral, askerPort, punchedPort, record = RECORD) {
  const relaySocket = await bound(relayPort)
  const id = ephemeral ? null : Buffer.alloc(32, 0x5a)
  const relay = rpc({ socket: relaySocket, ephemeral, bootstrap: [], id: id || undefined })
  relay.on('warning', () => {})
  const asker = await bound(askerPort)
  const punched = await bound(punchedPort)
  const punch = Message.encode({
    version: 1,
    type: 1,
    rid: 4242,
    to: ipv4peers.encode([{ host: HOST, port: relayPort }]),
    target: record,
    command: '_holepunch',
    value: require('dht-rpc/lib/messages').Holepunch.encode({ to: ipv4peers.encode([{ host: HOST, port: punchedPort }]) })
  })
  const got = next(punched)
  asker.send(punch, relayPort, HOST)
  const relayed = await got
  relay.destroy()
  asker.close()
  punched.close()
  if (!relayed) throw new Error(name + ': the relay forwarded nothing')
  const m = Message.decode(relayed.buf)
  return {
    name,
    relay_id: hex(id),
    relay: { host: HOST, port: relayPort },
    asker: { host: HOST, port: askerPort },
    punched: { host: HOST, port: punchedPort },
    record: hex(record),
    sent: hex(punch),
    relayed: hex(relayed.buf),
    relayed_from_port: relayed.rinfo.port,
    relayed_decoded: jsonMessage(m)
  }
}

// A reference node punches a raw "peer of ours" through a reference relay;
// the raw peer answers with a record in `target`.
async function jsAsker () {
  const relay = rpc({ socket: await bound(10011), ephemeral: false, bootstrap: [], id: Buffer.alloc(32, 0x5b) })
  const asker = rpc({ socket: await bound(10012), ephemeral: true, bootstrap: [] })
  relay.on('warning', () => {})
  asker.on('warning', () => {})
  const peer = await bound(10013)
  const seen = []
  const answered = new Promise((resolve) => {
    peer.on('message', (buf) => {
      const m = Message.decode(buf)
      seen.push({ hex: hex(buf), decoded: jsonMessage(m) })
      // Answer the relayed copy (it carries Holepunch.from) as a peer of
      // ours would: a RESPONSE to the asker with our record in target.
      if (!m.value) return
      const answer = Message.encode({
        version: 1,
        type: 3,
        rid: m.rid,
        to: ipv4peers.encode([{ host: HOST, port: 10012 }]),
        roundtripToken: Buffer.alloc(32, 0x01),
        target: B_RECORD
      })
      peer.send(answer, 10012, HOST)
      resolve(hex(answer))
    })
  })
  const result = await new Promise((resolve) => {
    const t = setTimeout(() => resolve({ timeout: true }), 8000)
    asker.holepunch({ host: HOST, port: 10013, referrer: { host: HOST, port: 10011 } }, (err, res) => {
      clearTimeout(t)
      resolve({ error: err ? err.message : null, response_target: res && res.target ? hex(res.target) : null })
    })
  })
  const answer = await Promise.race([answered, sleep(100).then(() => null)])
  // Still a working node: it answers a ping.
  const ping = await new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), 4000)
    relay.ping({ host: HOST, port: 10012 }, (err) => { clearTimeout(t); resolve(err ? err.message : null) })
  })
  relay.destroy()
  asker.destroy()
  peer.close()
  return {
    description: 'A dht-rpc node punches a raw peer through a dht-rpc relay; the peer answers with a capability record in the response target.',
    received_by_peer: seen,
    answer,
    holepunch_callback: result,
    ping_after_error: ping
  }
}

async function main () {
  const cases = [
    await relayCase('persistent relay', 10001, false, 10002, 10003),
    await relayCase('ephemeral relay', 10004, true, 10005, 10006),
    await relayCase('persistent relay, relay nonce', 10007, false, 10008, 10009, RELAY_RECORD)
  ]
  const js = await jsAsker()
  fs.mkdirSync(OUT_DIR, { recursive: true })
  const file = path.join(OUT_DIR, 'holepunch_capability.json')
  fs.writeFileSync(file, JSON.stringify({
    generator: 'scripts/capture-dht-capability.js',
    reference: { 'dht-rpc': require('dht-rpc/package.json').version },
    description: 'A _holepunch carrying a capability record in target, sent by a raw socket to a dht-rpc relay, and the datagram the relay forwarded to the punched address; then a dht-rpc asker receiving an answer with a record in target.',
    cases,
    js_asker: js
  }, null, 1) + '\n')
  console.error('capture-dht-capability: wrote ' + file)
  process.exit(0)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
