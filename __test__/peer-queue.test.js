'use strict'
// The ./hyperswarm entry's dial queue (the engine's queue with hyperswarm
// 2.x's policy, driven through lib/hyperswarm/peer-queue.js) on a mocked
// clock: backoff steps of hyperswarm 2.x (1 s, 5 s, 15 s; the reference's
// batch timer releases each 0.66–1.32× later, ours on time, within the same
// window), giving up after three retries and forgetting 7.5 s later,
// priorities, and the bound on remembered peers. No sockets.
const test = require('node:test')
const assert = require('node:assert')
const { PeerQueue, MAX_INFOS, MAX_PER_IP, MAX_PER_SUBNET, MAX_PER_REFERRER } = require('../lib/hyperswarm/peer-queue')

const peer = (host, extra = {}) => ({ host, port: 1000, local: false, topic: Buffer.alloc(32, 1), ...extra })

// Advances the mocked clock 10 ms at a time until `check()` or `limit` ms.
function advanceUntil (mock, check, limit) {
  for (let t = 0; t <= limit; t += 10) {
    if (check()) return t
    mock.timers.tick(10)
  }
  return null
}

test('a failing peer is retried after ~1 s, ~5 s, ~15 s, then dropped and forgotten', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'] })
  const q = new PeerQueue()
  q.add(peer('10.0.0.1'))
  let info = q.shift()
  assert.ok(info, 'queued at once')
  for (const step of [1000, 5000, 15000]) {
    assert.strictEqual(q.requeue(info), true, 'still retried')
    const waited = advanceUntil(t.mock, () => q.length === 1, 2 * step)
    assert.ok(waited !== null, `released within 2× ${step} ms`)
    assert.ok(waited >= 0.66 * step - 10 && waited <= 1.32 * step + 10, `step ${step}: waited ${waited} ms`)
    info = q.shift()
  }
  assert.strictEqual(info.retries, 3)
  // The fourth failure gives up; the peer is forgotten within 7.5 × 1.32 s.
  assert.strictEqual(q.requeue(info), false)
  advanceUntil(t.mock, () => false, 7500 * 1.32 + 20)
  q.add(peer('10.0.0.1'))
  const again = q.shift()
  assert.ok(again && again !== info, 'forgotten: a fresh entry when found again')
  q.destroy()
})

test('priorities: local peers first, a peer behind our own public address last and tried once', () => {
  const q = new PeerQueue()
  q.add(peer('203.0.113.5', { to: { host: '203.0.113.5', port: 9 } }))
  q.add(peer('198.51.100.7'))
  q.add(peer('10.0.0.2', { local: true }))
  const order = [q.shift(), q.shift(), q.shift()].map(i => [i.peer.host, i.priority, i.retries])
  assert.deepStrictEqual(order, [['10.0.0.2', 3, 0], ['198.51.100.7', 2, 0], ['203.0.113.5', 1, 3]])
  q.destroy()
})

test('a banned peer is never requeued and stays known (not re-added when found again)', () => {
  const q = new PeerQueue()
  q.add(peer('10.0.0.3'))
  const info = q.shift()
  info.ban()
  assert.strictEqual(q.requeue(info), false)
  q.add(peer('10.0.0.3'))
  assert.strictEqual(q.length, 0, 'banned peers are not queued again')
  q.destroy()
})

test(`at most ${MAX_INFOS} peers are remembered`, () => {
  const q = new PeerQueue()
  // One peer per /24, so the per-party caps stay out of the way.
  for (let i = 0; i < MAX_INFOS + 500; i++) q.add(peer(`10.${(i >> 8) & 255}.${i & 255}.1`))
  assert.strictEqual(q.length, MAX_INFOS)
  q.destroy()
})

// Drains the queue: the hosts:ports it hands out.
function drain (q) {
  const out = []
  for (let info = q.shift(); info; info = q.shift()) out.push(info.peer.host + ':' + info.peer.port)
  return out
}

test(`poisoning: 1,024 fake peers from one IP, one /24 and one referrer leave honest peers queued (caps ${MAX_PER_IP}/${MAX_PER_SUBNET}/${MAX_PER_REFERRER})`, () => {
  const attacks = {
    ip: i => ({ host: '203.0.113.66', port: 1000 + i }),
    subnet: i => ({ host: `203.0.113.${i % 250 + 1}`, port: 2000 + i }),
    referrer: i => ({ host: `198.${(i >> 8) & 255}.${i & 255}.9`, port: 3000, referrer: { host: '192.0.2.1', port: 49737 } })
  }
  const caps = { ip: MAX_PER_IP, subnet: MAX_PER_SUBNET, referrer: MAX_PER_REFERRER }
  for (const [kind, fake] of Object.entries(attacks)) {
    const q = new PeerQueue()
    for (let i = 0; i < 1024; i++) q.add(peer(null, fake(i)))
    assert.strictEqual(q.length, caps[kind], `${kind}: the party gets its cap and no more`)
    assert.strictEqual(q.refused, 1024 - caps[kind], `${kind}: the rest are refused and counted`)
    const honest = [peer('192.0.2.50', { port: 7000 }), peer('100.64.1.2', { port: 7001, referrer: { host: '192.0.2.2', port: 1 } })]
    for (const p of honest) q.add(p)
    const dialled = drain(q)
    for (const p of honest) assert.ok(dialled.includes(p.host + ':' + p.port), `${kind}: honest ${p.host} queued`)
    q.destroy()
  }
})

test('a connected peer no longer counts against its IP: the next one from that IP is queued', () => {
  const q = new PeerQueue()
  for (let i = 0; i < MAX_PER_IP; i++) q.add(peer('192.0.2.7', { port: 1000 + i }))
  q.add(peer('192.0.2.7', { port: 5000 }))
  assert.strictEqual(q.length, MAX_PER_IP, 'the cap holds while none is proven')
  const info = q.shift()
  info.connected({ destroyed: false, end () {}, destroy () {} }, true)
  q.add(peer('192.0.2.7', { port: 5001 }))
  assert.ok(drain(q).includes('192.0.2.7:5001'), 'room again once one connected')
  q.destroy()
})

test('a peer given up through info.backoff() is forgotten after the forget delay', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'] })
  const q = new PeerQueue()
  q.add(peer('10.0.0.8'))
  const info = q.shift()
  let again = true
  for (let i = 0; i < 5 && again; i++) again = info.backoff()
  assert.strictEqual(again, false, 'given up after its retries')
  advanceUntil(t.mock, () => false, 7500 + 20)
  q.add(peer('10.0.0.8'))
  const fresh = q.shift()
  assert.ok(fresh && fresh !== info, 'forgotten: a fresh entry when found again')
  assert.strictEqual(fresh.retries, 0)
  q.destroy()
})
