#!/usr/bin/env node
// Records golden `immutable-store` / `mutable-store` traffic from the real
// reference packages (dht-rpc 4.9.6 + @hyperswarm/dht 4.0.1) for
// tests/golden_dht_stores.rs.
//
// Run it ONLY inside a fresh, loopback-only network namespace, at low
// priority:
//
//   nice -n 19 unshare -n sh -c 'ip link set lo up && node scripts/capture-dht-stores.js'
//
// Same isolation as scripts/capture-dht.js: it refuses to run when any
// interface other than `lo` exists, refuses to send anywhere but
// 127.0.0.1, gives every node an explicit local bootstrap list, and a
// watchdog ends it after 120 s whatever happens.
//
// Determinism (notes/dht4-stores.md §10): seeded Math.random and
// randombytes, fixed round-trip token secrets (0x11.., 0x22..) on every
// node, fixed node ids, keypairs from fixed seeds (ed25519 is
// deterministic), and each step's requester restarts its rids at 0x1000.
// So the storing node S1's replies are exact bytes a Rust node with the
// same id, secrets and contacts must reproduce.
//
// Output: tests/fixtures/dht/stores/<scenario>.json: every datagram as hex
// with the reference decoder's fields, grouped by step, each step with its
// callback result and stream warnings (error text + proof hex).
'use strict'

const fs = require('fs')
const path = require('path')

require('./capture-guard')('capture-dht-stores', 120000)

function mulberry32 (seed) {
  return function () {
    seed = (seed + 0x6D2B79F5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const prng = mulberry32(0x570e5019)
Math.random = prng

const sodium = require('sodium-native')
sodium.randombytes_buf = function (buf) {
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(prng() * 256)
}

const PROBE_MODE = process.argv[2] === '--probe-node'

// --- Every datagram any socket of this process sends ---------------------------

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
    [offset, length, port, host] = args
  } else {
    [port, host] = args
  }
  if (host !== '127.0.0.1') throw new Error('capture-dht-stores: refusing to send to ' + host + ':' + port)
  let srcPort = null
  try { srcPort = this.address().port } catch (_) {}
  if (capturing) records.push({ srcPort, dstPort: port, bytes: Buffer.from(buf.subarray(offset, offset + length)) })
  return origSend.call(this, buf, ...args)
}

const hyperdht = require('@hyperswarm/dht')
const { Message } = require('dht-rpc/lib/messages')
const { Mutable } = require('@hyperswarm/dht/messages')
const nodeRecords = require('ipv4-peers').idLength(32)

const OUT_DIR = path.join(__dirname, '..', 'tests', 'fixtures', 'dht', 'stores')
const HOST = '127.0.0.1'
const SECRETS = () => [Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x22)]
const names = new Map()
const hex = (b) => (b == null ? null : Buffer.from(b).toString('hex'))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function makeNode (name, port, opts) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, HOST, () => { socket.removeListener('error', reject); resolve() })
  })
  const node = hyperdht(Object.assign({ socket }, opts))
  node._io._secrets = SECRETS()
  node.on('warning', () => {})
  node.on('error', (err) => console.error('capture-dht-stores: ' + name + ' error', err.message))
  names.set(port, { name, id: opts.ephemeral ? null : node.id.toString('hex'), ephemeral: !!opts.ephemeral, port })
  node.label = name
  node.port = port
  return node
}

function keypair (seedByte) {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, Buffer.alloc(32, seedByte))
  return { publicKey, secretKey }
}

// --- Fixture entries -----------------------------------------------------------

function tryOr (fn) {
  try { return fn() } catch (err) { return { decode_error: err.message } }
}

function describe (port) {
  const n = names.get(port)
  return (n ? n.name : '?') + ' ' + HOST + ':' + port
}

function mutableJson (value) {
  return tryOr(() => {
    const v = Mutable.decode(value)
    return { value: hex(v.value), signature: hex(v.signature), seq: v.seq, salt: hex(v.salt) }
  })
}

