'use strict'
// The seed's API (@hyperswarm/network 0.0.4): network(opts) → EventEmitter with
// join/leave/connect and 'connection'/'peer' events. The engine is native;
// this file only shapes it for Node.
const { EventEmitter } = require('events')
const { NativeDhtNode } = require('./binding')
const { Engine } = require('./lib/engine')
const args = require('./lib/args')

module.exports = opts => new Network(opts)
module.exports.Network = Network
module.exports.DhtNode = DhtNode

function Network (opts) {
  if (!(this instanceof Network)) return new Network(opts)
  EventEmitter.call(this)
  const options = args.engineOptions(args.object(opts, 'options'))
  this.destroyed = false
  this._engine = new Engine(options, {
    listening: () => this.emit('listening'),
    peer: peer => this.emit('peer', peer),
    connection: (socket, ev, peer) => this.emit('connection', socket, details(ev, ev.client, peer)),
    update: () => this.emit('update'),
    warning: err => { if (this.listenerCount('warning')) this.emit('warning', err) },
    error: err => {
      if (this.listenerCount('error')) this.emit('error', err)
      else process.emitWarning(err.message, 'HyperswarmNativeWarning')
    },
    close: () => this.emit('close')
  })
  this.sockets = this._engine.sockets
}
Object.setPrototypeOf(Network.prototype, EventEmitter.prototype)
Object.setPrototypeOf(Network, EventEmitter)

Network.prototype.join = function join (topic, opts) {
  topic = args.topic(topic)
  if (opts != null && typeof opts !== 'object') throw new TypeError('join options must be an object')
  const announce = !!(opts && opts.announce)
  const lookup = !!(opts && opts.lookup)
  this._live('join')
  this._engine.join(topic, announce, lookup)
}

Network.prototype.leave = function leave (topic) {
  topic = args.topic(topic)
  this._live('leave')
  this._engine.leave(topic)
}

Network.prototype.connect = function connect (peer, cb) {
  args.peer(peer)
  args.fn(cb, 'connect callback')
  this._live('connect')
  this._engine.connect(peer, (err, socket, ev) => {
    if (err) return cb(seedError(err))
    cb(null, socket, details(ev, true, peer))
  })
}

// What 'connection' and connect() hand over with the socket. peerNatType
// (not in the reference) only when a hole punch told us the uTP peer runs
// this package, and type 'relay' with the relay's address for a connection
// through a relay of last resort: the keys are absent otherwise, so the
// object is the reference's for every other connection.
function details (ev, client, peer) {
  const d = { type: ev.stream.relay ? 'relay' : ev.stream.transport, client, peer }
  if (ev.stream.peerNatType) d.peerNatType = ev.stream.peerNatType
  if (ev.stream.relay) d.relay = ev.stream.relay
  return d
}

Network.prototype.address = function address () {
  const port = this._engine.port()
  return port == null ? null : { address: '::', family: 'IPv6', port }
}

/** True when enough DHT nodes agree on our public address and port. */
Network.prototype.holepunchable = function holepunchable () {
  return this._engine.holepunchable()
}

/**
 * Our NAT's class from DHT reports of at least 3 /24s (not in the
 * reference): 'open', 'consistent', 'random' or 'unknown'.
 */
Network.prototype.natType = function natType () {
  return this._engine.natType()
}

/** Our public address as DHT nodes report it: { host, port } or null. */
Network.prototype.remoteAddress = function remoteAddress () {
  return this._engine.remoteAddress()
}

/** Counters from the engine (not in the reference): packets dropped, sent, … */
Network.prototype.stats = function stats () {
  return this._engine.stats()
}

Network.prototype.destroy = function destroy (cb) {
  args.optionalFn(cb, 'destroy callback')
  this.destroyed = true
  this._engine.destroy(cb)
}

Network.prototype.close = Network.prototype.destroy

Network.prototype._live = function (method) {
  if (this.destroyed) throw new Error(`cannot ${method}: network is destroyed`)
}

// The seed's two connect errors, word for word, chosen by the engine's
// code (kept on `code`); the engine's reason stays as `cause`.
function seedError (err) {
  const out = new Error(err.code === 'ETIMEDOUT' ? 'Timed out trying to connect to peer' : 'Could not connect to peer')
  out.code = err.code
  out.cause = err
  return out
}

/**
 * A standalone DHT node on its own UDP socket (not in the seed's API): a
 * bootstrap node for a private network or a local testnet.
 * opts: { host = '127.0.0.1', port = 0, bootstrap = ['a.b.c.d:port'], ephemeral = false }
 */
function DhtNode (opts) {
  if (!(this instanceof DhtNode)) return new DhtNode(opts)
  if (opts == null) opts = {}
  if (typeof opts !== 'object') throw new TypeError('DhtNode options must be an object')
  const o = {}
  if (opts.host != null) {
    if (typeof opts.host !== 'string') throw new TypeError('options.host must be a string')
    o.host = opts.host
  }
  if (opts.port != null) {
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new TypeError('options.port must be an integer from 0 to 65535')
    o.port = opts.port
  }
  if (opts.bootstrap != null) {
    if (!Array.isArray(opts.bootstrap)) throw new TypeError('options.bootstrap must be an array')
    o.bootstrap = args.engineOptions({ bootstrap: opts.bootstrap }).bootstrap
  }
  if (opts.ephemeral != null) {
    if (typeof opts.ephemeral !== 'boolean') throw new TypeError('options.ephemeral must be a boolean')
    o.ephemeral = opts.ephemeral
  }
  if (opts.limitScale != null) {
    if (!Number.isInteger(opts.limitScale) || opts.limitScale < 1 || opts.limitScale > 0xffffffff) throw new TypeError('options.limitScale must be a positive integer')
    o.limitScale = opts.limitScale
  }
  this._native = new NativeDhtNode(o)
  this.port = this._native.port()
  this.host = o.host || '127.0.0.1'
}

DhtNode.prototype.address = function () {
  return { host: this.host, port: this.port }
}

DhtNode.prototype.nodes = function () {
  return this._native.nodes()
}

DhtNode.prototype.destroy = function () {
  this._native.destroy()
}
