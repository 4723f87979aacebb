#!/usr/bin/env node
// Records golden DHT datagrams from the real reference packages
// (dht-rpc 4.9.6 + @hyperswarm/dht 4.0.1) for tests/golden_dht.rs.
//
// Run it ONLY inside a fresh, loopback-only network namespace:
//
//   unshare -n sh -c 'ip link set lo up && node scripts/capture-dht.js'
//
// It refuses to run when any interface other than `lo` exists, refuses to
// send to anything but 127.0.0.1, never uses the default bootstrap hosts
// (every node gets an explicit local `bootstrap` list) and exits by itself
// (a watchdog kills it after 90 s whatever happens).
//
// Output: tests/fixtures/dht/<scenario>.json, one file per scenario, each
// datagram as hex plus the fields that the reference's own protobuf modules
// decode from it, and tests/fixtures/dht/crafted.json: hand-made datagrams
// with the reference decoder's verdict on them.
'use strict'

const fs = require('fs')
const path = require('path')

// --- 0. Isolation checks, before anything can open a socket -----------------

require('./capture-guard')('capture-dht', 90000)

// --- 1. Deterministic randomness, so that re-running gives stable fixtures --
// Only affects rid start values, token secrets and generated ids; the wire
// format does not depend on them.

function mulberry32 (seed) {
  return function () {
    seed = (seed + 0x6D2B79F5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const prng = mulberry32(0x5eed2019)
Math.random = prng

const sodium = require('sodium-native')
sodium.randombytes_buf = function (buf) {
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(prng() * 256)
}

// --- 2. Capture every datagram sent by any socket in this process -----------

const dgram = require('dgram')
const records = []
let capturing = false
const origSend = dgram.Socket.prototype.send

dgram.Socket.prototype.send = function (buf, ...args) {
  let offset = 0
  let length = buf.length
  let port
  let host
  if (args.length >= 3 && typeof args[0] === 'number' && typeof args[1] === 'number' && typeof args[2] === 'number') {
    offset = args[0]
    length = args[1]
    port = args[2]
    host = args[3]
  } else {
    port = args[0]
    host = args[1]
  }
  if (host !== '127.0.0.1') {
    throw new Error('capture-dht: refusing to send to ' + host + ':' + port)
  }
  let srcPort = null
  try { srcPort = this.address().port } catch (_) {}
  if (capturing) {
    records.push({
      srcPort,
      dstPort: port,
      bytes: Buffer.from(buf.subarray(offset, offset + length))
    })
  }
  return origSend.call(this, buf, ...args)
}

// --- 3. Reference modules ------------------------------------------------------

const rpc = require('dht-rpc')
const hyperdht = require('@hyperswarm/dht')
const { Message, Holepunch } = require('dht-rpc/lib/messages')
const { PeersInput, PeersOutput, Mutable } = require('@hyperswarm/dht/messages')
const ipv4peers = require('ipv4-peers')
const nodeRecords = ipv4peers.idLength(32)
const { ipv4: dhtIpv4, local: dhtLocal } = require('@hyperswarm/dht/peers')

const OUT_DIR = path.join(__dirname, '..', 'tests', 'fixtures', 'dht')
const HOST = '127.0.0.1'
const TOPIC = Buffer.from('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'hex') // sha256("hello")
const OTHER_TOPIC = Buffer.alloc(32, 0x77)

const names = new Map() // port -> { name, id (hex|null), ephemeral }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Resolves with {err, res} or {timeout: true}; never rejects, never hangs.
function call (label, fn, ms = 9000) {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      console.error('capture-dht: ' + label + ' timed out')
      resolve({ timeout: true })
    }, ms)
    fn((err, res) => {
      clearTimeout(t)
      resolve({ err, res })
    })
  })
}

async function makeNode (name, port, opts) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, HOST, () => {
      socket.removeListener('error', reject)
      resolve()
    })
  })
  const o = Object.assign({ socket }, opts)
  const node = opts.plainRpc ? rpc(o) : hyperdht(o)
  node.on('warning', () => {})
  node.on('error', (err) => console.error('capture-dht: ' + name + ' error', err.message))
  names.set(port, { name, id: opts.ephemeral ? null : node.id.toString('hex'), ephemeral: !!opts.ephemeral, port })
  node.label = name
  node.port = port
  return node
}

function ready (node) {
  return call(node.label + ' ready', (cb) => node.ready(() => cb(null)), 10000)
}

// --- 4. Turning captured bytes into fixture entries ---------------------------

const { hex, jsonMessage } = require('./capture-json')

