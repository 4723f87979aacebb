'use strict'
// The stream every DHT operation returns, as dht-rpc's QueryStream: object
// mode, 'data' per useful reply, 'warning' (err, proof) per failed request,
// then 'end', or 'error' when the operation failed. With a callback, the
// data is collected and handed over as an array (or to a custom `finish`).
const { Readable } = require('stream')

class QueryStream extends Readable {
  constructor () {
    super({ objectMode: true })
    this.responses = 0
    this.errors = 0
    this._cancel = null
    this._ended = false
  }

  _read () {}

  _destroy (err, cb) {
    // A stream destroyed before its operation ended stops the operation.
    if (!this._ended && this._cancel) this._cancel()
    cb(err)
  }

  _data (item) {
    this.responses++
    if (item) this.push(item)
  }

  _warning (err, proof) {
    this.errors++
    this.emit('warning', err, proof)
  }

  _end (err) {
    if (this._ended) return
    this._ended = true
    if (err) this.destroy(err)
    else this.push(null)
  }

  /** Calls `cb(err)` or `cb(null, [data…])` once the stream is done. */
  collect (cb) {
    const all = []
    let called = false
    const once = (...a) => { if (!called) { called = true; cb(...a) } }
    this.on('data', (d) => all.push(d))
    this.on('error', (err) => once(err))
    this.on('end', () => once(null, all))
    this.on('close', () => { if (!this.readableEnded) once(new Error('Premature close')) })
    return this
  }
}

module.exports = { QueryStream }