function entries (recs, ridCommand) {
  return recs.map((r) => {
    const e = { src: describe(r.srcPort), dst: describe(r.dstPort), src_port: r.srcPort, dst_port: r.dstPort, len: r.bytes.length, hex: hex(r.bytes) }
    let m
    try { m = Message.decode(r.bytes) } catch (err) { e.reference_decode_error = err.message; return e }
    e.decoded = {
      version: m.version, type: m.type, rid: m.rid, to: hex(m.to), id: hex(m.id), target: hex(m.target),
      closerNodes: hex(m.closerNodes), roundtripToken: hex(m.roundtripToken), command: m.command, error: m.error, value: hex(m.value)
    }
    let context = m.command
    if (m.type === 3) context = ridCommand.get(r.dstPort + ':' + m.rid) || ''
    else ridCommand.set(r.srcPort + ':' + m.rid, m.command)
    e.context_command = context
    e.closer_nodes_decoded = m.closerNodes ? tryOr(() => nodeRecords.decode(m.closerNodes).map((n) => ({ id: hex(n.id), port: n.port }))) : null
    if (context === 'mutable-store' && m.value) e.mutable = mutableJson(m.value)
    return e
  })
}

// --- Steps -----------------------------------------------------------------------

const steps = []

// Runs one client call with rids starting at 0x1000, recording its
// datagrams, its stream warnings and what its callback got. Never hangs.
async function step (name, description, node, run, opts = {}) {
  const start = records.length
  node._io._rid = 0x1000
  const warnings = []
  const result = await new Promise((resolve) => {
    const t = setTimeout(() => resolve({ timeout: true }), opts.ms || 8000)
    let stream
    try {
      stream = run((err, ...res) => {
        clearTimeout(t)
        resolve({ error: err ? err.message : null, args: res.map(summarise) })
      })
    } catch (err) {
      clearTimeout(t)
      resolve({ threw: err.message })
      return
    }
    if (stream && typeof stream.on === 'function') {
      stream.on('warning', (err, proof) => warnings.push({ message: err && err.message, proof: proof ? summarise(proof) : null }))
    }
  })
  await sleep(300) // late datagrams (the reference's second reply) land here
  steps.push({ name, description, requester: node.label, result, warnings, ...(opts.note ? { note: opts.note } : {}), range: [start, records.length] })
  console.error('capture-dht-stores: ' + name + ': ' + (records.length - start) + ' datagrams, result ' + JSON.stringify(result).slice(0, 120))
}

function summarise (v) {
  if (v == null) return v
  if (Buffer.isBuffer(v)) return { hex: hex(v) }
  if (Array.isArray(v)) return v.map(summarise)
  if (typeof v === 'object') {
    const o = {}
    for (const [k, x] of Object.entries(v)) o[k] = summarise(x)
    return o
  }
  return v
}

