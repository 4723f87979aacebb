'use strict'
// One DHT node: the object `require('hyperswarm-native/dht')(opts)` gives,
// with @hyperswarm/dht 4.0.1's API over dht-rpc 4.9.6's. The node itself
// (routing, queries, stores, replies to others) runs natively on its own
// UDP socket; this file keeps the API's shape and its argument checks.
const { EventEmitter } = require('events')
const crypto = require('crypto')
const { NativeDht } = require('../../binding')
const args = require('../args')
const { QueryStream } = require('./query-stream')
const { ImmutableStore, MutableStore } = require('./stores')

/** @hyperswarm/dht 4.0.1's bootstrap nodes when `opts.bootstrap` is undefined. */
const { DEFAULT_BOOTSTRAP } = require('../constants')
/** Request numbers wrap here (they are u32 in the binding). */
const MAX_REQUEST = 0xffffffff

class HyperDHT extends EventEmitter {
  /**
   * `attach` (internal): run on another owner's DHT node instead of one of
   * our own, as `discovery.dht` of the network entry does: `{ backend,
   * destroy }`, where `backend` has command(op, id, args), nodes(), info()
   * and port(), and `destroy()` destroys the owner.
   */
  constructor (opts, attach = null) {
    super()
    opts = args.object(opts, 'options')
    if (opts.socket != null) throw new TypeError('options.socket is not supported: the node owns its UDP socket')
    const bootstrap = opts.bootstrap === undefined ? DEFAULT_BOOTSTRAP : (opts.bootstrap || [])
    if (!Array.isArray(bootstrap)) throw new TypeError('options.bootstrap must be an array of "host:port" strings or { host, port } objects')
    // An owner's node (attach) has checked its own options already.
    this.bootstrapNodes = attach ? bootstrap : bootstrap.map(parseNode)
    if (opts.id != null && (!Buffer.isBuffer(opts.id) || opts.id.length !== 32)) throw new TypeError('options.id must be a 32-byte Buffer')
    this.id = opts.id || (attach ? null : crypto.randomBytes(32))
    this.ephemeral = !!opts.ephemeral
    if (opts.adaptive && !this.ephemeral) throw new Error('adaptive mode can only applied when ephemeral: true')
    this._adaptive = !!opts.adaptive
    this._limitScale = opts.limitScale
    this.concurrency = 16
    this.bootstrapped = false
    this.destroyed = false
    this.mutable = new MutableStore(this)
    this.immutable = new ImmutableStore(this)
    this._native = null
    this._host = '0.0.0.0'
    this._ops = new Map() // request → { stream, handlers }
    this._next = 0
    this._attach = attach
    if (attach) {
      this._native = attach.backend
      return
    }
    // As dht-rpc: bootstrapping starts on the next tick, which binds the
    // socket unless listen() came first.
    process.nextTick(() => this._open())
  }

  // ----- the socket -------------------------------------------------------

  _open (port = 0, host = '0.0.0.0') {
    if (this._native || this.destroyed || this._bindError) return this._native
    this._host = host
    try {
      this._native = new NativeDht({
        host,
        port,
        bootstrap: this.bootstrapNodes.map((n) => `${n.host}:${n.port}`),
        ephemeral: this.ephemeral,
        adaptive: this._adaptive,
        id: this.id,
        limitScale: this._limitScale
      }, (ev) => this._onevent(ev))
    } catch (err) {
      // As dht-rpc: a port that cannot be bound is an 'error' event.
      this._bindError = bindError(err, port)
      process.nextTick(() => this.emit('error', this._bindError))
      return null
    }
    // With no bootstrap nodes the first walk ends at once: 'ready' anyway.
    if (!this.bootstrapNodes.length) this._send(this._native, 'bootstrap', this._request(null), {})
    return this._native
  }

