'use strict'
// `dht.immutable` and `dht.mutable` of @hyperswarm/dht 4: puts and gets
// run in the native node (which verifies every reply and every proof);
// this file checks arguments with the reference's messages, and turns
// the node's answers into the reference's callbacks and streams.
const assert = require('assert')
const crypto = require('crypto')
const native = require('../../binding')

/** Largest value (mutable or immutable), as @hyperswarm/dht 4 allows. */
const VALUE_MAX_SIZE = 1000
/** Largest salt, as @hyperswarm/dht 4 allows. */
const SALT_MAX_SIZE = 64

function assertValue (value) {
  assert(Buffer.isBuffer(value), 'Value must be a buffer')
  assert(value.length <= VALUE_MAX_SIZE, `Value size must be <= ${VALUE_MAX_SIZE}`)
}

function assertSalt (salt) {
  if (!salt) return
  assert(Buffer.isBuffer(salt), 'salt must be a buffer')
  assert(salt.length <= SALT_MAX_SIZE, `salt size must be no greater than ${SALT_MAX_SIZE} bytes`)
}

/** The error the reference's client gives for a failed store operation. */
function storeError (message) {
  return new Error(message)
}

function record (r) {
  return r && { value: r.value || null, signature: r.signature || null, seq: r.seq == null ? 0 : r.seq, salt: r.salt || null }
}

class ImmutableStore {
  constructor (dht) {
    this._dht = dht
  }

  /** Puts `value` under its BLAKE2b-256 hash: cb(null, key). */
  put (value, cb) {
    assertValue(value)
    assert(typeof cb === 'function', 'Callback is required')
    const stream = this._dht._operation((id, n) => n.command('immutable-put', id, { value }), {
      done (ev, s) {
        if (ev.error) return s._end(storeError(ev.error))
        s._key = ev.key
        s._end()
      }
    })
    stream.resume()
    stream.once('error', (err) => cb(err))
    stream.once('end', () => cb(null, stream._key))
    return stream
  }

  /** The value whose hash is `key`: cb(null, value, { id }), or cb(null, null, null). */
  get (key, cb) {
    assert(Buffer.isBuffer(key), 'Key must be a buffer')
    const stream = this._dht._operation((id, n) => n.command('immutable-get', id, { key }), {
      done (ev, s) {
        if (ev.error) return s._end(storeError(ev.error))
        if (ev.record && ev.record.value) s._data({ id: ev.nodeId || null, value: ev.record.value })
        s._end()
      }
    })
    if (typeof cb === 'function') {
      let found = null
      stream.on('data', (d) => { if (!found) found = d })
      stream.once('error', (err) => cb(err))
      stream.once('end', () => found ? cb(null, found.value, { id: found.id }) : cb(null, null, null))
    }
    return stream
  }
}

class MutableStore {
  constructor (dht) {
    this._dht = dht
  }

  keypair () {
    return native.dhtKeypair()
  }

  /** A salt: BLAKE2b of `str` with `size` output bytes, or random bytes without `str`. */
  salt (str = null, size = 32) {
    if (typeof str === 'number') {
      size = str
      str = null
    }
    assert(Number.isInteger(size) && size >= 16 && size <= 64, 'salt size must be between 16 and 64 bytes (inclusive)')
    return typeof str === 'string' ? native.dhtSalt(str, size) : crypto.randomBytes(size)
  }

  /** The bytes a record's signature covers. */
  signable (value, opts = {}) {
    const { salt, seq = 0 } = opts || {}
    assertValue(value)
    assertSalt(salt)
    assert(typeof seq === 'number', 'seq should be a number')
    return native.dhtSignable(value, seq, salt || null)
  }

