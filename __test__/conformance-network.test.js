'use strict'
// Conformance: @hyperswarm/network 2.1.0 (the nanoresource API) against
// hyperswarm-native's ./network entry. Every case runs twice, once per
// implementation, on a private DHT on loopback, and looks only at what a
// user can see: callbacks, return values, thrown errors, topic events and
// the documented properties (api-network.md §2, §3.3, §3.4).
//
// Run inside a loopback-only network namespace, e.g.
//   unshare -n sh -c 'ip link set lo up && node --test --test-concurrency=1 \
//     --test-timeout=180000 --test-name-pattern=reference __test__/conformance-network.test.js'
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert')
const { EventEmitter } = require('events')
const crypto = require('crypto')
const net = require('net')
const { surfaces, IMPLS } = require('./conformance/impls')
const { testnet } = require('./conformance/testnet')
const { hasNft, refuseTcp } = require('./conformance/refuse-tcp')

const { randomTopic, sleep, within, viaCallback, nextEvent, listenTcp, bindUdp, shut, freePort } = require('./conformance/wait')

/**
 * A port `take` (listenTcp or bindUdp) now holds, whose next port up is
 * free for both TCP and UDP, so a bind that moves on has somewhere to go.
 * The holder is released when the case ends.
 */
async function takenBelowFree (s, take) {
  for (let tries = 0; tries < 20; tries++) {
    const port = await freePort()
    try {
      await shut(await listenTcp(port + 1))
      await shut(await bindUdp(port + 1))
      const holder = await take(port)
      s.defer(() => holder.close())
      return port
    } catch {}
  }
  throw new Error('found no free pair of ports')
}

