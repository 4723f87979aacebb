'use strict'
// Conformance suite for the `@hyperswarm/dht` 4.0.1 surface
// (require('hyperswarm-native/dht'); API: the reference's README, dht-rpc
// 4.9.6's README, notes in dht4-stores.md §6-§7). Every case runs twice, in
// one process: against the pinned npm release ("reference") and against this
// package's dht.js ("ours"). Only the public API is exercised.
//
// The node under test meets a private DHT on loopback (conformance/testnet.js:
// an ephemeral reference bootstrap node and three persistent reference
// members), and the other side of every exchange is a reference node, so a
// case checks what the implementation does against the real thing. Cases
// about storing (announce/lookup events, values kept and served, relayed
// holepunches) build a small network of their own whose persistent member is
// a node of the implementation under test. No node is ever given the default
// (public) bootstrap list: every constructor gets the testnet's or `[]`.
//
// Run (root, throwaway loopback-only namespace):
//   node scripts/test.js --node-only __test__/conformance-dht.test.js
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawn } = require('child_process')
const { EventEmitter } = require('events')
const { randomBytes } = require('crypto')
const sodium = require('sodium-native')
const { surfaces, IMPLS } = require('./conformance/impls')
const { testnet } = require('./conformance/testnet')
const { within, viaCallback, nextEvent, freePort, bindUdp, shut } = require('./conformance/wait')
const { assertIsolated } = require('./helpers/netns')

assertIsolated()

const reference = surfaces.dht.reference()
const HOST = '127.0.0.1'
const topic = () => randomBytes(32)

// The synchronous argument checks of the stores and of holepunch(), with the
// reference's messages (dht4-stores.md §7).
const MSG = {
  key: 'Key must be a buffer',
  value: 'Value must be a buffer',
  size: 'Value size must be <= 1000',
  cb: 'Callback is required',
  opts: 'Options are required',
  seq: 'seq should be a number',
  salt: 'salt must be a buffer',
  saltMax: 'salt size must be no greater than 64 bytes',
  saltRange: 'salt size must be between 16 and 64 bytes (inclusive)',
  keypair: 'keypair is required',
  secretKey: 'keypair.secretKey is required',
  publicKey: 'keypair.publicKey is required',
  both: 'only opts.signature OR opts.keypair.secretKey should be supplied',
  msg: 'msg must be a buffer',
  referrer: 'peer.referrer is required'
}

// ---------------------------------------------------------------------------
// small helpers, every wait bounded

/** BLAKE2b with a 32-byte digest: the immutable store's key. */
function blake2b256 (value) {
  const out = Buffer.alloc(32)
  sodium.crypto_generichash(out, value)
  return out
}

/** Calls `start(cb)`; resolves with the callback's arguments (all of them). */
const call = (what, start, ms) => viaCallback(start, what, ms)

/** Collects a readable's 'data' until 'end'; rejects on 'error' or after `ms`. */
function drain (stream, what, ms = 10000) {
  return within(new Promise((resolve, reject) => {
    const data = []
    stream.on('data', (d) => data.push(d))
    stream.once('error', reject)
    stream.once('end', () => resolve(data))
  }), `${what}: 'end'`, ms)
}

/** Resolves with the arguments of the next `event` that `accept` likes. */
function waitFor (emitter, event, accept = () => true, ms = 10000) {
  let listener
  return within(new Promise((resolve) => {
    listener = (...args) => {
      if (!accept(...args)) return
      emitter.removeListener(event, listener)
      resolve(args)
    }
    emitter.on(event, listener)
  }), `'${event}'`, ms).finally(() => emitter.removeListener(event, listener))
}

/** Resolves once `node` has finished bootstrapping. */
function ready (node, ms = 10000) {
  if (node.bootstrapped) return Promise.resolve()
  return nextEvent(node, 'ready', 'ready', ms)
}

function isBytes (actual, length, what) {
  assert.ok(Buffer.isBuffer(actual), `${what} is a Buffer (got ${typeof actual})`)
  assert.strictEqual(actual.length, length, `${what} has ${length} bytes`)
}

function sameBytes (actual, expected, what) {
  assert.ok(Buffer.isBuffer(actual), `${what} is a Buffer (got ${typeof actual})`)
  assert.ok(actual.equals(expected), `${what}: ${actual.toString('hex')} should be ${expected.toString('hex')}`)
}

/** Asserts that `fn` throws an Error whose message is exactly `message`. */
function throwsMessage (fn, message, what) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Error, `${what}: throws an Error (got ${err})`)
    assert.strictEqual(err.message, message, `${what}: the message`)
    return true
  }, `${what} should throw '${message}'`)
}

const portOf = (node) => node.address().port
const sortPeers = (peers) => [...peers].sort((a, b) => a.port - b.port)

/**
 * Checks one lookup/announce result entry: the node that answered (one of
 * `storers`), the address it saw us at (`toPort`), the peers it returned
 * and, when `localPeers` is given, the LAN peers (`null` when undefined).
 */
function checkEntry (entry, { storers, toPort, peers, localPeers = null }, what = 'entry') {
  assert.ok(entry && entry.node, `${what}: an entry has a node`)
  assert.strictEqual(entry.node.host, HOST, `${what}: entry.node.host`)
  assert.ok(storers.includes(entry.node.port), `${what}: entry.node.port ${entry.node.port} is one of the storing nodes ${storers}`)
  assert.ok(entry.to, `${what}: an entry has \`to\``)
  assert.strictEqual(entry.to.host, HOST, `${what}: entry.to.host`)
  assert.strictEqual(entry.to.port, toPort, `${what}: entry.to.port is the port the node saw us at`)
  assert.deepStrictEqual(peers === null ? entry.peers : sortPeers(entry.peers), peers === null ? null : sortPeers(peers), `${what}: entry.peers`)
  assert.deepStrictEqual(entry.localPeers, localPeers, `${what}: entry.localPeers`)
}

/** Asserts that the entries come one from each of `storers`. */
function fromEach (entries, storers) {
  assert.deepStrictEqual(entries.map((e) => e.node.port).sort(), [...storers].sort(),
    'one entry from each node that stores the announcement')
}

// ---------------------------------------------------------------------------
// per-case bookkeeping: every node made through the kit is destroyed at the
// end of the case, whether it passed or not

