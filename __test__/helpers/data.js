'use strict'
// Deterministic test payloads: a peer named `name` sends pattern(name, n), and
// the test knows its hash without moving the bytes around.
const crypto = require('crypto')

function pattern (name, n) {
  const out = Buffer.alloc(n)
  let block = crypto.createHash('sha256').update(String(name)).digest()
  for (let off = 0; off < n; off += block.length) {
    block.copy(out, off)
    block = crypto.createHash('sha256').update(block).digest()
  }
  return out
}

function patternHash (name, n) {
  return crypto.createHash('sha256').update(pattern(name, n)).digest('hex')
}

const topic = s => crypto.createHash('sha256').update(s).digest('hex')

module.exports = { pattern, patternHash, topic }
