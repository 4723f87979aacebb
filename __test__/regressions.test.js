'use strict'
// Upstream bugs, each pinned by a test that fails on the buggy behaviour:
// duplicate connections (hyperswarm #3/#44), ::ffff:-mapped IPv4 (#75),
// leave() and existing connections (#50), connect with no timeout
// (network #10). Each runs against the reference as well: where the
// reference still has the bug, its half asserts the bug is there (so the
// test is known to tell the two apart); where the pinned reference
// release already behaves, the name says so and both halves assert the
// same thing.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const crypto = require('crypto')
const { Lab, assertIsolated } = require('./helpers/netns')
const { testnet } = require('./conformance/testnet')
const { surfaces } = require('./conformance/impls')
const { PeerQueue } = require('../lib/hyperswarm/peer-queue')
const { exchangeIds } = require('./helpers/dedup')

assertIsolated()

function within (ms, what, fn) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)
    fn(v => { clearTimeout(timer); resolve(v) }, e => { clearTimeout(timer); reject(e) })
  })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Resolves once `check()` holds; polls every 50 ms, gives up after `ms`. */
const until = (ms, what, check) => within(ms, what, ok => {
  const poll = () => check() ? ok() : setTimeout(poll, 50)
  poll()
})

async function withNet (impl, fn) {
  const net = await testnet(3)
  const swarms = []
  const factory = surfaces.hyperswarm[impl]()
  const make = (opts = {}) => {
    const s = factory({ bootstrap: net.bootstrap, ...opts })
    swarms.push(s)
    return s
  }
  try {
    return await fn(make)
  } finally {
    await Promise.all(swarms.map(s => new Promise(resolve => s.destroy(resolve))))
    net.destroy()
  }
}

// Both sides announce and look up; each finds the other and dials, so two
// connections appear (the reported bug); deduplicate() then drops one.
async function duplicates (make) {
  const topic = crypto.randomBytes(32)
  const a = make()
  const b = make()
  const { live: liveA } = exchangeIds(a, crypto.randomBytes(32))
  const { live: liveB } = exchangeIds(b, crypto.randomBytes(32))
  let connectionsA = 0
  a.on('connection', () => connectionsA++)
  await within(10000, 'join', ok => a.join(topic, { announce: true, lookup: true }, ok))
  await within(10000, 'join', ok => b.join(topic, { announce: true, lookup: true }, ok))
  // B found A. Joining again makes A look again (its next round would
  // otherwise be 5–10 min away), and A finds B: both dial.
  a.join(topic, { announce: true, lookup: true })
  await until(15000, 'two connections on A', () => connectionsA >= 2)
  await until(10000, 'one connection left on each side', () => liveA.size === 1 && liveB.size === 1)
  // …and it stays that way: the dropped dialler is not redialled while the survivor lives.
  await sleep(2500)
  assert.strictEqual(liveA.size, 1)
  assert.strictEqual(liveB.size, 1)
  const [sa] = liveA
  const [sb] = liveB
  const got = within(5000, 'data over the survivor', ok => sb.on('payload', d => { if (d.toString() === 'after dedup') ok() }))
  sa.write('after dedup')
  await got
}

test('hyperswarm #3/#44 (hyperswarm 2.15.3 passes too): both sides announce and look up; deduplicate leaves one connection', () =>
  withNet('ours', duplicates))

test('reference: hyperswarm #3/#44: hyperswarm 2.15.3 also ends with one connection per pair', () =>
  withNet('reference', duplicates))

// A announces, B looks up and dials: the incoming socket's remoteAddress
// at A, and the peer host discovery gave B.
async function incomingAddress (make) {
  const a = make()
  const b = make()
  const key = crypto.randomBytes(32)
  const incoming = within(15000, 'incoming connection', ok => a.on('connection', (socket, info) => { if (!info.client) ok(socket) }))
  const outgoing = within(15000, 'outgoing connection', ok => b.on('connection', (socket, info) => ok(info)))
  await within(10000, 'join', ok => a.join(key, { announce: true, lookup: false }, ok))
  b.join(key, { announce: false, lookup: true })
  const socket = await incoming
  const info = await outgoing
  return { remoteAddress: socket.remoteAddress, discovered: info.peer.host }
}

function queueLength (q) {
  const topic = crypto.randomBytes(32)
  q.add({ host: '::ffff:10.0.0.7', port: 4000, local: false, topic })
  q.add({ host: '10.0.0.7', port: 4000, local: false, topic })
  const n = q.length
  q.destroy()
  return n
}

test('hyperswarm #75: ::ffff:-mapped and plain IPv4 are one peer; incoming TCP peers show plain IPv4', () => withNet('ours', async make => {
  assert.strictEqual(queueLength(new PeerQueue()), 1, 'one queue entry for both spellings')
  const { remoteAddress, discovered } = await incomingAddress(make)
  assert.strictEqual(remoteAddress, '127.0.0.1')
  assert.strictEqual(remoteAddress, discovered, 'the address discovery gave matches the socket')
}))

