'use strict'
// The ./hyperswarm entry dials from its own queue through network.connect(),
// as the reference does; while that queue is empty and has room, the engine
// starts the dial of a newly found peer itself and connect() takes it
// (README, "Dialling ahead"). These tests check that it happens, that the
// swarm ends up with exactly the connections it would have made anyway, and
// that a dial nobody takes is closed. Loopback, inside the namespace
// `npm test` makes; peers meet on a private reference DHT.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const { testnet } = require('./conformance/testnet')
const hyperswarm = require('../hyperswarm')
const { CONNECT_TIMEOUT } = require('../lib/constants')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function within (ms, what, promise) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('timed out: ' + what)), ms) })
  ]).finally(() => clearTimeout(timer))
}

const next = (emitter, name) => new Promise(resolve => emitter.once(name, (...args) => resolve(args)))

// An announcer that echoes, and counts the connections it is given and
// how many closed.
function announcer (bootstrap, topic) {
  const a = hyperswarm({ bootstrap, multicast: false })
  a.incoming = 0
  a.closed = 0
  a.on('connection', socket => {
    a.incoming++
    socket.on('error', () => {})
    socket.pipe(socket)
    socket.once('close', () => a.closed++)
  })
  a.join(topic, { announce: true, lookup: false })
  return a
}

const engineStats = swarm => swarm.network._engine.stats()
const destroy = swarm => new Promise(resolve => swarm.destroy(resolve))

test('a newly found peer is dialled by the engine and the swarm takes that dial: one connection, no waste', async (t) => {
  const net = await testnet(3)
  t.after(() => net.destroy())
  const topic = crypto.randomBytes(32)
  const a = announcer(net.bootstrap, topic)
  t.after(() => destroy(a))
  await next(a, 'updated')
  const b = hyperswarm({ bootstrap: net.bootstrap, multicast: false })
  t.after(() => destroy(b))
  b.join(topic, { announce: false, lookup: true })
  const [socket, info] = await within(10000, 'connection', next(b, 'connection'))
  socket.on('error', () => {})
  assert.strictEqual(info.client, true)
  // Data flows over the dial the engine made.
  const echoed = within(5000, 'echo', next(socket, 'data'))
  socket.write('hello')
  assert.strictEqual((await echoed)[0].toString(), 'hello')
  await sleep(500)
  const s = engineStats(b)
  assert.ok(s.dialsAhead >= 1, `dialsAhead ${s.dialsAhead}`)
  assert.strictEqual(s.dialsAheadClaimed, s.dialsAhead, 'every dial ahead was taken')
  assert.strictEqual(s.dialsAheadDropped, 0)
  assert.strictEqual(a.incoming, 1, 'the announcer got exactly one connection')
  assert.strictEqual(a.closed, 0)
})

test('with validatePeer nothing is dialled ahead (the application decides first)', async (t) => {
  const net = await testnet(3)
  t.after(() => net.destroy())
  const topic = crypto.randomBytes(32)
  const a = announcer(net.bootstrap, topic)
  t.after(() => destroy(a))
  await next(a, 'updated')
  const asked = []
  const b = hyperswarm({ bootstrap: net.bootstrap, multicast: false, validatePeer: peer => { asked.push(peer); return true } })
  t.after(() => destroy(b))
  b.join(topic, { announce: false, lookup: true })
  const [socket] = await within(10000, 'connection', next(b, 'connection'))
  socket.on('error', () => {})
  assert.ok(asked.length >= 1)
  await sleep(500)
  assert.strictEqual(engineStats(b).dialsAhead, 0)
  assert.strictEqual(a.incoming, 1)
})

test('a dial ahead that the swarm does not take is closed after the connect timeout', async (t) => {
  const net = await testnet(3)
  t.after(() => net.destroy())
  const topic = crypto.randomBytes(32)
  const a = announcer(net.bootstrap, topic)
  t.after(() => destroy(a))
  await next(a, 'updated')
  const b = hyperswarm({ bootstrap: net.bootstrap, multicast: false })
  t.after(() => destroy(b))
  // As the reference's own tests do: the swarm's dials go elsewhere.
  const asked = []
  b.network.connect = peer => asked.push(peer)
  b.join(topic, { announce: false, lookup: true })
  await within(10000, 'connect() asked', (async () => { while (!asked.length) await sleep(20) })())
  // The engine's dial reached the announcer, and nobody on our side took it.
  await within(5000, 'incoming connection', (async () => { while (!a.incoming) await sleep(20) })())
  assert.strictEqual(engineStats(b).dialsAhead, 1)
  assert.strictEqual(b.connections.size, 1, 'the unclaimed socket is ours to close')
  await within(CONNECT_TIMEOUT + 3000, 'unclaimed dial closed', (async () => { while (!a.closed) await sleep(50) })())
  const s = engineStats(b)
  assert.strictEqual(s.dialsAheadDropped, 1)
  assert.strictEqual(s.dialsAheadClaimed, 0)
  assert.strictEqual(b.connections.size, 0)
})
