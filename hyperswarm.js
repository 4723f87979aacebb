'use strict'
// require('hyperswarm-native/hyperswarm'): the API of hyperswarm 2.15.3.
// Topics, a dial queue with backoff and limits, PeerInfo objects and
// de-duplication, over this package's network 2.x layer (./network.js).
const { EventEmitter } = require('events')
const network = require('./network')
const { PeerQueue } = require('./lib/hyperswarm/peer-queue')
const { PeerInfo } = require('./lib/hyperswarm/peer-info')
const args = require('./lib/args')

/** Default limits (hyperswarm 2.15.3). */
const MAX_PEERS = 24
const MAX_SERVER_SOCKETS = Infinity
const MAX_CLIENT_SOCKETS = Infinity

/** The reference's error messages, kept word for word: code matches on them. */
const ERR_DESTROYED = 'swarm has been destroyed'
const ERR_KEY = 'key is required and must be a 32-byte buffer'
const ERR_JOIN_OPTS = 'join options must enable lookup, announce or both, but not neither'

/** Options passed through to the network layer. */
const NETWORK_OPTIONS = ['id', 'bootstrap', 'ephemeral', 'port', 'announcePort', 'preferredPort', 'multicast', 'tcp', 'domain', 'maxIncomingPerIp', 'dhtLimitScale']

module.exports = opts => new Swarm(opts)

class Swarm extends EventEmitter {
  constructor (opts) {
    super()
    opts = args.object(opts, 'options')
    const limit = (name, fallback) => {
      const v = opts[name]
      if (v == null) return fallback
      if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`options.${name} must be a number`)
      return v
    }
    this.maxPeers = limit('maxPeers', MAX_PEERS)
    this.maxServerSockets = limit('maxServerSockets', MAX_SERVER_SOCKETS)
    this.maxClientSockets = limit('maxClientSockets', MAX_CLIENT_SOCKETS)
    this.validatePeer = opts.validatePeer == null ? () => true : args.fn(opts.validatePeer, 'options.validatePeer')
    // Without a validatePeer every peer found is queued, so the engine may
    // dial the next one ahead of us (see _updateSpeculation).
    this._validates = opts.validatePeer != null
    const queue = args.object(opts.queue, 'options.queue')
    if (queue.requeue != null && !(Array.isArray(queue.requeue) && queue.requeue.every(n => typeof n === 'number'))) {
      throw new TypeError('options.queue.requeue must be an array of milliseconds')
    }
    if (queue.forget != null) args.object(queue.forget, 'options.queue.forget')

    const netOpts = {}
    for (const name of NETWORK_OPTIONS) if (opts[name] !== undefined) netOpts[name] = opts[name]
    netOpts.announceLocalAddress = !!opts.announceLocalAddress
    netOpts.bind = () => this.emit('listening')
    netOpts.socket = (socket, isTCP) => this._onincoming(socket, isTCP)
    netOpts.close = () => this.emit('close')
    this.network = network(netOpts)

