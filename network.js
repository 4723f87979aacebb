'use strict'
// require('hyperswarm-native/network'): the API of @hyperswarm/network 2.1.0.
// Not an EventEmitter: a resource that binds and closes once, with the
// option callbacks bind(), close() and socket(socket, isTCP).
const os = require('os')
const { Engine, coded } = require('./lib/engine')
const { Discovery } = require('./lib/discovery')
const { Listener } = require('./lib/listener')
const args = require('./lib/args')

/** How long connect() may take before it gives up (network 2.1.0's fixed 10 s). */
const { CONNECT_TIMEOUT } = require('./lib/constants')

module.exports = opts => new NetworkResource(opts)

class NetworkResource {
  constructor (opts) {
    opts = args.object(opts, 'options')
    this._engineOptions = { ...args.engineOptions(opts), autoDial: false }
    if (opts.announcePort != null) args.port(opts.announcePort, 'options.announcePort')
    this._onbind = args.optionalFn(opts.bind, 'options.bind') || noop
    this._onclose = args.optionalFn(opts.close, 'options.close') || noop
    this._onsocket = (typeof opts.socket === 'function' && opts.socket) || noop
    this.id = opts.id || null
    this.port = opts.port || 0
    this.announcePort = opts.announcePort || 0
    this.preferredPort = opts.preferredPort || 0
    this.options = opts
    // The engine and the discovery live in one shared box: code that calls
    // our methods on an object that inherits from this one (as promisifying
    // wrappers do, `{ __proto__: nw, bind }`) still reaches the one engine,
    // and the engine's events the one discovery.
    this._shared = { engine: null, discovery: null }
    this.sockets = new Set()
    this.opening = false
    this.opened = false
    this.closing = false
    this.closed = false
    // The two listening servers of network 2.x (see lib/listener.js).
    this.tcp = new Listener('tcp', () => this._ensureEngine(), () => this._syncTcp())
    this.utp = new Listener('utp', () => this._ensureEngine())
    this._accepting = true
    this._speculate = false
    this._tcpWanted = true
    this._dialling = 0
    this._opens = []
    this._closes = []
    // The engine (its thread and runtime) starts now, as the reference
    // makes its two servers in its constructor: binding, the first join
    // and the first dial then start without that cost. Unbound, it keeps
    // no process alive (_updateRef).
    this._ensureEngine()
  }

  get discovery () { return this._shared.discovery }
  set discovery (d) { this._shared.discovery = d }
  get _engine () { return this._shared.engine }
  set _engine (e) { this._shared.engine = e }

  /** The TCP listener's address, as net.Server#address() gives it; null before bind. */
  address () {
    return this.tcp.address()
  }

  bind (preferredPort, cb) {
    if (typeof preferredPort === 'function') return this.open(preferredPort)
    if (preferredPort != null) args.port(preferredPort, 'preferredPort')
    args.optionalFn(cb, 'bind callback')
    this.preferredPort = preferredPort || 0
    this.open(cb)
  }

  open (cb) {
    args.optionalFn(cb, 'open callback')
    cb = cb || noop
    if (this.closed || this.closing) return process.nextTick(cb, new Error('Resource is closed'))
    if (this.opened) return process.nextTick(cb, null)
    this._opens.push(cb)
    if (this.opening) return
    this.opening = true
    // At once, as the reference's resource opens: the TCP listener binds
    // now (its events come on the next tick), so the DHT bootstrap starts
    // while the caller's code goes on.
    this._open()
  }

  // As the reference: TCP then uTP listen on each port of the list in turn
  // (the fixed port; else the preferred one, the two after it, then four
  // random ones); a uTP failure closes TCP before the next try.
  _open () {
    const pp = this.preferredPort
    const ports = this.port ? [this.port] : [pp, pp ? pp + 1 : 0, pp ? pp + 2 : 0, 0, 0, 0, 0]
    let tries = 0
    const retry = (err) => {
      if (!err) return this._opened(null)
      if (++tries >= ports.length || this.closing) return this._opened(err)
      listenBoth(this.tcp, this.utp, ports[tries], retry)
    }
    listenBoth(this.tcp, this.utp, ports[0], retry)
  }

  _opened (err) {
    if (!err) {
      try {
        const engine = this._ensureEngine()
        this.discovery = new Discovery(engine, { tcpPort: engine.port(), bootstrap: this.options.bootstrap, ephemeral: this.options.ephemeral })
        this.opened = true
      } catch (e) {
        err = e
      }
    }
    this.opening = false
    this._updateRef()
    if (!err) this._onbind()
    const cbs = this._opens
    this._opens = []
    for (const cb of cbs) cb(err)
    if (this._closes.length && !this.closing) this._close()
  }