function tryOr (fn) {
  try { return fn() } catch (err) { return { decode_error: err.message } }
}

function peerJson (p) { return p ? { host: p.host, port: p.port } : null }

function decodeValue (command, type, value) {
  if (value == null) return null
  const isReq = type !== 3
  switch (command) {
    case '_ping':
      // request: the id the asker expects; response: the asker's address
      if (isReq) return { kind: 'raw' }
      return { kind: 'peer', fields: tryOr(() => peerJson(ipv4peers.decode(value)[0])) }
    case '_holepunch':
      return {
        kind: 'holepunch',
        fields: tryOr(() => {
          const h = Holepunch.decode(value)
          return {
            from: hex(h.from),
            to: hex(h.to),
            from_peer: h.from ? peerJson(ipv4peers.decode(h.from)[0]) : null,
            to_peer: h.to ? peerJson(ipv4peers.decode(h.to)[0]) : null
          }
        })
      }
    case 'peers':
      if (isReq) {
        return {
          kind: 'peers_input',
          fields: tryOr(() => {
            const v = PeersInput.decode(value)
            return { port: v.port, localAddress: hex(v.localAddress), unannounce: v.unannounce }
          })
        }
      }
      return {
        kind: 'peers_output',
        fields: tryOr(() => {
          const v = PeersOutput.decode(value)
          return {
            peers: hex(v.peers),
            localPeers: hex(v.localPeers),
            peers_decoded: v.peers ? (dhtIpv4.decodeAll(v.peers) || null) : null,
            // LAN records are only 4 bytes; decode with a dummy 0.0 prefix
            // just to show the c.d:port part the reference extracts.
            localPeers_decoded: v.localPeers ? (dhtLocal.decodeAll([0, 0], v.localPeers) || null) : null
          }
        })
      }
    case 'mutable-store':
      return {
        kind: 'mutable',
        fields: tryOr(() => {
          const v = Mutable.decode(value)
          return { value: hex(v.value), signature: hex(v.signature), seq: v.seq, salt: hex(v.salt) }
        })
      }
    default:
      return { kind: 'raw' }
  }
}

function describe (port) {
  const n = names.get(port)
  return (n ? n.name : '?') + ' ' + HOST + ':' + port
}

function buildEntries (recs) {
  const ridCommand = new Map() // "requesterPort:rid" -> command
  const out = []
  recs.forEach((r, index) => {
    const entry = {
      index,
      src: describe(r.srcPort),
      dst: describe(r.dstPort),
      src_port: r.srcPort,
      dst_port: r.dstPort,
      len: r.bytes.length,
      hex: hex(r.bytes)
    }
    let m
    try {
      m = Message.decode(r.bytes)
    } catch (err) {
      entry.reference_decode_error = err.message
      out.push(entry)
      return
    }
    entry.decoded = jsonMessage(m)
    let context = m.command
    if (m.type === 3) {
      context = ridCommand.get(r.dstPort + ':' + m.rid) || ''
    } else {
      ridCommand.set(r.srcPort + ':' + m.rid, m.command)
    }
    entry.context_command = context
    entry.to_decoded = m.to ? tryOr(() => peerJson(ipv4peers.decode(m.to)[0])) : null
    entry.closer_nodes_decoded = m.closerNodes
      ? tryOr(() => nodeRecords.decode(m.closerNodes).map((n) => ({ id: hex(n.id), host: n.host, port: n.port })))
      : null
    entry.value_decoded = decodeValue(context, m.type, m.value)

    // A relayed punch: remember which datagram it was made from, so the
    // test can rebuild it with the codec's relay helper.
    if (m.command === '_holepunch' && m.type !== 3 && entry.value_decoded &&
        entry.value_decoded.fields && entry.value_decoded.fields.from) {
      for (let j = out.length - 1; j >= 0; j--) {
        const o = out[j]
        if (!o.decoded || o.decoded.command !== '_holepunch' || o.decoded.rid !== m.rid) continue
        if (o.dst_port !== r.srcPort) continue
        const f = o.value_decoded && o.value_decoded.fields
        if (!f || !f.to) continue
        const relay = names.get(r.srcPort)
        entry.relay_of = {
          index: o.index,
          relay_id: relay ? relay.id : null,
          from: peerJson({ host: HOST, port: o.src_port }),
          to: f.to_peer
        }
        break
      }
    }
    out.push(entry)
  })
  return out
}

const scenarios = []

