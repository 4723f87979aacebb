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
const { testnet } = require('./conformance/testnet')
const { within, nextEvent, sleep, randomTopic } = require('./conformance/wait')
const hyperswarm = require('../hyperswarm')
const { CONNECT_TIMEOUT } = require('../lib/constants')

const engineStats = swarm => swarm.network._engine.stats()
const destroy = swarm => new Promise(resolve => swarm.destroy(resolve))
const until = (check, what, ms) => within((async () => { while (!check()) await sleep(20) })(), what, ms)

// A testnet, an announcer that echoes and counts the connections it is
// given and how many closed, and a looking-up swarm B (made with `opts`,
// changed by `before(b)` before it joins).
async function setup (t, opts = {}, before = () => {}) {
  const net = await testnet(3)
  t.after(() => net.destroy())
  const topic = randomTopic()
  const a = hyperswarm({ bootstrap: net.bootstrap, multicast: false })
  t.after(() => destroy(a))
  a.incoming = 0
  a.closed = 0
  a.on('connection', socket => {
    a.incoming++
    socket.on('error', () => {})
    socket.pipe(socket)
    socket.once('close', () => a.closed++)
  })
  a.join(topic, { announce: true, lookup: false })
  await nextEvent(a, 'updated')
  const b = hyperswarm({ bootstrap: net.bootstrap, multicast: false, ...opts })
  t.after(() => destroy(b))
  before(b)
  b.join(topic, { announce: false, lookup: true })
  return { a, b }
}

test('a newly found peer is dialled by the engine and the swarm takes that dial: one connection, no waste', async (t) => {
  const { a, b } = await setup(t)
  const [socket, info] = await nextEvent(b, 'connection')
  socket.on('error', () => {})
  assert.strictEqual(info.client, true)
  // Data flows over the dial the engine made.
  const echoed = nextEvent(socket, 'data', 'echo')
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
  const asked = []
  const { a, b } = await setup(t, { validatePeer: peer => { asked.push(peer); return true } })
  const [socket] = await nextEvent(b, 'connection')
  socket.on('error', () => {})
  assert.ok(asked.length >= 1)
  await sleep(500)
  assert.strictEqual(engineStats(b).dialsAhead, 0)
  assert.strictEqual(a.incoming, 1)
})

test('a dial ahead that the swarm does not take is closed after the connect timeout', async (t) => {
  // As the reference's own tests do: the swarm's dials go elsewhere.
  const asked = []
  const { a, b } = await setup(t, {}, b => { b.network.connect = peer => asked.push(peer) })
  await until(() => asked.length, 'connect() asked')
  // The engine's dial reached the announcer, and nobody on our side took it.
  await until(() => a.incoming, 'the incoming connection')
  assert.strictEqual(engineStats(b).dialsAhead, 1)
  assert.strictEqual(b.connections.size, 1, 'the unclaimed socket is ours to close')
  await until(() => a.closed, 'the unclaimed dial closed', CONNECT_TIMEOUT + 3000)
  const s = engineStats(b)
  assert.strictEqual(s.dialsAheadDropped, 1)
  assert.strictEqual(s.dialsAheadClaimed, 0)
  assert.strictEqual(b.connections.size, 0)
})

test("a dial ahead whose 'peer' event never reaches JS leaves nothing behind (the event gate may drop it)", async (t) => {
  // As when the gate to JS is full: the engine's 'dialing' arrives, its
  // 'peer' does not. Nobody can claim that dial; its address must not stay
  // in the engine's table of dials ahead for the life of the swarm.
  let dropped = 0
  const { a, b } = await setup(t, {}, b => {
    const engine = b.network._engine
    const deliver = engine._onevent.bind(engine)
    engine._onevent = ev => {
      if (ev.kind === 'peer') return void dropped++
      deliver(ev)
    }
  })
  await until(() => dropped && a.incoming, 'the dial ahead reached the announcer')
  await until(() => b.network._engine._ahead.size === 0, 'the address of the finished dial ahead is forgotten', 5000)
  assert.strictEqual(engineStats(b).dialsAhead, 1)
  // The socket nobody took is still closed after the connect timeout.
  await until(() => a.closed, 'the unclaimed dial closed', CONNECT_TIMEOUT + 3000)
  assert.strictEqual(engineStats(b).dialsAheadDropped, 1)
})
