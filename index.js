'use strict'
// The seed's API (@hyperswarm/network 0.0.4): network(opts) → EventEmitter with
// join/leave/connect and 'connection'/'peer' events. The engine is native;
// this file only shapes it for Node.
const { EventEmitter } = require('events')
const { Duplex } = require('stream')
const net = require('net')
const { NativeSwarm, NativeDhtNode } = require('./binding')

const TOPIC_LENGTH = 32

module.exports = opts => new Network(opts)
module.exports.Network = Network
module.exports.DhtNode = DhtNode

function Network (opts) {
  if (!(this instanceof Network)) return new Network(opts)
  EventEmitter.call(this)
  const options = checkOptions(opts)
  this.destroyed = false
  this.sockets = new Set()
  this._requests = new Map()
  this._nextRequest = 1
  this._closeCallbacks = []
  this._closed = false
  this._utp = new Map()
  this._native = new NativeSwarm(options, ev => this._onevent(ev))
}
Object.setPrototypeOf(Network.prototype, EventEmitter.prototype)
Object.setPrototypeOf(Network, EventEmitter)

Network.prototype.join = function join (topic, opts) {
  topic = checkTopic(topic)
  if (opts != null && typeof opts !== 'object') throw new TypeError('join options must be an object')
  const announce = !!(opts && opts.announce)
  const lookup = !!(opts && opts.lookup)
  this._live('join')
  this._native.join(topic, announce, lookup)
}

Network.prototype.leave = function leave (topic) {
  topic = checkTopic(topic)
  this._live('leave')
  this._native.leave(topic)
}

Network.prototype.connect = function connect (peer, cb) {
  if (!peer || typeof peer !== 'object') throw new TypeError('peer must be an object with host and port')
  if (typeof peer.host !== 'string' || !peer.host) throw new TypeError('peer.host must be a non-empty string')
  if (!Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) throw new TypeError('peer.port must be an integer from 1 to 65535')
  if (typeof cb !== 'function') throw new TypeError('connect callback must be a function')
  this._live('connect')
  const request = this._nextRequest++
  if (this._nextRequest > 0xffffffff) this._nextRequest = 1
  this._requests.set(request, { peer, cb })
  this._native.connect(request, toNativePeer(peer))
}

Network.prototype.address = function address () {
  const port = this._closed ? null : this._native.port()
  return port == null ? null : { address: '::', family: 'IPv6', port }
}

/** True when enough DHT nodes agree on our public address and port. */
Network.prototype.holepunchable = function holepunchable () {
  return !this._closed && this._native.holepunchable()
}

/** Our public address as DHT nodes report it: { host, port } or null. */
Network.prototype.remoteAddress = function remoteAddress () {
  const a = this._closed ? null : this._native.remoteAddress()
  if (!a) return null
  const i = a.lastIndexOf(':')
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) }
}

/** Counters from the engine (not in the reference): packets dropped, sent, … */
Network.prototype.stats = function stats () {
  return this._native.stats()
}

Network.prototype.destroy = function destroy (cb) {
  if (cb != null && typeof cb !== 'function') throw new TypeError('destroy callback must be a function')
  if (this._closed) {
    if (cb) process.nextTick(cb, null)
    return
  }
  if (cb) this._closeCallbacks.push(cb)
  if (this.destroyed) return
  this.destroyed = true
  for (const socket of this.sockets) socket.destroy()
  this._native.destroy()
}

Network.prototype.close = Network.prototype.destroy

Network.prototype._live = function (method) {
  if (this.destroyed) throw new Error(`cannot ${method}: network is destroyed`)
}

