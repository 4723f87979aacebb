'use strict'
// The addon's events are tagged unions: each `kind` carries exactly its own
// fields (binding.d.ts types them one shape per kind). These tests watch the
// raw events of NativeSwarm and NativeDht, below the JS facades, so that a
// field leaking into the wrong kind, or a required one going missing, fails
// here. Loopback only, inside the namespace `npm test` makes.
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const net = require('net')
const { assertIsolated } = require('./helpers/netns')
const { NativeSwarm, NativeDht } = require('../binding')

assertIsolated()

/** Events of one native object, awaited by kind. */
function recorder () {
  const events = []
  const waiters = []
  const push = (ev) => {
    events.push(ev)
    for (const w of [...waiters]) {
      if (w.match(ev)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(ev)
      }
    }
  }
  const next = (match, what) => {
    const seen = events.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = { match, resolve }
      waiters.push(w)
      setTimeout(() => reject(new Error(`no ${what} event within 10 s; saw ${events.map(e => e.kind).join(', ')}`)), 10000).unref()
    })
  }
  return { events, push, next }
}

const keys = (o) => Object.keys(o).sort()

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function destroyed (native, rec) {
  native.destroy()
  const close = await rec.next(ev => ev.kind === 'close', 'close')
  assert.deepStrictEqual(close, { kind: 'close' })
}

// Two natives made by `make(onevent, 0)` and `make(onevent, 1)`, each with its recorder, given to
// `fn(first, firstEvents, second, secondEvents)`; both end with 'close'.
async function pair (make, fn) {
  const a = recorder()
  const b = recorder()
  const na = make(a.push, 0)
  const nb = make(b.push, 1)
  try {
    await fn(na, a, nb, b)
  } finally {
    await destroyed(na, a)
    await destroyed(nb, b)
  }
}
const swarms = fn => pair(push => new NativeSwarm({ multicast: false, bootstrap: [] }, push), fn)

test('swarm: listening, connected, connection and connect-failed carry only their own fields', () => swarms(async (sa, a, sb, b) => {
  const port = sb.bind()
  const listening = await b.next(ev => ev.kind === 'listening', 'listening')
  assert.deepStrictEqual(listening, { kind: 'listening', port })

  sa.connect(7, { host: '127.0.0.1', port, local: false })
  const connected = await a.next(ev => ev.kind === 'connected', 'connected')
  assert.deepStrictEqual(keys(connected), ['id', 'kind', 'peer', 'request', 'stream'])
  assert.strictEqual(connected.request, 7)
  assert.strictEqual(typeof connected.id, 'number')
  assert.deepStrictEqual(connected.peer, { host: '127.0.0.1', port, local: false })
  // A TCP stream is a descriptor and the peer's address as the engine
  // read it.
  assert.deepStrictEqual(keys(connected.stream), ['fd', 'remoteHost', 'transport'])
  assert.strictEqual(connected.stream.remoteHost, '127.0.0.1')
  assert.strictEqual(connected.stream.transport, 'tcp')
  assert.ok(Number.isInteger(connected.stream.fd) && connected.stream.fd >= 0)

  const incoming = await b.next(ev => ev.kind === 'connection', 'connection')
  // Incoming: no peer (whom we dialled), the client flag false.
  assert.deepStrictEqual(keys(incoming), ['client', 'id', 'kind', 'stream'])
  assert.strictEqual(incoming.client, false)
  assert.strictEqual(incoming.stream.transport, 'tcp')
  // The listener is dual-stack: the kernel says ::ffff:127.0.0.1, the
  // engine unmaps it (upstream hyperswarm #75).
  assert.strictEqual(incoming.stream.remoteHost, '127.0.0.1')
  fs.closeSync(connected.stream.fd)
  fs.closeSync(incoming.stream.fd)
  sa.connectionClosed(connected.id)
  sb.connectionClosed(incoming.id)

  const dead = await freePort()
  sa.connect(8, { host: '127.0.0.1', port: dead, local: false })
  const failed = await a.next(ev => ev.kind === 'connect-failed', 'connect-failed')
  assert.deepStrictEqual(keys(failed), ['code', 'kind', 'message', 'request'])
  assert.strictEqual(failed.request, 8)
  assert.strictEqual(failed.code, 'ECONNFAILED')
  assert.strictEqual(typeof failed.message, 'string')
  // No failure ever comes dressed as 'connected'.
  assert.ok(a.events.filter(ev => ev.kind === 'connected').every(ev => ev.request === 7))
}))

test('dht: a ping ends with pong, a ping of nobody with failed', () => pair((push, i) => new NativeDht({ host: '127.0.0.1', bootstrap: [], ...(i === 0 ? { ephemeral: true } : {}) }, push), async (na, a, nb, b) => {
  na.command('ping', 3, { peer: { host: '127.0.0.1', port: nb.port() } })
  na.flush()
  const pong = await a.next(ev => ev.request === 3, 'ping reply')
  assert.deepStrictEqual(pong, {
    kind: 'pong',
    request: 3,
    from: { host: '127.0.0.1', port: nb.port() },
    to: { host: '127.0.0.1', port: na.port() }
  })

  const nobody = await freePort()
  na.command('ping', 4, { peer: { host: '127.0.0.1', port: nobody } })
  na.flush()
  const failed = await a.next(ev => ev.request === 4, 'ping failure')
  // `from` and `proof` belong to store failures; a ping has neither.
  assert.deepStrictEqual(failed, { kind: 'failed', request: 4, error: 'Request timed out' })
}))

test('swarm: a host from JS is read once at the edge: ::ffff: unmapped, a blank one refused by name', () => swarms(async (sa, a, sb, b) => {
  const port = sb.bind()
  assert.throws(() => sa.connect(1, { host: 'two words', port, local: false }), /peer\.host must be an IP address or a host name/)
  assert.throws(() => sa.connect(2, { host: '127.0.0.1', port, local: false, referrer: { host: '', port: 49737 } }), /peer\.referrer\.host must be/)
  sa.connect(3, { host: '::ffff:127.0.0.1', port, local: false })
  const connected = await a.next(ev => ev.request === 3, 'connect 3')
  assert.strictEqual(connected.kind, 'connected')
  // The peer comes back as the engine holds it: plain IPv4.
  assert.strictEqual(connected.peer.host, '127.0.0.1')
  fs.closeSync(connected.stream.fd)
  sa.connectionClosed(connected.id)
  const incoming = await b.next(ev => ev.kind === 'connection', 'connection')
  fs.closeSync(incoming.stream.fd)
  sb.connectionClosed(incoming.id)
}))
