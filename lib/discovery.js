'use strict'
// The `discovery` object of @hyperswarm/network 2.x: topics that announce
// or look up a key, and the bootstrap checks. The engine keeps one state per
// key, so several topic objects on one key share it: the engine announces
// if any of them announces and looks up if any looks up.
const { EventEmitter } = require('events')
const args = require('./args')
const { HyperDHT } = require('./dht/node')

/** The bootstrap nodes when none are given (@hyperswarm/dht 4.0.1, as src/swarm/config.rs). */
const { DEFAULT_BOOTSTRAP } = require('./constants')
const { copyPeer } = require('./engine')

class Discovery {
  /**
   * `bootstrap`: the caller's `options.bootstrap` (undefined: the defaults);
   * `ephemeral`: the caller's `options.ephemeral` (not a boolean: adaptive,
   * which starts out ephemeral).
   */
  constructor (engine, { tcpPort, bootstrap, ephemeral }) {
    this._engine = engine
    this._tcpPort = tcpPort
    const bootstrapNodes = [].concat(bootstrap === undefined ? DEFAULT_BOOTSTRAP : (bootstrap || [])).map(parseNode)
    this._bootstrapCount = bootstrapNodes.length
    this._byKey = new Map() // hex → Set<Topic>
    this._leaving = new Map() // hex → [Topic] waiting for the engine's 'left'
    this.destroyed = false
    // @hyperswarm/dht's API on the swarm's own DHT node (its socket, its
    // routing table): lookups, announces, stores, pings and punches.
    // `ephemeral` is the caller's option (adaptive when not a boolean).
    this.dht = new HyperDHT({ bootstrap: bootstrapNodes, ephemeral: ephemeral !== false, id: engine.id }, {
      backend: engine.dhtBackend(),
      destroy: () => this.destroy()
    })
  }

  announce (key, opts) {
    key = args.topic(key, 'key')
    opts = args.object(opts, 'announce options')
    const port = opts.port == null ? 0 : args.port(opts.port, 'options.port')
    const localPort = opts.localPort == null ? (port || this._tcpPort) : args.port(opts.localPort, 'options.localPort')
    const localAddress = checkLocalAddress(opts.localAddress)
    return this._add(new Topic(this, key, { port, localPort, localAddress }, !!opts.lookup, localAddress))
  }

  /** `opts.localAddress`: our `{ host, port }` on the LAN, sent along to the DHT. */
  lookup (key, opts) {
    key = args.topic(key, 'key')
    opts = args.object(opts, 'lookup options')
    return this._add(new Topic(this, key, null, true, checkLocalAddress(opts.localAddress)))
  }

  /** The first peer found for `key`, then the lookup stops. */
  lookupOne (key, opts, cb) {
    if (typeof opts === 'function') return this.lookupOne(key, null, opts)
    args.fn(cb, 'lookupOne callback')
    const topic = this.lookup(key, opts)
    let done = false
    topic.once('peer', peer => {
      done = true
      topic.destroy()
      cb(null, peer)
    })
    topic.once('close', () => {
      if (!done) cb(new Error('Lookup failed'))
    })
  }

  /** Pings every bootstrap node: cb(null, [{ bootstrap, rtt, pong }]). */
  ping (cb) {
    args.fn(cb, 'ping callback')
    if (this.destroyed) return process.nextTick(cb, new Error('discovery is destroyed'))
    this._engine.pingBootstrap((err, pongs) => {
      if (err) return cb(err)
      if (!pongs.length) return cb(new Error(this._bootstrapCount ? 'All bootstrap nodes failed' : 'No bootstrap nodes available'))
      cb(null, pongs)
    })
  }

  /**
   * cb(null, true) when at least two bootstrap nodes answered and all saw
   * us at the same address and port: then a NAT maps us consistently.
   */
  holepunchable (cb) {
    args.fn(cb, 'holepunchable callback')
    this.ping((err, pongs) => {
      if (err) return cb(err)
      if (pongs.length < 2) return cb(new Error('Not enough bootstrap nodes replied'))
      const first = pongs[0].pong
      cb(null, pongs.every(p => p.pong && first && p.pong.host === first.host && p.pong.port === first.port))
    })
  }

  /** Calls back once every topic's current DHT round has ended. */
  flush (cb) {
    args.fn(cb, 'flush callback')
    const topics = this.topics()
    let missing = topics.length + 1
    const done = () => { if (--missing === 0) cb(null) }
    for (const t of topics) t.flush(done)
    process.nextTick(done)
  }

  topics () {
    const out = []
    for (const set of this._byKey.values()) out.push(...set)
    return out
  }

  /** Destroys every topic (announcers unannounce first); cb once all closed. */
  destroy (cb) {
    if (!this.destroyed) {
      this.dht.destroyed = true
      process.nextTick(() => this.dht._onclose())
    }
    this.destroyed = true
    const topics = this.topics()
    let missing = topics.length + 1
    const done = () => { if (--missing === 0 && cb) cb() }
    for (const t of topics) {
      t.once('close', done)
      t.destroy()
    }
    process.nextTick(done)
  }

  /** The engine stopped: whatever still waits is closed now. */
  _closed () {
    if (!this.destroyed) this.dht._onclose()
    this.destroyed = true
    for (const t of this.topics()) t._close()
    for (const waiting of this._leaving.values()) for (const t of waiting) t._close()
    this._byKey.clear()
    this._leaving.clear()
  }

