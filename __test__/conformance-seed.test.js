'use strict'
// Conformance: @hyperswarm/network 0.0.4 (the seed: an EventEmitter with
// join/leave/connect) against hyperswarm-native's main entry. Every case
// runs twice, once per implementation, on a private DHT on loopback, and
// looks only at what a user can see: events, callbacks and thrown errors.
//
// The seed nests discovery 1.11.5 over @hyperswarm/dht 3.6.5; the shared
// testnet runs dht 4.0.1. The two speak the same announce/lookup messages
// (3.6.5 only adds optional fields), so the seed finds peers through it
// as long as a lookup starts after the announce it should see has finished:
// the seed's next DHT round is 5–10 minutes away and LAN discovery is
// silenced, so every case waits for the announcer's 'update' first.
//
// The 0.0.4 reference has no destroy/close at all; cleanup stops what it
// started through its public fields (see `shutdown`) and never asserts on
// them. Ours has destroy(cb), which cleanup uses instead.
//
// Run inside a loopback-only network namespace, e.g.
//   unshare -n sh -c 'ip link set lo up && node --test --test-concurrency=1 \
//     --test-timeout=180000 --test-name-pattern=reference __test__/conformance-seed.test.js'
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert')
const { EventEmitter } = require('events')
const net = require('net')
const { surfaces, IMPLS } = require('./conformance/impls')
const { testnet } = require('./conformance/testnet')
const { hasNft, refuseTcp } = require('./conformance/refuse-tcp')

const { randomTopic, sleep, within, viaCallback, nextEvent, freePort } = require('./conformance/wait')

/** The first `event` whose arguments `pred` accepts (events already recorded in `seen` count). */
function eventWhere (emitter, event, pred, what, seen = []) {
  const hit = seen.find(args => pred(...args))
  if (hit) return Promise.resolve(hit)
  return within(new Promise(resolve => {
    const on = (...args) => {
      if (!pred(...args)) return
      emitter.removeListener(event, on)
      resolve(args)
    }
    emitter.on(event, on)
  }), what || event)
}

/** Stops one network, whichever implementation it is. */
async function shutdown (nw) {
  if (typeof nw.destroy === 'function') {
    await within(new Promise(resolve => nw.destroy(resolve)), 'destroy in cleanup', 5000)
    return
  }
  // The 0.0.4 reference offers no teardown: stop its discovery (which
  // unannounces and closes the UDP socket) and its TCP server directly.
  const discovery = nw.discovery
  const done = new Promise(resolve => discovery.once('close', resolve))
  discovery.destroy()
  if (nw.server && nw.server.listening) nw.server.close()
  await within(done, 'discovery close in cleanup', 5000)
}