  /** Binds the UDP socket: listen([port], [address], [cb]). */
  listen (port, address, cb) {
    if (typeof port === 'function') return this.listen(0, null, port)
    if (typeof address === 'function') return this.listen(port, null, address)
    if (this.destroyed) throw new Error('the DHT node is destroyed')
    if (this._attach) throw new Error('this DHT node shares its owner\'s socket: bind the owner instead')
    if (this._native) throw new Error('Socket is already bound')
    port = port == null ? 0 : args.port(port, 'port')
    if (address != null && (typeof address !== 'string' || !/^\d+\.\d+\.\d+\.\d+$/.test(address))) {
      throw new TypeError('address must be an IPv4 address')
    }
    if (cb) this.once('listening', cb)
    this._open(port, address || '0.0.0.0')
  }

  /** The bound socket's address, as dgram's socket.address(). */
  address () {
    if (!this._native || this.destroyed) throw new Error('Not running')
    return { address: this._host, family: 'IPv4', port: this._native.port() }
  }

  ref () { if (this._native && !this._attach) this._native.setRef(true) }
  unref () { if (this._native && !this._attach) this._native.setRef(false) }

  // ----- operations ----------------------------------------------------------

  _request (handlers) {
    do this._next = this._next >= MAX_REQUEST ? 1 : this._next + 1
    while (this._ops.has(this._next))
    const id = this._next
    if (handlers) this._ops.set(id, handlers)
    return id
  }

  /**
   * Starts a native operation: `start(id, native)`; `handlers.done(ev,
   * stream)` ends it, `handlers.data(ev)` maps a data event (null: none).
   */
  _operation (start, handlers) {
    const stream = new QueryStream()
    if (this.destroyed) {
      process.nextTick(() => stream._end(new Error('the DHT node is destroyed')))
      return stream
    }
    const native = this._open()
    if (!native) {
      process.nextTick(() => stream._end(this._bindError || new Error('the DHT node is destroyed')))
      return stream
    }
    const id = this._request({ stream, handlers })
    stream._cancel = () => {
      this._ops.delete(id)
      if (!this.destroyed) this._send(native, 'cancel', id, {})
    }
    try {
      start(id, { command: (op, i, a) => this._send(native, op, i, a) })
    } catch (err) {
      this._ops.delete(id)
      throw err
    }
    return stream
  }

  // Commands of one turn of the event loop reach the node together, and
  // it starts them in call order before it reads any reply (as dht-rpc
  // does on its one thread). An owner's node (attach) sends at once.
  _send (native, op, id, args) {
    native.command(op, id, args)
    if (!native.flush || this._flushing) return
    this._flushing = true
    setImmediate(() => {
      this._flushing = false
      if (!this.destroyed && this._native) this._native.flush()
    })
  }

  _onevent (ev) {
    switch (ev.kind) {
      case 'data':
      case 'warning':
      case 'done':
      case 'failed':
      case 'got':
      case 'put':
      case 'pong':
      case 'holepunched': return this._onreply(ev)
      case 'ready':
        if (this.bootstrapped) return
        this.bootstrapped = true
        return this.emit('ready')
      case 'initial-nodes': return this.emit('initial-nodes')
      case 'persistent':
        this.ephemeral = false
        return this.emit('persistent')
      case 'announce':
      case 'unannounce':
      case 'lookup': return this.emit(ev.kind, ev.topic, ev.from)
      case 'holepunch': return this.emit('holepunch', ev.from, ev.to)
      case 'listening': return this.emit('listening')
      case 'close': return this._onclose()
    }
  }

  _onreply (ev) {
    const op = this._ops.get(ev.request)
    if (!op) return
    const { stream, handlers } = op
    if (ev.kind === 'data') {
      stream._data(handlers.data ? handlers.data(ev) : null)
    } else if (ev.kind === 'warning') {
      const err = new Error(ev.error)
      if (ev.error === 'Request timed out') err.code = 'ETIMEDOUT'
      stream._warning(err, ev.proof ? { value: ev.proof.value || null, signature: ev.proof.signature || null, seq: ev.proof.seq || 0, salt: ev.proof.salt || null } : undefined)
    } else {
      this._ops.delete(ev.request)
      handlers.done(ev, stream)
    }
  }