Network.prototype._onevent = function (ev) {
  switch (ev.kind) {
    case 'listening':
      this.emit('listening')
      return
    case 'peer':
      this.emit('peer', fromNativePeer(ev.peer))
      return
    case 'connection': {
      const peer = ev.peer ? fromNativePeer(ev.peer) : null
      const socket = this._socket(ev)
      if (socket) this.emit('connection', socket, { type: ev.transport || 'tcp', client: ev.client, peer })
      return
    }
    case 'data':
    case 'written':
    case 'end':
    case 'closed': {
      const stream = this._utp.get(ev.id)
      if (stream) stream._onnative(ev)
      return
    }
    case 'connected': {
      const req = this._requests.get(ev.request)
      if (!req) return
      this._requests.delete(ev.request)
      if (ev.fd == null && ev.transport !== 'utp') return req.cb(new Error(ev.message || 'Could not connect to peer'))
      const socket = this._socket(ev)
      if (!socket) return req.cb(new Error('cannot connect: network is destroyed'))
      req.cb(null, socket, { type: ev.transport || 'tcp', client: true, peer: req.peer })
      return
    }
    case 'update':
      this.emit('update')
      return
    case 'warning':
      if (this.listenerCount('warning')) this.emit('warning', new Error(ev.message))
      return
    case 'error':
      if (this.listenerCount('error')) this.emit('error', new Error(ev.message))
      else process.emitWarning(ev.message, 'HyperswarmNativeWarning')
      return
    case 'close':
      this._onclose()
  }
}

// TCP: wraps the connected descriptor in a real net.Socket, which Node then
// owns. uTP: a Duplex over the engine's connection.
Network.prototype._socket = function (ev) {
  let socket
  if (ev.transport === 'utp') {
    socket = new UtpStream(this._native, ev)
    this._utp.set(ev.id, socket)
    socket.once('close', () => this._utp.delete(ev.id))
  } else {
    socket = new net.Socket({ fd: ev.fd, readable: true, writable: true })
    socket.setNoDelay(true)
  }
  if (this.destroyed) {
    socket.destroy()
    return null
  }
  this.sockets.add(socket)
  // A reset or a write after the peer left must never take the process down
  // (upstream hyperswarm #45); users still see 'error' if they listen.
  socket.on('error', noop)
  socket.once('close', () => {
    this.sockets.delete(socket)
    if (!this.destroyed) this._native.connectionClosed(ev.id)
  })
  return socket
}

