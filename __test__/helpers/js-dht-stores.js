'use strict'
// The reference @hyperswarm/dht 4.0.1 stores, driven by tests/dht_stores_interop.rs
// inside a loopback-only namespace. Reports are JSON lines on stdout.
//   node js-dht-stores.js network <port> <count>
//     an ephemeral bootstrap node on 127.0.0.1:<port> and <count> persistent
//     members; prints {type:'ready', ports}; exits when stdin closes.
//     Each JSON line on stdin is a command, answered by one line:
//     {op:'has', keys}  -> {type:'has', nodes: [{port, has: [bool per key]}]}
//       keys are the store's own ('i' + hex(hash), 'm' + hex(pk) [+ hex(salt)]);
//       has() does not touch the LRU.
//   node js-dht-stores.js client <host:port> <opsJSON>
//     an ephemeral client that runs the ops in order and prints one line per op:
//     {op:'salt', str}                           -> {salt}
//     {op:'iput', value}                         -> {key, warnings} | {error}
//     {op:'iget', key}                           -> {value, id} (value null: not found)
//     {op:'mput', seed, salt?, seq, value, dead?} -> {key, signature, seq, salt, warnings} | {error, warnings}
//       dead: {id, port}, a node added to the routing table first (nothing answers there)
//       forge: true, sign, flip a bit of the signature and put it as opts.signature
//     {op:'mget', seed, salt?, seq}              -> {value, signature, seq} (value null: not found)
//     {op:'raw', command, target, value, ports}  -> {replies: [{port, error, value, answered}]}
//       sends `value` (hex, the Message.value bytes as given) as an UPDATE straight to
//       each 127.0.0.1:<port>, with the token of a _find_node reply from it first;
//       answered false when no reply came within 1.5 s. With query: true, a QUERY
//       instead (no token needed).
//   An op whose API call throws synchronously reports {throws: message}.
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
    const nodes = boot._members = []
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
  const lines = require('readline').createInterface({ input: process.stdin })
  lines.on('line', line => {
    const cmd = JSON.parse(line)
    if (cmd.op === 'has') {
      const members = boot._members || []
      out({ type: 'has', nodes: members.map(n => ({ port: n.address().port, has: cmd.keys.map(k => n._store.has(k)) })) })
    } else out({ type: 'error', error: 'unknown command ' + cmd.op })
  })
  lines.on('close', () => process.exit(0))
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
      const value = Buffer.from(op.value, 'hex')
      let opts = { keypair: kp, seq: op.seq, salt }
      if (op.forge) {
        const signature = node.mutable.sign(value, opts)
        signature[0] ^= 1
        opts = { keypair: { publicKey: kp.publicKey }, signature, seq: op.seq, salt }
      }
      let w
      const s = node.mutable.put(value, opts, (err, r) =>
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
  // UPDATE straight to each port; no walk, so each reply is attributed.
  const raw = (op, done) => {
    const target = Buffer.from(op.target, 'hex')
    const value = Buffer.from(op.value, 'hex')
    const replies = op.ports.map(port => ({ port, error: null, value: null, answered: false }))
    let pending = replies.length
    let ended = false
    const end = () => { if (!ended) { ended = true; clearTimeout(timer); done({ replies }) } }
    const timer = setTimeout(end, 1500)
    replies.forEach(r => {
      const peer = { host: '127.0.0.1', port: r.port }
      const onreply = (err, res) => {
        if (!err) Object.assign(r, { answered: true, error: res.error || null, value: hex(res.value) })
        if (--pending === 0) end()
      }
      if (op.query) return node._io.query(op.command, target, value, peer, onreply)
      node._io.query('_find_node', target, null, peer, (err, res) => {
        if (err || !res.roundtripToken) { if (--pending === 0) end(); return }
        node._io.update(op.command, target, value, Object.assign({ roundtripToken: res.roundtripToken }, peer), onreply)
      })
    })
  }

  node.once('ready', () => {
    let i = 0
    const next = () => {
      if (i === ops.length) { node.destroy(); return process.exit(0) }
      const op = ops[i++]
      const done = r => { out(Object.assign({ op: op.op }, r)); next() }
      try {
        if (op.op === 'raw') raw(op, done)
        else run(op, done)
      } catch (err) {
        done({ throws: err.message })
      }
    }
    next()
  })
} else {
  console.error('usage: js-dht-stores.js network <port> <count> | client <host:port> <opsJSON>')
  process.exit(2)
}
