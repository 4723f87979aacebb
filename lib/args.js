'use strict'
// Argument checks shared by every entry point. Each throws a TypeError that
// names the argument, before anything reaches the engine.

const TOPIC_LENGTH = 32

/** A 32-byte Buffer (a Uint8Array is accepted and viewed as one). */
function topic (value, name = 'topic') {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) value = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (!Buffer.isBuffer(value) || value.length !== TOPIC_LENGTH) {
    throw new TypeError(`${name} must be a ${TOPIC_LENGTH}-byte Buffer`)
  }
  return value
}

function fn (value, name) {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function`)
  return value
}

function optionalFn (value, name) {
  if (value != null) fn(value, name)
  return value || null
}

function object (value, name) {
  if (value == null) return {}
  if (typeof value !== 'object') throw new TypeError(`${name} must be an object`)
  return value
}

function port (value, name) {
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new TypeError(`${name} must be an integer from 0 to 65535`)
  return value
}

/** `{ host, port }` of a peer to dial. */
function peer (value, name = 'peer') {
  if (!value || typeof value !== 'object') throw new TypeError(`${name} must be an object with host and port`)
  if (typeof value.host !== 'string' || !value.host) throw new TypeError(`${name}.host must be a non-empty string`)
  if (!Number.isInteger(value.port) || value.port < 1 || value.port > 65535) throw new TypeError(`${name}.port must be an integer from 1 to 65535`)
  return value
}

function hostPort (entry) {
  if (typeof entry === 'string' && /^[^\s]+:\d{1,5}$/.test(entry)) return entry
  if (entry && typeof entry === 'object' && typeof entry.host === 'string' && Number.isInteger(entry.port)) {
    return `${entry.host}:${entry.port}`
  }
  throw new TypeError(`options.bootstrap entry ${JSON.stringify(entry)} is not "host:port" or { host, port }`)
}

/**
 * The options every entry point shares, checked and shaped for the engine.
 * `opts` has been through `object()` already.
 */
function engineOptions (opts) {
  const out = {}
  if (opts.bootstrap != null) {
    if (!Array.isArray(opts.bootstrap)) throw new TypeError('options.bootstrap must be an array of "host:port" strings or { host, port } objects')
    out.bootstrap = opts.bootstrap.map(hostPort)
  }
  if (opts.ephemeral != null) {
    if (typeof opts.ephemeral !== 'boolean') throw new TypeError('options.ephemeral must be a boolean')
    out.ephemeral = opts.ephemeral
  }
  if (opts.id != null) {
    if (!Buffer.isBuffer(opts.id) || opts.id.length !== 32) throw new TypeError('options.id must be a 32-byte Buffer')
    out.id = opts.id
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
    if (opts[name] != null) out[name] = port(opts[name], `options.${name}`)
  }
  if (opts.maxIncomingPerIp != null) {
    // Not in the reference: incoming connections per IP and transport at
    // most (0: no cap); more are closed at once. Default 128.
    const n = opts.maxIncomingPerIp
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new TypeError('options.maxIncomingPerIp must be a non-negative integer')
    out.maxIncomingPerIp = n
  }
  if (opts.dhtLimitScale != null) {
    // Not in the reference: multiplies the DHT's per-source limits, for a
    // testnet with many nodes behind one address. Default 1.
    const n = opts.dhtLimitScale
    if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) throw new TypeError('options.dhtLimitScale must be a positive integer')
    out.dhtLimitScale = n
  }
  if (opts.relay != null && opts.relay !== false) {
    // Not in the reference: offer a relay of last resort to peers of ours
    // whose NATs are both random (for a public peer; it sees the bytes it
    // carries). true, or { port, maxPairs, rate }.
    const r = opts.relay === true ? {} : opts.relay
    if (typeof r !== 'object' || Array.isArray(r)) throw new TypeError('options.relay must be a boolean or an object { port, maxPairs, rate }')
    out.relay = {}
    if (r.port != null) out.relay.port = port(r.port, 'options.relay.port')
    for (const name of ['maxPairs', 'rate']) {
      if (r[name] == null) continue
      if (!Number.isInteger(r[name]) || r[name] < 1 || r[name] > 0xffffffff) throw new TypeError(`options.relay.${name} must be a positive integer`)
      out.relay[name] = r[name]
    }
  }
  if (opts.domain != null) {
    if (typeof opts.domain !== 'string' || !opts.domain) throw new TypeError('options.domain must be a non-empty string')
    out.domain = opts.domain
  }
  if (opts.socket != null && typeof opts.socket !== 'function') {
    process.emitWarning('options.socket is ignored: hyperswarm-native owns its UDP socket', 'HyperswarmNativeWarning')
  }
  return out
}

module.exports = { topic, fn, optionalFn, object, port, peer, engineOptions, TOPIC_LENGTH }