  /** The signature of `value` at `opts.seq` under `opts.salt` with `opts.keypair`. */
  sign (value, opts) {
    assert(typeof opts === 'object' && opts !== null, 'Options are required')
    assertValue(value)
    const { keypair, salt, seq = 0 } = opts
    assert(keypair, 'keypair is required')
    assert(Buffer.isBuffer(keypair.secretKey), 'keypair.secretKey is required')
    assertSalt(salt)
    assert(typeof seq === 'number', 'seq should be a number')
    return native.dhtSign(value, keypair.secretKey, seq, salt || null)
  }

  /** A detached signature over `msg` itself. */
  cryptoSign (msg, keypair) {
    assert(Buffer.isBuffer(msg), 'msg must be a buffer')
    assert(keypair, 'keypair is required')
    assert(Buffer.isBuffer(keypair.secretKey), 'keypair.secretKey is required')
    return native.dhtCryptoSign(msg, keypair.secretKey)
  }

  /**
   * Signs and puts `value` under `opts.keypair.publicKey` (and `opts.salt`)
   * at `opts.seq`: cb(null, { key, signature, seq, salt }). A node's proof
   * of a newer record fails it with ERR_INVALID_SEQ or
   * ERR_SEQ_MUST_EXCEED_CURRENT.
   */
  put (value, opts, cb) {
    assert(Buffer.isBuffer(value), 'Value must be a buffer')
    assert(typeof opts === 'object' && opts !== null, 'Options are required')
    assert(typeof cb === 'function', 'Callback is required')
    assert(value.length <= VALUE_MAX_SIZE, `Value size must be <= ${VALUE_MAX_SIZE}`)
    const { seq = 0, salt, keypair } = opts
    let signature = opts.signature
    if (signature) {
      assert(keypair, 'keypair is required')
      assert(Buffer.isBuffer(keypair.publicKey), 'keypair.publicKey is required')
      assert(!keypair.secretKey, 'only opts.signature OR opts.keypair.secretKey should be supplied')
      assert(Buffer.isBuffer(signature), 'signature must be a buffer')
    } else {
      signature = this.sign(value, opts)
      assert(Buffer.isBuffer(keypair.publicKey), 'keypair.publicKey is required')
    }
    assert(typeof seq === 'number', 'seq should be a number')
    assertSalt(salt)
    const key = keypair.publicKey
    // The node signs again itself (or checks the given signature): nothing
    // unsigned leaves it.
    const put = opts.signature
      ? { publicKey: key, signature, seq, salt: salt || undefined }
      : { secretKey: keypair.secretKey, seq, salt: salt || undefined }
    const stream = this._dht._operation((id, n) => n.command('mutable-put', id, { value, put }), {
      warning: true,
      done (ev, s) {
        if (ev.error) return s._end(storeError(ev.error))
        s._end()
      }
    })
    stream.resume()
    stream.once('error', (err) => cb(err))
    stream.once('end', () => cb(null, { key, signature, seq, salt }))
    return stream
  }

  /**
   * The record of `key` (and `opts.salt`) with a seq of at least
   * `opts.seq`: cb(null, { id, value, signature, seq, salt }), or
   * cb(null, { value: null }) when no node has one.
   */
  get (key, opts = {}, cb = opts) {
    const { salt, seq = 0 } = opts
    assert(Buffer.isBuffer(key), 'Key must be a buffer')
    assert(typeof seq === 'number', 'seq should be a number')
    assertSalt(salt)
    const stream = this._dht._operation((id, n) => n.command('mutable-get', id, { key, seq, salt: salt || undefined }), {
      warning: true,
      done (ev, s) {
        if (ev.error) return s._end(storeError(ev.error))
        const r = record(ev.record)
        if (r && r.value) s._data({ id: ev.nodeId || null, value: r.value, signature: r.signature, seq: r.seq, salt })
        s._end()
      }
    })
    if (typeof cb === 'function') {
      let found = null
      stream.on('data', (d) => { if (!found) found = d })
      stream.once('error', (err) => cb(err))
      stream.once('end', () => cb(null, found || { value: null }))
    }
    return stream
  }
}

module.exports = { ImmutableStore, MutableStore, record }