  // ----- dht-rpc's methods ----------------------------------------------------

  ready (cb) {
    args.fn(cb, 'ready callback')
    if (this.bootstrapped) return process.nextTick(cb)
    this.once('ready', () => cb())
  }

  /** Walks towards our own id again: cb(err). */
  bootstrap (cb) {
    const s = this._operation((id, n) => n.command('bootstrap', id, {}), { done: walkDone })
    return finish(s, cb)
  }

  /** Becomes a full member (our id goes on the wire) and bootstraps: cb(err). */
  persistent (cb) {
    const s = this._operation((id, n) => n.command('persistent', id, {}), { done: walkDone })
    s.once('end', () => { this.ephemeral = false })
    return finish(s, cb)
  }

  /** Pings `peer`: cb(null, { host, port }), our address as it saw it. */
  ping (peer, cb) {
    peer = args.peer(peer, 'peer')
    args.fn(cb, 'ping callback')
    let to = null
    const s = this._operation((id, n) => n.command('ping', id, { peer: { host: peer.host, port: peer.port } }), {
      done (ev, stream) {
        if (ev.error) return stream._end(withCode(ev.error))
        to = ev.to || null
        stream._end()
      }
    })
    s.resume()
    s.once('error', (err) => cb(err))
    s.once('end', () => to ? cb(null, to) : cb(new Error('Invalid pong')))
  }

  /** Asks `peer.referrer` to relay a punch to `peer`, and punches ourselves: cb(err). */
  holepunch (peer, cb) {
    if (!peer || !peer.referrer) throw new Error('peer.referrer is required')
    args.peer(peer, 'peer')
    args.peer(peer.referrer, 'peer.referrer')
    args.fn(cb, 'holepunch callback')
    const s = this._operation((id, n) => n.command('holepunch', id, { peer: { host: peer.host, port: peer.port }, referrer: { host: peer.referrer.host, port: peer.referrer.port } }), {
      done (ev, stream) { stream._end(ev.error ? withCode(ev.error) : null) }
    })
    finish(s, (err) => cb(err || null))
  }

  /** The routing table's contacts: [{ id, host, port }]. */
  getNodes () {
    return this._native && !this.destroyed ? this._native.nodes() : []
  }

  /** Adds contacts [{ id, host, port }] to the routing table. */
  addNodes (nodes) {
    if (!Array.isArray(nodes)) throw new TypeError('nodes must be an array of { id, host, port }')
    const native = this._open()
    if (!native) return
    for (const node of nodes) {
      if (!node || !Buffer.isBuffer(node.id) || node.id.length !== 32) throw new TypeError('node.id must be a 32-byte Buffer')
      args.peer(node, 'node')
      this._send(native, 'add-node', 0, { id: node.id, peer: { host: node.host, port: node.port } })
    }
  }

  /** Our public address as enough nodes see it, or null. */
  remoteAddress () {
    const info = this._native && this._native.info()
    return (info && info.remoteAddress) || null
  }

  /** Enough nodes agree on our address and port: a NAT maps us consistently. */
  holepunchable () {
    const info = this._native && this._native.info()
    return !!(info && info.holepunchable)
  }

  /**
   * Our NAT's class, once DHT nodes in at least 3 /24s report our address:
   * 'open', 'consistent' (one mapping for every destination), 'random' (a
   * mapping per destination) or 'unknown'. Not in the reference.
   */
  natType () {
    const info = this._native && this._native.info()
    return (info && info.natType) || 'unknown'
  }

  /** Counters of what the native node received, stored and dropped. */
  stats () {
    return (this._native && this._native.info()) || null
  }

