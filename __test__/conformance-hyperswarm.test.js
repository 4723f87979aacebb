'use strict'
// Conformance suite for the `hyperswarm` 2.15.3 surface (spec: api-network.md
// section 4). Every case runs twice: against the pinned npm release
// ("reference") and against this package's hyperswarm.js ("ours"). Only the
// public API is exercised. Peers meet on a private loopback DHT (testnet);
// every swarm is pointed at it, never at the default public bootstrap nodes.
//
// Run (root, throwaway loopback-only namespace):
//   unshare -n sh -c 'ip link set lo up && node --test --test-concurrency=1 \
//     --test-timeout=180000 __test__/conformance-hyperswarm.test.js'
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert')
const { EventEmitter } = require('events')
const { randomBytes } = require('crypto')
const net = require('net')
const { surfaces, IMPLS } = require('./conformance/impls')
const { testnet } = require('./conformance/testnet')
const { hasNft, countSyns } = require('./conformance/refuse-tcp')
const { freePort } = require('./conformance/wait')

const KEY_MESSAGE = 'key is required and must be a 32-byte buffer'
const OPTS_MESSAGE = 'join options must enable lookup, announce or both, but not neither'
const DESTROYED_MESSAGE = 'swarm has been destroyed'

// PeerInfo.status bits (spec 4.3): PROVEN 1, RECONNECT 2, BANNED 4, ACTIVE 8,
// TRIED 16, FIREWALLED 32.
const CLIENT_TCP_STATUS = 1 | 2 | 8 | 16 // 27
const SERVER_TCP_STATUS = 1 | 2 // 3

// ---------------------------------------------------------------------------
// small async helpers, all bounded

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const topic = () => randomBytes(32)

/** Resolves with the arguments of the next `event` that `accept` likes. */
function waitFor (emitter, event, ms = 10000, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, onevent)
      reject(new Error(`no '${event}' event within ${ms} ms`))
    }, ms)
    function onevent (...args) {
      if (!accept(...args)) return
      clearTimeout(timer)
      emitter.removeListener(event, onevent)
      resolve(args)
    }
    emitter.on(event, onevent)
  })
}

/** Calls `start(cb)` and resolves with the arguments `cb` receives. */
function viaCallback (ms, what, start) {
  return new Promise((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => {
      if (!done) reject(new Error(`${what}: no callback within ${ms} ms`))
    }, ms)
    start((...args) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(args)
    })
  })
}