function makeKit (impl, net) {
  const dht = surfaces.dht[impl]()
  const nodes = []
  const nets = []
  const errors = []
  function track (node, label) {
    node.on('error', (err) => errors.push(`${label}: ${err.message}`))
    node.on('warning', () => {})
    nodes.push(node)
    return node
  }
  return {
    dht,
    errors,
    /** A node of the implementation under test on the shared testnet. */
    node (opts = {}) {
      return track(dht({ bootstrap: [...net.bootstrap], ...opts }), impl)
    },
    /** A reference node on the shared testnet. */
    ref (opts = {}) {
      return track(reference({ bootstrap: [...net.bootstrap], ...opts }), 'reference')
    },
    /** A node made by `factory` (with `opts` as given: pass the bootstrap). */
    make (factory, opts, label) {
      return track(factory(opts), label)
    },
    /**
     * A network of its own: a reference bootstrap node and, in this order,
     * one persistent member per entry of `members` ('impl' or 'reference').
     * Resolves once every member is ready.
     */
    async network (members) {
      const own = await testnet(0)
      nets.push(own)
      const made = []
      for (const which of members) {
        const factory = which === 'impl' ? dht : reference
        const member = track(factory({ bootstrap: [...own.bootstrap], ephemeral: false }), which === 'impl' ? impl : 'reference')
        made.push(member)
        await ready(member)
      }
      return { bootstrap: own.bootstrap, boot: own.nodes[0], members: made }
    },
    destroyAll () {
      for (const node of nodes) {
        try { node.destroy() } catch {}
      }
      for (const own of nets) own.destroy()
    }
  }
}

// ---------------------------------------------------------------------------

