#!/usr/bin/env node
// Judges edge-case ed25519 signatures with the libsodium that
// @hyperswarm/dht 4.0.1 verifies with (sodium-native 3.4.1, libsodium
// 1.0.18), for tests/golden_dht_stores.rs: our `mutable::verify` must reach
// the same verdict on every vector.
//
// No sockets: it only computes. Run it at low priority:
//
//   nice -n 19 node scripts/capture-ed25519-vectors.js
//
// Output: tests/fixtures/dht/stores/ed25519_vectors.json.
'use strict'

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const sodium = require('sodium-native')

const OUT = path.join(__dirname, '..', 'tests', 'fixtures', 'dht', 'stores', 'ed25519_vectors.json')
const L = (1n << 252n) + 27742317777372353535851937790883648493n
const P = (1n << 255n) - 19n

const hex = (b) => Buffer.from(b).toString('hex')
const le = (b) => { let n = 0n; for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]); return n }
const toLe = (n, len = 32) => { const b = Buffer.alloc(len); for (let i = 0; i < len; i++) { b[i] = Number(n & 0xffn); n >>= 8n } return b }
const sha512 = (...parts) => crypto.createHash('sha512').update(Buffer.concat(parts)).digest()
const mod = (n, m) => ((n % m) + m) % m

function baseMul (scalar) {
  const out = Buffer.alloc(32)
  sodium.crypto_scalarmult_ed25519_base_noclamp(out, toLe(scalar))
  return out
}

function add (p, q) {
  const out = Buffer.alloc(32)
  sodium.crypto_core_ed25519_add(out, p, q)
  return out
}

// Encodings of small-order points (the identity, order 2, 4 and 8), with
// and without the sign bit where that gives another encoding.
const SMALL = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85'
].map((h) => Buffer.from(h, 'hex'))
const T8 = SMALL[4]

const vectors = []
function judge (name, pk, msg, sig) {
  let ok
  try {
    ok = sodium.crypto_sign_verify_detached(sig, msg, pk)
  } catch (err) {
    ok = 'threw: ' + err.message
  }
  vectors.push({ name, pk: hex(pk), msg: hex(msg), sig: hex(sig), libsodium: ok })
}

// A signature by scalar `a` for the public key bytes `pkBytes` (which may
// be a*B, or a*B plus a torsion point: the hash covers pkBytes as given).
function sign (a, pkBytes, msg, rSeed) {
  const r = mod(le(sha512(Buffer.from(rSeed), msg)), L)
  const R = baseMul(r)
  const k = mod(le(sha512(R, pkBytes, msg)), L)
  const s = mod(r + k * a, L)
  return { sig: Buffer.concat([R, toLe(s)]), k }
}

const a = mod(le(sha512(Buffer.from('hyperswarm-native ed25519 vectors'))), L)
const A = baseMul(a)

// Plain valid signatures (a libsodium-made one too).
for (let i = 0; i < 4; i++) {
  const msg = Buffer.from('3:seqi' + i + 'e1:v4:test')
  judge('valid_' + i, A, msg, sign(a, A, msg, 'r' + i).sig)
}
{
  const pk = Buffer.alloc(32)
  const sk = Buffer.alloc(64)
  sodium.crypto_sign_seed_keypair(pk, sk, Buffer.alloc(32, 1))
  const msg = Buffer.from('3:seqi0e1:v4:test')
  const sig = Buffer.alloc(64)
  sodium.crypto_sign_detached(sig, msg, sk)
  judge('valid_libsodium', pk, msg, sig)
  const long = Buffer.concat([sig, Buffer.from([0])])
  judge('valid_plus_trailing_byte', pk, msg, long)
}