async function scenario (name, description, fn) {
  records.length = 0
  capturing = true
  const notes = []
  try {
    await fn(notes)
  } catch (err) {
    notes.push('scenario threw: ' + err.message)
    console.error('capture-dht: scenario ' + name + ' threw', err)
  }
  await sleep(250) // let the last replies land
  capturing = false
  const datagrams = buildEntries(records.slice())
  scenarios.push({ name, description, notes, datagrams })
  console.error('capture-dht: ' + name + ': ' + datagrams.length + ' datagrams')
}

// --- 5. Hand-made datagrams, judged by the reference decoder ----------------

function crafted () {
  const id = Buffer.alloc(32, 0x5a)
  const target = Buffer.alloc(32, 0x11)
  const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/ /g, ''), 'hex') : p)))
  const fn = Buffer.from('_find_node')
  const cases = [
    ['minimal', 'only the two required fields', b('08 01 10 00')],
    ['versionless_with_id', 'an id without version: io keeps the message but forgets the id',
      b('08 01 10 05 1a 20', id, '22 20', target, '3a 0a', fn)],
    ['version_zero_with_id', 'explicit version 0: same as absent',
      b('58 00 08 01 10 05 1a 20', id)],
    ['numeric_field_order', 'fields in numeric order rather than the reference order',
      b('08 03 10 07 1a 20', id, '32 02 ab cd 52 06 7f 00 00 01 27 11 58 01')],
    ['unknown_fields', 'unknown varint / len / fixed64 / fixed32 fields are skipped',
      b('58 01 60 07 08 01 6a 03 01 02 03 10 2a 71 01 02 03 04 05 06 07 08 7d 01 02 03 04 3a 05', Buffer.from('_ping'))],
    ['field_zero', 'a tag with field number 0 is skipped like any unknown field',
      b('00 05 08 01 10 01')],
    ['duplicate_rid', 'a repeated scalar: the last one wins',
      b('08 01 10 01 10 02')],
    ['big_rid', 'rid beyond 16 bits still decodes',
      b('58 01 08 03 10 f0 a2 04')],
    ['empty_strings_and_bytes', 'zero-length fields are present, not absent',
      b('58 01 08 03 10 09 2a 00 3a 00 42 00 4a 00')],
    ['non_utf8_command', 'invalid UTF-8 in a string becomes U+FFFD',
      b('58 01 08 01 10 01 3a 03 ff 5f 70')],
    ['unknown_type', 'type 7 decodes but no handler takes it',
      b('58 01 08 07 10 01')],
    ['missing_type', 'required field 1 missing', b('58 01 10 01')],
    ['missing_rid', 'required field 2 missing', b('58 01 08 01')],
    ['empty', 'zero-length datagram', b('')],
    ['id_31', 'a 31-byte id drops the datagram', b('58 01 08 01 10 01 1a 1f', id.subarray(0, 31))],
    ['id_33', 'a 33-byte id drops the datagram', b('58 01 08 01 10 01 1a 21', id, '5a')],
    ['id_empty', 'a zero-length id drops the datagram', b('58 01 08 01 10 01 1a 00')],
    ['group_field', 'an unknown field with wire type 3 (group) is an error', b('08 01 10 01 63 64')],
    ['wire_type_7', 'wire type 7 does not exist', b('08 01 10 01 67')],
    ['truncated_varint', 'input ends inside a varint', b('58 81')],
    ['tag_truncated', 'input ends inside a tag varint', b('08 01 10 01 d2')],
    // Cases where this crate is deliberately stricter than the reference:
    ['truncated_bytes', 'a length prefix longer than the rest of the datagram', b('58 01 08 01 10 01 4a 10 01 02'),
      'the reference silently shortens the field; we reject truncated input'],
    ['truncated_fixed64', 'unknown fixed64 field cut short', b('08 01 10 01 71 01 02'),
      'the reference skips past the end and accepts; we reject truncated input'],
    ['wrong_wire_type_rid', 'rid sent as a length-delimited field', b('08 01 12 01 05'),
      'the reference ignores wire types of known fields; we reject them'],
    ['overlong_varint', 'an 11-byte varint', b('08 01 10 ff ff ff ff ff ff ff ff ff ff 01'),
      'the reference decodes any length; we cap varints at 10 bytes / 64 bits'],
    ['oversized', 'a 5000-byte value', b('58 01 08 01 10 01 22 01 01 3a 04', Buffer.from('echo'), '4a 88 27', Buffer.alloc(5000, 0xee)),
      'the reference takes any UDP datagram; we cap messages at 4096 bytes']
  ]
  return cases.map(([name, description, bytes, divergence]) => {
    const entry = { name, description, hex: hex(bytes) }
    let m = null
    try {
      m = Message.decode(bytes)
      entry.decoded = jsonMessage(m)
    } catch (err) {
      entry.reference_decode_error = err.message
    }
    // What io.js _onmessage does with it: decode must succeed, an id must be
    // 32 bytes, and only types 1..3 reach a handler.
    entry.reference_accepts = !!m && !(m.id && m.id.length !== 32) && [1, 2, 3].includes(m.type)
    entry.reference_sender_id = m && m.id && m.id.length === 32 && m.version >= 1 ? hex(m.id) : null
    entry.expect_ok = entry.reference_accepts && !divergence
    if (divergence) entry.divergence = divergence
    return entry
  })
}