for (const impl of IMPLS) {
  describe(`${impl === 'reference' ? 'reference: ' : ''}@hyperswarm/network 2.1.0 [${impl}]`, () => {
    let dht = null

    before(async () => { dht = await testnet(3) })
    after(() => { if (dht) dht.destroy() })

    // Loaded per test so a missing implementation fails its own cases only.
    const factory = () => surfaces.network[impl]()

    /** Per-test bookkeeping: everything made here is torn down afterwards. */
    function scope (t) {
      const networks = []
      const extra = []
      t.after(async () => {
        for (const fn of extra) {
          try { fn() } catch {}
        }
        await Promise.all(networks.map(nw => within(new Promise(resolve => nw.close(resolve)), 'close in cleanup', 5000).catch(() => {})))
      })
      return {
        network (opts = {}) {
          const nw = factory()({ bootstrap: dht.bootstrap, ...opts })
          networks.push(nw)
          return nw
        },
        defer (fn) { extra.push(fn) },
        socket (s) { extra.push(() => s.destroy()); return s }
      }
    }

    async function bound (nw, what = 'bind') {
      const [err] = await viaCallback(cb => nw.bind(cb), what)
      assert.ifError(err)
      return nw
    }

    async function closed (nw, what = 'close') {
      return viaCallback(cb => nw.close(cb), what)
    }

    /** `a` announces `topic` and its first DHT round finishes. */
    async function announced (a, topic, opts) {
      const t = opts ? a.announce(topic, opts) : a.announce(topic)
      const [err] = await nextEvent(t, 'update', 'the announce round to end')
      assert.ifError(err)
      return t
    }

    it('exports a factory; instances are not EventEmitters', (t) => {
      const s = scope(t)
      const network = factory()
      assert.strictEqual(typeof network, 'function')
      assert.strictEqual(typeof network.NetworkResource, 'function')
      const nw = s.network()
      assert.ok(nw instanceof network.NetworkResource)
      assert.ok(!(nw instanceof EventEmitter))
      assert.strictEqual(nw.on, undefined)
      assert.strictEqual(nw.emit, undefined)
      for (const m of ['bind', 'open', 'close', 'address', 'connect', 'announce', 'lookup', 'lookupOne']) {
        assert.strictEqual(typeof nw[m], 'function', m)
      }
    })

    it('before bind: no address, no discovery, no sockets; options are reflected', (t) => {
      const s = scope(t)
      const nw = s.network({ preferredPort: 23456, announcePort: 1234, somethingElse: 'kept' })
      assert.strictEqual(nw.address(), null)
      assert.strictEqual(nw.discovery, null)
      assert.ok(nw.sockets instanceof Set)
      assert.strictEqual(nw.sockets.size, 0)
      assert.strictEqual(nw.port, 0)
      assert.strictEqual(nw.preferredPort, 23456)
      assert.strictEqual(nw.announcePort, 1234)
      assert.strictEqual(nw.id, null)
      assert.strictEqual(nw.options.somethingElse, 'kept')
    })

    it('bind(cb) calls back without error and address() gives the TCP address', async (t) => {
      const s = scope(t)
      const nw = s.network()
      const [err] = await viaCallback(cb => nw.bind(cb), 'bind')
      assert.strictEqual(err, null)
      const addr = nw.address()
      assert.deepStrictEqual(Object.keys(addr).sort(), ['address', 'family', 'port'])
      assert.strictEqual(addr.address, '::')
      assert.strictEqual(addr.family, 'IPv6')
      assert.ok(Number.isInteger(addr.port) && addr.port > 0 && addr.port < 65536)
      assert.notStrictEqual(nw.discovery, null)
    })

    it('bind is idempotent: queued and later calls all call back, same port', async (t) => {
      const s = scope(t)
      const nw = s.network()
      const first = viaCallback(cb => nw.bind(cb), 'first bind')
      const second = viaCallback(cb => nw.open(cb), 'queued open (an alias of bind)')
      const [[e1], [e2]] = await Promise.all([first, second])
      assert.ifError(e1)
      assert.ifError(e2)
      const port = nw.address().port

      let sync = true
      const later = viaCallback(cb => nw.bind(cb), 'bind once bound')
      sync = false
      const [e3] = await later
      assert.ifError(e3)
      assert.strictEqual(sync, false, 'a bind on a bound network calls back asynchronously')
      assert.strictEqual(nw.address().port, port)
    })

    it('the bind option is called once, when the address is known', async (t) => {
      const s = scope(t)
      const seen = []
      const nw = s.network({ bind () { seen.push(nw.address()) } })
      await bound(nw)
      await bound(nw, 'second bind')
      assert.strictEqual(seen.length, 1)
      assert.ok(seen[0] && seen[0].port === nw.address().port)
    })

    it('bind(preferredPort) takes that port when it is free', async (t) => {
      const s = scope(t)
      const port = await freePort()
      const nw = s.network()
      const [err] = await viaCallback(cb => nw.bind(port, cb), 'bind(port)')
      assert.ifError(err)
      assert.strictEqual(nw.address().port, port)
      assert.strictEqual(nw.preferredPort, port)
    })

    it('bind(preferredPort) moves to the next port when TCP is taken there', async (t) => {
      const s = scope(t)
      const port = await takenBelowFree(s, listenTcp)
      const nw = s.network()
      const [err] = await viaCallback(cb => nw.bind(port, cb), 'bind(taken port)')
      assert.ifError(err)
      assert.strictEqual(nw.address().port, port + 1)
    })

    it('preferredPort option: a port whose UDP side is taken is skipped too', async (t) => {
      const s = scope(t)
      const port = await takenBelowFree(s, bindUdp)
      const nw = s.network({ preferredPort: port })
      await bound(nw)
      assert.strictEqual(nw.address().port, port + 1, 'TCP and UDP always share the port number')
    })

    it('port option binds exactly that port', async (t) => {
      const s = scope(t)
      const port = await freePort()
      const nw = s.network({ port })
      assert.strictEqual(nw.port, port)
      await bound(nw)
      assert.strictEqual(nw.address().port, port)
    })

    it('port option: a taken port fails bind with EADDRINUSE, no fallback', async (t) => {
      const s = scope(t)
      const port = await freePort()
      const blocker = await listenTcp(port)
      s.defer(() => blocker.close())
      const nw = s.network({ port })
      const [err] = await viaCallback(cb => nw.bind(cb), 'bind on a taken port')
      assert.ok(err instanceof Error, 'bind calls back with an Error')
      assert.strictEqual(err.code, 'EADDRINUSE')
      assert.strictEqual(err.errno, -require('os').constants.errno.EADDRINUSE, 'errno as Node gives it')
      assert.strictEqual(nw.address(), null)
    })

    it('close(cb) calls the close option once and calls back; repeated close calls back too', async (t) => {
      const s = scope(t)
      let closes = 0
      const nw = s.network({ close () { closes++ } })
      await bound(nw)
      const [[e1], [e2]] = await Promise.all([closed(nw, 'close'), closed(nw, 'a second close')])
      assert.ok(!e1)
      assert.ok(!e2)
      assert.strictEqual(closes, 1)
      assert.strictEqual(nw.discovery, null)
      const [e3] = await closed(nw, 'close once closed')
      assert.ok(!e3)
      assert.strictEqual(closes, 1)
    })

    it('close while bind is under way lets the bind finish, then closes', async (t) => {
      const s = scope(t)
      let closes = 0
      const nw = s.network({ close () { closes++ } })
      const binding = viaCallback(cb => nw.bind(cb), 'bind')
      const closing = viaCallback(cb => nw.close(cb), 'close')
      const [[bindErr], [closeErr]] = await Promise.all([binding, closing])
      assert.ifError(bindErr)
      assert.ok(!closeErr)
      assert.strictEqual(closes, 1)
    })

    it('bind after close fails with "Resource is closed"', async (t) => {
      const s = scope(t)
      const nw = s.network()
      await bound(nw)
      await closed(nw)
      const [err] = await viaCallback(cb => nw.bind(cb), 'bind after close')
      assert.ok(err instanceof Error)
      assert.strictEqual(err.message, 'Resource is closed')
    })

    it('close on a never-bound network calls back without the close option; bind then fails', async (t) => {
      const s = scope(t)
      let closes = 0
      const nw = s.network({ close () { closes++ } })
      const [err] = await closed(nw)
      assert.ok(!err)
      assert.strictEqual(closes, 0)
      const [bindErr] = await viaCallback(cb => nw.bind(cb), 'bind after close')
      assert.ok(bindErr instanceof Error)
      assert.strictEqual(bindErr.message, 'Resource is closed')
      assert.strictEqual(closes, 0)
    })

    it('announce, lookup and lookupOne throw before bind and after close', async (t) => {
      const s = scope(t)
      const nw = s.network()
      const check = (when) => {
        assert.throws(() => nw.announce(randomTopic()), { name: 'Error', message: 'Bind before announcing' }, `announce ${when}`)
        assert.throws(() => nw.lookup(randomTopic()), { name: 'Error', message: 'Bind before doing a lookup' }, `lookup ${when}`)
        assert.throws(() => nw.lookupOne(randomTopic(), () => {}), { name: 'Error', message: 'Bind before doing a lookup' }, `lookupOne ${when}`)
      }
      check('before bind')
      await bound(nw)
      await closed(nw)
      check('after close')
    })

    it('a lookup finds an announcer: peer events and update', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const a = await bound(s.network())
      const b = await bound(s.network())
      await announced(a, topic)

      const lookup = b.lookup(topic)
      const peers = []
      lookup.on('peer', p => peers.push(p))
      const [err] = await nextEvent(lookup, 'update', 'the lookup round to end')
      assert.ifError(err)
      assert.ok(peers.length >= 1, 'the round found the announcer')

      for (const peer of peers) {
        assert.strictEqual(peer.host, '127.0.0.1')
        assert.strictEqual(peer.port, a.address().port, 'the announced port is the shared TCP/UDP port')
        assert.strictEqual(peer.local, false)
        assert.ok(Buffer.isBuffer(peer.topic) && peer.topic.equals(topic))
        assert.deepStrictEqual(peer.to, { host: '127.0.0.1', port: b.address().port }, 'to: the looker as the DHT node saw it')
        assert.ok(peer.referrer && typeof peer.referrer === 'object')
        assert.strictEqual(peer.referrer.host, '127.0.0.1')
        assert.ok(Number.isInteger(peer.referrer.port) && peer.referrer.port > 0)
        assert.ok(Buffer.isBuffer(peer.referrer.id) && peer.referrer.id.length === 32)
        assert.deepStrictEqual(Object.keys(peer).sort(), ['host', 'local', 'port', 'referrer', 'to', 'topic'])
      }
      const referrers = new Set(peers.map(p => p.referrer.port))
      assert.ok(referrers.size >= 1)
    })

    it('announce with { lookup: true } also reports peers already announced', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const a = await bound(s.network())
      const b = await bound(s.network())
      await announced(a, topic)
      const both = b.announce(topic, { lookup: true })
      const [peer] = await nextEvent(both, 'peer', 'a peer on the announce+lookup topic')
      assert.strictEqual(peer.port, a.address().port)
      assert.strictEqual(peer.host, '127.0.0.1')
      assert.ok(peer.topic.equals(topic))
    })

    it('the announcePort option and announce({ port }) set the port others see', async (t) => {
      const s = scope(t)
      const topicA = randomTopic()
      const topicB = randomTopic()
      const a = await bound(s.network({ announcePort: 4567 }))
      const b = await bound(s.network())
      await announced(a, topicA)
      await announced(b, topicB, { port: 5678 })
      const c = await bound(s.network())
      const [[e1, p1], [e2, p2]] = await Promise.all([
        viaCallback(cb => c.lookupOne(topicA, cb), 'lookupOne(topicA)'),
        viaCallback(cb => c.lookupOne(topicB, cb), 'lookupOne(topicB)')
      ])
      assert.ifError(e1)
      assert.ifError(e2)
      assert.strictEqual(p1.port, 4567)
      assert.strictEqual(p2.port, 5678)
    })

    it('the id option is the DHT node id other nodes store (with ephemeral: false)', async (t) => {
      const s = scope(t)
      // A testnet of its own: a persistent member that then closes would
      // stay in the shared testnet's tables and slow every later query.
      const own = await testnet(2)
      try {
        const id = crypto.randomBytes(32)
        const a = await bound(s.network({ id, ephemeral: false, bootstrap: own.bootstrap }))
        await announced(a, randomTopic())
        const known = () => own.nodes.some(node => node.getNodes().some(n => Buffer.isBuffer(n.id) && n.id.equals(id)))
        for (let i = 0; i < 100 && !known(); i++) await sleep(50)
        assert.ok(known(), 'a testnet node has our id in its routing table')
        await within(new Promise(resolve => a.close(resolve)), 'close', 5000)
      } finally {
        own.destroy()
      }
    })

    it('lookupOne calls back (null, peer) with the announcer', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const a = await bound(s.network())
      const b = await bound(s.network())
      await announced(a, topic)
      const args = await viaCallback(cb => b.lookupOne(topic, cb), 'lookupOne')
      assert.strictEqual(args.length, 2)
      const [err, peer] = args
      assert.strictEqual(err, null)
      assert.strictEqual(peer.port, a.address().port)
      assert.strictEqual(peer.host, '127.0.0.1')
      assert.strictEqual(peer.local, false)
      assert.ok(peer.topic.equals(topic))
      assert.ok(peer.referrer && Buffer.isBuffer(peer.referrer.id))
    })

    it('topic.destroy() emits close; a destroyed announcement is withdrawn', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const a = await bound(s.network())
      const b = await bound(s.network())
      const ann = await announced(a, topic)
      assert.ok(ann.key.equals(topic))
      assert.strictEqual(ann.destroyed, false)
      const annClosed = nextEvent(ann, 'close', 'close of the announce topic')
      ann.destroy()
      assert.strictEqual(ann.destroyed, true)
      await annClosed

      const lookup = b.lookup(topic)
      const peers = []
      lookup.on('peer', p => peers.push(p))
      const [err] = await nextEvent(lookup, 'update', 'the lookup round to end')
      assert.ifError(err)
      assert.deepStrictEqual(peers, [], 'nobody announces the topic any more')
      const lookupClosed = nextEvent(lookup, 'close', 'close of the lookup topic')
      lookup.destroy()
      await lookupClosed
    })

    it('connect(DHT peer) calls back (null, socket, true); the other side gets socket(socket, true); data flows', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const incoming = []
      let onIncoming
      const gotIncoming = new Promise(resolve => { onIncoming = resolve })
      const a = await bound(s.network({
        socket (socket, isTCP) {
          incoming.push([socket, isTCP])
          socket.on('error', () => {})
          onIncoming()
        }
      }))
      const b = await bound(s.network())
      await announced(a, topic)
      const [, peer] = await viaCallback(cb => b.lookupOne(topic, cb), 'lookupOne')

      const args = await viaCallback(cb => b.connect(peer, cb), 'connect')
      assert.strictEqual(args.length, 3)
      const [err, socket, isTCP] = args
      assert.strictEqual(err, null)
      s.socket(socket)
      socket.on('error', () => {})
      assert.strictEqual(isTCP, true, 'on loopback TCP wins the race')
      assert.ok(socket instanceof net.Socket)
      assert.ok(b.sockets.has(socket), 'the winning outgoing socket is tracked')

      await within(gotIncoming, 'the socket option on the announcer')
      assert.strictEqual(incoming.length, 1)
      const [remote, remoteIsTCP] = incoming[0]
      assert.strictEqual(remoteIsTCP, true)
      assert.ok(remote instanceof net.Socket)
      assert.ok(a.sockets.has(remote), 'the incoming socket is tracked')

      socket.write('from b')
      const [fromB] = await nextEvent(remote, 'data', 'data at a')
      assert.strictEqual(fromB.toString(), 'from b')
      remote.write('from a')
      const [fromA] = await nextEvent(socket, 'data', 'data at b')
      assert.strictEqual(fromA.toString(), 'from a')

      const remoteGone = nextEvent(remote, 'close', 'the incoming socket to close')
      const localGone = nextEvent(socket, 'close', 'the outgoing socket to close')
      socket.destroy()
      // Each implementation's own 'close' listener was there first, so it
      // has run by the time these fire.
      await Promise.all([remoteGone, localGone])
      assert.ok(!a.sockets.has(remote), 'a closed incoming socket leaves the set')
      assert.ok(!b.sockets.has(socket), 'a closed outgoing socket leaves the set')
    })

    it('connect falls back to a hole-punched uTP connection when TCP is refused', async (t) => {
      assert.ok(hasNft(), 'nftables (nft) is needed to refuse TCP: .ci/run installs it')
      const s = scope(t)
      const topic = randomTopic()
      let incoming = null
      let onIncoming
      const gotIncoming = new Promise(resolve => { onIncoming = resolve })
      const a = await bound(s.network({
        socket (socket, isTCP) { incoming = [socket, isTCP]; socket.on('error', () => {}); onIncoming() }
      }))
      const b = await bound(s.network())
      refuseTcp(t, a.address().port)
      await announced(a, topic)
      const [, peer] = await viaCallback(cb => b.lookupOne(topic, cb), 'lookupOne')
      assert.ok(peer.referrer, 'a DHT peer has a referrer to punch through')

      const [err, socket, isTCP] = await viaCallback(cb => b.connect(peer, cb), 'connect over uTP')
      assert.strictEqual(err, null)
      socket.on('error', () => {})
      assert.strictEqual(isTCP, false)
      assert.ok(!(socket instanceof net.Socket), 'a uTP socket, not a net.Socket')
      assert.ok(b.sockets.has(socket))

      // The dialer speaks first: as with libutp the acceptor cannot send
      // before it does, and ours reports the connection only then (a SYN
      // alone may be spoofed).
      socket.write('over utp')
      await within(gotIncoming, 'the socket option on the announcer')
      const [remote, remoteIsTCP] = incoming
      assert.strictEqual(remoteIsTCP, false)
      assert.ok(a.sockets.has(remote))

      const [got] = await nextEvent(remote, 'data', 'data at a')
      assert.strictEqual(got.toString(), 'over utp')
      remote.write('and back')
      const [back] = await nextEvent(socket, 'data', 'data at b')
      assert.strictEqual(back.toString(), 'and back')

      // The accepting side is not left half-open: the dialer's end closes it.
      const remoteClosed = nextEvent(remote, 'close', 'the incoming uTP socket to close')
      const localClosed = nextEvent(socket, 'close', 'the outgoing uTP socket to close')
      socket.end()
      await remoteClosed
      await localClosed
    })

    it('connect to a DHT peer from a network never bound binds it', async (t) => {
      const s = scope(t)
      const topic = randomTopic()
      const a = await bound(s.network({ socket (socket) { socket.on('error', () => {}) } }))
      const b = await bound(s.network())
      await announced(a, topic)
      const [, peer] = await viaCallback(cb => b.lookupOne(topic, cb), 'lookupOne')

      let onBind
      const bindCalled = new Promise(resolve => { onBind = resolve })
      const c = s.network({ bind: () => onBind() })
      assert.strictEqual(c.address(), null)
      const [err, socket, isTCP] = await viaCallback(cb => c.connect(peer, cb), 'connect')
      assert.strictEqual(err, null)
      s.socket(socket)
      assert.strictEqual(isTCP, true)
      await within(bindCalled, 'the bind option of the dialing network')
      assert.ok(c.address() && c.address().port > 0, 'the referrer path bound the network')
    })

    it('connect gives up after 10 s with "Timeout" when the peer never answers', async (t) => {
      assert.ok(hasNft(), 'nftables (nft) is needed to swallow TCP: .ci/run installs it')
      const s = scope(t)
      const port = await freePort()
      refuseTcp(t, port, 'drop')
      const b = await bound(s.network())
      const started = Date.now()
      const args = await viaCallback(cb => b.connect({ host: '127.0.0.1', port }, cb), 'the connect timeout', 15000)
      const elapsed = Date.now() - started
      assert.strictEqual(args.length, 1)
      assert.ok(args[0] instanceof Error)
      assert.strictEqual(args[0].message, 'Timeout')
      if (impl === 'ours') assert.strictEqual(args[0].code, 'ETIMEDOUT')
      assert.ok(elapsed >= 9500 && elapsed < 12000, `gave up after ${elapsed} ms, expected about 10 s`)
    })

    it('connect({ host, port }) with no referrer connects over TCP', async (t) => {
      const s = scope(t)
      const a = await bound(s.network())
      const b = await bound(s.network())
      const [err, socket, isTCP] = await viaCallback(cb => b.connect({ host: '127.0.0.1', port: a.address().port }, cb), 'connect')
      assert.strictEqual(err, null)
      s.socket(socket)
      assert.strictEqual(isTCP, true)
      assert.ok(socket instanceof net.Socket)
    })

    it('close() destroys live incoming and outgoing sockets', async (t) => {
      const s = scope(t)
      let incoming = null
      let onIncoming
      const gotIncoming = new Promise(resolve => { onIncoming = resolve })
      const a = await bound(s.network({
        socket (socket) { incoming = socket; socket.on('error', () => {}); onIncoming() }
      }))
      const b = await bound(s.network())
      const [err, socket] = await viaCallback(cb => b.connect({ host: '127.0.0.1', port: a.address().port }, cb), 'connect')
      assert.ifError(err)
      socket.on('error', () => {})
      await within(gotIncoming, 'the incoming socket')

      // closing the accepting side ends its socket and, over the wire, ours
      const outgoingClosed = nextEvent(socket, 'close', 'the outgoing socket to close')
      const incomingClosed = nextEvent(incoming, 'close', 'the incoming socket to close')
      await closed(a)
      await incomingClosed
      assert.strictEqual(incoming.destroyed, true)
      assert.strictEqual(a.sockets.size, 0)
      await outgoingClosed

      // and closing the dialing side destroys its own
      const c = await bound(s.network())
      const d = await bound(s.network())
      const [err2, socket2] = await viaCallback(cb => d.connect({ host: '127.0.0.1', port: c.address().port }, cb), 'connect')
      assert.ifError(err2)
      socket2.on('error', () => {})
      const closed2 = nextEvent(socket2, 'close', 'the outgoing socket to close')
      await closed(d)
      await closed2
      assert.strictEqual(socket2.destroyed, true)
      assert.strictEqual(d.sockets.size, 0)
    })

    it('connect to a port nobody listens on fails with "All sockets failed"', async (t) => {
      const s = scope(t)
      const port = await freePort()
      const b = await bound(s.network())
      const args = await viaCallback(cb => b.connect({ host: '127.0.0.1', port }, cb), 'connect to a dead port')
      assert.strictEqual(args.length, 1)
      assert.ok(args[0] instanceof Error)
      assert.strictEqual(args[0].message, 'All sockets failed')
      if (impl === 'ours') {
        assert.strictEqual(args[0].code, 'ECONNFAILED')
        assert.match(args[0].cause.message, /refused/i)
      }
    })

    it('connect from a closed network fails with "All sockets failed"', async (t) => {
      const s = scope(t)
      const a = await bound(s.network({ socket (socket) { socket.on('error', () => {}) } }))
      const b = await bound(s.network())
      await closed(b)
      const [err, socket] = await viaCallback(cb => b.connect({ host: '127.0.0.1', port: a.address().port }, cb), 'connect after close')
      assert.ok(err instanceof Error)
      assert.strictEqual(err.message, 'All sockets failed')
      if (impl === 'ours') assert.strictEqual(err.code, 'EDESTROYED')
      assert.strictEqual(socket, undefined)
    })
  })
}