  _add (topic) {
    if (this.destroyed) throw new Error('discovery is destroyed')
    const hex = topic.key.toString('hex')
    let set = this._byKey.get(hex)
    if (!set) this._byKey.set(hex, (set = new Set()))
    set.add(topic)
    this._apply(topic.key, set)
    return topic
  }

  /** Tells the engine what the live topics of `key` together want. */
  _apply (key, set) {
    let announce = null
    let lookup = false
    let local = null
    for (const t of set) {
      if (t.announce && !announce) announce = t.announce
      if (t.lookup) lookup = true
      if (t._localAddress && !local) local = t._localAddress
    }
    const engine = this._engine
    const localAddress = local ? `${local.host}:${local.port}` : undefined
    if (announce) {
      engine.joinWithPorts(key, true, lookup, announce.port, announce.localPort, localAddress)
      // The "here I am" LAN answer goes on the next tick, from this thread,
      // as the reference fires it: swarms of one process announce in the
      // order they were told to, after lookups started in this same tick.
      process.nextTick(() => { if (!this.destroyed) engine.announceNow(key) })
    } else engine.joinWithPorts(key, false, true, 0, undefined, localAddress)
    for (const t of set) t._flushPending = true
  }

  _remove (topic) {
    const hex = topic.key.toString('hex')
    const set = this._byKey.get(hex)
    if (!set || !set.delete(topic)) return
    if (!set.size) this._byKey.delete(hex)
    let waiting = this._leaving.get(hex)
    if (!waiting) this._leaving.set(hex, (waiting = []))
    waiting.push(topic)
    // Leave, then rejoin with what the other topics of this key still want:
    // an announcer that goes away is unannounced even if lookups remain.
    this._engine.leave(topic.key)
    if (set.size) this._apply(topic.key, set)
  }

  _each (key, fn) {
    const set = this._byKey.get(key.toString('hex'))
    if (set) for (const t of [...set]) fn(t)
  }

  // Each topic hands out its own key Buffer as peer.topic, as the
  // reference does (code compares `peer.topic === topic`).
  _onpeer (peer) {
    if (peer.topic) this._each(peer.topic, t => t.emit('peer', copyPeer(peer, { topic: t.key })))
  }

  _onupdating (key) {
    this._each(key, t => {
      t._flushPending = true
      t.emit('updating')
    })
  }

  // The round heard enough (6 answers with the most peers seen): flush
  // waiters go on now; the round itself continues.
  _onflushed (key) {
    this._each(key, t => t._flushNow())
  }

  _onupdate (key, err) {
    this._each(key, t => t._roundEnded(err))
  }

  _onleft (key) {
    const hex = key.toString('hex')
    const waiting = this._leaving.get(hex)
    if (!waiting) return
    const topic = waiting.shift()
    if (!waiting.length) this._leaving.delete(hex)
    if (topic) topic._close()
  }
}

/** One announce or lookup of a key (spec/api-network.md §3.3). */
class Topic extends EventEmitter {
  constructor (discovery, key, announce, lookup, localAddress) {
    super()
    this.key = key
    this.announce = announce
    this.lookup = lookup
    this._localAddress = localAddress || null
    this.destroyed = false
    this._discovery = discovery
    this._flushPending = true
    this._flushes = []
    this._closedEmitted = false
  }

  /** Starts a DHT round now unless one is running, and asks the LAN again. */
  update () {
    if (this.destroyed) return
    this._discovery._engine.update(this.key)
    this._flushPending = true
  }

  /**
   * Calls back when the current DHT round has ended, or has heard enough to
   * say so early (six answers with the most peers seen); at once if none runs.
   */
  flush (cb) {
    args.fn(cb, 'flush callback')
    if (!this._flushPending || this.destroyed) return process.nextTick(cb, null)
    this._flushes.push(cb)
  }

  /** Stops; an announcing topic unannounces first. 'close' follows. */
  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this._discovery._remove(this)
    this._flush()
  }

  _roundEnded (err) {
    this._flushPending = false
    this.emit('update', err || null)
    this._flush()
  }

  _flushNow () {
    this._flushPending = false
    this._flush()
  }

  _flush () {
    const cbs = this._flushes
    this._flushes = []
    for (const cb of cbs) cb(null)
  }

  _close () {
    this.destroyed = true
    this._flush()
    if (this._closedEmitted) return
    this._closedEmitted = true
    this.emit('close')
  }
}

// dht-rpc's reading of a bootstrap entry: "host:port", ":port", a port
// number or { host, port }.
function parseNode (entry) {
  if (typeof entry === 'number') return { host: '127.0.0.1', port: entry }
  if (typeof entry === 'string') {
    const i = entry.lastIndexOf(':')
    return { host: entry.slice(0, i) || '127.0.0.1', port: parseInt(entry.slice(i + 1), 10) }
  }
  return { host: entry.host, port: entry.port }
}

function checkLocalAddress (a) {
  if (a == null) return null
  if (typeof a !== 'object' || typeof a.host !== 'string' || !/^\d+\.\d+\.\d+\.\d+$/.test(a.host)) {
    throw new TypeError('localAddress must be { host, port } with an IPv4 host')
  }
  args.port(a.port, 'localAddress.port')
  return { host: a.host, port: a.port }
}

module.exports = { Discovery, Topic }
