'use strict'
// A uTP connection as a stream.Duplex. Reads are pulled: `_read` grants the
// engine the next batch, so a slow consumer closes the uTP window. A write
// calls back once the engine's bounded send buffer has taken it.
const { Duplex } = require('stream')

class UtpStream extends Duplex {
  /** `stream`: the engine's `{ transport: 'utp', remoteHost, remotePort }`. */
  constructor (native, id, stream) {
    // Like the net.Socket users get for TCP (and the reference's uTP
    // sockets): the end of the peer's data ends ours too.
    super({ allowHalfOpen: false })
    this._native = native
    this._id = id
    this._writes = new Map()
    this._nextWrite = 1
    this._closed = false
    this.remoteAddress = stream.remoteHost
    this.remotePort = stream.remotePort
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

  /** An engine event for this connection: data, written, end or closed. */
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

module.exports = UtpStream
