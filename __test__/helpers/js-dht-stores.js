'use strict'
// The reference @hyperswarm/dht 4.0.1 stores, driven by tests/dht_stores_interop.rs
// inside a loopback-only namespace. Reports are JSON lines on stdout.
//   node js-dht-stores.js network <port> <count>
//     an ephemeral bootstrap node on 127.0.0.1:<port> and <count> persistent
//     members; prints {type:'ready', ports}; exits when stdin closes.
//   node js-dht-stores.js client <host:port> <opsJSON>
//     an ephemeral client that runs the ops in order and prints one line per op:
//     {op:'salt', str}                           -> {salt}
//     {op:'iput', value}                         -> {key, warnings} | {error}
//     {op:'iget', key}                           -> {value, id} (value null: not found)
//     {op:'mput', seed, salt?, seq, value, dead?} -> {key, signature, seq, salt, warnings} | {error, warnings}
//       dead: {id, port}, a node added to the routing table first (nothing answers there)
//     {op:'mget', seed, salt?, seq}              -> {value, signature, seq} (value null: not found)
//   Bytes are hex; `salt` in ops is a string turned into a salt by mutable.salt(str).
const dht = require('@hyperswarm/dht')
const sodium = require('sodium-native')

const hex = b => (b ? Buffer.from(b).toString('hex') : null)
const out = m => process.stdout.write(JSON.stringify(m) + '\n')
const [mode, a, b] = process.argv.slice(2)

// Hard bound: never outlive the test.
setTimeout(() => { out({ type: 'timeout' }); process.exit(3) }, mode === 'client' ? 90 * 1000 : 5 * 60 * 1000)

if (mode === 'network') {
  const boot = dht({ bootstrap: [], ephemeral: true })
  boot.on('warning', () => {})
  boot.listen(Number(a), '127.0.0.1', () => {
    const nodes = []
    let ready = 0
    for (let i = 0; i < Number(b); i++) {
      const node = dht({ bootstrap: ['127.0.0.1:' + a], ephemeral: false })
      node.on('warning', () => {})
      nodes.push(node)
      node.listen(0, '127.0.0.1', () => node.once('ready', () => {
        if (++ready === nodes.length) out({ type: 'ready', ports: nodes.map(n => n.address().port) })
      }))
    }
  })
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
} else if (mode === 'client') {
  const node = dht({ bootstrap: [a], ephemeral: true })
  node.on('warning', () => {})
  const keypair = seedHex => {
    const publicKey = Buffer.alloc(32)
    const secretKey = Buffer.alloc(64)
    sodium.crypto_sign_seed_keypair(publicKey, secretKey, Buffer.from(seedHex, 'hex'))
    return { publicKey, secretKey }
  }
  const ops = JSON.parse(b)
  // Warnings seen so far. A put failed by a proof reports none: the
  // reference's own 'warning' listener runs first and calls back at once.
  const warned = s => { const w = []; s.on('warning', e => w.push(e.message)); return w }
  const run = (op, done) => {
    const salt = op.salt != null ? node.mutable.salt(op.salt) : undefined
    if (op.op === 'salt') return done({ salt: hex(node.mutable.salt(op.str)) })
    if (op.op === 'iput') {
      let w
      const s = node.immutable.put(Buffer.from(op.value, 'hex'), (err, key) => done(err ? { error: err.message, warnings: w } : { key: hex(key), warnings: w }))
      w = warned(s)
      return
    }
    if (op.op === 'iget') {
      return node.immutable.get(Buffer.from(op.key, 'hex'), (err, value, info) =>
        done(err ? { error: err.message } : { value: hex(value), id: info ? hex(info.id) : null }))
    }
    const kp = keypair(op.seed)
    if (op.op === 'mput') {
      if (op.dead) node.addNodes([{ id: Buffer.from(op.dead.id, 'hex'), host: '127.0.0.1', port: op.dead.port }])
      let w
      const s = node.mutable.put(Buffer.from(op.value, 'hex'), { keypair: kp, seq: op.seq, salt }, (err, r) =>
        done(err ? { error: err.message, warnings: w } : { key: hex(r.key), signature: hex(r.signature), seq: r.seq, salt: hex(r.salt), warnings: w }))
      w = warned(s)
      return
    }
    if (op.op === 'mget') {
      return node.mutable.get(kp.publicKey, { seq: op.seq, salt }, (err, r) =>
        done(err ? { error: err.message } : { value: hex(r.value), signature: hex(r.signature), seq: r.seq }))
    }
    done({ error: 'unknown op ' + op.op })
  }
  node.once('ready', () => {
    let i = 0
    const next = () => {
      if (i === ops.length) { node.destroy(); return process.exit(0) }
      const op = ops[i++]
      run(op, r => { out(Object.assign({ op: op.op }, r)); next() })
    }
    next()
  })
} else {
  console.error('usage: js-dht-stores.js network <port> <count> | client <host:port> <opsJSON>')
  process.exit(2)
}
