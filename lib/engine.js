'use strict'
// The native engine as every entry point uses it: one NativeSwarm, its
// events turned into Node sockets, peers and callbacks. TCP connections
// become real net.Sockets over the connected descriptor (Node owns them from
// then on); uTP connections are UtpStreams driven by the engine.
const net = require('net')
const os = require('os')
const { NativeSwarm, NativePeerQueue, socketPair } = require('../binding')
const UtpStream = require('./utp-stream')
const { warm } = require('./warm')
const { CONNECT_TIMEOUT } = require('./constants')

// Where a peer the engine dialled ahead carries that dial's request id
// (not enumerable: the peer object is the user's).
const kAhead = Symbol('dialled ahead')
/** Requests the JS side numbers stay below the engine's own (src/swarm/core.rs SPECULATIVE_REQUESTS). */
const MAX_REQUEST = 0x7fffffff

class Engine {
  /**
   * `options`: engine options (see args.engineOptions, plus autoDial).
   * `on`: handlers, each optional: listening(port), connection(socket, ev, peer),
   * peer(peer), updating(topic), flushed(topic), update(topic, err), left(topic),
   * dht(event of an operation of discovery.dht), warning(err), error(err), close().
   * `sockets`: the Set that live connections are kept in (the caller's own).
   */
  constructor (options, on, sockets = new Set()) {
    this.on = on
    this.destroyed = false
    this.closed = false
    this.sockets = sockets
    this._utp = new Map()
    this._requests = new Map()
    this._nextRequest = 1
    // Dials the engine started ahead of the caller (setSpeculation): by
    // address until their peer event comes, and their results until the
    // caller claims them with connect() or they expire.
    this._ahead = new Map()
    this._unclaimed = new Map()
    this._speculating = false
    this._aheadClaimed = 0
    this._aheadDropped = 0
    this._closeCallbacks = []
    /** The DHT node id the caller gave, or null (the node made its own). */
    this.id = options.id || null
    this.native = new NativeSwarm(options, ev => this._onevent(ev))
    warm(socketPair)
  }

  _request (entry) {
    const id = this._nextRequest++
    if (this._nextRequest > MAX_REQUEST) this._nextRequest = 1
    this._requests.set(id, entry)
    return id
  }

  /** Binds now; returns the port TCP and UDP share. Throws if no port binds. */
  bind (preferredPort) {
    try {
      return this.native.bind(preferredPort || undefined)
    } catch (err) {
      throw withErrno(err)
    }
  }

  port () {
    return this.closed ? null : this.native.port()
  }

  /** Joins `topic` (32 bytes): announce and/or look it up, DHT and LAN. */
  join (topic, announce, lookup) {
    this.native.join(topic, announce, lookup)
  }

  /**
   * join() with what discovery's topics ask for: `port` is announced on the
   * DHT (0: our own), `localPort` on the LAN (undefined: ours), and
   * `localAddress` ("host:port") goes with DHT requests.
   */
  joinWithPorts (topic, announce, lookup, port, localPort, localAddress) {
    this.native.joinWithPorts(topic, announce, lookup, port, localPort, localAddress)
  }

  /** Sends the LAN "here I am" of an announced topic now; returns the copies sent. */
  announceNow (topic) {
    return this.native.announceNow(topic)
  }

  leave (topic) {
    this.native.leave(topic)
  }

  /** Starts a DHT round of `topic` now unless one is running. */
  update (topic) {
    this.native.update(topic)
  }

  /** Whether incoming connections are taken at all. */
  setAccepting (accepting) {
    this.native.setAccepting(accepting)
  }

  /** Whether the engine keeps the process alive. */
  setRef (ref) {
    this.native.setRef(ref)
  }

  /** Whether the kernel listens on TCP (synchronous); throws its refusal. */
  setTcpListening (on) {
    return this.native.setTcpListening(on)
  }