async function waitUntil (check, ms, what) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`)
    await sleep(20)
  }
}

/** The first `n` bytes a socket delivers (the listener is removed after). */
function readBytes (socket, n, ms = 5000) {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.removeListener('data', ondata)
      reject(new Error(`expected ${n} bytes within ${ms} ms, got ${got.length}`))
    }, ms)
    function ondata (chunk) {
      got = Buffer.concat([got, chunk])
      if (got.length < n) return
      clearTimeout(timer)
      socket.removeListener('data', ondata)
      resolve(got.subarray(0, n))
    }
    socket.on('data', ondata)
  })
}

function sameBytes (actual, expected, what) {
  assert.ok(Buffer.isBuffer(actual), `${what} should be a Buffer`)
  assert.ok(actual.equals(expected), `${what} should equal the expected bytes`)
}

/**
 * A port that is free, together with port + 1, for TCP and UDP alike; both
 * outside the kernel's ephemeral range, so no bind(0) here takes them
 * before the swarms under test do.
 */
const freePortPair = () => freePort(2)

// ---------------------------------------------------------------------------
// per-test bookkeeping: every swarm made through the kit is destroyed at the
// end, whether the test passed or not

function makeKit (factory, testNet) {
  const swarms = []
  const errors = []
  return {
    errors,
    swarm (opts = {}) {
      const swarm = factory({ bootstrap: testNet.bootstrap, ...opts })
      // Sockets get reset when peers go away or are banned; that is expected
      // here, and an unhandled socket error would take the whole run down.
      swarm.on('connection', (socket) => socket.on('error', () => {}))
      swarm.on('error', (err) => errors.push(err))
      swarms.push(swarm)
      return swarm
    },
    async destroyAll () {
      await Promise.all(swarms.map((swarm) => new Promise((resolve) => {
        const timer = setTimeout(resolve, 5000)
        try {
          swarm.destroy(() => { clearTimeout(timer); resolve() })
        } catch {
          clearTimeout(timer)
          resolve()
        }
      })))
    }
  }
}

// ---------------------------------------------------------------------------

for (const impl of IMPLS) {
  describe(`${impl === 'reference' ? 'reference: ' : ''}hyperswarm 2.15.3 [${impl}]`, () => {
    let hyperswarm = null
    let testNet = null

    before(async () => {
      hyperswarm = surfaces.hyperswarm[impl]()
      testNet = await testnet(3)
    })

    after(() => {
      if (testNet) testNet.destroy()
    })

    async function scenario (body) {
      const kit = makeKit(hyperswarm, testNet)
      let failure = null
      try {
        await body(kit)
      } catch (err) {
        failure = err
      }
      await kit.destroyAll()
      if (failure) throw failure
      if (kit.errors.length) {
        throw new Error(`a swarm emitted 'error': ${kit.errors.map((e) => e.message).join('; ')}`)
      }
    }

    /** join(key, opts) and wait for its onjoin callback (the first DHT round). */
    async function joinFlushed (swarm, key, opts) {
      const [err] = await viaCallback(15000, 'onjoin', (cb) => swarm.join(key, opts, cb))
      assert.ok(!err, `onjoin should not report an error (${err})`)
    }

    async function announcer (kit, key, opts = {}) {
      const swarm = kit.swarm(opts)
      await joinFlushed(swarm, key, { announce: true, lookup: false })
      return swarm
    }

    it('the export is a factory; a swarm is an EventEmitter with the documented methods', () => scenario(async (kit) => {
      assert.strictEqual(typeof hyperswarm, 'function')
      assert.strictEqual(typeof hyperswarm.Swarm, 'function', 'the Swarm class is exported as .Swarm')
      const swarm = kit.swarm()
      assert.ok(swarm instanceof EventEmitter)
      assert.ok(swarm instanceof hyperswarm.Swarm)
      for (const method of ['join', 'leave', 'status', 'connect', 'connectivity', 'flush',
        'holepunchable', 'remoteAddress', 'address', 'listen', 'destroy']) {
        assert.strictEqual(typeof swarm[method], 'function', `swarm.${method}`)
      }
      assert.ok(swarm.connections instanceof Set, 'connections is a Set')
      assert.strictEqual(swarm.connections.size, 0)
    }))

    it('join() and leave() reject bad keys and join() rejects announce:false + lookup:false', () => scenario(async (kit) => {
      const swarm = kit.swarm()
      const badKeys = [undefined, null, 'k'.repeat(32), Buffer.alloc(31), Buffer.alloc(33), new Uint8Array(32), 32]
      for (const bad of badKeys) {
        assert.throws(() => swarm.join(bad), { message: KEY_MESSAGE }, `join(${String(bad)})`)
        assert.throws(() => swarm.join(bad, { announce: true }), { message: KEY_MESSAGE })
        assert.throws(() => swarm.leave(bad), { message: KEY_MESSAGE }, `leave(${String(bad)})`)
      }
      const key = topic()
      assert.throws(() => swarm.join(key, { announce: false, lookup: false }), { message: OPTS_MESSAGE })
      assert.strictEqual(swarm.status(key), null, 'a rejected join leaves no status behind')
      assert.strictEqual(swarm.address(), null, 'a rejected join does not bind')
    }))

    it('after destroy(): methods throw, leave() is a no-op, status() is null, destroy() may repeat', () => scenario(async (kit) => {
      const swarm = kit.swarm()
      const [err] = await viaCallback(5000, 'destroy', (cb) => swarm.destroy(cb))
      assert.ok(!err, 'destroying a never-bound swarm succeeds')
      const key = topic()
      assert.throws(() => swarm.address(), { message: DESTROYED_MESSAGE })
      assert.throws(() => swarm.listen(0, () => {}), { message: DESTROYED_MESSAGE })
      assert.throws(() => swarm.join(key), { message: DESTROYED_MESSAGE })
      assert.throws(() => swarm.join(key, { announce: true, lookup: true }), { message: DESTROYED_MESSAGE })
      assert.throws(() => swarm.connect({ host: '127.0.0.1', port: 9 }, () => {}), { message: DESTROYED_MESSAGE })
      assert.throws(() => swarm.connectivity(() => {}), { message: DESTROYED_MESSAGE })
      assert.throws(() => swarm.flush(() => {}), { message: DESTROYED_MESSAGE })
      assert.doesNotThrow(() => swarm.leave(key))
      assert.throws(() => swarm.leave(Buffer.alloc(5)), { message: KEY_MESSAGE }, 'the key is still checked')
      assert.strictEqual(swarm.status(key), null)
      await viaCallback(5000, 'second destroy', (cb) => swarm.destroy(cb))
    }))

    it('address() is null until bound; listen() binds, emits listening; destroy() emits close', () => scenario(async (kit) => {
      const swarm = kit.swarm()
      assert.strictEqual(swarm.address(), null)
      const listening = waitFor(swarm, 'listening', 5000)
      const [err] = await viaCallback(5000, 'listen', (cb) => swarm.listen(0, cb))
      assert.ok(!err)
      await listening
      const address = swarm.address()
      assert.ok(address && Number.isInteger(address.port) && address.port > 0, 'a bound port')
      const closed = waitFor(swarm, 'close', 10000)
      const [destroyErr] = await viaCallback(10000, 'destroy', (cb) => swarm.destroy(cb))
      assert.ok(!destroyErr)
      await closed
    }))

    it('listen(port) takes the preferred port, or the next one when it is taken', () => scenario(async (kit) => {
      const port = await freePortPair()
      const first = kit.swarm()
      await viaCallback(5000, 'listen', (cb) => first.listen(port, cb))
      assert.strictEqual(first.address().port, port)
      const second = kit.swarm()
      await viaCallback(5000, 'listen', (cb) => second.listen(port, cb))
      assert.strictEqual(second.address().port, port + 1, 'preferred port busy: port + 1')
    }))

    it('join() sets status, emits listening/join/updated and calls onjoin; leave() clears it', () => scenario(async (kit) => {
      const swarm = kit.swarm()
      const key = topic()
      assert.strictEqual(swarm.status(key), null)

      const listening = waitFor(swarm, 'listening', 5000)
      const joined = waitFor(swarm, 'join', 5000, (k) => Buffer.isBuffer(k) && k.equals(key))
      const updated = waitFor(swarm, 'updated', 15000, (ev) => ev && Buffer.isBuffer(ev.key) && ev.key.equals(key))
      const onjoin = viaCallback(15000, 'onjoin', (cb) => swarm.join(key, { announce: true, lookup: false }, cb))
      assert.deepStrictEqual(swarm.status(key), { announce: true, lookup: false }, 'status is set at once')
      await listening
      assert.ok(swarm.address().port > 0, 'join binds the swarm')
      const [, joinOpts] = await joined
      assert.strictEqual(joinOpts.announce, true)
      assert.strictEqual(joinOpts.lookup, false)
      const [joinErr] = await onjoin
      assert.ok(!joinErr)
      const [ev] = await updated
      assert.deepStrictEqual(Object.keys(ev), ['key'])

      // join(key, onjoin): lookup only
      const key2 = topic()
      const onjoin2 = viaCallback(15000, 'onjoin (2 args)', (cb) => swarm.join(key2, cb))
      assert.deepStrictEqual(swarm.status(key2), { announce: false, lookup: true })
      await onjoin2

      // lookup defaults to true; joining again replaces the status
      const key3 = topic()
      swarm.join(key3, { announce: true })
      assert.deepStrictEqual(swarm.status(key3), { announce: true, lookup: true })
      swarm.join(key3, { lookup: true })
      assert.deepStrictEqual(swarm.status(key3), { announce: false, lookup: true })

      // leave an announced topic
      const left = waitFor(swarm, 'leave', 10000, (k) => Buffer.isBuffer(k) && k.equals(key))
      const onleave = viaCallback(10000, 'onleave (announced)', (cb) => swarm.leave(key, cb))
      assert.strictEqual(swarm.status(key), null, 'status is cleared at once')
      await left
      await onleave

      // leave a looked-up topic
      const onleave2 = viaCallback(10000, 'onleave (lookup)', (cb) => swarm.leave(key2, cb))
      assert.strictEqual(swarm.status(key2), null)
      await onleave2

      // leaving a topic never joined still emits 'leave' and does not throw
      const key4 = topic()
      const left4 = waitFor(swarm, 'leave', 5000, (k) => Buffer.isBuffer(k) && k.equals(key4))
      swarm.leave(key4)
      await left4
      assert.deepStrictEqual(swarm.status(key3), { announce: false, lookup: true }, 'other topics are untouched')
    }))

    it('announcer and looker connect over TCP: peer, connection infos, data, connections set', () => scenario(async (kit) => {
      const key = topic()
      const a = await announcer(kit, key)
      const port = a.address().port
      const b = kit.swarm()

      let clientConnections = 0
      b.on('connection', () => clientConnections++)
      const peerSeen = waitFor(b, 'peer', 10000)
      const updated = waitFor(b, 'updated', 10000)
      const atB = waitFor(b, 'connection', 10000)
      const atA = waitFor(a, 'connection', 10000)
      b.join(key, { announce: false, lookup: true })

      const [peer] = await peerSeen
      assert.strictEqual(peer.host, '127.0.0.1')
      assert.strictEqual(peer.port, port, 'the announced port is the swarm port')
      assert.strictEqual(peer.local, false, 'found through the DHT, not the LAN')
      sameBytes(peer.topic, key, 'peer.topic')
      assert.ok(peer.referrer && typeof peer.referrer.host === 'string' && Number.isInteger(peer.referrer.port),
        'a DHT peer carries its referrer node')
      assert.ok(Buffer.isBuffer(peer.referrer.id) && peer.referrer.id.length === 32, 'referrer.id')
      const [ev] = await updated
      sameBytes(ev.key, key, 'updated.key')

      const [sockB, infoB] = await atB
      const [sockA, infoA] = await atA

      // the dialling side
      assert.strictEqual(infoB.client, true)
      assert.strictEqual(infoB.type, 'tcp')
      assert.ok(infoB.peer, 'a client info has the peer')
      assert.strictEqual(infoB.peer.host, '127.0.0.1')
      assert.strictEqual(infoB.peer.port, port)
      sameBytes(infoB.peer.topic, key, 'info.peer.topic')
      assert.strictEqual(infoB.stream, sockB, 'info.stream is the socket')
      assert.strictEqual(infoB.status, CLIENT_TCP_STATUS, 'client TCP status bits')
      assert.strictEqual(infoB.priority, 1, 'loopback peer shares our address: priority 1')
      assert.strictEqual(infoB.retries, 0)
      assert.strictEqual(infoB.banned, false)
      assert.strictEqual(infoB.firewalled, false)
      assert.strictEqual(infoB.duplicate, false)

      // the accepting side
      assert.strictEqual(infoA.client, false)
      assert.strictEqual(infoA.peer, null)
      assert.strictEqual(infoA.type, 'tcp')
      assert.strictEqual(infoA.stream, sockA)
      assert.strictEqual(infoA.status, SERVER_TCP_STATUS, 'server TCP status bits')
      assert.strictEqual(infoA.priority, 2)
      assert.strictEqual(infoA.retries, 0)

      assert.ok(b.connections.has(sockB))
      assert.ok(a.connections.has(sockA))
      assert.strictEqual(b.connections.size, 1)
      assert.strictEqual(a.connections.size, 1)

      const up = randomBytes(64)
      const down = randomBytes(48)
      const gotUp = readBytes(sockA, up.length)
      const gotDown = readBytes(sockB, down.length)
      sockB.write(up)
      sockA.write(down)
      sameBytes(await gotUp, up, 'client to server bytes')
      sameBytes(await gotDown, down, 'server to client bytes')

      const [flushErr] = await viaCallback(10000, 'flush', (cb) => b.flush(cb))
      assert.ok(!flushErr)

      // several DHT nodes report the same announcer; it is dialled once
      // (the flush above called back only once every queued peer was dialled)
      assert.strictEqual(clientConnections, 1)
    }))

    it('after the remote drops the socket: disconnection, a backed-off redial, then ban() stops it', () => scenario(async (kit) => {
      const key = topic()
      const a = await announcer(kit, key)
      const b = kit.swarm()
      const atB = waitFor(b, 'connection', 10000)
      const atA = waitFor(a, 'connection', 10000)
      b.join(key, { announce: false, lookup: true })
      const [sockB, infoB] = await atB
      const [sockA, infoA] = await atA

      const goneB = waitFor(b, 'disconnection', 5000)
      const goneA = waitFor(a, 'disconnection', 5000)
      const redial = waitFor(b, 'connection', 6000)
      const droppedAt = Date.now()
      sockA.destroy()

      const [dsB, diB] = await goneB
      assert.strictEqual(dsB, sockB)
      assert.strictEqual(diB, infoB)
      assert.strictEqual(diB.client, true)
      const [dsA, diA] = await goneA
      assert.strictEqual(dsA, sockA)
      assert.strictEqual(diA, infoA)
      assert.strictEqual(diA.client, false)
      assert.strictEqual(b.connections.has(sockB), false)
      assert.strictEqual(a.connections.has(sockA), false)

      const [sock2, info2] = await redial
      const delay = Date.now() - droppedAt
      assert.ok(delay >= 600, `the redial waits for the first backoff step (took ${delay} ms)`)
      assert.ok(delay <= 4000, `the redial comes within the first backoff step (took ${delay} ms)`)
      assert.notStrictEqual(sock2, sockB)
      assert.strictEqual(info2, infoB, 'the same info object is reused for the redial')
      assert.strictEqual(info2.client, true)
      assert.strictEqual(info2.status, CLIENT_TCP_STATUS)
      assert.strictEqual(info2.priority, 5, 'priority after one retry')
      assert.strictEqual(info2.retries, 0, 'a successful connection resets retries')

      // The control: another looker whose connection drops at the moment
      // of the ban, unbanned, so it redials after the same backoff.
      const control = kit.swarm()
      const controlSockets = []
      control.on('connection', (socket) => controlSockets.push(socket))
      control.join(key, { announce: false, lookup: true })
      await waitUntil(() => controlSockets.length >= 1, 10000, 'the control connects')

      let later = 0
      b.on('connection', () => later++)
      const bannedGone = waitFor(b, 'disconnection', 5000)
      info2.ban()
      controlSockets[0].destroy()
      const [bannedSock, bannedInfo] = await bannedGone
      assert.strictEqual(bannedSock, sock2)
      assert.strictEqual(bannedInfo.banned, true)
      await waitUntil(() => controlSockets.length >= 2, 10000, 'the control redials')
      await sleep(500)
      assert.strictEqual(later, 0, 'a banned peer is not redialled')
    }))

    it('reconnect(false) and ban(true) also stop redials', () => scenario(async (kit) => {
      const key = topic()
      await announcer(kit, key)
      const noRedial = kit.swarm()
      const softBan = kit.swarm()
      // The control: drops its first connection the same way, but lets it redial.
      const control = kit.swarm()
      const counts = new Map([[noRedial, 0], [softBan, 0], [control, 0]])
      const closed = []
      for (const swarm of [noRedial, softBan, control]) {
        swarm.on('connection', (socket, info) => {
          counts.set(swarm, counts.get(swarm) + 1)
          if (counts.get(swarm) !== 1) return
          if (swarm === noRedial) {
            info.reconnect(false)
            socket.destroy()
          } else if (swarm === softBan) {
            info.ban(true)
          } else {
            socket.destroy()
          }
        })
        closed.push(waitFor(swarm, 'disconnection', 10000))
        swarm.join(key, { announce: false, lookup: true })
      }
      const [[, infoNoRedial], [, infoSoftBan]] = await Promise.all(closed)
      assert.strictEqual(infoNoRedial.banned, false)
      assert.strictEqual(infoSoftBan.banned, true)
      // By the time the control has redialled, the backoff has run its course for all three.
      await waitUntil(() => counts.get(control) >= 2, 10000, 'the control swarm redials')
      await sleep(500)
      assert.strictEqual(counts.get(noRedial), 1, 'reconnect(false): no redial')
      assert.strictEqual(counts.get(softBan), 1, 'ban(true): no redial')
    }))

    it('deduplicate() keeps one connection per pair: the one dialled by the smaller id', () => scenario(async (kit) => {
      const key = topic()
      const sides = [kit.swarm(), kit.swarm()].map((swarm) => ({ swarm, id: randomBytes(32), links: [] }))
      for (const side of sides) {
        side.swarm.on('connection', (socket, info) => {
          const link = { socket, info, closed: false, duplicateEvent: false, dropped: null }
          side.links.push(link)
          info.on('duplicate', () => { link.duplicateEvent = true })
          socket.on('close', () => { link.closed = true })
          link.ready = readBytes(socket, 32).then((remoteId) => {
            link.remoteId = remoteId
            link.dropped = info.deduplicate(side.id, remoteId)
          })
          socket.write(side.id)
        })
      }
      const [first, second] = sides

      // `second` finds `first` and dials it
      await joinFlushed(first.swarm, key, { announce: true, lookup: true })
      await joinFlushed(second.swarm, key, { announce: true, lookup: true })
      await waitUntil(() => first.links.length === 1 && second.links.length === 1, 10000, 'first connection')
      await Promise.all([first.links[0].ready, second.links[0].ready])
      assert.strictEqual(first.links[0].dropped, false, 'a first connection is kept')
      assert.strictEqual(second.links[0].dropped, false, 'a first connection is kept')

      // joining again makes `first` look up afresh, find `second` and dial it
      await joinFlushed(first.swarm, key, { announce: true, lookup: true })
      await waitUntil(() => first.links.length === 2 && second.links.length === 2, 10000, 'second connection')
      await Promise.all(sides.flatMap((side) => side.links.map((link) => link.ready)))
      await waitUntil(() => sides.every((side) => side.links.filter((l) => !l.closed).length === 1), 5000,
        'each side down to one connection')

      for (const side of sides) {
        const other = side === first ? second : first
        const smaller = Buffer.compare(side.id, other.id) < 0
        const kept = side.links.filter((l) => !l.closed)
        const dropped = side.links.filter((l) => l.closed)
        assert.strictEqual(kept.length, 1)
        assert.strictEqual(dropped.length, 1)
        sameBytes(kept[0].remoteId, other.id, 'the kept connection leads to the other side')
        assert.strictEqual(kept[0].info.client, smaller, 'the connection dialled by the smaller id survives')
        assert.strictEqual(kept[0].info.duplicate, false)
        assert.strictEqual(dropped[0].info.duplicate, true)
        assert.strictEqual(dropped[0].duplicateEvent, true, "'duplicate' event on the dropped info")
        for (const link of side.links) {
          if (link.dropped === true) assert.strictEqual(link.info.duplicate, true, 'true means this one was dropped')
        }
        assert.strictEqual(side.swarm.connections.size, 1)
      }

      const [keptFirst] = first.links.filter((l) => !l.closed)
      const [keptSecond] = second.links.filter((l) => !l.closed)
      const hello = randomBytes(20)
      const back = randomBytes(20)
      const gotHello = readBytes(keptSecond.socket, hello.length)
      const gotBack = readBytes(keptFirst.socket, back.length)
      keptFirst.socket.write(hello)
      keptSecond.socket.write(back)
      sameBytes(await gotHello, hello, 'data over the kept connection')
      sameBytes(await gotBack, back, 'data over the kept connection')
    }))

    it('deduplicate(id, id) drops the connection as a connection to self; without a stream it is false', () => scenario(async (kit) => {
      const key = topic()
      const a = await announcer(kit, key)
      const b = kit.swarm()
      let connections = 0
      b.on('connection', () => connections++)
      const atB = waitFor(b, 'connection', 10000)
      const atA = waitFor(a, 'connection', 10000)
      b.join(key, { announce: false, lookup: true })
      const [sock, info] = await atB
      await atA
      // The control: another looker whose connection drops just after,
      // not banned, so it redials after the backoff.
      const control = kit.swarm()
      const controlSockets = []
      control.on('connection', (socket) => controlSockets.push(socket))
      control.join(key, { announce: false, lookup: true })
      await waitUntil(() => controlSockets.length >= 1, 10000, 'the control connects')
      const gone = waitFor(b, 'disconnection', 5000)
      const goneA = waitFor(a, 'disconnection', 5000)
      const id = randomBytes(32)
      assert.strictEqual(info.deduplicate(id, Buffer.from(id)), true)
      const [goneSock, goneInfo] = await gone
      assert.strictEqual(goneSock, sock)
      assert.strictEqual(goneInfo.banned, true)
      await goneA
      controlSockets[0].destroy()
      assert.strictEqual(info.deduplicate(randomBytes(32), randomBytes(32)), false, 'no stream: false')
      await waitUntil(() => controlSockets.length >= 2, 10000, 'the control redials')
      await sleep(500)
      assert.strictEqual(connections, 1, 'no redial to self')
    }))

    it('validatePeer returning false: peer-rejected, no peer event, no connection', (t) => scenario(async (kit) => {
      assert.ok(hasNft(), 'nftables (nft) is needed to count SYNs: .ci/run installs it')
      const key = topic()
      const a = await announcer(kit, key)
      const syns = countSyns(t, a.address().port)
      const validated = []
      const b = kit.swarm({
        validatePeer (peer) {
          validated.push(peer)
          return false
        }
      })
      const rejected = []
      let peers = 0
      let connections = 0
      b.on('peer-rejected', (peer) => rejected.push(peer))
      b.on('peer', () => peers++)
      b.on('connection', () => connections++)
      a.on('connection', () => connections++)
      await joinFlushed(b, key, { announce: false, lookup: true })
      // flush() calls back once every peer the lookup queued was dialled.
      await viaCallback(10000, 'flush', (cb) => b.flush(cb))
      assert.ok(rejected.length >= 1, 'at least one peer-rejected')
      assert.strictEqual(syns(), 0, 'no dial reached the announcer')
      assert.strictEqual(validated.length, rejected.length, 'every validated peer was rejected')
      assert.strictEqual(rejected[0], validated[0], 'peer-rejected carries the validated peer object')
      for (const peer of rejected) {
        assert.strictEqual(peer.port, a.address().port)
        sameBytes(peer.topic, key, 'rejected peer topic')
      }
      assert.strictEqual(peers, 0)
      assert.strictEqual(connections, 0)
    }))

    it('maxClientSockets: 1 keeps one outgoing connection; a free slot goes to another peer', () => scenario(async (kit) => {
      const key = topic()
      const announcers = []
      for (let i = 0; i < 3; i++) announcers.push(await announcer(kit, key))
      const served = new Map()
      for (const a of announcers) {
        a.on('connection', (socket) => served.set(a, socket))
      }
      const b = kit.swarm({ maxClientSockets: 1 })
      let live = 0
      let most = 0
      const ports = []
      b.on('connection', (socket, info) => {
        live++
        most = Math.max(most, live)
        ports.push(info.peer.port)
      })
      b.on('disconnection', () => live--)
      await joinFlushed(b, key, { announce: false, lookup: true })
      await waitUntil(() => ports.length >= 1, 5000, 'a first outgoing connection')
      await sleep(1500)
      assert.strictEqual(ports.length, 1, 'one outgoing connection with three peers known')
      assert.strictEqual(b.connections.size, 1)

      await waitUntil(() => served.size === 1, 5000, 'the announcer sees the connection')
      const [[, serverSocket]] = [...served]
      serverSocket.destroy()
      await waitUntil(() => ports.length >= 2, 4000, 'the free slot is used again')
      assert.notStrictEqual(ports[1], ports[0], 'the next queued peer gets the slot')
      await sleep(500)
      assert.strictEqual(most, 1, 'never more than one outgoing connection at a time')
    }))

    // An announcer with `opts` and `lookers` swarms that look it up. Every
    // SYN to the announcer's port is counted, and every FIN or RST it sends:
    // the proof that the lookers dialled and were turned away.
    async function incomingWith (t, kit, opts, lookers = 3) {
      assert.ok(hasNft(), 'nftables (nft) is needed to count SYNs: .ci/run installs it')
      const key = topic()
      const a = await announcer(kit, key, opts)
      const syns = countSyns(t, a.address().port)
      const types = [] // the transport of each connection the announcer admitted
      a.on('connection', (socket, info) => types.push(info.type))
      const swarms = []
      for (let i = 0; i < lookers; i++) swarms.push(kit.swarm())
      await Promise.all(swarms.map((s) => joinFlushed(s, key, { announce: false, lookup: true })))
      const connected = () => swarms.filter((s) => s.connections.size > 0).length
      return { a, count: () => types.length, types, connected, syns }
    }

    // Waits until `refused` dials were turned away (the announcer closed
    // them), or until the announcer took more than `admitted`. The FIN is on
    // the wire a moment before the closed socket's 'close' event takes it
    // out of `connections`, so that set gets a short while to settle.
    async function refusedOrOver (a, syns, count, admitted, refused) {
      await waitUntil(() => count() > admitted || (syns() >= admitted + refused && syns.closes() >= refused),
        10000, `${refused} dials refused (SYNs ${syns()}, closed ${syns.closes()}, admitted ${count()})`)
      await waitUntil(() => count() > admitted || a.connections.size <= admitted, 1000, 'refused sockets closed')
    }

    // The limit is per transport, as each of the reference's servers has its
    // own maxConnections. The reference's LAN lookers dial TCP only, so one
    // gets in. Ours dial a LAN peer that refuses TCP over uTP, so a second
    // looker gets the uTP slot and the third is turned away on both.
    it('maxServerSockets: 1 admits one incoming connection per transport out of three lookers', (t) => scenario(async (kit) => {
      const { a, count, types, connected, syns } = await incomingWith(t, kit, { maxServerSockets: 1 })
      const utp = impl === 'ours' ? 1 : 0
      await waitUntil(() => count() >= 1, 5000, 'one incoming connection')
      await refusedOrOver(a, syns, count, 1 + utp, 2 - utp)
      if (utp) await waitUntil(() => types.includes('utp'), 5000, 'a second looker admitted over uTP')
      // Time for a third looker to come in if the limit leaked: ours' uTP
      // try gives up after 1 s, and a refused looker retries after ~1 s.
      await sleep(2500)
      assert.ok(syns() >= 3, `every looker dialled TCP (SYNs ${syns()})`)
      assert.deepStrictEqual(types.filter((x) => x === 'tcp'), ['tcp'], 'one over TCP')
      assert.strictEqual(types.filter((x) => x === 'utp').length, utp, 'over uTP')
      assert.strictEqual(a.connections.size, 1 + utp)
      assert.strictEqual(connected(), 1 + utp, 'the other lookers hold no connection')
    }))

    it('maxServerSockets: -1 refuses every incoming connection', (t) => scenario(async (kit) => {
      const { a, count, syns } = await incomingWith(t, kit, { maxServerSockets: -1 })
      await refusedOrOver(a, syns, count, 0, 3)
      assert.ok(syns() >= 3, 'every looker dialled')
      assert.strictEqual(count(), 0)
      assert.strictEqual(a.connections.size, 0)
    }))

    it('maxServerSockets: 0 means no limit (as documented)', (t) => scenario(async (kit) => {
      const { a, count } = await incomingWith(t, kit, { maxServerSockets: 0 })
      await waitUntil(() => count() >= 3, 5000, 'three incoming connections')
      assert.strictEqual(a.connections.size, 3)
    }))

    it('maxPeers: 1 caps incoming connections too', (t) => scenario(async (kit) => {
      const { a, count, syns } = await incomingWith(t, kit, { maxPeers: 1 })
      await waitUntil(() => count() >= 1, 5000, 'one incoming connection')
      await refusedOrOver(a, syns, count, 1, 2)
      assert.strictEqual(count(), 1)
      assert.strictEqual(a.connections.size, 1)
    }))

    it('queue.multiplex: one connection per peer across topics, each topic reported on the info', () => scenario(async (kit) => {
      const key1 = topic()
      const key2 = topic()
      const a = kit.swarm()
      await joinFlushed(a, key1, { announce: true, lookup: false })
      await joinFlushed(a, key2, { announce: true, lookup: false })

      // Without multiplex a peer found under two topics is two queue
      // entries, and so two connections.
      const plain = kit.swarm()
      let plainClients = 0
      plain.on('connection', (socket, info) => { if (info.client) plainClients++ })
      await joinFlushed(plain, key1, { lookup: true })
      await joinFlushed(plain, key2, { lookup: true })
      await waitUntil(() => plainClients === 2, 10000, 'two connections without multiplex')

      const mux = kit.swarm({ queue: { multiplex: true } })
      const clients = []
      mux.on('connection', (socket, info) => { if (info.client) clients.push(info) })
      await joinFlushed(mux, key1, { lookup: true })
      await waitUntil(() => clients.length === 1, 10000, 'the first connection')
      const info = clients[0]
      assert.ok(info.topics.some((t) => t.equals(key1)), 'the info lists the first topic')
      const announced = waitFor(info, 'topic', 10000, (t) => t.equals(key2))
      await joinFlushed(mux, key2, { lookup: true })
      await announced
      assert.ok(info.topics.some((t) => t.equals(key2)), 'the info lists the second topic')
      // flush() calls back once every peer the lookups queued was dialled.
      await viaCallback(10000, 'flush', (cb) => mux.flush(cb))
      assert.strictEqual(clients.length, 1, 'still one connection with multiplex')
    }))

    it('connect(peer, cb) gives (null, socket, true) over TCP; a closed port gives an Error', () => scenario(async (kit) => {
      const a = kit.swarm()
      await viaCallback(5000, 'listen', (cb) => a.listen(0, cb))
      const b = kit.swarm()
      await viaCallback(5000, 'listen', (cb) => b.listen(0, cb))
      let dialerEvents = 0
      b.on('connection', () => dialerEvents++)
      const atA = waitFor(a, 'connection', 5000)
      const [err, socket, isTCP] = await viaCallback(15000, 'connect', (cb) =>
        b.connect({ host: '127.0.0.1', port: a.address().port }, cb))
      assert.ok(!err, `no error (${err})`)
      assert.strictEqual(isTCP, true)
      assert.strictEqual(typeof socket.write, 'function')
      socket.on('error', () => {})
      assert.ok(b.connections.has(socket), 'the dialled socket is in connections')
      const [sockA, infoA] = await atA
      assert.strictEqual(infoA.client, false)
      assert.strictEqual(infoA.peer, null)
      const payload = randomBytes(16)
      const got = readBytes(sockA, payload.length)
      socket.write(payload)
      sameBytes(await got, payload, 'bytes over a connect() socket')
      assert.strictEqual(dialerEvents, 0, "connect() does not emit 'connection' on the dialler")
      socket.destroy()

      const closedPort = await new Promise((resolve) => {
        const server = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = server.address()
          server.close(() => resolve(port))
        })
      })
      const [failure, none] = await viaCallback(15000, 'connect to closed port', (cb) =>
        b.connect({ host: '127.0.0.1', port: closedPort }, cb))
      assert.ok(failure instanceof Error)
      assert.strictEqual(failure.message, 'All sockets failed')
      assert.ok(!none, 'no socket on failure')
    }))

    it('connectivity(): one bootstrap node is not enough; two agreeing ones report holepunched', () => scenario(async (kit) => {
      const lonely = kit.swarm()
      const [err, result] = await viaCallback(15000, 'connectivity', (cb) => lonely.connectivity(cb))
      assert.ok(err instanceof Error)
      assert.strictEqual(err.message, 'Not enough bootstrap nodes replied')
      assert.deepStrictEqual(result, { bound: true, boostrapped: false, bootstrapped: false, holepunched: false })

      // a second bootstrap node, on loopback as well
      const dht = require('@hyperswarm/dht')
      const extra = dht({ bootstrap: testNet.bootstrap, ephemeral: true })
      try {
        await new Promise((resolve, reject) => {
          extra.once('error', reject)
          extra.listen(0, '127.0.0.1', resolve)
        })
        const paired = kit.swarm({ bootstrap: [...testNet.bootstrap, `127.0.0.1:${extra.address().port}`] })
        const [err2, result2] = await viaCallback(15000, 'connectivity', (cb) => paired.connectivity(cb))
        assert.ok(!err2, `no error (${err2})`)
        assert.deepStrictEqual(result2, { bound: true, boostrapped: true, bootstrapped: true, holepunched: true })
        assert.ok(paired.address().port > 0, 'connectivity() binds')
        await viaCallback(10000, 'destroy', (cb) => paired.destroy(cb))
      } finally {
        extra.destroy()
      }
    }))

    it('holepunchable() and remoteAddress(): null before binding, the loopback address after a join', () => scenario(async (kit) => {
      const swarm = kit.swarm()
      assert.strictEqual(swarm.holepunchable(), null)
      assert.strictEqual(swarm.remoteAddress(), null)
      await joinFlushed(swarm, topic(), { announce: true, lookup: false })
      assert.strictEqual(swarm.holepunchable(), true)
      assert.deepStrictEqual(swarm.remoteAddress(), { host: '127.0.0.1', port: swarm.address().port })
    }))

    it('flush(cb) binds and calls back, with or without topics', () => scenario(async (kit) => {
      const idle = kit.swarm()
      const [err] = await viaCallback(10000, 'flush (no topics)', (cb) => idle.flush(cb))
      assert.ok(!err)
      assert.ok(idle.address().port > 0, 'flush binds')

      const key = topic()
      await announcer(kit, key)
      const looker = kit.swarm()
      const connected = waitFor(looker, 'connection', 10000)
      looker.join(key, { announce: false, lookup: true })
      const [err2] = await viaCallback(10000, 'flush (after join)', (cb) => looker.flush(cb))
      assert.ok(!err2)
      await connected
    }))
  })
}