for (const impl of IMPLS) {
  describe(`${impl === 'reference' ? 'reference: ' : ''}@hyperswarm/dht 4.0.1 [${impl}]`, () => {
    let net = null
    let members = [] // the shared testnet's persistent reference members
    let memberPorts = []

    before(async () => {
      net = await testnet(3)
      members = net.nodes.slice(1)
      memberPorts = members.map(portOf)
    })

    after(() => {
      if (net) net.destroy()
    })

    async function scenario (body) {
      const kit = makeKit(impl, net)
      let failure = null
      try {
        await body(kit)
      } catch (err) {
        failure = err
      }
      kit.destroyAll()
      if (failure) throw failure
      if (kit.errors.length) throw new Error(`a node emitted 'error': ${kit.errors.join('; ')}`)
    }

    /** A ready client of the implementation under test (ephemeral unless told). */
    async function client (kit, opts = {}) {
      const node = kit.node({ ephemeral: true, ...opts })
      await ready(node)
      return node
    }

    /** A ready reference client (ephemeral). */
    async function refClient (kit, opts = {}) {
      const node = kit.ref({ ephemeral: true, ...opts })
      await ready(node)
      return node
    }

    // ----- construction, binding, bootstrap --------------------------------

    it('the export is a factory; a node is an EventEmitter with the documented methods and stores', () => scenario(async (kit) => {
      assert.strictEqual(typeof kit.dht, 'function')
      const node = kit.node({ bootstrap: [] })
      assert.ok(node instanceof EventEmitter)
      for (const method of ['listen', 'address', 'ping', 'holepunch', 'lookup', 'announce', 'unannounce', 'getNodes', 'destroy']) {
        assert.strictEqual(typeof node[method], 'function', `node.${method}`)
      }
      for (const method of ['put', 'get']) {
        assert.strictEqual(typeof node.immutable[method], 'function', `node.immutable.${method}`)
      }
      for (const method of ['put', 'get', 'keypair', 'salt', 'sign', 'signable', 'cryptoSign']) {
        assert.strictEqual(typeof node.mutable[method], 'function', `node.mutable.${method}`)
      }
      assert.strictEqual(node.destroyed, false)
    }))

    it('ephemeral is false by default and follows the option', () => scenario(async (kit) => {
      // No bootstrap: a persistent node on the shared testnet would stay in
      // the members' tables after the case and slow every later walk.
      assert.strictEqual(kit.node({ bootstrap: [] }).ephemeral, false, 'default')
      assert.strictEqual(kit.node({ bootstrap: [], ephemeral: false }).ephemeral, false, 'ephemeral: false')
      assert.strictEqual(kit.node({ bootstrap: [], ephemeral: true }).ephemeral, true, 'ephemeral: true')
    }))

    it("listen(0, cb) binds: 'listening' fires, cb runs, address() has the port", () => scenario(async (kit) => {
      const node = kit.node({ bootstrap: [] })
      const listening = nextEvent(node, 'listening')
      await call('listen(0, cb)', (cb) => node.listen(0, cb))
      await listening
      const address = node.address()
      assert.ok(Number.isInteger(address.port) && address.port > 0, `a bound port (${JSON.stringify(address)})`)
    }))

    it('listen(port, host, cb) binds that port on that host', () => scenario(async (kit) => {
      const port = await freePort()
      const node = kit.node({ bootstrap: [] })
      await call('listen(port, host, cb)', (cb) => node.listen(port, HOST, cb))
      assert.strictEqual(node.address().port, port)
      assert.strictEqual(node.address().address, HOST)
    }))

    it("listen() on a UDP port another socket holds emits 'error' (EADDRINUSE)", () => scenario(async (kit) => {
      const port = await freePort()
      const holder = await bindUdp(port)
      // Not made through the kit: the kit counts 'error' events as failures.
      const node = kit.dht({ bootstrap: [] })
      try {
        const failed = nextEvent(node, 'error', "'error'")
        node.listen(port)
        const [err] = await failed
        assert.ok(err instanceof Error)
        assert.strictEqual(err.code, 'EADDRINUSE')
      } finally {
        try { node.destroy() } catch {}
        await shut(holder)
      }
    }))

    it("bootstrapping: 'ready', bootstrapped, getNodes() lists the persistent members", () => scenario(async (kit) => {
      // A network of its own, since the persistent node joins its tables.
      const own = await kit.network(['reference', 'reference', 'reference'])
      const ownPorts = own.members.map(portOf)
      for (const ephemeral of [true, false]) {
        const node = kit.make(kit.dht, { bootstrap: [...own.bootstrap], ephemeral }, impl)
        assert.strictEqual(node.bootstrapped, false, 'not bootstrapped before the walk')
        await nextEvent(node, 'ready')
        assert.strictEqual(node.bootstrapped, true, 'bootstrapped after ready')
        const nodes = node.getNodes()
        assert.ok(Array.isArray(nodes), 'getNodes() is an array')
        for (const n of nodes) {
          isBytes(n.id, 32, 'getNodes()[i].id')
          assert.strictEqual(n.host, HOST)
          assert.ok(Number.isInteger(n.port) && n.port > 0)
        }
        const ports = nodes.map((n) => n.port)
        for (const p of ownPorts) assert.ok(ports.includes(p), `member ${p} is among getNodes() ${ports} (ephemeral: ${ephemeral})`)
      }
    }))

    it('ping(peer, cb) answers with the address the peer sees us at', () => scenario(async (kit) => {
      const node = await client(kit)
      const [err, pong] = await call('ping', (cb) => node.ping({ host: HOST, port: memberPorts[0] }, cb))
      assert.ok(!err, `ping succeeds (${err && err.message})`)
      assert.deepStrictEqual({ host: pong.host, port: pong.port }, { host: HOST, port: portOf(node) })
    }))

    it("when nobody answers: ping fails with 'Request timed out', a lookup with 'No nodes responded'", () => scenario(async (kit) => {
      // Both at once: each waits out the reference's retries (about 7 s).
      const dead = await freePort()
      const pinger = await client(kit)
      const lonely = kit.node({ bootstrap: [`${HOST}:${dead}`], ephemeral: true })
      const [[pingErr, ...pingRest], [lookErr, ...lookRest]] = await Promise.all([
        call('ping (no answer)', (cb) => pinger.ping({ host: HOST, port: dead }, cb), 20000),
        call('lookup (no answer)', (cb) => lonely.lookup(topic(), cb), 20000)
      ])
      assert.ok(pingErr instanceof Error, 'ping: an Error')
      assert.strictEqual(pingErr.message, 'Request timed out')
      assert.strictEqual(pingRest.length, 0, 'ping: cb(err)')
      assert.ok(lookErr instanceof Error, 'lookup: an Error')
      assert.strictEqual(lookErr.message, 'No nodes responded')
      assert.strictEqual(lookRest.length, 0, 'lookup: cb(err)')
    }))

    it("with no persistent node to store at, announce, unannounce and the puts fail with 'No close nodes responded'", () => scenario(async (kit) => {
      // Only the (ephemeral) bootstrap node answers: walks end, updates have nobody to go to.
      const own = await kit.network([])
      const node = kit.make(kit.dht, { bootstrap: [...own.bootstrap], ephemeral: true }, impl)
      await ready(node)
      const t = topic()
      const keypair = node.mutable.keypair()
      const failing = [
        ['announce', (cb) => node.announce(t, { port: 1234 }, cb)],
        ['unannounce', (cb) => node.unannounce(t, { port: 1234 }, cb)],
        ['immutable.put', (cb) => node.immutable.put(Buffer.from('nobody keeps this'), cb)],
        ['mutable.put', (cb) => node.mutable.put(Buffer.from('nobody keeps this'), { keypair }, cb)]
      ]
      for (const [what, start] of failing) {
        const args = await call(what, start)
        assert.ok(args[0] instanceof Error, `${what}: an Error (got ${JSON.stringify(args)})`)
        assert.strictEqual(args[0].message, 'No close nodes responded', `${what}: the message`)
        assert.strictEqual(args.length, 1, `${what}: cb(err)`)
      }
      assert.deepStrictEqual(await call('lookup', (cb) => node.lookup(t, cb)), [null, []], 'a lookup finds nobody')
      const [getErr, got] = await call('mutable.get', (cb) => node.mutable.get(keypair.publicKey, cb))
      assert.strictEqual(getErr, null)
      assert.deepStrictEqual(got, { value: null })
    }))

    // ----- announce / lookup / unannounce -----------------------------------

    it('announce(topic, {port}, cb), then lookup(topic, cb) from a reference node and from ours', () => scenario(async (kit) => {
      const t = topic()
      const announcer = await client(kit)
      const port = 40000 + Math.floor(Math.random() * 1000)
      const [err, first] = await call('announce', (cb) => announcer.announce(t, { port }, cb))
      assert.ok(!err, `announce succeeds (${err && err.message})`)
      assert.deepStrictEqual(first, [], 'the first announcer finds nobody')

      const refLooker = await refClient(kit)
      const [refErr, seenByRef] = await call('reference lookup', (cb) => refLooker.lookup(t, cb))
      assert.ok(!refErr)
      fromEach(seenByRef, memberPorts)
      for (const e of seenByRef) checkEntry(e, { storers: memberPorts, toPort: portOf(refLooker), peers: [{ host: HOST, port }] })

      const looker = await client(kit)
      const [ownErr, seen] = await call('lookup', (cb) => looker.lookup(t, cb))
      assert.ok(!ownErr)
      fromEach(seen, memberPorts)
      for (const e of seen) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port }] })

      // a reference announcer on the same topic is found as well
      const refAnnouncer = await refClient(kit)
      await call('reference announce', (cb) => refAnnouncer.announce(t, { port: port + 1 }, cb))
      const [, both] = await call('lookup (two announcers)', (cb) => looker.lookup(t, cb))
      fromEach(both, memberPorts)
      for (const e of both) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port }, { host: HOST, port: port + 1 }] })
    }))

    it('lookup() without a callback is a stream of the same entries, then end', () => scenario(async (kit) => {
      const t = topic()
      const announcer = await refClient(kit)
      const port = 41000 + Math.floor(Math.random() * 1000)
      await call('reference announce', (cb) => announcer.announce(t, { port }, cb))
      const looker = await client(kit)
      const entries = await drain(looker.lookup(t), 'lookup stream')
      fromEach(entries, memberPorts)
      for (const e of entries) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port }] })
      const none = await drain(looker.lookup(topic()), 'lookup stream (unknown topic)')
      assert.deepStrictEqual(none, [], 'an unknown topic: no data, then end')
    }))

    it('announce() without a callback is a stream of the peers already there (its parallel lookup), then end', () => scenario(async (kit) => {
      const t = topic()
      const first = await refClient(kit)
      const port = 42000 + Math.floor(Math.random() * 1000)
      await call('reference announce', (cb) => first.announce(t, { port }, cb))
      const second = await client(kit)
      const entries = await drain(second.announce(t, { port: port + 1 }), 'announce stream')
      fromEach(entries, memberPorts)
      for (const e of entries) checkEntry(e, { storers: memberPorts, toPort: portOf(second), peers: [{ host: HOST, port }] })
      // both are stored now
      const looker = await refClient(kit)
      const [, seen] = await call('reference lookup', (cb) => looker.lookup(t, cb))
      fromEach(seen, memberPorts)
      for (const e of seen) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port }, { host: HOST, port: port + 1 }] })
    }))

    it('announce without a port announces the UDP port; the announcer does not see itself', () => scenario(async (kit) => {
      const t = topic()
      const announcer = await client(kit)
      const [err] = await call('announce(topic, cb)', (cb) => announcer.announce(t, cb))
      assert.ok(!err)
      const own = portOf(announcer)
      const looker = await refClient(kit)
      const [, seen] = await call('reference lookup', (cb) => looker.lookup(t, cb))
      fromEach(seen, memberPorts)
      for (const e of seen) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port: own }] })
      const [, self] = await call('own lookup', (cb) => announcer.lookup(t, cb))
      assert.deepStrictEqual(self, [], 'a lookup from the announced address leaves it out')
      const [, selfByPort] = await call('own lookup with {port}', (cb) => announcer.lookup(t, { port: own }, cb))
      assert.deepStrictEqual(selfByPort, [], 'so does a lookup naming that port')
    }))

    it('lookup(topic, {port}) leaves out the record announced with that port', () => scenario(async (kit) => {
      const t = topic()
      const a = await refClient(kit)
      const b = await client(kit)
      const port = 43000 + Math.floor(Math.random() * 1000)
      await call('reference announce', (cb) => a.announce(t, { port }, cb))
      await call('announce', (cb) => b.announce(t, { port: port + 1 }, cb))
      const [, seen] = await call('lookup with {port}', (cb) => b.lookup(t, { port: port + 1 }, cb))
      fromEach(seen, memberPorts)
      for (const e of seen) checkEntry(e, { storers: memberPorts, toPort: portOf(b), peers: [{ host: HOST, port }] })
    }))

    it('localAddress: LAN addresses come back to lookups that share their first two bytes, and only to them', () => scenario(async (kit) => {
      const t = topic()
      const lan = { host: '192.168.100.100', port: 20000 }
      const announcer = await client(kit)
      const [err] = await call('announce with localAddress', (cb) => announcer.announce(t, { localAddress: lan }, cb))
      assert.ok(!err)
      const port = portOf(announcer)
      for (const [name, looker] of [['reference', await refClient(kit)], [impl, await client(kit)]]) {
        const [, same] = await call(`${name} lookup, same LAN prefix`, (cb) => looker.lookup(t, { localAddress: { host: '192.168.100.101', port: 20000 } }, cb))
        fromEach(same, memberPorts)
        for (const e of same) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port }], localPeers: [lan] }, `${name} looker, same prefix`)
        const [, other] = await call(`${name} lookup, another prefix`, (cb) => looker.lookup(t, { localAddress: { host: '192.169.100.100', port: 20000 } }, cb))
        fromEach(other, memberPorts)
        for (const e of other) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port }], localPeers: null }, `${name} looker, another prefix`)
      }
      // and the other way round: a reference announcer, our lookup
      const t2 = topic()
      const refAnnouncer = await refClient(kit)
      await call('reference announce with localAddress', (cb) => refAnnouncer.announce(t2, { localAddress: lan }, cb))
      const looker = await client(kit)
      const [, seen] = await call('lookup, same LAN prefix', (cb) => looker.lookup(t2, { localAddress: { host: '192.168.1.1', port: 1 } }, cb))
      fromEach(seen, memberPorts)
      for (const e of seen) checkEntry(e, { storers: memberPorts, toPort: portOf(looker), peers: [{ host: HOST, port: portOf(refAnnouncer) }], localPeers: [lan] })
    }))

    it('an answer with LAN peers only reports peers: null', () => scenario(async (kit) => {
      // The announcer looks up its own topic: the nodes leave its public
      // record out (it is the asker's address) but return its LAN record
      // to a lookup from another LAN address with the same prefix.
      const t = topic()
      const lan = { host: '192.168.100.100', port: 20000 }
      const announcer = await client(kit)
      await call('announce with localAddress', (cb) => announcer.announce(t, { localAddress: lan }, cb))
      const [err, seen] = await call('own lookup from another LAN address', (cb) =>
        announcer.lookup(t, { localAddress: { host: '192.168.100.101', port: 20000 } }, cb))
      assert.ok(!err)
      fromEach(seen, memberPorts)
      for (const e of seen) checkEntry(e, { storers: memberPorts, toPort: portOf(announcer), peers: null, localPeers: [lan] })
    }))

    it('unannounce(topic, opts, cb) calls back with [] and a lookup then finds nobody', () => scenario(async (kit) => {
      const t = topic()
      const announcer = await client(kit)
      const port = 44000 + Math.floor(Math.random() * 1000)
      await call('announce', (cb) => announcer.announce(t, { port }, cb))
      const looker = await refClient(kit)
      const [, before] = await call('reference lookup', (cb) => looker.lookup(t, cb))
      fromEach(before, memberPorts)
      const [err, result] = await call('unannounce', (cb) => announcer.unannounce(t, { port }, cb))
      assert.ok(!err, `unannounce succeeds (${err && err.message})`)
      assert.deepStrictEqual(result, [])
      const [, after] = await call('reference lookup after unannounce', (cb) => looker.lookup(t, cb))
      assert.deepStrictEqual(after, [], 'nobody is left')

      // with a localAddress: both records go
      const t2 = topic()
      const lan = { host: '192.168.100.100', port: 20000 }
      const query = { localAddress: { host: '192.168.100.101', port: 20000 } }
      await call('announce with localAddress', (cb) => announcer.announce(t2, { localAddress: lan }, cb))
      const [, lanBefore] = await call('reference lookup (LAN)', (cb) => looker.lookup(t2, query, cb))
      fromEach(lanBefore, memberPorts)
      for (const e of lanBefore) assert.deepStrictEqual(e.localPeers, [lan])
      await call('unannounce with localAddress', (cb) => announcer.unannounce(t2, { localAddress: lan }, cb))
      const [, lanAfter] = await call('reference lookup (LAN) after unannounce', (cb) => looker.lookup(t2, query, cb))
      assert.deepStrictEqual(lanAfter, [], 'neither the public nor the LAN record is left')

      // a reference announcer's record, removed by the reference, is gone for our lookup too
      const t3 = topic()
      await call('reference announce', (cb) => looker.announce(t3, { port }, cb))
      const [, refBefore] = await call('lookup', (cb) => announcer.lookup(t3, cb))
      fromEach(refBefore, memberPorts)
      await call('reference unannounce', (cb) => looker.unannounce(t3, { port }, cb))
      const [, refAfter] = await call('lookup after the reference unannounced', (cb) => announcer.lookup(t3, cb))
      assert.deepStrictEqual(refAfter, [])
    }))

    it('unannounce() without a callback is a stream that ends without data', () => scenario(async (kit) => {
      const t = topic()
      const announcer = await client(kit)
      const port = 45000 + Math.floor(Math.random() * 1000)
      await call('announce', (cb) => announcer.announce(t, { port }, cb))
      const data = await drain(announcer.unannounce(t, { port }), 'unannounce stream')
      assert.deepStrictEqual(data, [])
      const looker = await refClient(kit)
      const [, after] = await call('reference lookup', (cb) => looker.lookup(t, cb))
      assert.deepStrictEqual(after, [])
    }))

    it("a persistent member emits 'announce', 'lookup' and 'unannounce' with the topic and the peer, and serves them", () => scenario(async (kit) => {
      // bootstrap (reference) + our member + a reference member
      const own = await kit.network(['impl', 'reference'])
      const [member, refMember] = own.members
      const storers = [portOf(member), portOf(refMember)]
      const announcer = kit.make(reference, { bootstrap: [...own.bootstrap], ephemeral: true }, 'reference')
      await ready(announcer)
      const t = topic()
      const port = 46000 + Math.floor(Math.random() * 1000)
      const onTopic = (k) => Buffer.isBuffer(k) && k.equals(t)

      const announced = waitFor(member, 'announce', onTopic)
      await call('reference announce', (cb) => announcer.announce(t, { port }, cb))
      const [annTopic, annFrom] = await announced
      sameBytes(annTopic, t, "'announce' topic")
      assert.deepStrictEqual({ host: annFrom.host, port: annFrom.port }, { host: HOST, port }, "'announce' peer: the announced address")

      for (const [name, factory] of [['reference', reference], [impl, kit.dht]]) {
        const looker = kit.make(factory, { bootstrap: [...own.bootstrap], ephemeral: true }, name)
        await ready(looker)
        const looked = waitFor(member, 'lookup', onTopic)
        let [err, seen] = await call(`${name} lookup`, (cb) => looker.lookup(t, cb))
        // A fresh ephemeral looker sometimes ends its first query before
        // its table holds the members (seen once in CI, with the reference
        // on every side); a second lookup must then find both storers.
        if (!err && seen.length === 0) {
          console.log(`note: ${name} looker's first lookup found nothing; looking again`)
          await new Promise((resolve) => setTimeout(resolve, 300));
          [err, seen] = await call(`${name} lookup, again`, (cb) => looker.lookup(t, cb))
        }
        assert.ok(!err)
        fromEach(seen, storers)
        for (const e of seen) checkEntry(e, { storers, toPort: portOf(looker), peers: [{ host: HOST, port }] })
        const [lookTopic, lookFrom] = await looked
        sameBytes(lookTopic, t, "'lookup' topic")
        assert.deepStrictEqual({ host: lookFrom.host, port: lookFrom.port }, { host: HOST, port: portOf(looker) }, "'lookup' peer: the looker's address")
      }

      const unannounced = waitFor(member, 'unannounce', onTopic)
      await call('reference unannounce', (cb) => announcer.unannounce(t, { port }, cb))
      const [unTopic, unFrom] = await unannounced
      sameBytes(unTopic, t, "'unannounce' topic")
      assert.deepStrictEqual({ host: unFrom.host, port: unFrom.port }, { host: HOST, port })
      const [, after] = await call('reference lookup after unannounce', (cb) => announcer.lookup(t, cb))
      assert.deepStrictEqual(after, [], 'our member no longer returns the peer')

      // the member answers pings with the address it sees
      const [pingErr, pong] = await call('reference ping of the member', (cb) => announcer.ping({ host: HOST, port: portOf(member) }, cb))
      assert.ok(!pingErr)
      assert.deepStrictEqual({ host: pong.host, port: pong.port }, { host: HOST, port: portOf(announcer) })
    }))

    // ----- holepunch --------------------------------------------------------

    it("holepunch(peer) without a referrer throws 'peer.referrer is required'", () => scenario(async (kit) => {
      const node = kit.node({ bootstrap: [] })
      throwsMessage(() => node.holepunch({ host: HOST, port: 9 }, () => {}), MSG.referrer, 'holepunch without referrer')
    }))

    it('holepunch(peer, cb) through a testnet member both know: ours punching a reference node and the other way round', () => scenario(async (kit) => {
      const referrer = members[0]
      const via = { host: HOST, port: portOf(referrer) }
      const pairs = [['ours → reference', await client(kit), await refClient(kit)],
        ['reference → ours', await refClient(kit), await client(kit)]]
      for (const [name, from, to] of pairs) {
        const relayed = waitFor(referrer, 'holepunch', (f, t) => f.port === portOf(from) && t.port === portOf(to))
        const [err] = await call(`holepunch ${name}`, (cb) => from.holepunch({ host: HOST, port: portOf(to), referrer: via }, cb))
        assert.ok(!err, `holepunch ${name} succeeds (${err && err.message})`)
        await relayed
      }
    }))

    it("a persistent member relays a holepunch to a peer announced through it, and emits 'holepunch'", () => scenario(async (kit) => {
      // The documented use: the referrer is the node that returned the peer.
      const own = await kit.network(['impl'])
      const [member] = own.members
      const t = topic()
      const b = kit.make(reference, { bootstrap: [...own.bootstrap], ephemeral: true }, 'reference')
      await ready(b)
      await call('reference announce', (cb) => b.announce(t, cb))
      const a = kit.make(reference, { bootstrap: [...own.bootstrap], ephemeral: true }, 'reference')
      await ready(a)
      const [, seen] = await call('reference lookup', (cb) => a.lookup(t, cb))
      fromEach(seen, [portOf(member)])
      checkEntry(seen[0], { storers: [portOf(member)], toPort: portOf(a), peers: [{ host: HOST, port: portOf(b) }] })
      const referrer = { host: seen[0].node.host, port: seen[0].node.port }
      const relayed = waitFor(member, 'holepunch', (f, to) => f.port === portOf(a) && to.port === portOf(b))
      const [err] = await call('holepunch through our member', (cb) => a.holepunch({ ...seen[0].peers[0], referrer }, cb))
      assert.ok(!err, `holepunch succeeds (${err && err.message})`)
      const [from, to] = await relayed
      assert.deepStrictEqual({ host: from.host, port: from.port }, { host: HOST, port: portOf(a) })
      assert.deepStrictEqual({ host: to.host, port: to.port }, { host: HOST, port: portOf(b) })
    }))

    // ----- immutable store --------------------------------------------------

    it('immutable.put(value, cb) calls back with the BLAKE2b-256 key; get(key, cb) elsewhere returns (null, value, {id})', () => scenario(async (kit) => {
      const value = Buffer.from('immutable conformance ' + randomBytes(8).toString('hex'))
      const putter = await client(kit)
      const [err, key] = await call('immutable.put', (cb) => putter.immutable.put(value, cb))
      assert.ok(!err, `put succeeds (${err && err.message})`)
      sameBytes(key, blake2b256(value), 'the key')

      for (const [name, getter] of [['reference', await refClient(kit)], [impl, await client(kit)], ['the putter itself', putter]]) {
        const args = await call(`${name} immutable.get`, (cb) => getter.immutable.get(key, cb))
        const [getErr, got, info] = args
        assert.strictEqual(getErr, null, `${name}: no error`)
        sameBytes(got, value, `${name}: the value`)
        assert.ok(info && typeof info === 'object', `${name}: info`)
        isBytes(info.id, 32, `${name}: info.id`)
      }

      // a value a reference node put, got by ours
      const refValue = randomBytes(200)
      const refPutter = await refClient(kit)
      const [, refKey] = await call('reference immutable.put', (cb) => refPutter.immutable.put(refValue, cb))
      const getter = await client(kit)
      const [getErr, got] = await call('immutable.get of a reference put', (cb) => getter.immutable.get(refKey, cb))
      assert.strictEqual(getErr, null)
      sameBytes(got, refValue, 'the reference-put value')

      // the empty value and the largest one
      for (const v of [Buffer.alloc(0), randomBytes(1000)]) {
        const [e, k] = await call(`immutable.put of ${v.length} bytes`, (cb) => putter.immutable.put(v, cb))
        assert.ok(!e)
        sameBytes(k, blake2b256(v), `the key of ${v.length} bytes`)
        const [, back] = await call(`reference get of ${v.length} bytes`, (cb) => kit.ref({ ephemeral: true }).immutable.get(k, cb), 15000)
        sameBytes(back, v, `${v.length} bytes back`)
      }
    }))

    it('immutable.get of a key nobody stored calls back (null, null, null)', () => scenario(async (kit) => {
      const node = await client(kit)
      const args = await call('immutable.get (missing)', (cb) => node.immutable.get(randomBytes(32), cb))
      assert.deepStrictEqual(args.slice(0, 3), [null, null, null])
    }))

    it('immutable.get(key) without a callback is a stream of {id, value}', () => scenario(async (kit) => {
      const value = randomBytes(64)
      const putter = await refClient(kit)
      const [, key] = await call('reference immutable.put', (cb) => putter.immutable.put(value, cb))
      const getter = await client(kit)
      const data = await drain(getter.immutable.get(key), 'immutable.get stream')
      assert.ok(data.length >= 1, 'at least one answer')
      for (const d of data) {
        sameBytes(d.value, value, 'data.value')
        isBytes(d.id, 32, 'data.id')
      }
      const none = await drain(getter.immutable.get(randomBytes(32)), 'immutable.get stream (missing)')
      assert.deepStrictEqual(none, [])
    }))

    it('a persistent member keeps immutable and mutable values for reference clients and serves them', () => scenario(async (kit) => {
      // Our member is the only node that stores: every value is read back from it.
      const own = await kit.network(['impl'])
      const [member] = own.members
      const mk = () => kit.make(reference, { bootstrap: [...own.bootstrap], ephemeral: true }, 'reference')
      const putter = mk()
      const getter = mk()
      await Promise.all([ready(putter), ready(getter)])

      const value = randomBytes(100)
      const [putErr, key] = await call('reference immutable.put', (cb) => putter.immutable.put(value, cb))
      assert.ok(!putErr, `immutable put succeeds (${putErr && putErr.message})`)
      const [getErr, got, info] = await call('reference immutable.get', (cb) => getter.immutable.get(key, cb))
      assert.strictEqual(getErr, null)
      sameBytes(got, value, 'the immutable value')
      sameBytes(info.id, member.id, 'info.id: our member answered')

      const keypair = putter.mutable.keypair()
      const salt = putter.mutable.salt()
      for (const [seq, v] of [[0, 'first'], [1, 'second']]) {
        const [err] = await call(`reference mutable.put seq ${seq}`, (cb) => putter.mutable.put(Buffer.from(v), { keypair, salt, seq }, cb))
        assert.ok(!err, `mutable put seq ${seq} succeeds (${err && err.message})`)
      }
      const [, record] = await call('reference mutable.get', (cb) => getter.mutable.get(keypair.publicKey, { salt }, cb))
      sameBytes(record.value, Buffer.from('second'), 'the updated value')
      assert.strictEqual(record.seq, 1)
      sameBytes(record.id, member.id, 'record.id: our member answered')

      // our member's proof fails a conflicting put
      const args = await call('reference conflicting put', (cb) => putter.mutable.put(Buffer.from('other'), { keypair, salt, seq: 1 }, cb))
      assert.ok(args[0] instanceof Error, 'the conflicting put fails')
      assert.strictEqual(args[0].message, 'ERR_INVALID_SEQ')
    }))

    // ----- mutable store ----------------------------------------------------

    it('mutable.keypair(), salt(), signable() and sign() give what the reference gives', () => scenario(async (kit) => {
      const m = kit.node({ bootstrap: [] }).mutable
      const r = kit.make(reference, { bootstrap: [] }, 'reference').mutable
      const keypair = m.keypair()
      isBytes(keypair.publicKey, 32, 'keypair().publicKey')
      isBytes(keypair.secretKey, 64, 'keypair().secretKey')
      assert.ok(!m.keypair().publicKey.equals(keypair.publicKey), 'keypairs are random')

      isBytes(m.salt(), 32, 'salt()')
      assert.ok(!m.salt().equals(m.salt()), 'salt() is random')
      isBytes(m.salt(16), 16, 'salt(16)')
      isBytes(m.salt(64), 64, 'salt(64)')
      sameBytes(m.salt('a name'), r.salt('a name'), "salt('a name')")
      sameBytes(m.salt('a name', 48), r.salt('a name', 48), "salt('a name', 48)")

      const value = Buffer.from('test')
      sameBytes(m.signable(value), Buffer.from('3:seqi0e1:v4:test'), 'signable(value)')
      sameBytes(m.signable(value, { seq: 1 }), Buffer.from('3:seqi1e1:v4:test'), 'signable(value, {seq: 1})')
      const salt = r.salt('salted')
      sameBytes(m.signable(value, { salt, seq: 7 }), r.signable(value, { salt, seq: 7 }), 'signable(value, {salt, seq})')

      sameBytes(m.sign(value, { keypair }), r.sign(value, { keypair }), 'sign(value, {keypair})')
      sameBytes(m.sign(value, { keypair, salt, seq: 3 }), r.sign(value, { keypair, salt, seq: 3 }), 'sign(value, {keypair, salt, seq})')
      sameBytes(m.cryptoSign(value, keypair), r.cryptoSign(value, keypair), 'cryptoSign(msg, keypair)')
    }))

    it('mutable.put(value, {keypair}, cb) → {key, signature, seq, salt}; get(key, cb) elsewhere returns the record', () => scenario(async (kit) => {
      const putter = await client(kit)
      const keypair = putter.mutable.keypair()
      const value = Buffer.from('mutable ' + randomBytes(4).toString('hex'))
      const [err, put] = await call('mutable.put', (cb) => putter.mutable.put(value, { keypair }, cb))
      assert.ok(!err, `put succeeds (${err && err.message})`)
      sameBytes(put.key, keypair.publicKey, 'put → key')
      sameBytes(put.signature, kit.make(reference, { bootstrap: [] }, 'reference').mutable.sign(value, { keypair }), 'put → signature')
      assert.strictEqual(put.seq, 0, 'put → seq')
      assert.strictEqual(put.salt, undefined, 'put → salt')

      for (const [name, getter] of [['reference', await refClient(kit)], [impl, await client(kit)]]) {
        const [getErr, got] = await call(`${name} mutable.get`, (cb) => getter.mutable.get(keypair.publicKey, cb))
        assert.strictEqual(getErr, null, `${name}: no error`)
        sameBytes(got.value, value, `${name}: value`)
        sameBytes(got.signature, put.signature, `${name}: signature`)
        assert.strictEqual(got.seq, 0, `${name}: seq`)
        assert.strictEqual(got.salt, undefined, `${name}: salt`)
        isBytes(got.id, 32, `${name}: id`)
      }

      // a record a reference node put, got by ours
      const refPutter = await refClient(kit)
      const refKeypair = refPutter.mutable.keypair()
      await call('reference mutable.put', (cb) => refPutter.mutable.put(value, { keypair: refKeypair, seq: 5 }, cb))
      const getter = await client(kit)
      const [, got] = await call('mutable.get of a reference put', (cb) => getter.mutable.get(refKeypair.publicKey, {}, cb))
      sameBytes(got.value, value, 'value')
      assert.strictEqual(got.seq, 5)
    }))

    it('mutable with a salt: its own slot; get needs the salt and reports it', () => scenario(async (kit) => {
      const putter = await client(kit)
      const keypair = putter.mutable.keypair()
      const salt = putter.mutable.salt()
      const value = Buffer.from('salted')
      const [err, put] = await call('mutable.put with salt', (cb) => putter.mutable.put(value, { keypair, salt }, cb))
      assert.ok(!err, `put succeeds (${err && err.message})`)
      sameBytes(put.salt, salt, 'put → salt')
      sameBytes(put.signature, kit.make(reference, { bootstrap: [] }, 'reference').mutable.sign(value, { keypair, salt }), 'put → signature')

      for (const [name, getter] of [['reference', await refClient(kit)], [impl, await client(kit)]]) {
        const [, got] = await call(`${name} get with salt`, (cb) => getter.mutable.get(keypair.publicKey, { salt }, cb))
        sameBytes(got.value, value, `${name}: value`)
        sameBytes(got.salt, salt, `${name}: salt`)
        const [unsaltedErr, unsalted] = await call(`${name} get without salt`, (cb) => getter.mutable.get(keypair.publicKey, cb))
        assert.strictEqual(unsaltedErr, null)
        assert.deepStrictEqual(unsalted, { value: null }, `${name}: nothing without the salt`)
        const [, wrong] = await call(`${name} get with another salt`, (cb) => getter.mutable.get(keypair.publicKey, { salt: putter.mutable.salt() }, cb))
        assert.deepStrictEqual(wrong, { value: null }, `${name}: nothing with another salt`)
      }
    }))

    it('a higher seq updates the record; get(key, {seq}) returns only records at least that new', () => scenario(async (kit) => {
      const putter = await client(kit)
      const keypair = putter.mutable.keypair()
      await call('put seq 0', (cb) => putter.mutable.put(Buffer.from('v0'), { keypair }, cb))
      const [err, put] = await call('put seq 1', (cb) => putter.mutable.put(Buffer.from('v1'), { keypair, seq: 1 }, cb))
      assert.ok(!err, `the update succeeds (${err && err.message})`)
      assert.strictEqual(put.seq, 1)
      for (const [name, getter] of [['reference', await refClient(kit)], [impl, await client(kit)]]) {
        const [, got] = await call(`${name} get {seq: 1}`, (cb) => getter.mutable.get(keypair.publicKey, { seq: 1 }, cb))
        sameBytes(got.value, Buffer.from('v1'), `${name}: the new value`)
        assert.strictEqual(got.seq, 1)
        const [, newer] = await call(`${name} get {seq: 2}`, (cb) => getter.mutable.get(keypair.publicKey, { seq: 2 }, cb))
        assert.deepStrictEqual(newer, { value: null }, `${name}: nothing at seq 2`)
      }
    }))

    it('seq conflicts fail the put with cb(err): ERR_INVALID_SEQ, ERR_SEQ_MUST_EXCEED_CURRENT', () => scenario(async (kit) => {
      const putter = await client(kit)
      const m = putter.mutable
      const expectFailure = async (what, keypair, value, seq, message) => {
        const args = await call(what, (cb) => m.put(value, { keypair, seq }, cb))
        assert.ok(args[0] instanceof Error, `${what}: an Error (got ${args[0]})`)
        assert.strictEqual(args[0].message, message, `${what}: the message`)
        assert.strictEqual(args.length, 1, `${what}: cb(err) has one argument`)
      }
      // another value at the same seq
      const k1 = m.keypair()
      await call('put v1 seq 1', (cb) => m.put(Buffer.from('v1'), { keypair: k1, seq: 1 }, cb))
      await expectFailure('put v2 seq 1', k1, Buffer.from('v2'), 1, 'ERR_INVALID_SEQ')
      // a lower seq
      const k2 = m.keypair()
      await call('put seq 2', (cb) => m.put(Buffer.from('v'), { keypair: k2, seq: 2 }, cb))
      await expectFailure('put seq 1 after seq 2', k2, Buffer.from('w'), 1, 'ERR_SEQ_MUST_EXCEED_CURRENT')
      // the same record again
      const k3 = m.keypair()
      await call('put seq 0', (cb) => m.put(Buffer.from('same'), { keypair: k3, seq: 0 }, cb))
      await expectFailure('the same put again', k3, Buffer.from('same'), 0, 'ERR_SEQ_MUST_EXCEED_CURRENT')
    }))

    it('mutable.put with an offline signature (keypair without secretKey)', () => scenario(async (kit) => {
      const putter = await client(kit)
      const keypair = putter.mutable.keypair()
      const salt = putter.mutable.salt()
      const value = Buffer.from('signed elsewhere')
      const signature = putter.mutable.cryptoSign(putter.mutable.signable(value, { salt, seq: 2 }), keypair)
      const [err, put] = await call('put with signature', (cb) =>
        putter.mutable.put(value, { keypair: { publicKey: keypair.publicKey }, signature, salt, seq: 2 }, cb))
      assert.ok(!err, `put succeeds (${err && err.message})`)
      sameBytes(put.signature, signature, 'put → signature')
      const getter = await refClient(kit)
      const [, got] = await call('reference get', (cb) => getter.mutable.get(keypair.publicKey, { salt }, cb))
      sameBytes(got.value, value, 'value')
      assert.strictEqual(got.seq, 2)
    }))

    it('mutable.get of a key nobody stored calls back (null, {value: null}); without a callback it is a stream', () => scenario(async (kit) => {
      const node = await client(kit)
      const [err, missing] = await call('mutable.get (missing)', (cb) => node.mutable.get(randomBytes(32), cb))
      assert.strictEqual(err, null)
      assert.deepStrictEqual(missing, { value: null })

      const putter = await refClient(kit)
      const keypair = putter.mutable.keypair()
      const salt = putter.mutable.salt()
      await call('reference put', (cb) => putter.mutable.put(Buffer.from('streamed'), { keypair, salt, seq: 3 }, cb))
      const data = await drain(node.mutable.get(keypair.publicKey, { salt }), 'mutable.get stream')
      assert.ok(data.length >= 1, 'at least one answer')
      for (const d of data) {
        sameBytes(d.value, Buffer.from('streamed'), 'data.value')
        assert.strictEqual(d.seq, 3, 'data.seq')
        sameBytes(d.salt, salt, 'data.salt')
        isBytes(d.signature, 64, 'data.signature')
        isBytes(d.id, 32, 'data.id')
      }
      const none = await drain(node.mutable.get(randomBytes(32)), 'mutable.get stream (missing)')
      assert.deepStrictEqual(none, [])
    }))

    it("the stores' argument checks throw the reference's messages, synchronously", () => scenario(async (kit) => {
      const node = kit.node({ bootstrap: [] })
      const { immutable, mutable } = node
      const keypair = mutable.keypair()
      const value = Buffer.from('v')
      const cb = () => {}
      const cases = [
        ['immutable.get(string)', () => immutable.get('key', cb), MSG.key],
        ['immutable.put(string)', () => immutable.put('value', cb), MSG.value],
        ['immutable.put(1001 bytes)', () => immutable.put(Buffer.alloc(1001), cb), MSG.size],
        ['immutable.put(value) without cb', () => immutable.put(value), MSG.cb],
        ['mutable.get(string)', () => mutable.get('key', cb), MSG.key],
        ['mutable.get({seq: string})', () => mutable.get(keypair.publicKey, { seq: '1' }, cb), MSG.seq],
        ['mutable.get({salt: string})', () => mutable.get(keypair.publicKey, { salt: 'salt' }, cb), MSG.salt],
        ['mutable.get({salt: 65 bytes})', () => mutable.get(keypair.publicKey, { salt: Buffer.alloc(65) }, cb), MSG.saltMax],
        ['mutable.put(string)', () => mutable.put('value', { keypair }, cb), MSG.value],
        ['mutable.put(value) without opts', () => mutable.put(value, undefined, cb), MSG.opts],
        ['mutable.put(value, opts) without cb', () => mutable.put(value, { keypair }), MSG.cb],
        ['mutable.put(1001 bytes)', () => mutable.put(Buffer.alloc(1001), { keypair }, cb), MSG.size],
        ['mutable.put without keypair', () => mutable.put(value, {}, cb), MSG.keypair],
        ['mutable.put, keypair without secretKey', () => mutable.put(value, { keypair: { publicKey: keypair.publicKey } }, cb), MSG.secretKey],
        ['mutable.put, secretKey not a buffer', () => mutable.put(value, { keypair: { publicKey: keypair.publicKey, secretKey: 'x' } }, cb), MSG.secretKey],
        ['mutable.put({seq: string})', () => mutable.put(value, { keypair, seq: '1' }, cb), MSG.seq],
        ['mutable.put({salt: string})', () => mutable.put(value, { keypair, salt: 'salt' }, cb), MSG.salt],
        ['mutable.put({salt: 65 bytes})', () => mutable.put(value, { keypair, salt: Buffer.alloc(65) }, cb), MSG.saltMax],
        ['mutable.put, signature without keypair', () => mutable.put(value, { signature: Buffer.alloc(64) }, cb), MSG.keypair],
        ['mutable.put, signature and keypair without publicKey', () => mutable.put(value, { signature: Buffer.alloc(64), keypair: {} }, cb), MSG.publicKey],
        ['mutable.put, signature and secretKey', () => mutable.put(value, { signature: Buffer.alloc(64), keypair }, cb), MSG.both],
        ['mutable.salt(15)', () => mutable.salt(15), MSG.saltRange],
        ['mutable.salt(65)', () => mutable.salt(65), MSG.saltRange],
        ["mutable.salt('x', 8)", () => mutable.salt('x', 8), MSG.saltRange],
        ['mutable.signable(string)', () => mutable.signable('value'), MSG.value],
        ['mutable.signable(1001 bytes)', () => mutable.signable(Buffer.alloc(1001)), MSG.size],
        ['mutable.signable({salt: string})', () => mutable.signable(value, { salt: 'salt' }), MSG.salt],
        ['mutable.signable({salt: 65 bytes})', () => mutable.signable(value, { salt: Buffer.alloc(65) }), MSG.saltMax],
        ['mutable.sign(value) without opts', () => mutable.sign(value), MSG.opts],
        ['mutable.sign(string)', () => mutable.sign('value', { keypair }), MSG.value],
        ['mutable.sign(1001 bytes)', () => mutable.sign(Buffer.alloc(1001), { keypair }), MSG.size],
        ['mutable.sign without keypair', () => mutable.sign(value, {}), MSG.keypair],
        ['mutable.sign, keypair without secretKey', () => mutable.sign(value, { keypair: { publicKey: keypair.publicKey } }), MSG.secretKey],
        ['mutable.cryptoSign(string)', () => mutable.cryptoSign('msg', keypair), MSG.msg],
        ['mutable.cryptoSign without keypair', () => mutable.cryptoSign(value), MSG.keypair],
        ['mutable.cryptoSign, keypair without secretKey', () => mutable.cryptoSign(value, {}), MSG.secretKey]
      ]
      for (const [what, fn, message] of cases) throwsMessage(fn, message, what)
    }))

    // ----- destroy ----------------------------------------------------------

    it("destroy(): 'close' fires, destroyed is true, and destroy() may repeat", () => scenario(async (kit) => {
      const node = await client(kit)
      const closed = nextEvent(node, 'close')
      assert.strictEqual(node.destroyed, false)
      node.destroy()
      assert.strictEqual(node.destroyed, true, 'destroyed at once')
      await closed
      assert.doesNotThrow(() => node.destroy(), 'a second destroy()')
      assert.strictEqual(node.destroyed, true)
    }))

    it('a process whose node bootstrapped, announced and was destroyed mid-lookup exits by itself', () => scenario(async () => {
      const script = path.join(__dirname, 'conformance', 'dht-exit.js')
      const child = spawn(process.execPath, [script, impl, net.bootstrap[0]], { stdio: ['ignore', 'pipe', 'pipe'] })
      const killer = setTimeout(() => child.kill('SIGKILL'), 25000)
      let out = ''
      let err = ''
      child.stdout.on('data', (d) => { out += d })
      child.stderr.on('data', (d) => { err += d })
      let destroyedAt = 0
      child.stdout.on('data', () => {
        const m = /destroyed (\d+)/.exec(out)
        if (m && !destroyedAt) destroyedAt = Date.now()
      })
      const [code, signal] = await within(new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s]))), 'the child to exit', 26000)
      clearTimeout(killer)
      const exitedAt = Date.now()
      assert.ok(destroyedAt, `the child destroyed its node (stdout: ${out}, stderr: ${err})`)
      assert.strictEqual(signal, null, `not killed (stderr: ${err})`)
      assert.strictEqual(code, 0, `exit code (stderr: ${err})`)
      assert.ok(/closed \d+/.test(out), "the node emitted 'close'")
      assert.ok(exitedAt - destroyedAt < 5000, `exited ${exitedAt - destroyedAt} ms after destroy()`)
    }))
  })
}