  /**
   * Dials `peer` (TCP, raced with punch-then-uTP when it has a referrer).
   * `punch(peer, cb)`, if given, punches the hole instead of the engine.
   */
  connect (peer, cb, punch) {
    // The engine dialled this peer ahead: take that dial. Not when the
    // caller punches itself (its seam would be skipped).
    const ahead = peer && peer[kAhead]
    if (ahead != null && !punch) {
      peer[kAhead] = null
      if (this._claim(ahead, cb)) return
    }
    const id = this._request({ kind: 'connect', peer, cb, punch })
    try {
      this.native.connect(id, toNativePeer(peer), !!punch)
    } catch (err) {
      // Thrown to the caller: the request must not answer again at close.
      this._requests.delete(id)
      throw err
    }
  }

  // A dial made with `punch` wants its hole punched: punch(peer, cb) does
  // it, and the engine dials uTP if cb has no error. A late or repeated
  // answer (the dial is over) is dropped.
  _onpunch (id) {
    const req = this._requests.get(id)
    if (!req || !req.punch) return
    let answered = false
    const done = (err) => {
      if (answered) return
      answered = true
      if (this.closed || this._requests.get(id) !== req) return
      try { this.native.punched(id, !err) } catch {}
    }
    try {
      req.punch(req.peer, done)
    } catch (err) {
      done(err)
    }
  }

  /**
   * Whether the caller would dial the next new peer of a looked-up topic
   * at once (the ./hyperswarm entry: empty queue, room, no validatePeer).
   * The engine then dials it ahead, and connect() with that peer takes the
   * dial; one dial ahead per call.
   */
  setSpeculation (on) {
    if (this.closed || this.destroyed || on === this._speculating) return
    this._speculating = on
    this.native.setSpeculation(on)
  }

  _claim (id, cb) {
    const req = this._requests.get(id)
    if (req && req.ahead && !req.cb) {
      req.cb = cb
      this._aheadClaimed++
      return true
    }
    const done = this._unclaimed.get(id)
    if (!done) return false
    this._aheadClaimed++
    this._unclaimed.delete(id)
    clearTimeout(done.timer)
    process.nextTick(cb, ...done.result)
    return true
  }

  // A dial ahead ended before anyone claimed it: kept for the caller for
  // as long as a dial may take, then dropped (its socket closed).
  _park (id, result) {
    const timer = setTimeout(() => {
      this._unclaimed.delete(id)
      this._aheadDropped++
      if (result[1]) result[1].destroy()
    }, CONNECT_TIMEOUT)
    timer.unref()
    this._unclaimed.set(id, { result, timer })
  }

  /** Pings every bootstrap node: cb(null, [{ bootstrap, rtt, pong }]). */
  pingBootstrap (cb) {
    const id = this._request({ kind: 'ping', cb })
    this.native.pingBootstrap(id)
  }

  holepunchable () {
    return !this.closed && this.native.holepunchable()
  }

  natType () {
    return this.closed ? 'unknown' : this.native.natType()
  }

  remoteAddress () {
    const a = this.closed ? null : this.native.remoteAddress()
    return a ? parseHostPort(a) : null
  }

  stats () {
    const s = this.native.stats()
    // Of the dials the engine made ahead (dialsAhead): taken by connect(),
    // or closed unclaimed.
    if (s) Object.assign(s, { dialsAheadClaimed: this._aheadClaimed, dialsAheadDropped: this._aheadDropped })
    return s
  }

  /** The swarm's DHT node as lib/dht/node.js drives one (discovery.dht). */
  dhtBackend () {
    const native = this.native
    return {
      command: (op, id, args) => native.dhtCommand(op, id, args),
      nodes: () => this.closed ? [] : native.dhtNodes(),
      info: () => this.closed ? null : { holepunchable: native.holepunchable(), remoteAddress: this.remoteAddress(), natType: native.natType() },
      port: () => this.port()
    }
  }

  /** Closes every socket and the engine; cb(null) once all is gone. */
  destroy (cb) {
    if (this.closed) {
      if (cb) process.nextTick(cb, null)
      return
    }
    if (cb) this._closeCallbacks.push(cb)
    if (this.destroyed) return
    this.destroyed = true
    // TCP dialers are refused from now on, as by a closed net.Server (the
    // engine itself closes a little later, on its own thread).
    try { this.native.setTcpListening(false) } catch {}
    // The sockets go once the engine has closed (see _onclose), so that a
    // peer in this same process cannot hear them end before 'close'.
    this.native.destroy()
  }