  /** Closes the socket; 'close' follows. Operations in flight never call back, as in dht-rpc. */
  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this._ops.clear()
    if (this._attach) this._attach.destroy()
    else if (this._native) this._native.destroy()
    else process.nextTick(() => this._onclose())
  }

  _onclose () {
    if (this._closed) return
    this._closed = true
    this.destroyed = true
    this.emit('close')
  }

  // ----- @hyperswarm/dht's peers commands ---------------------------------------

  /** The peers announced under `topic`: a stream of { node, to, peers, localPeers }. */
  lookup (topic, opts, cb) {
    if (typeof opts === 'function') return this.lookup(topic, null, opts)
    return this._peers('lookup', topic, opts, cb)
  }

  /** Stores us under `topic` with the closest nodes, collecting peers on the way. */
  announce (topic, opts, cb) {
    if (typeof opts === 'function') return this.announce(topic, null, opts)
    return this._peers('announce', topic, opts, cb)
  }

  /** Removes our record under `topic` from the closest nodes. */
  unannounce (topic, opts, cb) {
    if (typeof opts === 'function') return this.unannounce(topic, null, opts)
    return this._peers('unannounce', topic, opts, cb)
  }

  _peers (kind, topic, opts, cb) {
    topic = args.topic(topic, 'topic')
    opts = args.object(opts, `${kind} options`)
    const port = opts.port == null ? 0 : args.port(opts.port, 'options.port')
    const local = localAddress(opts.localAddress)
    if (cb != null) args.fn(cb, `${kind} callback`)
    const s = this._operation((id, n) => {
      n.command(kind, id, { topic, port: kind === 'lookup' && opts.port == null ? undefined : port, localAddress: local || undefined })
    }, {
      data: (ev) => kind === 'unannounce' ? null : ({
        node: { id: ev.nodeId || null, host: ev.from.host, port: ev.from.port },
        to: ev.to || null,
        // As @hyperswarm/dht: null for a field the reply did not carry.
        peers: ev.peers && ev.peers.length ? ev.peers : null,
        localPeers: local && ev.localPeers && ev.localPeers.length ? ev.localPeers : null
      }),
      done: walkDone
    })
    return cb ? s.collect(cb) : s
  }
}

// As dht-rpc's socket reports it; the engine names the OS error in `code`.
function bindError (err, port) {
  const inUse = err.code === 'EADDRINUSE'
  const e = new Error(inUse ? `bind EADDRINUSE 0.0.0.0:${port}` : err.message)
  e.code = err.code
  e.cause = err
  return e
}

function walkDone (ev, stream) {
  stream._end(ev.error ? new Error(ev.error) : null)
}

function withCode (message) {
  const err = new Error(message)
  if (message === 'Request timed out') err.code = 'ETIMEDOUT'
  return err
}

/** cb(err) once the stream ends or fails; the stream is drained. */
function finish (stream, cb) {
  stream.resume()
  if (cb != null) {
    args.fn(cb, 'callback')
    stream.once('error', (err) => cb(err))
    stream.once('end', () => cb(null))
  }
  return stream
}

function localAddress (a) {
  if (a == null) return null
  if (typeof a !== 'object' || typeof a.host !== 'string' || !/^\d+\.\d+\.\d+\.\d+$/.test(a.host)) {
    throw new TypeError('localAddress must be { host, port } with an IPv4 host')
  }
  args.port(a.port, 'localAddress.port')
  return { host: a.host, port: a.port }
}

// dht-rpc's reading of a bootstrap entry: "host:port", ":port", a port
// number or { host, port }.
function parseNode (entry) {
  if (typeof entry === 'number') return { host: '127.0.0.1', port: args.port(entry, 'bootstrap port') }
  if (typeof entry === 'string') {
    const i = entry.lastIndexOf(':')
    const port = parseInt(entry.slice(i + 1), 10)
    if (i < 0 || !(port > 0 && port < 65536)) throw new TypeError(`options.bootstrap entry ${JSON.stringify(entry)} is not "host:port"`)
    return { host: entry.slice(0, i) || '127.0.0.1', port }
  }
  if (entry && typeof entry === 'object' && typeof entry.host === 'string') return { host: entry.host, port: args.port(entry.port, 'bootstrap port') }
  throw new TypeError(`options.bootstrap entry ${JSON.stringify(entry)} is not "host:port" or { host, port }`)
}

module.exports = { HyperDHT, DEFAULT_BOOTSTRAP }