  _ensureEngine () {
    if (this._engine) return this._engine
    const options = { ...this._engineOptions }
    if (this.port) options.port = this.port
    this._engine = new Engine(options, {
      connection: (socket, ev) => this._onincoming(socket, ev.stream.transport === 'tcp'),
      peer: peer => this.discovery && this.discovery._onpeer(peer),
      updating: key => this.discovery && this.discovery._onupdating(key),
      flushed: key => this.discovery && this.discovery._onflushed(key),
      update: (key, err) => this.discovery && this.discovery._onupdate(key, err),
      left: key => this.discovery && this.discovery._onleft(key),
      dht: ev => this.discovery && this.discovery.dht._onevent(ev),
      error: err => this._onfatal(err),
      close: () => this._onenginegone()
    }, this.sockets)
    this._engine.setAccepting(this._accepting)
    this._engine.setSpeculation(this._speculate)
    this._updateRef()
    return this._engine
  }

  // Like an unlistening net.Server, an unbound resource does not keep the
  // process alive: only binding (or a dial in flight) does. TCP sockets keep
  // it alive by themselves; uTP needs a bound resource anyway.
  _updateRef () {
    if (!this._engine || this._engine.closed) return
    this._engine.setRef((this.opened && !this.closed) || this._dialling > 0 || this.closing)
  }

  _onincoming (socket, isTCP) {
    this._onsocket(socket, isTCP)
  }

  // The engine died (a bug: it panicked). As a failing net.Server would,
  // the listeners report it ('error' where someone listens, else a process
  // warning); the engine's 'close' then ends the resource.
  _onfatal (err) {
    this._fatal = err
    const listener = [this.tcp, this.utp].find(l => l.listenerCount('error') > 0)
    if (listener) listener.emit('error', err)
    else process.emitWarning(err.message, 'HyperswarmNativeWarning')
  }

  _onenginegone () {
    if (!this._fatal || this.closed) return
    this.closed = true
    this.opened = false
    this.discovery = null
    for (const l of [this.tcp, this.utp]) if (l.listening) l.close()
    const cbs = this._closes.concat(this._opens)
    this._closes = []
    this._opens = []
    for (const cb of cbs) cb(this._fatal)
  }

  // Not in the reference (which sets maxConnections on its two servers):
  // whether new incoming connections are taken at all. Public so that the
  // ./hyperswarm entry can apply its server limits through the API.
  setAccepting (accepting) {
    if (typeof accepting !== 'boolean') throw new TypeError('setAccepting takes a boolean')
    this._accepting = accepting
    if (this._engine && !this._engine.destroyed) this._engine.setAccepting(accepting)
  }

  // Not in the reference: whether the caller would connect() to the next
  // new peer of a looked-up topic at once. The engine then starts that dial
  // as it hears of the peer, and connect() with it takes that dial (the
  // ./hyperswarm entry turns it on while its queue is empty and it has
  // room: its connections then start as soon as the seed entry's do).
  setSpeculation (on) {
    if (typeof on !== 'boolean') throw new TypeError('setSpeculation takes a boolean')
    this._speculate = on
    if (this._engine && !this._engine.destroyed) this._engine.setSpeculation(on)
  }

  // Not in the reference: whether the TCP listener should take dialers
  // (hyperswarm.js turns it off while its TCP servers are full, so that a
  // dialer is refused and goes on to uTP).
  setTcpListening (on) {
    if (typeof on !== 'boolean') throw new TypeError('setTcpListening takes a boolean')
    this._tcpWanted = on
    const err = this._syncTcp()
    // Listening again fails if another socket took the port while TCP was
    // stopped: TCP stays off, uTP goes on, and the process is told.
    if (err) process.emitWarning(`TCP listener: ${err.message}`, { type: 'HyperswarmNativeWarning', code: err.code })
  }

  // The kernel listens on TCP while nw.tcp is listening, the resource is
  // not closing and the swarm wants it; the change is synchronous (see
  // src/io/tcp_gate.rs), so a dialer is refused from the moment close()
  // or nw.tcp.close() returns, as with the reference's net.Server.
  // Returns the kernel's refusal, if any, rather than throw it into
  // whatever event handler asked.
  _syncTcp () {
    const engine = this._engine
    if (!engine || engine.destroyed || engine.closed) return null
    try {
      engine.setTcpListening(this._tcpWanted && this.tcp.listening && !this.closing && !this.closed)
      return null
    } catch (err) {
      return err
    }
  }