// --- 6. The scenarios ----------------------------------------------------------

async function main () {
  const nodes = []
  const bootstrap = [{ host: HOST, port: 49737 }]
  const ID = (byte) => Buffer.alloc(32, byte)

  let BS, S, C, R, A, B
  await scenario('bootstrap',
    'BS: ephemeral bootstrap (empty list). S, C: persistent @hyperswarm/dht nodes. R: persistent plain dht-rpc node with an "echo" command. A, B: ephemeral nodes. Each joins in turn: _find_node walks, closerNodes, tokens.',
    async () => {
      BS = await makeNode('BS', 49737, { ephemeral: true, bootstrap: [], id: ID(0xb5) })
      nodes.push(BS)
      await ready(BS)
      S = await makeNode('S', 10001, { ephemeral: false, bootstrap, id: ID(0x5a) })
      nodes.push(S)
      await ready(S)
      C = await makeNode('C', 10005, { ephemeral: false, bootstrap, id: ID(0xc3) })
      nodes.push(C)
      await ready(C)
      R = await makeNode('R', 10004, { plainRpc: true, ephemeral: false, bootstrap, id: ID(0x7e) })
      R.command('echo', { query (q, cb) { cb(null, q.value) } })
      nodes.push(R)
      await ready(R)
      A = await makeNode('A', 10002, { ephemeral: true, bootstrap, id: ID(0xaa) })
      nodes.push(A)
      await ready(A)
      B = await makeNode('B', 10003, { ephemeral: true, bootstrap, id: ID(0xbb) })
      nodes.push(B)
      await ready(B)
    })

  await scenario('ping',
    '_ping: B -> S with S\'s id as value; B -> BS without value (id unknown); S (persistent) -> A (ephemeral).',
    async () => {
      await call('ping S', (cb) => B.ping({ host: HOST, port: S.port, id: S.id }, cb))
      await call('ping BS', (cb) => B.ping({ host: HOST, port: BS.port }, cb))
      await call('ping A', (cb) => S.ping({ host: HOST, port: A.port }, cb))
    })

  const lanA = { host: '192.168.1.20', port: 12345 }
  const lanB = { host: '192.168.7.9', port: 4000 }

  await scenario('peers_announce',
    'A announces TOPIC with port 12345 and LAN address 192.168.1.20:12345 (peers QUERY walk, then UPDATE with tokens to S and C); B announces TOPIC with port 0; C announces with no options (empty value).',
    async () => {
      await call('announce A', (cb) => A.announce(TOPIC, { port: 12345, localAddress: lanA }, cb))
      await call('announce B', (cb) => B.announce(TOPIC, { port: 0 }, cb))
      await call('announce C', (cb) => C.announce(TOPIC, cb))
    })

  await scenario('peers_lookup',
    'B looks up TOPIC with LAN address 192.168.7.9:4000 (replies carry peers and localPeers); A looks up TOPIC without options (empty value); B looks up a topic nobody announced (empty PeersOutput value).',
    async () => {
      await call('lookup B', (cb) => B.lookup(TOPIC, { localAddress: lanB }, cb))
      await call('lookup A', (cb) => A.lookup(TOPIC, cb))
      await call('lookup other', (cb) => B.lookup(OTHER_TOPIC, cb))
    })

  await scenario('peers_unannounce',
    'A unannounces TOPIC (port 12345, LAN address): a _find_node walk, then peers UPDATE with unannounce=true.',
    async () => {
      await call('unannounce A', (cb) => A.unannounce(TOPIC, { port: 12345, localAddress: lanA }, cb))
    })

  await scenario('errors',
    'Error responses: an unregistered command ("Unsupported command"); peers with port 70000 ("Invalid port"); UPDATE to R\'s query-only "echo" command ("Update not supported"); and a successful echo QUERY (value + closerNodes).',
    async () => {
      await call('unsupported', (cb) => A.query('no-such-command', TOPIC, Buffer.from('hi'), cb))
      await call('invalid port', (cb) => B.lookup(TOPIC, { port: 70000 }, cb))
      await call('echo query', (cb) => A.query('echo', TOPIC, Buffer.from('echo me'), cb))
      await call('echo update', (cb) => S.update('echo', TOPIC, Buffer.from('echo me'), cb))
    })

  await scenario('holepunch',
    'B (ephemeral) punches A (ephemeral) via S (persistent relay); then C (persistent) punches S (persistent) via BS (ephemeral relay). Each: direct value-less punch, {to} to the relay, relayed {from} (with the relay\'s 42 00), reply from the target.',
    async () => {
      await call('punch A via S', (cb) => B.holepunch({ host: HOST, port: A.port, referrer: { host: HOST, port: S.port } }, cb))
      await call('punch S via BS', (cb) => C.holepunch({ host: HOST, port: S.port, referrer: { host: HOST, port: BS.port } }, cb))
    })

  await scenario('immutable_store',
    'A puts an immutable value (walk + immutable-store UPDATEs), B gets it (QUERY replies with and without the value), A sends an UPDATE whose target is not the hash (ERR_INVALID_INPUT).',
    async () => {
      const value = Buffer.from('hello immutable world')
      const put = await call('immutable put', (cb) => A.immutable.put(value, cb))
      const key = put.res
      if (key) await call('immutable get', (cb) => B.immutable.get(key, cb))
      await call('immutable bad', (cb) => A.update('immutable-store', Buffer.alloc(32, 0x01), Buffer.from('not matching'), cb))
    })

  await scenario('mutable_store',
    'Mutable records: A puts seq 1; B gets with seq 0; A puts seq 1 with another value (ERR_INVALID_SEQ + proof, then a second success with the same rid); A puts seq 0 (ERR_SEQ_MUST_EXCEED_CURRENT); A puts with a salt; B gets with the salt; A puts with a bad signature (ERR_INVALID_INPUT).',
    async () => {
      const publicKey = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES)
      const secretKey = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES)
      sodium.crypto_sign_seed_keypair(publicKey, secretKey, Buffer.alloc(32, 0x42))
      const keypair = { publicKey, secretKey }
      const salt = Buffer.alloc(16, 0x5a)
      await call('mutable put 1', (cb) => A.mutable.put(Buffer.from('first'), { keypair, seq: 1 }, cb))
      await call('mutable get', (cb) => B.mutable.get(publicKey, { seq: 0 }, cb))
      await call('mutable put 1 again', (cb) => A.mutable.put(Buffer.from('other'), { keypair, seq: 1 }, cb))
      await call('mutable put 0', (cb) => A.mutable.put(Buffer.from('older'), { keypair, seq: 0 }, cb))
      await call('mutable put salted', (cb) => A.mutable.put(Buffer.from('salted'), { keypair, seq: 2, salt }, cb))
      await call('mutable get salted', (cb) => B.mutable.get(publicKey, { seq: 0, salt }, cb))
      await call('mutable bad sig', (cb) => A.mutable.put(Buffer.from('forged'), { keypair: { publicKey }, signature: Buffer.alloc(64, 0x01), seq: 9 }, cb))
    })

  for (const n of nodes) n.destroy()
  await sleep(100)

  // --- write ---
  fs.mkdirSync(OUT_DIR, { recursive: true })
  for (const f of fs.readdirSync(OUT_DIR)) {
    if (f.endsWith('.json')) fs.unlinkSync(path.join(OUT_DIR, f))
  }
  const reference = { 'dht-rpc': require('dht-rpc/package.json').version, '@hyperswarm/dht': require('@hyperswarm/dht/package.json').version }
  const nodeList = [...names.values()]
  for (const s of scenarios) {
    const file = path.join(OUT_DIR, s.name + '.json')
    fs.writeFileSync(file, JSON.stringify({
      generator: 'scripts/capture-dht.js',
      reference,
      scenario: s.name,
      description: s.description,
      notes: s.notes,
      nodes: nodeList,
      datagrams: s.datagrams
    }, null, 1) + '\n')
  }
  fs.writeFileSync(path.join(OUT_DIR, 'crafted.json'), JSON.stringify({
    generator: 'scripts/capture-dht.js',
    reference,
    description: 'Hand-made datagrams and what the reference decoder (dht-rpc lib/messages.js + io.js checks) makes of them. expect_ok is what this crate must do: the reference verdict, except where `divergence` says we are stricter.',
    cases: crafted()
  }, null, 1) + '\n')
  console.error('capture-dht: wrote ' + (scenarios.length + 1) + ' files to ' + OUT_DIR)
  process.exit(0)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