// Non-canonical S: S + L, and S with the top bits set.
{
  const msg = Buffer.from('non-canonical s')
  const { sig } = sign(a, A, msg, 'rs')
  const s = le(sig.subarray(32))
  judge('s_plus_l', A, msg, Buffer.concat([sig.subarray(0, 32), toLe(s + L)]))
  const high = Buffer.from(sig)
  high[63] |= 0xe0
  judge('s_high_bits', A, msg, high)
}

// Mixed-order public key A + T8: the cofactorless equation holds exactly
// when k is a multiple of 8, so some of these verify and some do not.
{
  const A8 = add(A, T8)
  let hits = 0
  let misses = 0
  for (let i = 0; i < 200 && (hits < 3 || misses < 3); i++) {
    const msg = Buffer.from('mixed order ' + i)
    const { sig, k } = sign(a, A8, msg, 'rm' + i)
    const multiple = k % 8n === 0n
    if (multiple ? hits >= 3 : misses >= 3) continue
    if (multiple) hits++
    else misses++
    judge('mixed_order_pk_' + i + '_k_mod8_' + (k % 8n), A8, msg, sig)
  }
}

// Small-order R with an honest s for it (R = T, s = k*a): the equation holds
// when k*a*B - k*A = T, i.e. never; and small-order public keys with a
// small-order R and s = 0, where the equation can hold (R = -k*A).
{
  const msg = Buffer.from('small order')
  for (const [i, R] of SMALL.entries()) {
    const k = mod(le(sha512(R, A, msg)), L)
    judge('small_order_r_' + i, A, msg, Buffer.concat([R, toLe(mod(k * a, L))]))
  }
  for (const [i, pk] of SMALL.entries()) {
    for (const [j, R] of SMALL.entries()) {
      judge('small_order_pk_' + i + '_r_' + j, pk, msg, Buffer.concat([R, Buffer.alloc(32)]))
    }
  }
}

// Non-canonical encodings of the public key: y + p for small y, with and
// without the sign bit, each with a signature made over those bytes (valid
// only if the key were read as its reduced point).
{
  const msg = Buffer.from('non-canonical key')
  for (let y = 0n; y < 19n; y++) {
    for (const sign of [0, 0x80]) {
      const enc = toLe(y + P)
      enc[31] |= sign
      const { sig } = (() => { try { return signWithUnknown(enc, msg) } catch (_) { return { sig: Buffer.alloc(64, 1) } } })()
      judge('noncanonical_pk_y' + y + (sign ? '_neg' : ''), enc, msg, sig)
    }
  }
}

// For a non-canonical key no one knows the discrete log; the signature is
// any well-formed one, which must be refused whatever the key decodes to.
function signWithUnknown (enc, msg) {
  return sign(a, enc, msg, 'rn')
}

// Random 32-byte keys (mostly not points) and bit flips of a valid one.
{
  const msg = Buffer.from('3:seqi1e1:v5:hello')
  const { sig } = sign(a, A, msg, 'rf')
  for (let i = 0; i < 8; i++) {
    judge('random_pk_' + i, sha512(Buffer.from('pk' + i)).subarray(0, 32), msg, sig)
  }
  for (const bit of [0, 100, 255, 256 + 7, 511]) {
    const flipped = Buffer.from(sig)
    flipped[bit >> 3] ^= 1 << (bit & 7)
    judge('flip_sig_bit_' + bit, A, msg, flipped)
  }
}

fs.writeFileSync(OUT, JSON.stringify({
  generator: 'scripts/capture-ed25519-vectors.js',
  reference: { 'sodium-native': require('sodium-native/package.json').version, libsodium: '1.0.18 (sodium-native prebuilt)' },
  description: 'ed25519 signatures judged by crypto_sign_verify_detached as @hyperswarm/dht 4.0.1 calls it. libsodium is true/false, or the text of what it threw.',
  vectors
}, null, 1) + '\n')
const accepted = vectors.filter((v) => v.libsodium === true).length
console.error('capture-ed25519-vectors: ' + vectors.length + ' vectors, ' + accepted + ' accepted by libsodium')
