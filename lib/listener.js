'use strict'
// `nw.tcp` and `nw.utp`: what network 2.x hands out as its two listening
// servers (a net.Server and a utp-native server), over the one engine that
// binds both. They have the servers' observable surface: listen(port) ends in
// 'listening' or 'error', address(), close() ends in 'close'. The resource
// binds through them, so whatever an application does to them (a listen that
// fails, a close) reaches the same paths as in the reference.
const { EventEmitter } = require('events')

class Listener extends EventEmitter {
  /**
   * `transport`: 'tcp' or 'utp'. `engine()`: the resource's engine (made
   * on demand). The TCP listener binds the engine (TCP and UDP on one port);
   * the uTP one checks that the UDP half is there. `onchange()`: called
   * when the listener starts or stops listening; returns an Error if the
   * kernel refused.
   */
  constructor (transport, engine, onchange) {
    super()
    this.transport = transport
    this.listening = false
    // As the servers' own field; the swarm's limits live in hyperswarm.js.
    this.maxConnections = undefined
    this._engine = engine
    this._onchange = onchange || (() => {})
    this._port = null
  }

  /**
   * Binds now and reports on the next tick, as net.Server#listen does for a
   * port: 'listening' or 'error'. Binding at once starts the engine's DHT
   * bootstrap while the caller's code goes on.
   */
  listen (port, cb) {
    if (typeof port === 'function') return this.listen(0, port)
    if (cb) this.once('listening', cb)
    let p
    try {
      const engine = this._engine()
      p = this.transport === 'tcp' ? engine.bind(port || undefined) : engine.port()
      if (p == null) throw new Error('uTP cannot listen: the UDP socket is not bound')
      if (port && this.transport === 'utp' && p !== port) throw Object.assign(new Error(`listen EADDRINUSE: address already in use 0.0.0.0:${port}`), { code: 'EADDRINUSE' })
    } catch (err) {
      process.nextTick(() => this.emit('error', err))
      return this
    }
    this._port = p
    this.listening = true
    const err = this._onchange()
    if (err) {
      this.listening = false
      process.nextTick(() => this.emit('error', err))
      return this
    }
    process.nextTick(() => this.emit('listening'))
    return this
  }

  /** As net.Server#address() (uTP: utp-native's, IPv4); null when not listening. */
  address () {
    if (!this.listening) return null
    return this.transport === 'tcp'
      ? { address: '::', family: 'IPv6', port: this._port }
      : { address: '0.0.0.0', family: 'IPv4', port: this._port }
  }

  /**
   * Stops listening at once, as a server's close() does: from here on TCP
   * dialers are refused (the uTP half goes on answering until the resource
   * closes the UDP socket they share). 'close' follows. The engine itself
   * closes with the resource.
   */
  close (cb) {
    if (cb) this.once('close', cb)
    const was = this.listening
    this.listening = false
    if (was) this._onchange()
    process.nextTick(() => this.emit('close'))
    return this
  }

  ref () { return this }
  unref () { return this }
}

module.exports = { Listener }