async function main () {
  const bootstrap = [{ host: HOST, port: 49737 }]
  const ID = (b) => Buffer.alloc(32, b)
  const BS = await makeNode('BS', 49737, { ephemeral: true, bootstrap: [], id: ID(0xb5) })
  await new Promise((resolve) => BS.ready(resolve))
  const S1 = await makeNode('S1', 10001, { ephemeral: false, bootstrap, id: ID(0x5a) })
  await new Promise((resolve) => S1.ready(resolve))
  const S2 = await makeNode('S2', 10004, { ephemeral: false, bootstrap, id: ID(0x5b) })
  await new Promise((resolve) => S2.ready(resolve))
  const C = await makeNode('C', 10003, { ephemeral: false, bootstrap, id: ID(0xc3) })
  await new Promise((resolve) => C.ready(resolve))
  const A = await makeNode('A', 10002, { ephemeral: true, bootstrap, id: ID(0xaa) })
  await new Promise((resolve) => A.ready(resolve))
  // The getter: ephemeral, so never updated, so its own store stays empty
  // and every get goes to the network (a storing node answers a get from
  // its own LRU without sending anything).
  const B = await makeNode('B', 10005, { ephemeral: true, bootstrap, id: ID(0xbb) })
  await new Promise((resolve) => B.ready(resolve))
  const all = [BS, S1, S2, C, A, B]
  await sleep(300)
  const s1Nodes = S1.getNodes().map((n) => ({ id: hex(n.id), host: n.host, port: n.port }))
  capturing = true

  // Immutable.
  const hello = Buffer.from('hello')
  const helloKey = Buffer.alloc(32)
  sodium.crypto_generichash(helloKey, hello)
  await step('C1_immutable_put', 'A.immutable.put("hello"): _find_node walk, then immutable-store UPDATEs with tokens', A, (cb) => A.immutable.put(hello, cb))
  await step('C2_immutable_get', 'B.immutable.get(key): QUERY without value; replies with the raw value', B, (cb) => B.immutable.get(helloKey, cb))
  await step('C3_immutable_get_missing', 'B.immutable.get(07x32): replies without value; cb(null, null, null)', B, (cb) => B.immutable.get(Buffer.alloc(32, 7), cb))
  await step('C5_immutable_bad_hash', 'raw UPDATE whose target is not the hash of the value: ERR_INVALID_INPUT', A, (cb) => A.update('immutable-store', Buffer.alloc(32, 99), Buffer.from('test'), cb))
  await step('C6_immutable_put_empty', 'A.immutable.put(empty): key 0e5751c0..', A, (cb) => A.immutable.put(Buffer.alloc(0), cb))
  await step('C6_immutable_get_empty', 'B.immutable.get(key of empty): reply value 4a 00', B, (cb) => { const k = Buffer.alloc(32); sodium.crypto_generichash(k, Buffer.alloc(0)); return B.immutable.get(k, cb) })
  await step('C6_immutable_put_1000', 'A.immutable.put(1000 bytes): the largest immutable UPDATE', A, (cb) => A.immutable.put(Buffer.alloc(1000, 0x61), cb))

  // Mutable.
  const kp1 = keypair(1)
  await step('M1_mutable_put', 'A.mutable.put("test", {keypair, seq: 0}): Mutable with 18 00', A, (cb) => A.mutable.put(Buffer.from('test'), { keypair: kp1, seq: 0 }, cb))
  await step('M2_mutable_get', 'B.mutable.get(pk, {seq: 0}): QUERY value 18 00, record replies', B, (cb) => B.mutable.get(kp1.publicKey, { seq: 0 }, cb))
  await step('M2_mutable_get_seq5', 'B.mutable.get(pk, {seq: 5}): replies without value', B, (cb) => B.mutable.get(kp1.publicKey, { seq: 5 }, cb))
  const salt = A.mutable.salt('hello')
  await step('M3_mutable_put_salted', 'A.mutable.put("salted", {keypair, salt: salt("hello")})', A, (cb) => A.mutable.put(Buffer.from('salted'), { keypair: kp1, salt, seq: 3 }, cb))
  await step('M3_mutable_get_salted', 'B.mutable.get(pk, {salt}): the salted record', B, (cb) => B.mutable.get(kp1.publicKey, { salt }, cb))
  const sig = A.mutable.sign(Buffer.from('test'), { keypair: kp1 })
  await step('M4_mutable_put_presigned', 'put with {keypair: {publicKey}, signature}: same record as M1, so ERR_SEQ_MUST_EXCEED_CURRENT', A, (cb) => A.mutable.put(Buffer.from('test'), { keypair: { publicKey: kp1.publicKey }, signature: sig }, cb))

  const kp2 = keypair(2)
  await step('M5a_put_seq2', 'fresh key 2: put "a" seq 2', A, (cb) => A.mutable.put(Buffer.from('a'), { keypair: kp2, seq: 2 }, cb))
  await step('M5a_put_seq2_other', 'key 2: put "b" seq 2: ERR_INVALID_SEQ with proof, then (reference bug) a second success reply and an overwrite', A, (cb) => A.mutable.put(Buffer.from('b'), { keypair: kp2, seq: 2 }, cb))
  await step('M5a_get_after_conflict', 'key 2: get: shows whether the rejected record was stored', B, (cb) => B.mutable.get(kp2.publicKey, { seq: 0 }, cb),
    { note: 'reference nodes overwrite on a seq error; ours keep "a" (diverges by design)' })
  const kp3 = keypair(3)
  await step('M5b_put_seq2', 'fresh key 3: put "a" seq 2', A, (cb) => A.mutable.put(Buffer.from('a'), { keypair: kp3, seq: 2 }, cb))
  await step('M5b_put_seq1', 'key 3: put "c" seq 1: ERR_SEQ_MUST_EXCEED_CURRENT with proof', A, (cb) => A.mutable.put(Buffer.from('c'), { keypair: kp3, seq: 1 }, cb))
  const kp4 = keypair(4)
  await step('M5c_put_seq2', 'fresh key 4: put "a" seq 2', A, (cb) => A.mutable.put(Buffer.from('a'), { keypair: kp4, seq: 2 }, cb))
  await step('M5c_put_identical', 'key 4: put the identical record again: ERR_SEQ_MUST_EXCEED_CURRENT', A, (cb) => A.mutable.put(Buffer.from('a'), { keypair: kp4, seq: 2 }, cb))

  const kp5 = keypair(5)
  await step('M6_null_value', 'raw UPDATE {signature} without value: success, nothing stored', A, (cb) => A.update('mutable-store', kp5.publicKey, { value: null, signature: Buffer.alloc(64, 1), seq: 0 }, cb))
  await step('M6_null_signature', 'raw UPDATE {value} without signature: success, nothing stored', A, (cb) => A.update('mutable-store', kp5.publicKey, { value: Buffer.from('x'), signature: null, seq: 0 }, cb))
  await step('M6_get', 'key 5: get: nothing stored', B, (cb) => B.mutable.get(kp5.publicKey, { seq: 0 }, cb))
  const good = A.mutable.sign(Buffer.from('v7'), { keypair: kp5, seq: 7 })
  const badSig = Buffer.from(good)
  badSig[5] ^= 1
  await step('M7_bad_signature', 'raw UPDATE with a corrupted signature: ERR_INVALID_INPUT', A, (cb) => A.update('mutable-store', kp5.publicKey, { value: Buffer.from('v7'), signature: badSig, seq: 7 }, cb))
  await step('M7_bad_value', 'raw UPDATE whose value is not what was signed: ERR_INVALID_INPUT', A, (cb) => A.update('mutable-store', kp5.publicKey, { value: Buffer.from('v8'), signature: good, seq: 7 }, cb))
  await step('M7_bad_salt', 'raw UPDATE with a salt that was not signed: ERR_INVALID_INPUT', A, (cb) => A.update('mutable-store', kp5.publicKey, { value: Buffer.from('v7'), signature: good, seq: 7, salt: Buffer.alloc(16, 3) }, cb))

  const kp6 = keypair(6)
  await step('M9_empty_salt', 'put with salt = empty buffer: signs 4:salt0:, stored in the unsalted slot', A, (cb) => A.mutable.put(Buffer.from('e'), { keypair: kp6, salt: Buffer.alloc(0), seq: 1 }, cb))
  await step('M9_get_unsalted', 'get(pk) without salt: the reply is the empty-salt record; the client filters it out', B, (cb) => B.mutable.get(kp6.publicKey, { seq: 0 }, cb))
  const kp7 = keypair(7)
  const long = Buffer.concat([A.mutable.sign(Buffer.from('long'), { keypair: kp7, seq: 1 }), Buffer.from([0])])
  await step('M9_long_signature', 'raw UPDATE with a valid signature plus one byte: accepted, stored as sent', A, (cb) => A.update('mutable-store', kp7.publicKey, { value: Buffer.from('long'), signature: long, seq: 1 }, cb))
  await step('M9_get_long_signature', 'get: the 65-byte signature is echoed', B, (cb) => B.mutable.get(kp7.publicKey, { seq: 0 }, cb))
  const kp8 = keypair(8)
  const bigSalt = Buffer.alloc(64, 0x73)
  await step('M9_put_largest', 'put value 1000 + salt 64: the largest UPDATE the API allows', A, (cb) => A.mutable.put(Buffer.alloc(1000, 0x62), { keypair: kp8, salt: bigSalt, seq: 9 }, cb))
  await step('M9_get_largest', 'get the largest record', B, (cb) => B.mutable.get(kp8.publicKey, { salt: bigSalt, seq: 0 }, cb))

  capturing = false
  for (const n of all) n.destroy()
  await sleep(100)
  const crashProbes = await probes()

  const ridCommand = new Map()
  const datagrams = entries(records, ridCommand).map((e, index) => ({ index, ...e }))
  const reference = { 'dht-rpc': require('dht-rpc/package.json').version, '@hyperswarm/dht': require('@hyperswarm/dht/package.json').version }
  fs.mkdirSync(OUT_DIR, { recursive: true })
  for (const f of fs.readdirSync(OUT_DIR)) if (f.endsWith('.json')) fs.unlinkSync(path.join(OUT_DIR, f))
  fs.writeFileSync(path.join(OUT_DIR, 'stores.json'), JSON.stringify({
    generator: 'scripts/capture-dht-stores.js',
    reference,
    description: 'immutable-store and mutable-store, step by step. Every node has token secrets [0x11 x32, 0x22 x32]; each step\'s requester starts its rids at 0x1000. s1_nodes is S1\'s routing table when capture began.',
    nodes: [...names.values()],
    s1_nodes: s1Nodes,
    keys: {
      hello: hex(helloKey),
      kp1: hex(kp1.publicKey), kp2: hex(kp2.publicKey), kp3: hex(kp3.publicKey), kp4: hex(kp4.publicKey),
      kp5: hex(kp5.publicKey), kp6: hex(kp6.publicKey), kp7: hex(kp7.publicKey), kp8: hex(kp8.publicKey),
      salt_hello: hex(salt)
    },
    steps,
    datagrams
  }, null, 1) + '\n')
  fs.writeFileSync(path.join(OUT_DIR, 'crash_probes.json'), JSON.stringify({
    generator: 'scripts/capture-dht-stores.js',
    reference,
    description: 'Hand-made store requests, each to a fresh child process running one persistent reference node (token from a _find_node reply first). crashed = the child exited within 800 ms; replies = what it sent back.',
    probes: crashProbes
  }, null, 1) + '\n')
  console.error('capture-dht-stores: wrote ' + datagrams.length + ' datagrams in ' + steps.length + ' steps')
  process.exit(0)
}