test('reference: hyperswarm #75: hyperswarm 2.15.3 queues both spellings apart and reports incoming peers ::ffff:-mapped', () => withNet('reference', async make => {
  assert.strictEqual(queueLength(require('hyperswarm/lib/queue')()), 2, 'two queue entries: the bug')
  const { remoteAddress, discovered } = await incomingAddress(make)
  assert.strictEqual(discovered, '127.0.0.1')
  assert.strictEqual(remoteAddress, '::ffff:127.0.0.1', 'the socket disagrees with discovery: the bug')
}))

// B looks up A and connects, then leaves the topic; C looks up A too and
// stays. When A drops every connection, C redials (the control: the
// backoff has run its course) and B, which left, must not.
async function leaveKeeps (make) {
  const topic = crypto.randomBytes(32)
  const a = make()
  const b = make()
  const c = make()
  a.on('connection', s => s.on('error', () => {}))
  const dials = new Map([[b, 0], [c, 0]])
  const firsts = [b, c].map(sw => within(15000, 'first connection', ok => sw.on('connection', (socket, info) => {
    socket.on('error', () => {})
    socket.resume() // a paused socket never reads the FIN behind the data, and never closes
    if (info.client) dials.set(sw, dials.get(sw) + 1)
    ok(socket)
  })))
  await within(10000, 'join', ok => a.join(topic, { announce: true, lookup: false }, ok))
  b.join(topic, { announce: false, lookup: true })
  c.join(topic, { announce: false, lookup: true })
  const [socket] = await Promise.all(firsts)
  await until(5000, 'A sees both', () => a.connections.size === 2)
  await within(10000, 'leave callback', ok => b.leave(topic, ok))
  assert.strictEqual(b.status(topic), null)
  // The existing connection is untouched: data still flows both ways.
  const echo = within(5000, 'data after leave', ok => socket.on('data', d => { if (d.toString() === 'still here') ok() }))
  a.connections.forEach(s => s.write('still here'))
  await echo
  const before = new Map(dials)
  for (const s of a.connections) s.destroy()
  await until(10000, 'the control redial (C never left)', () => dials.get(c) > before.get(c))
  await sleep(500)
  assert.strictEqual(dials.get(b), before.get(b), 'no redial after leave')
}

test('hyperswarm #50 (hyperswarm 2.15.3 passes too): leave() stops discovery and redials, and keeps connections that exist', () =>
  withNet('ours', leaveKeeps))

test('reference: hyperswarm #50: hyperswarm 2.15.3 keeps the connection and does not redial after leave either', () =>
  withNet('reference', leaveKeeps))

// Dials a port whose SYNs the lab drops, through each entry point, in
// parallel; the SYNs counted prove the dials were live until they ended.
async function dialBlackhole (entries) {
  const lab = Lab.loopback()
  try {
    const port = 29001 // below the ephemeral range
    lab.exec(0, ['nft', '-f', '-'], {
      input: `table inet blackhole {\n counter syns { }\n chain out { type filter hook output priority 0; tcp dport ${port} tcp flags & (syn | ack) == syn counter name syns; tcp dport ${port} drop; }\n}\n`
    })
    const syns = () => JSON.parse(lab.exec(0, ['nft', '-j', 'list', 'counter', 'inet', 'blackhole', 'syns'])).nftables.find(e => e.counter).counter.packets
    const helper = path.join(__dirname, 'helpers', 'connect-timeout.js')
    const runs = entries.map(entry => lab.spawn(0, helper, [entry, String(port)], { timeoutMs: 40000 }))
    const results = await Promise.all(runs.map(c => c.wait('result', 30000)))
    return { results, syns: syns() }
  } finally {
    await lab.destroy()
  }
}

function gaveUp (entries, { results, syns }, expected) {
  // Each dial's SYN plus the kernel's first retry (1 s later), at least.
  assert.ok(syns >= 2 * entries.length, `SYNs sent: ${syns}`)
  entries.forEach((entry, i) => {
    const r = results[i]
    assert.strictEqual(r.connected, false, entry)
    assert.strictEqual(r.message, expected[entry], entry)
    // Ours also names the failure with a code (the references have none).
    if (!entry.endsWith('-reference')) assert.strictEqual(r.code, 'ETIMEDOUT', entry)
    assert.ok(r.ms >= 9500 && r.ms < 12000, `${entry} gave up after ${r.ms} ms`)
  })
}

test('network #10 (the pinned references pass too): a dial to a peer that never answers gives up after 10 s, on every entry point', async () => {
  const expected = { seed: 'Timed out trying to connect to peer', network: 'Timeout', hyperswarm: 'Timeout' }
  const entries = Object.keys(expected)
  gaveUp(entries, await dialBlackhole(entries), expected)
})

test('reference: network #10: @hyperswarm/network 0.0.4 and 2.1.0 and hyperswarm 2.15.3 give up after 10 s as well', async () => {
  const expected = { 'seed-reference': 'Timed out trying to connect to peer', 'network-reference': 'Timeout', 'hyperswarm-reference': 'Timeout' }
  const entries = Object.keys(expected)
  gaveUp(entries, await dialBlackhole(entries), expected)
})