  /**
   * Dials `peer` ({ host, port, referrer? }): TCP at once, raced with a
   * hole punch through `peer.referrer` then uTP. cb(err, socket, isTCP).
   */
  connect (peer, cb) {
    args.peer(peer)
    args.fn(cb, 'connect callback')
    // The reference still dials, then drops the socket: the caller hears
    // that every path failed.
    if (this.closed || this.closing) return process.nextTick(cb, connectError(coded('Resource is closed', 'EDESTROYED')))
    const dial = (peer) => {
      const engine = this._ensureEngine()
      this._dialling++
      this._updateRef()
      // `discovery.holepunch(peer, cb)` is the reference's seam for the
      // punch: one set on our discovery is honoured (ours has none of its
      // own; the engine punches inside).
      const d = this.discovery
      const punch = d && typeof d.holepunch === 'function' ? (p, cb) => d.holepunch(p, cb) : null
      const done = (err, socket, ev) => {
        this._dialling--
        this._updateRef()
        if (err) return cb(connectError(err))
        if (this.closed || this.closing) {
          socket.destroy()
          return cb(connectError(coded('Resource is closed', 'EDESTROYED')))
        }
        cb(null, socket, ev.stream.transport === 'tcp')
      }
      // On the next tick, as net.connect sends its SYN: a peer closed in
      // this same tick refuses it, as the reference's would.
      process.nextTick(() => {
        try {
          engine.connect(peer, done, punch)
        } catch (err) {
          done(err)
        }
      })
    }
    // Punching needs the bound UDP socket; a plain TCP dial does not. As in
    // the reference, a bind that fails only takes the punch out of the race.
    if (peer.referrer && !this.opened) {
      this.open(err => dial(err ? { ...peer, referrer: null } : peer))
    } else {
      dial(peer)
    }
  }

  announce (key, opts) {
    if (!this.discovery) throw new Error('Bind before announcing')
    opts = args.object(opts, 'announce options')
    const port = opts.port == null ? this.announcePort : args.port(opts.port, 'options.port')
    const localPort = port || this._engine.port()
    return this.discovery.announce(key, { port, localPort, localAddress: this._localAddress(), lookup: !!opts.lookup })
  }

  lookup (key) {
    if (!this.discovery) throw new Error('Bind before doing a lookup')
    return this.discovery.lookup(key, { localAddress: this._localAddress() })
  }

  lookupOne (key, cb) {
    if (!this.discovery) throw new Error('Bind before doing a lookup')
    this.discovery.lookupOne(key, { localAddress: this._localAddress() }, cb)
  }

  // With announceLocalAddress, DHT requests carry our LAN address (the
  // first non-internal IPv4, as the reference picks it) and TCP port, so a
  // peer behind the same NAT is handed back as a `local` peer.
  _localAddress () {
    if (!this.options.announceLocalAddress) return null
    const port = this._engine && this._engine.port()
    if (!port) return null
    for (const addrs of Object.values(os.networkInterfaces())) {
      for (const a of addrs || []) {
        if (a.family === 'IPv4' && !a.internal) return { host: a.address, port }
      }
    }
    return null
  }

  /** Unannounces every topic, closes every socket; opts.close() then cb(null). */
  close (cb) {
    args.optionalFn(cb, 'close callback')
    cb = cb || noop
    if (this.closed) return process.nextTick(cb, null)
    this._closes.push(cb)
    if (this.closing || this.opening) return
    this._close()
  }

  _close () {
    this.closing = true
    this._syncTcp()
    this._updateRef()
    const finish = (wasOpen) => {
      this.closing = false
      this.closed = true
      this.discovery = null
      if (wasOpen) this._onclose()
      const cbs = this._closes
      this._closes = []
      for (const cb of cbs) cb(null)
    }
    const wasOpen = this.opened
    const stopEngine = () => {
      if (!this._engine) return finish(wasOpen)
      this._engine.setAccepting(false)
      this._engine.destroy(() => {
        if (this.discovery) this.discovery._closed()
        // Then both servers, whatever they are by now, as the reference does.
        let missing = 2
        const onclose = () => { if (--missing === 0) finish(wasOpen) }
        for (const server of [this.tcp, this.utp]) {
          server.once('close', onclose)
          server.close()
        }
      })
    }
    if (this.discovery) this.discovery.destroy(stopEngine)
    else stopEngine()
  }
}

// The reference's words for each of the engine's codes: its 10 s timeout
// is 'Timeout', a hole punch that failed last passes on dht-rpc's 'Request
// timed out', and any other dial where every path failed is 'All sockets
// failed'. The code stays on `code`, the engine's reason as `cause`.
const CONNECT_MESSAGES = { ETIMEDOUT: 'Timeout', EHOLEPUNCH: 'Request timed out' }
function connectError (err) {
  const out = new Error(CONNECT_MESSAGES[err.code] || 'All sockets failed')
  out.code = err.code || 'ECONNFAILED'
  out.cause = err
  return out
}

function listenBoth (tcp, utp, port, cb) {
  listen(tcp, port, (err) => {
    if (err) return cb(err)
    listen(utp, tcp.address().port, (err) => {
      if (!err) return cb(null)
      tcp.once('close', () => cb(err))
      tcp.close()
    })
  })
}

function listen (server, port, cb) {
  const done = (err) => {
    server.removeListener('listening', done)
    server.removeListener('error', done)
    cb(err)
  }
  server.on('listening', done)
  server.on('error', done)
  server.listen(port)
}

function noop () {}

module.exports.NetworkResource = NetworkResource
module.exports.CONNECT_TIMEOUT = CONNECT_TIMEOUT