// --- Crash probes (notes §10, X1) ---------------------------------------------
// Each probe gets a fresh child process running one persistent reference
// node (id 5c x32, no bootstrap: it sends nothing of its own). A raw socket
// takes a token from a _find_node reply, then sends one hand-made request,
// and records the replies and whether the child survived.

async function probeNodeMain (port) {
  const node = await makeNode('P', port, { ephemeral: false, bootstrap: [], id: Buffer.alloc(32, 0x5c) })
  node.on('listening', () => {})
  process.stdout.write('ready\n')
}

async function probes () {
  const { spawn } = require('child_process')
  const pk = keypair(9)
  const signed = (value, seq, salt) => A_SIGN(value, seq, salt, pk)
  const mut = (o) => Mutable.encode(o)
  const p60 = 2 ** 60
  const bigImmutable = Buffer.alloc(2000, 0x69)
  const bigKey = Buffer.alloc(32)
  sodium.crypto_generichash(bigKey, bigImmutable)
  const cases = [
    ['mutable_query_no_value', 'mutable-store QUERY without a value field', 1, 'mutable-store', pk.publicKey, null],
    ['mutable_update_no_value', 'mutable-store UPDATE without a value field', 2, 'mutable-store', pk.publicKey, null],
    ['immutable_update_no_value', 'immutable-store UPDATE without a value field', 2, 'immutable-store', Buffer.alloc(32, 1), null],
    ['mutable_sig_63', 'mutable-store UPDATE with a 63-byte signature', 2, 'mutable-store', pk.publicKey,
      mut({ value: Buffer.from('x'), signature: signed(Buffer.from('x'), 1).subarray(0, 63), seq: 1 })],
    ['mutable_target_31', 'mutable-store UPDATE whose target (public key) is 31 bytes', 2, 'mutable-store', pk.publicKey.subarray(0, 31),
      mut({ value: Buffer.from('x'), signature: signed(Buffer.from('x'), 1), seq: 1 })],
    ['mutable_value_1001', 'mutable-store UPDATE with a 1001-byte value', 2, 'mutable-store', pk.publicKey,
      mut({ value: Buffer.alloc(1001, 0x62), signature: Buffer.alloc(64, 1), seq: 1 })],
    ['mutable_salt_65', 'mutable-store UPDATE with a 65-byte salt', 2, 'mutable-store', pk.publicKey,
      mut({ value: Buffer.from('x'), signature: Buffer.alloc(64, 1), seq: 1, salt: Buffer.alloc(65, 0x73) })],
    ['mutable_seq_2p60', 'mutable-store UPDATE with seq 2^60, correctly signed', 2, 'mutable-store', pk.publicKey,
      mut({ value: Buffer.from('x'), signature: signed(Buffer.from('x'), p60), seq: p60 })],
    ['immutable_2000', 'immutable-store UPDATE of a 2000-byte value under its hash', 2, 'immutable-store', bigKey, bigImmutable],
    ['mutable_query_target_31', 'mutable-store QUERY with a 31-byte target', 1, 'mutable-store', pk.publicKey.subarray(0, 31), mut({ seq: 0 })]
  ]
  const out = []
  let port = 11001
  for (const [name, description, type, command, target, value] of cases) {
    out.push(await probe(spawn, port++, name, description, type, command, target, value))
  }
  return out
}