Network.prototype._onclose = function () {
  this._closed = true
  const err = new Error('cannot connect: network is destroyed')
  for (const { cb } of this._requests.values()) cb(err)
  this._requests.clear()
  const cbs = this._closeCallbacks
  this._closeCallbacks = []
  for (const cb of cbs) cb(null)
  this.emit('close')
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
    o.bootstrap = opts.bootstrap.map(toHostPort)
  }
  if (opts.ephemeral != null) {
    if (typeof opts.ephemeral !== 'boolean') throw new TypeError('options.ephemeral must be a boolean')
    o.ephemeral = opts.ephemeral
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

/**
 * A uTP connection as a stream.Duplex. Reads are pulled: `_read` grants the
 * engine the next batch, so a slow consumer closes the uTP window. A write
 * calls back once the engine's bounded send buffer has taken it.
 */
class UtpStream extends Duplex {
  constructor (native, ev) {
    // Like the net.Socket users get for TCP (and the reference's uTP
    // sockets): the end of the peer's data ends ours too.
    super({ allowHalfOpen: false })
    this._native = native
    this._id = ev.id
    this._writes = new Map()
    this._nextWrite = 1
    this._closed = false
    this.remoteAddress = ev.remoteHost
    this.remotePort = ev.remotePort
    this.remoteFamily = 'IPv4'
    this.bytesRead = 0
    this.bytesWritten = 0
  }

  _read () {
    if (!this._closed) this._native.utpRead(this._id)
  }

  _write (chunk, encoding, cb) {
    if (this._closed) return cb(new Error('uTP connection is closed'))
    const write = this._nextWrite++
    if (this._nextWrite > 0xffffffff) this._nextWrite = 1
    this._writes.set(write, cb)
    this.bytesWritten += chunk.length
    this._native.utpWrite(this._id, write, chunk)
  }

  _final (cb) {
    if (!this._closed) this._native.utpShutdown(this._id)
    cb()
  }

  _destroy (err, cb) {
    if (!this._closed) {
      this._closed = true
      this._native.utpClose(this._id)
    }
    this._failWrites(err || new Error('uTP connection is closed'))
    cb(err)
  }

  _failWrites (err) {
    const pending = [...this._writes.values()]
    this._writes.clear()
    for (const cb of pending) cb(err)
  }

  _onnative (ev) {
    if (ev.kind === 'data') {
      this.bytesRead += ev.data.length
      this.push(ev.data)
    } else if (ev.kind === 'written') {
      const cb = this._writes.get(ev.request)
      this._writes.delete(ev.request)
      if (cb) cb()
    } else if (ev.kind === 'end') {
      this.push(null)
    } else if (ev.kind === 'closed') {
      this._closed = true
      if (ev.message) this.destroy(new Error(ev.message))
      else {
        this.push(null)
        this._failWrites(new Error('uTP connection is closed'))
        this.destroy()
      }
    }
  }

  setNoDelay () { return this }
  setKeepAlive () { return this }
  setTimeout () { return this }
  ref () { return this }
  unref () { return this }
}

function noop () {}

function checkTopic (topic) {
  if (topic instanceof Uint8Array && !Buffer.isBuffer(topic)) topic = Buffer.from(topic.buffer, topic.byteOffset, topic.byteLength)
  if (!Buffer.isBuffer(topic) || topic.length !== TOPIC_LENGTH) {
    throw new TypeError(`topic must be a ${TOPIC_LENGTH}-byte Buffer`)
  }
  return topic
}

function checkOptions (opts) {
  if (opts == null) opts = {}
  if (typeof opts !== 'object') throw new TypeError('options must be an object')
  const out = {}
  if (opts.bootstrap != null) {
    if (!Array.isArray(opts.bootstrap)) throw new TypeError('options.bootstrap must be an array of "host:port" strings or { host, port } objects')
    out.bootstrap = opts.bootstrap.map(toHostPort)
  }
  if (opts.ephemeral != null) {
    if (typeof opts.ephemeral !== 'boolean') throw new TypeError('options.ephemeral must be a boolean')
    out.ephemeral = opts.ephemeral
  }
  if (opts.tcp != null) {
    // Not in the reference: false dials peers over punched uTP only.
    if (typeof opts.tcp !== 'boolean') throw new TypeError('options.tcp must be a boolean')
    out.tcp = opts.tcp
  }
  if (opts.multicast != null) {
    // The reference takes a custom multicast-dns instance here; LAN discovery
    // is then the caller's business, so ours stays off.
    if (typeof opts.multicast === 'boolean') out.multicast = opts.multicast
    else if (typeof opts.multicast === 'object') out.multicast = false
    else throw new TypeError('options.multicast must be a boolean')
  }
  for (const name of ['port', 'preferredPort']) {
    if (opts[name] == null) continue
    if (!Number.isInteger(opts[name]) || opts[name] < 0 || opts[name] > 65535) {
      throw new TypeError(`options.${name} must be an integer from 0 to 65535`)
    }
    out[name] = opts[name]
  }
  if (opts.domain != null) {
    if (typeof opts.domain !== 'string' || !opts.domain) throw new TypeError('options.domain must be a non-empty string')
    out.domain = opts.domain
  }
  if (opts.socket != null) {
    process.emitWarning('options.socket is ignored: hyperswarm-native owns its UDP socket', 'HyperswarmNativeWarning')
  }
  return out
}

function toHostPort (entry) {
  if (typeof entry === 'string' && /^[^\s]+:\d{1,5}$/.test(entry)) return entry
  if (entry && typeof entry === 'object' && typeof entry.host === 'string' && Number.isInteger(entry.port)) {
    return `${entry.host}:${entry.port}`
  }
  throw new TypeError(`options.bootstrap entry ${JSON.stringify(entry)} is not "host:port" or { host, port }`)
}

function toNativePeer (peer) {
  const out = { host: peer.host, port: peer.port, local: !!peer.local }
  if (Buffer.isBuffer(peer.topic) && peer.topic.length === TOPIC_LENGTH) out.topic = peer.topic
  const r = peer.referrer
  if (r && typeof r.host === 'string' && Number.isInteger(r.port)) {
    out.referrer = { host: r.host, port: r.port }
    if (Buffer.isBuffer(r.id)) out.referrer.id = r.id
  }
  return out
}

function fromNativePeer (p) {
  const peer = { port: p.port, host: p.host, local: p.local, referrer: null, topic: p.topic || null }
  if (p.referrer) peer.referrer = { port: p.referrer.port, host: p.referrer.host, id: p.referrer.id || null }
  return peer
}
