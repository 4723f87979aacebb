'use strict'
// Upstream bugs, each pinned by a test that fails on the buggy behaviour:
// duplicate connections (hyperswarm #3/#44), ::ffff:-mapped IPv4 (#75),
// leave() and existing connections (#50), connect with no timeout
// (network #10).
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const crypto = require('crypto')
const { Lab, assertIsolated } = require('./helpers/netns')
const { testnet } = require('./conformance/testnet')
const hyperswarm = require('../hyperswarm')
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

async function withNet (fn) {
  const net = await testnet(3)
  const swarms = []
  const make = (opts = {}) => {
    const s = hyperswarm({ bootstrap: net.bootstrap, multicast: false, ...opts })
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

test('hyperswarm #3/#44: both sides announce and look up; deduplicate leaves one connection', () => withNet(async make => {
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
  // otherwise be 5–10 min away), and A finds B: both dial, and two
  // connections appear (the reported bug); dedup then drops one.
  a.join(topic, { announce: true, lookup: true })
  await within(15000, 'two connections on A', ok => {
    const check = () => connectionsA >= 2 ? ok() : setTimeout(check, 50)
    check()
  })
  await within(10000, 'one connection left on each side', ok => {
    const check = () => liveA.size === 1 && liveB.size === 1 ? ok() : setTimeout(check, 50)
    check()
  })
  // …and it stays that way: the dropped dialler is not redialled while the survivor lives.
  await sleep(2500)
  assert.strictEqual(liveA.size, 1)
  assert.strictEqual(liveB.size, 1)
  const [sa] = liveA
  const [sb] = liveB
  const got = within(5000, 'data over the survivor', ok => sb.on('payload', d => { if (d.toString() === 'after dedup') ok() }))
  sa.write('after dedup')
  await got
}))

test('hyperswarm #75: ::ffff:-mapped and plain IPv4 are one peer; incoming TCP peers show plain IPv4', () => withNet(async make => {
  const q = new PeerQueue()
  const topic = crypto.randomBytes(32)
  q.add({ host: '::ffff:10.0.0.7', port: 4000, local: false, topic })
  q.add({ host: '10.0.0.7', port: 4000, local: false, topic })
  assert.strictEqual(q.length, 1, 'one queue entry for both spellings')
  q.destroy()

  const a = make()
  const b = make()
  const key = crypto.randomBytes(32)
  const incoming = within(15000, 'incoming connection', ok => a.on('connection', (socket, info) => { if (!info.client) ok(socket) }))
  const outgoing = within(15000, 'outgoing connection', ok => b.on('connection', (socket, info) => ok(info)))
  await within(10000, 'join', ok => a.join(key, { announce: true, lookup: false }, ok))
  b.join(key, { announce: false, lookup: true })
  const socket = await incoming
  const info = await outgoing
  assert.strictEqual(socket.remoteAddress, '127.0.0.1')
  assert.strictEqual(socket.remoteAddress, info.peer.host, 'the address discovery gave matches the socket')
}))

test('hyperswarm #50: leave() stops discovery and redials, and keeps connections that exist', () => withNet(async make => {
  const topic = crypto.randomBytes(32)
  const a = make()
  const b = make()
  a.on('connection', s => s.on('error', () => {}))
  let dials = 0
  const first = within(15000, 'first connection', ok => b.on('connection', (socket, info) => {
    socket.on('error', () => {})
    if (info.client) dials++
    ok(socket)
  }))
  await within(10000, 'join', ok => a.join(topic, { announce: true, lookup: false }, ok))
  b.join(topic, { announce: false, lookup: true })
  const socket = await first
  await within(10000, 'leave callback', ok => b.leave(topic, ok))
  assert.strictEqual(b.status(topic), null)
  // The existing connection is untouched: data still flows both ways.
  const echo = within(5000, 'data after leave', ok => socket.on('data', d => { if (d.toString() === 'still here') ok() }))
  a.connections.forEach(s => s.write('still here'))
  await echo
  // When it drops, nobody redials a topic we left (the reference would
  // requeue the peer and skip it; no connection either way).
  const dialsBefore = dials
  for (const s of a.connections) s.destroy()
  await sleep(3000)
  assert.strictEqual(dials, dialsBefore, 'no redial after leave')
}))

test('network #10: a dial to a peer that never answers gives up after 10 s, on every entry point', async () => {
  const lab = Lab.loopback()
  try {
    const port = 47001
    lab.exec(0, ['nft', '-f', '-'], {
      input: `table inet blackhole {\n chain out { type filter hook output priority 0; tcp dport ${port} drop; }\n}\n`
    })
    const helper = path.join(__dirname, 'helpers', 'connect-timeout.js')
    const expected = { seed: 'Timed out trying to connect to peer', network: 'Timeout', hyperswarm: 'Timeout' }
    const runs = Object.keys(expected).map(entry => lab.spawn(0, helper, [entry, String(port)], { timeoutMs: 40000 }))
    const results = await Promise.all(runs.map(c => c.wait('result', 30000)))
    Object.keys(expected).forEach((entry, i) => {
      const r = results[i]
      assert.strictEqual(r.connected, false, entry)
      assert.strictEqual(r.message, expected[entry], entry)
      assert.ok(r.ms >= 9500 && r.ms < 12000, `${entry} gave up after ${r.ms} ms`)
    })
  } finally {
    await lab.destroy()
  }
})