    this.destroyed = false
    this.peers = 0
    this.clientSockets = 0
    this.serverSockets = 0
    this.prioritisedInflight = 0
    this.open = this.peers < this.maxPeers
    this.connections = this.network.sockets
    this._status = new Map() // key hex → { announce, lookup }
    this._topics = new Map() // key hex → network Topic
    this._flushes = [] // [attempts still awaited, cb]
    this._incoming = { tcp: 0, utp: 0 } // server sockets per transport
    this._queue = new PeerQueue(queue)
    this._queue.on('readable', () => this._drain())
    this._updateAccepting()
    this._updateSpeculation()
  }

  address () {
    if (this.destroyed) throw new Error(ERR_DESTROYED)
    return this.network.address()
  }

  listen (port, cb) {
    if (this.destroyed) throw new Error(ERR_DESTROYED)
    this.network.bind(port, cb)
  }

  status (key) {
    args.topic(key, 'key')
    return this._status.get(key.toString('hex')) || null
  }

  join (key, opts, onjoin) {
    if (this.destroyed) throw new Error(ERR_DESTROYED)
    if (typeof opts === 'function') return this.join(key, {}, opts)
    if (!Buffer.isBuffer(key) || key.length !== 32) throw new TypeError(ERR_KEY)
    opts = args.object(opts, 'join options')
    args.optionalFn(onjoin, 'join callback')
    const { announce = false, lookup = true } = opts
    if (!announce && !lookup) throw new Error(ERR_JOIN_OPTS)
    const hex = key.toString('hex')
    this._status.set(hex, { announce, lookup })
    this.network.bind(err => {
      if (err) return this.emit('error', err)
      if (this.destroyed) return
      this._leaveTopic(hex)
      const topic = announce ? this.network.announce(key, { lookup }) : this.network.lookup(key)
      this._topics.set(hex, topic)
      topic.once('close', () => { if (this._topics.get(hex) === topic) this._topics.delete(hex) })
      if (onjoin) topic.flush(() => onjoin())
      topic.on('update', () => this.emit('updated', { key }))
      if (lookup) topic.on('peer', peer => this._onpeer(peer))
      this.emit('join', key, opts)
    })
  }

  leave (key, onleave) {
    if (!Buffer.isBuffer(key) || key.length !== 32) throw new TypeError(ERR_KEY)
    args.optionalFn(onleave, 'leave callback')
    if (this.destroyed) return
    const hex = key.toString('hex')
    this._status.delete(hex)
    this.network.bind(err => {
      if (err || this.destroyed) return
      // Connections already made stay open: the swarm does not know which
      // topic an incoming connection came for (upstream hyperswarm #50).
      // Only discovery and new dials for the topic stop.
      this._leaveTopic(hex, onleave)
      this.emit('leave', key)
    })
  }

  flush (cb) {
    if (this.destroyed) throw new Error(ERR_DESTROYED)
    args.fn(cb, 'flush callback')
    this.network.bind(err => {
      if (err) return cb(err)
      this.network.discovery.flush(() => {
        const waiting = this._queue.prioritised + this.prioritisedInflight
        if (waiting === 0 || this.clientSockets >= this.maxClientSockets) cb()
        else this._flushes.push([waiting, cb])
      })
    })
  }

  connect (peer, cb) {
    if (this.destroyed) throw new Error(ERR_DESTROYED)
    this.network.connect(peer, cb)
  }

  /** cb(err, { bound, bootstrapped, boostrapped (sic, kept for compatibility), holepunched }). */
  connectivity (cb) {
    if (this.destroyed) throw new Error(ERR_DESTROYED)
    args.fn(cb, 'connectivity callback')
    const result = (bound, bootstrapped, holepunched) => ({ bound, boostrapped: bootstrapped, bootstrapped, holepunched })
    this.network.bind(err => {
      if (err) return cb(err, result(false, false, false))
      this.network.discovery.holepunchable((err, yes) => {
        if (err) return cb(err, result(true, false, false))
        cb(null, result(true, true, yes))
      })
    })
  }

  remoteAddress () {
    const d = this.network.discovery
    return d && d.dht.remoteAddress()
  }

  holepunchable () {
    const d = this.network.discovery
    return d && d.dht.holepunchable()
  }

  /** Our NAT's class (not in hyperswarm 2): see index.d.ts; null before binding. */
  natType () {
    const d = this.network.discovery
    return d && d.dht.natType()
  }

  destroy (cb) {
    args.optionalFn(cb, 'destroy callback')
    this.destroyed = true
    this.network.setSpeculation(false)
    this._queue.destroy()
    this.network.close(cb)
    this._status.clear()
    const flushes = this._flushes
    this._flushes = []
    for (const [, fn] of flushes) fn(new Error(ERR_DESTROYED))
  }

  _leaveTopic (hex, onleave) {
    const topic = this._topics.get(hex)
    if (!topic) return
    this._topics.delete(hex)
    if (onleave) topic.once('close', () => onleave())
    topic.destroy()
  }

  _onpeer (peer) {
    if (this.destroyed) return
    if (!this.validatePeer(peer)) return this.emit('peer-rejected', peer)
    this.emit('peer', peer)
    this._queue.add(peer)
    this._updateSpeculation()
  }

  // When a new peer would be dialled the moment we hear of it (our queue
  // is empty, there is room, no validatePeer to ask), the engine starts
  // that dial as it finds the peer, and network.connect() takes it: the
  // round trip through this thread is saved. Same peer, same decision.
  _updateSpeculation () {
    const on = !this.destroyed && !this._validates && this.open &&
      this.clientSockets < this.maxClientSockets && this._queue.length === 0
    this.network.setSpeculation(on)
  }

  _onincoming (socket, isTCP) {
    // maxServerSockets is each server's maxConnections in the reference: a
    // limit per transport, so up to twice as many server sockets in all.
    // Over it, the servers refuse by closing at once.
    const transport = isTCP ? 'tcp' : 'utp'
    if (!this.open || this._incoming[transport] >= this._serverLimit()) {
      socket.destroy()
      return
    }
    const info = new PeerInfo(null, this._queue)
    info.connected(socket, isTCP)
    this.serverSockets++
    this._incoming[transport]++
    this._addPeer()
    this.emit('connection', socket, info)
    socket.once('close', () => {
      info.disconnected()
      this.serverSockets--
      this._incoming[transport]--
      this.emit('disconnection', socket, info)
      this._removePeer()
    })
  }

  // One dial at a time, as hyperswarm 2.x does: the next starts when the
  // last one connected or failed, or when the queue fills again.
  _drain () {
    if (this.destroyed || !this.open || this.clientSockets >= this.maxClientSockets) return
    for (;;) {
      const info = this._queue.shift()
      if (!info) return
      // Peers of topics left since they were queued are not dialled.
      if (info.peer.topic && !this._status.has(info.peer.topic.toString('hex'))) {
        this._attempted()
        continue
      }
      const prioritised = info.prioritised
      if (prioritised) this.prioritisedInflight++
      this.clientSockets++
      this._addPeer()
      this.network.connect(info.peer, (err, socket, isTCP) => this._ondial(info, prioritised, err, socket, isTCP))
      return
    }
  }

  _ondial (info, prioritised, err, socket, isTCP) {
    if (prioritised) this.prioritisedInflight--
    if (err) {
      this.clientSockets--
      this._removePeer()
      this._queue.requeue(info)
      this._drain()
      this._attempted()
      return
    }
    info.connected(socket, isTCP)
    this.emit('connection', socket, info)
    socket.once('close', () => {
      info.disconnected()
      this.clientSockets--
      this.emit('disconnection', socket, info)
      this._removePeer()
      this._queue.requeue(info)
      setImmediate(() => this._drain())
    })
    this._drain()
    this._attempted()
    this._updateSpeculation()
  }

  // flush() waits until the prioritised peers it counted have been tried.
  _attempted () {
    const still = []
    for (const entry of this._flushes) {
      if (this.clientSockets >= this.maxClientSockets || --entry[0] <= 0) entry[1]()
      else still.push(entry)
    }
    this._flushes = still
  }

  _addPeer () {
    this.peers++
    this.open = this.peers < this.maxPeers
    this._updateAccepting()
    this._updateSpeculation()
  }

  _removePeer () {
    this.peers--
    this.open = this.peers < this.maxPeers
    this._updateAccepting()
    this._updateSpeculation()
  }

  _serverLimit () {
    // As with Node's server.maxConnections: 0 means no limit, below 0 none at all.
    if (this.maxServerSockets === 0) return Infinity
    return this.maxServerSockets < 0 ? 0 : this.maxServerSockets
  }

  _updateAccepting () {
    const limit = this._serverLimit()
    this.network.setAccepting(!!this.open && (this._incoming.tcp < limit || this._incoming.utp < limit))
    // Full over TCP: the kernel refuses TCP dialers, who then reach us over
    // uTP while it has room (the reference's full net.Server accepts and
    // closes, so its dialers see a connection end instead).
    this.network.setTcpListening(!!this.open && this._incoming.tcp < limit)
  }
}

module.exports.Swarm = Swarm