  _emit (name, ...args) {
    const handler = this.on[name]
    if (handler) handler(...args)
  }

  _onevent (ev) {
    switch (ev.kind) {
      case 'listening': return this._emit('listening', ev.port)
      case 'punch': return this._onpunch(ev.request)
      case 'dialing': {
        this._speculating = false
        const key = ev.peer.host + ':' + ev.peer.port
        this._requests.set(ev.request, { kind: 'connect', peer: null, cb: null, ahead: key })
        this._ahead.set(key, ev.request)
        return
      }
      case 'peer': {
        const peer = fromNativePeer(ev.peer)
        const key = ev.peer.host + ':' + ev.peer.port
        const ahead = this._ahead.get(key)
        if (ahead != null) {
          this._ahead.delete(key)
          Object.defineProperty(peer, kAhead, { value: ahead, writable: true })
        }
        return this._emit('peer', peer)
      }
      case 'updating': return this._emit('updating', ev.topic)
      case 'flushed': return this._emit('flushed', ev.topic)
      case 'update': return this._emit('update', ev.topic, ev.message ? new Error(ev.message) : null)
      case 'left': return this._emit('left', ev.topic)
      case 'connection': {
        const socket = this._socket(ev)
        if (socket) this._emit('connection', socket, ev, ev.peer ? fromNativePeer(ev.peer) : null)
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
      case 'connect-failed':
      case 'connected': {
        const req = this._requests.get(ev.request)
        if (!req) return
        this._requests.delete(ev.request)
        // Events keep their order, so a dial ahead whose 'peer' event has
        // not come by its result never gets one (the event gate dropped
        // it): nobody can claim the dial, and its address goes.
        if (req.ahead && this._ahead.get(req.ahead) === ev.request) this._ahead.delete(req.ahead)
        const cb = req.cb || ((...result) => this._park(ev.request, result))
        if (ev.kind === 'connect-failed') return cb(coded(ev.message, ev.code))
        const socket = this._socket(ev)
        if (!socket) return cb(coded('cannot connect: network is destroyed', 'EDESTROYED'))
        cb(null, socket, ev)
        return
      }
      case 'pinged': {
        const req = this._requests.get(ev.request)
        if (!req) return
        this._requests.delete(ev.request)
        req.cb(null, ev.pongs.map(p => ({
          bootstrap: { host: p.host, port: p.port },
          rtt: p.rtt,
          pong: p.to ? parseHostPort(p.to) : null
        })))
        return
      }
      case 'dht': return this._emit('dht', ev.dht)
      case 'warning': return this._emit('warning', new Error(ev.message))
      case 'error': return this._emit('error', new Error(ev.message))
      case 'fatal': return this._onfatal(new Error(ev.message))
      case 'close': return this._onclose()
    }
  }

  _socket (ev) {
    let socket
    if (ev.stream.transport === 'utp') {
      socket = new UtpStream(this.native, ev.id, ev.stream)
      this._utp.set(ev.id, socket)
      socket.once('close', () => this._utp.delete(ev.id))
    } else {
      socket = new net.Socket({ fd: ev.stream.fd, readable: true, writable: true })
      socket.setNoDelay(true)
      // The engine listens dual-stack, so Node would report an IPv4 peer as
      // `::ffff:a.b.c.d` and code comparing it with the plain address that
      // discovery gave fails (upstream hyperswarm #75). Report the address
      // as the engine read it (unmapped there).
      const host = ev.stream.remoteHost
      if (host && socket.remoteAddress !== host) {
        Object.defineProperty(socket, 'remoteAddress', { value: host, enumerable: true })
        if (!host.includes(':')) Object.defineProperty(socket, 'remoteFamily', { value: 'IPv4', enumerable: true })
      }
    }
    if (this.destroyed) {
      socket.destroy()
      return null
    }
    this.sockets.add(socket)
    // As the reference does with the sockets it dials: an error destroys the
    // socket with that error, once. Having a listener also means a reset or
    // a write after the peer left never takes the process down (upstream
    // hyperswarm #45); users still see 'error' if they listen.
    socket.on('error', destroyOnError)
    socket.once('close', () => {
      this.sockets.delete(socket)
      if (!this.destroyed) this.native.connectionClosed(ev.id)
    })
    return socket
  }

  // The engine died (a bug: it panicked). Its sockets are gone already; end
  // what lives on this side as destroy() would, report the error, and let
  // the 'close' that follows finish the job (callbacks, requests, 'close').
  _onfatal (err) {
    this.destroyed = true
    for (const socket of this.sockets) socket.destroy(err)
    // Entries without an 'error' handler still hear it, as a process warning.
    if (this.on.error) this._emit('error', err)
    else process.emitWarning(err.message, 'HyperswarmNativeWarning')
  }

  _onclose () {
    this.closed = true
    const err = new Error('cannot connect: network is destroyed')
    const requests = [...this._requests.values()]
    this._requests.clear()
    this._ahead.clear()
    for (const { timer } of this._unclaimed.values()) clearTimeout(timer)
    this._unclaimed.clear()
    for (const req of requests) if (req.cb) req.cb(err)
    // As the reference's servers do: every socket is destroyed, and 'close'
    // follows their own 'close' events, before a peer's end can be heard.
    let missing = 1
    const done = () => {
      if (--missing) return
      const cbs = this._closeCallbacks
      this._closeCallbacks = []
      for (const cb of cbs) cb(null)
      this._emit('close')
    }
    for (const socket of this.sockets) {
      if (socket.closed) continue
      missing++
      socket.once('close', done)
      socket.destroy()
    }
    done()
  }
}

function destroyOnError (err) {
  if (this.destroyed === false) this.destroy(err)
}

// The engine names an OS error in `err.code` ('EADDRINUSE' and friends);
// Node's own errors carry the number too, as a negative `errno`.
function withErrno (err) {
  const errno = os.constants.errno[err.code]
  if (errno !== undefined) err.errno = -errno
  return err
}

/**
 * An Error with the engine's stable `code`: for a failed dial ETIMEDOUT
 * (the 10 s deadline), EHOLEPUNCH (the punch failed last), ENOPATH (nothing
 * to try), ECONNFAILED (every path failed), or EDESTROYED.
 */
function coded (message, code) {
  const err = new Error(message)
  err.code = code
  return err
}

function parseHostPort (s) {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
}

function toNativePeer (peer) {
  // The engine unmaps `::ffff:` hosts itself.
  const out = { host: peer.host, port: peer.port, local: !!peer.local }
  if (Buffer.isBuffer(peer.topic) && peer.topic.length === 32) out.topic = peer.topic
  if (peer.to && typeof peer.to.host === 'string' && Number.isInteger(peer.to.port)) out.to = peer.to.host + ':' + peer.to.port
  const r = peer.referrer
  if (r && typeof r.host === 'string' && Number.isInteger(r.port)) {
    out.referrer = { host: r.host, port: r.port }
    if (Buffer.isBuffer(r.id)) out.referrer.id = r.id
  }
  return out
}

/** A discovered peer in the reference's shape (spec/api-network.md §3.4). */
function fromNativePeer (p) {
  const peer = { port: p.port, host: p.host, local: p.local }
  if (p.to) peer.to = parseHostPort(p.to)
  peer.referrer = p.referrer ? { port: p.referrer.port, host: p.referrer.host, id: p.referrer.id || null } : null
  peer.topic = p.topic || null
  return peer
}


/** Copies of a peer (one per topic object) keep the dial the engine made ahead for it. */
function copyPeer (peer, fields) {
  const copy = { ...peer, ...fields }
  if (peer[kAhead] != null) Object.defineProperty(copy, kAhead, { value: peer[kAhead], writable: true })
  return copy
}

module.exports = { Engine, NativePeerQueue, coded, toNativePeer, copyPeer }