for (const impl of IMPLS) {
  describe(`${impl === 'reference' ? 'reference: ' : ''}@hyperswarm/network 0.0.4 [${impl}]`, () => {
    let dht = null

    before(async () => { dht = await testnet(3) })
    after(() => { if (dht) dht.destroy() })

    // Loaded per test so a missing implementation fails its own cases only.
    const factory = () => surfaces.seed[impl]()

    /** Per-test bookkeeping: everything made here is torn down afterwards. */
    function scope (t) {
      const networks = []
      const sockets = []
      const connections = new Map()
      t.after(async () => {
        for (const s of sockets) s.destroy()
        await Promise.all(networks.map(nw => shutdown(nw).catch(() => {})))
      })
      return {
        network (opts = {}) {
          const nw = factory()({ bootstrap: dht.bootstrap, ...opts })
          networks.push(nw)
          // Record every connection (and keep it for cleanup) from the start.
          const seen = []
          connections.set(nw, seen)
          nw.on('connection', (socket, details) => {
            socket.on('error', () => {})
            sockets.push(socket)
            seen.push([socket, details])
          })
          return nw
        },
        /** The [socket, details] of every 'connection' event `nw` has emitted. */
        connections (nw) { return connections.get(nw) },
        socket (s) { s.on('error', () => {}); sockets.push(s); return s }
      }
    }

    /** `a` joins `topic` as an announcer and its first DHT round ends. */
    async function announced (a, topic, opts = { announce: true }) {
      const round = nextEvent(a, 'update', 'the announcer\'s first DHT round')
      a.join(topic, opts)
      await round
    }

    /** `b` joins `topic` to look it up; resolves with the peers seen in its first round. */
    async function lookedUp (b, topic) {
      const peers = []
      const onpeer = p => peers.push(p)
      b.on('peer', onpeer)
      const round = nextEvent(b, 'update', 'the looker\'s first DHT round')
      b.join(topic, { lookup: true })
      await round
      b.removeListener('peer', onpeer)
      return peers
    }

    /** A announces a fresh topic; then B looks it up: the peers B's first round saw. */
    async function announcerAndLooker (s) {
      const topic = randomTopic()
      const a = s.network()
      const b = s.network()
      await announced(a, topic)
      return { topic, a, b, peers: await lookedUp(b, topic) }
    }

    it('exports a factory that returns an EventEmitter with join, leave and connect', (t) => {
      const s = scope(t)
      const network = factory()
      assert.strictEqual(typeof network, 'function')
      const nw = s.network()
      assert.ok(nw instanceof EventEmitter)
      for (const m of ['join', 'leave', 'connect', 'on', 'once', 'emit']) {
        assert.strictEqual(typeof nw[m], 'function', m)
      }
    })

    it('join and leave reject a missing or non-buffer topic by throwing', (t) => {
      const s = scope(t)
      const nw = s.network()
      for (const bad of [undefined, null]) {
        assert.throws(() => nw.join(bad, { lookup: true }), TypeError, `join(${bad})`)
        assert.throws(() => nw.leave(bad), TypeError, `leave(${bad})`)
      }
      assert.throws(() => nw.join({}, { lookup: true }), TypeError, 'join({})')
      // The reference throws a RangeError here (from toString('hex')), ours a
      // TypeError: both refuse it, which is all this checks.
      assert.throws(() => nw.join(42, { lookup: true }), Error, 'join(42)')
    })

    it('leave(topic) of a topic never joined does nothing: no throw, and a joined topic stays announced', async (t) => {
      const s = scope(t)
      const never = s.network()
      assert.doesNotThrow(() => never.leave(randomTopic()), 'on a network that never joined')
      const topic = randomTopic()
      const a = s.network()
      await announced(a, topic)
      const events = []
      for (const e of ['close', 'error', 'warning']) a.on(e, () => events.push(e))
      assert.doesNotThrow(() => a.leave(randomTopic()), 'on a network with a joined topic')
      const peers = await lookedUp(s.network(), topic)
      assert.ok(peers.length >= 1, 'the joined topic is still announced: a lookup finds it')
      assert.deepStrictEqual(events, [])
    })

    it('a looker finds an announcer: peer events with host, port, local, referrer, topic', async (t) => {
      const s = scope(t)
      const { topic, a, b, peers } = await announcerAndLooker(s)
      assert.ok(peers.length >= 1, 'the first round found the announcer')
      const ports = new Set(peers.map(p => p.port))
      assert.strictEqual(ports.size, 1, 'one announcer, one port')
      for (const peer of peers) {
        assert.strictEqual(peer.host, '127.0.0.1')
        assert.ok(Number.isInteger(peer.port) && peer.port > 0 && peer.port < 65536)
        assert.strictEqual(peer.local, false)
        assert.ok(Buffer.isBuffer(peer.topic) && peer.topic.equals(topic))
        assert.ok(peer.referrer && typeof peer.referrer === 'object')
        assert.strictEqual(peer.referrer.host, '127.0.0.1')
        assert.ok(Number.isInteger(peer.referrer.port) && peer.referrer.port > 0)
        assert.ok(Buffer.isBuffer(peer.referrer.id) && peer.referrer.id.length === 32)
      }
    })

    it('peer objects carry `to`: the looker as the DHT nodes saw it', async (t) => {
      const s = scope(t)
      const { topic, a, b, peers } = await announcerAndLooker(s)
      assert.ok(peers.length >= 1)
      const tos = new Set()
      for (const peer of peers) {
        assert.ok(peer.to && typeof peer.to === 'object', 'to is present')
        assert.strictEqual(peer.to.host, '127.0.0.1')
        assert.ok(Number.isInteger(peer.to.port) && peer.to.port > 0)
        tos.add(peer.to.port)
      }
      assert.strictEqual(tos.size, 1, 'every DHT node saw the looker at the same port')
    })

    // The seed's DHT peers also carry `length: 0`, a leftover of its peer
    // encoder (ipv4 records with a length field), not part of its API: we do
    // not reproduce it and do not assert it.

    it('update is emitted with no arguments when a topic\'s DHT round ends', async (t) => {
      const s = scope(t)
      const a = s.network()
      const round = nextEvent(a, 'update', 'update')
      a.join(randomTopic(), { announce: true })
      const args = await round
      assert.strictEqual(args.length, 0)
      const b = s.network()
      const round2 = nextEvent(b, 'update', 'update of a lookup')
      b.join(randomTopic(), { lookup: true })
      assert.strictEqual((await round2).length, 0)
    })

    it('the looker dials the announcer once: connection(socket, details) on both sides; data flows', async (t) => {
      const s = scope(t)
      const { topic, a, b, peers } = await announcerAndLooker(s)
      assert.ok(peers.length >= 1)
      const announcedPort = peers[0].port

      const [bSocket, bDetails] = await eventWhere(b, 'connection', () => true, 'the dialer\'s connection', s.connections(b))
      const [aSocket, aDetails] = await eventWhere(a, 'connection', () => true, 'the announcer\'s connection', s.connections(a))

      assert.ok(bSocket instanceof net.Socket)
      assert.strictEqual(bDetails.type, 'tcp')
      assert.strictEqual(bDetails.client, true)
      assert.ok(bDetails.peer && typeof bDetails.peer === 'object')
      assert.strictEqual(bDetails.peer.host, '127.0.0.1')
      assert.strictEqual(bDetails.peer.port, announcedPort)
      assert.ok(bDetails.peer.topic.equals(topic))

      assert.ok(aSocket instanceof net.Socket)
      assert.deepStrictEqual(aDetails, { type: 'tcp', client: false, peer: null })

      bSocket.write('from b')
      const [fromB] = await nextEvent(aSocket, 'data', 'data at the announcer')
      assert.strictEqual(fromB.toString(), 'from b')
      aSocket.write('from a')
      const [fromA] = await nextEvent(bSocket, 'data', 'data at the dialer')
      assert.strictEqual(fromA.toString(), 'from a')

      // The same peer came from several DHT nodes; it is dialled once.
      await sleep(500)
      assert.strictEqual(s.connections(b).length, 1)
      assert.strictEqual(s.connections(a).length, 1)
    })

    it('when TCP is refused the looker connects over hole-punched uTP (details.type "utp")', async (t) => {
      assert.ok(hasNft(), 'nftables (nft) is needed to refuse TCP: .ci/run installs it')
      const s = scope(t)
      const topic = randomTopic()
      const a = s.network()
      const b = s.network()
      await announced(a, topic)
      const peers = await lookedUp(s.network(), topic) // learn a's port without dialing from b
      assert.ok(peers.length >= 1)
      refuseTcp(t, peers[0].port)

      const found = await lookedUp(b, topic)
      assert.ok(found.length >= 1)
      const [bSocket, bDetails] = await eventWhere(b, 'connection', () => true, 'the dialer\'s connection', s.connections(b))
      // The dialer speaks first: as with libutp the acceptor cannot send
      // before it does, and ours reports the connection only then (a SYN
      // alone may be spoofed).
      bSocket.write('over utp')
      const [aSocket, aDetails] = await eventWhere(a, 'connection', (sock, d) => d.type === 'utp', 'the announcer\'s uTP connection', s.connections(a))
      assert.strictEqual(bDetails.type, 'utp')
      assert.strictEqual(bDetails.client, true)
      assert.strictEqual(bDetails.peer.port, peers[0].port)
      assert.ok(!(bSocket instanceof net.Socket), 'a uTP socket, not a net.Socket')
      assert.deepStrictEqual(aDetails, { type: 'utp', client: false, peer: null })

      const [got] = await nextEvent(aSocket, 'data', 'data at the announcer')
      assert.strictEqual(got.toString(), 'over utp')
      aSocket.write('and back')
      const [back] = await nextEvent(bSocket, 'data', 'data at the dialer')
      assert.strictEqual(back.toString(), 'and back')

      // Close both ends before the networks go, so no uTP close is left waiting.
      const closedBoth = Promise.all([
        nextEvent(aSocket, 'close', 'the announcer\'s uTP socket to close'),
        nextEvent(bSocket, 'close', 'the dialer\'s uTP socket to close')
      ])
      bSocket.destroy()
      aSocket.destroy()
      await closedBoth
    })

    it('leave(topic) withdraws an announcement: a later lookup finds nobody', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const a = s.network()
      await announced(a, topic)
      // The control: a lookup finds the announcement before the leave.
      assert.ok((await lookedUp(s.network(), topic)).length >= 1, 'announced')
      a.leave(topic)
      // Withdrawing is a DHT round trip with nothing to wait on in this
      // API: fresh lookups, a bounded number, until one finds nobody.
      let c = null
      let peers = null
      for (let i = 0; i < 10; i++) {
        c = s.network()
        peers = await lookedUp(c, topic)
        if (!peers.length) break
      }
      assert.deepStrictEqual(peers, [])
      assert.strictEqual(s.connections(c).length, 0)
    })

    it('connect(peer, cb) calls back (null, socket, details); the other side emits connection', async (t) => {
      const s = scope(t)
      const { topic, a, b, peers } = await announcerAndLooker(s)
      assert.ok(peers.length >= 1)

      const c = s.network() // never joins: dials by address only
      const peer = { host: peers[0].host, port: peers[0].port }
      const args = await viaCallback(cb => c.connect(peer, cb), 'connect')
      assert.strictEqual(args.length, 3)
      const [err, socket, details] = args
      assert.strictEqual(err, null)
      s.socket(socket)
      assert.ok(socket instanceof net.Socket)
      assert.strictEqual(details.type, 'tcp')
      assert.strictEqual(details.client, true)
      assert.strictEqual(details.peer, peer, 'details.peer is the object given to connect')
      assert.strictEqual(s.connections(c).length, 0, 'a direct connect is not reported as a connection event')

      const [aSocket, aDetails] = await eventWhere(a, 'connection',
        sock => sock.remotePort === socket.localPort, 'the announcer\'s side of the direct connect', s.connections(a))
      assert.deepStrictEqual(aDetails, { type: 'tcp', client: false, peer: null })
      socket.write('direct')
      const [data] = await nextEvent(aSocket, 'data', 'data at the announcer')
      assert.strictEqual(data.toString(), 'direct')
    })

    it('connect to a port nobody listens on calls back with "Could not connect to peer"', async (t) => {
      const s = scope(t)
      const nw = s.network()
      const port = await freePort()
      const args = await viaCallback(cb => nw.connect({ host: '127.0.0.1', port }, cb), 'connect to a dead port')
      assert.strictEqual(args.length, 1)
      assert.ok(args[0] instanceof Error)
      assert.strictEqual(args[0].message, 'Could not connect to peer')
      if (impl === 'ours') {
        assert.strictEqual(args[0].code, 'ECONNFAILED')
        assert.match(args[0].cause.message, /refused/i)
      }
    })
  })
}