function A_SIGN (value, seq, salt, kp) {
  const parts = []
  if (salt) parts.push(Buffer.from('4:salt' + salt.length + ':'), salt)
  parts.push(Buffer.from('3:seqi' + seq + 'e1:v' + value.length + ':'), value)
  const sig = Buffer.alloc(64)
  sodium.crypto_sign_detached(sig, Buffer.concat(parts), kp.secretKey)
  return sig
}

async function probe (spawn, port, name, description, type, command, target, value) {
  const child = spawn(process.execPath, [__filename, '--probe-node', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = await Promise.race([
    new Promise((resolve) => child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(true) })),
    sleep(5000).then(() => false)
  ])
  const record = { name, description, ready }
  const sock = dgram.createSocket('udp4')
  await new Promise((resolve) => sock.bind(0, HOST, resolve))
  const replies = []
  sock.on('message', (buf) => replies.push(buf))
  const send = (m) => new Promise((resolve) => sock.send(Message.encode(m), port, HOST, resolve))
  await send({ version: 1, type: 1, rid: 1, target: Buffer.alloc(32, 0x33), command: '_find_node' })
  await sleep(300)
  let token = null
  try { token = Message.decode(replies[0]).roundtripToken } catch (_) {}
  const m = { version: 1, type, rid: 2, target, command }
  if (type === 2) m.roundtripToken = token
  if (value) m.value = value
  const req = Message.encode(m)
  record.request_hex = hex(req)
  replies.length = 0
  await send(m)
  const status = await Promise.race([exited, sleep(800).then(() => null)])
  record.replies = replies.map((b) => {
    const e = { hex: hex(b) }
    try {
      const d = Message.decode(b)
      e.error = d.error
      e.value = hex(d.value)
      e.token = !!d.roundtripToken
      e.closerNodes = hex(d.closerNodes)
    } catch (err) { e.decode_error = err.message }
    return e
  })
  record.crashed = status !== null
  record.exit = status
  // The first line of the uncaught exception's message, not its stack.
  record.stderr_error = stderr.split('\n').find((l) => /Error/.test(l)) || null
  if (status === null) { child.kill('SIGKILL'); await exited }
  sock.close()
  console.error('capture-dht-stores: probe ' + name + ': crashed=' + record.crashed + ' replies=' + replies.length + ' ' + (record.stderr_error || ''))
  return record
}

if (PROBE_MODE) {
  probeNodeMain(Number(process.argv[3])).catch((err) => { console.error(err); process.exit(1) })
} else {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
