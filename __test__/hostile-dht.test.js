'use strict'
// Hostile DHT traffic against our DHT node (network.DhtNode) and, for the
// attacks that apply to it, against a reference node (@hyperswarm/dht 4.0.1
// over dht-rpc 4.9.6), on the wire. The runner is inside a loopback-only
// network namespace (assertIsolated); attackers use other 127/8 addresses,
// so each one is a separate source to the node under attack. Every test
// asserts our side and prints the reference's figure beside it.
const test = require('node:test')
const assert = require('node:assert')
const dgram = require('dgram')
const crypto = require('crypto')
const path = require('path')
const { assertIsolated } = require('./helpers/netns')

assertIsolated()

const ROOT = path.join(__dirname, '..')
const network = require(ROOT)
const refDht = require('@hyperswarm/dht')
const { Message, Holepunch, TYPE } = require(path.join(ROOT, 'node_modules', 'dht-rpc', 'lib', 'messages'))
const peers = require('ipv4-peers')
const nodes = peers.idLength(32)

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** A UDP socket on `host` that counts what it receives. */
async function probe (host) {
  const s = dgram.createSocket('udp4')
  s.packets = 0
  s.bytes = 0
  s.messages = []
  s.on('message', (buf, rinfo) => {
    s.packets++
    s.bytes += buf.length
    if (s.messages.length < 1000) {
      try { s.messages.push({ m: Message.decode(buf), rinfo }) } catch {}
    }
  })
  await new Promise(resolve => s.bind(0, host, resolve))
  s.port = s.address().port
  s.host = host
  return s
}

function sendTo (sock, buf, port, host = '127.0.0.1') {
  return new Promise(resolve => sock.send(buf, port, host, () => resolve()))
}

/** Waits (bounded) until `fn()` is true. */
async function until (fn, ms = 10000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return true
    await sleep(50)
  }
  return fn()
}

/** A DHT node under attack: ours or the reference, with `members` of its own kind around it. */
async function startNode (impl, { bootstrap = [], members = 0 } = {}) {
  const closers = []
  if (impl === 'ours') {
    const node = new network.DhtNode({ host: '127.0.0.1', port: 0, bootstrap, ephemeral: false })
    for (let i = 0; i < members; i++) closers.push(new network.DhtNode({ host: '127.0.0.1', port: 0, bootstrap: ['127.0.0.1:' + node.port] }))
    return { port: node.port, destroy: () => { node.destroy(); closers.forEach(c => c.destroy()) } }
  }
  const node = refDht({ bootstrap: bootstrap, ephemeral: false })
  node.on('warning', () => {})
  await new Promise(resolve => node.listen(0, resolve))
  const port = node.address().port
  for (let i = 0; i < members; i++) {
    const m = refDht({ bootstrap: ['127.0.0.1:' + port], ephemeral: false })
    m.on('warning', () => {})
    await new Promise(resolve => m.listen(0, resolve))
    closers.push(m)
  }
  return { port, destroy: () => { node.destroy(); closers.forEach(c => c.destroy()) } }
}

test('65,536 forged responses from another address make the node contact nobody the forger named', async () => {
  const figures = {}
  for (const impl of ['ours', 'reference']) {
    // The node bootstraps from a silent node S: its requests to S wait for
    // an answer. A forger elsewhere answers with every rid, naming probe C
    // as a closer node; a node that accepts any of them then queries C.
    const silent = await probe('127.0.0.1')
    const forger = await probe('127.0.0.66')
    const c = await probe('127.0.0.77')
    const node = await startNode(impl, { bootstrap: ['127.0.0.1:' + silent.port] })
    try {
      assert.ok(await until(() => silent.packets > 0), impl + ': positive control, the node asked S')
      const closer = nodes.encode([{ id: crypto.randomBytes(32), host: c.host, port: c.port }])
      for (let rid = 0; rid < 65536; rid++) {
        const buf = Message.encode({ version: 1, type: TYPE.RESPONSE, rid, id: crypto.randomBytes(32), closerNodes: closer, roundtripToken: Buffer.alloc(32) })
        forger.send(buf, node.port, '127.0.0.1')
        if ((rid & 63) === 63) await sleep(1) // paced, so the receiver's socket buffer keeps up
      }
      await sleep(1500)
      figures[impl] = c.packets
    } finally {
      node.destroy()
      for (const s of [silent, forger, c]) s.close()
    }
  }
  console.log(`forged responses: the node then sent ${figures.ours} datagrams to the forger's node (ours), ${figures.reference} (reference)`)
  assert.strictEqual(figures.ours, 0)
})

test('a _holepunch relay to a target that is not a peer sends 0 bytes; to a peer announced through us it is relayed', async () => {
  const figures = {}
  for (const impl of ['ours', 'reference']) {
    const node = await startNode(impl)
    const asker = await probe('127.0.0.66')
    const target = await probe('127.0.0.88')
    try {
      for (let i = 0; i < 20; i++) {
        const value = Holepunch.encode({ to: peers.encode([{ host: target.host, port: target.port }]) })
        await sendTo(asker, Message.encode({ version: 1, type: TYPE.QUERY, rid: i, command: '_holepunch', value }), node.port)
      }
      await sleep(500)
      figures[impl] = target.bytes
      if (impl === 'ours') {
        assert.strictEqual(target.bytes, 0, 'not a peer: nothing relayed')
        // Positive control: once the target announces through the node, a
        // punch request for it is relayed.
        await sendTo(target, Message.encode({ version: 1, type: TYPE.QUERY, rid: 1, command: '_ping' }), node.port)
        assert.ok(await until(() => target.messages.some(x => x.m.roundtripToken)), 'token')
        const token = target.messages.find(x => x.m.roundtripToken).m.roundtripToken
        await sendTo(target, Message.encode({ version: 1, type: TYPE.UPDATE, rid: 2, command: 'peers', target: crypto.randomBytes(32), roundtripToken: token }), node.port)
        await until(() => target.messages.filter(x => x.m.type === TYPE.RESPONSE).length >= 2)
        const before = target.packets
        const value = Holepunch.encode({ to: peers.encode([{ host: target.host, port: target.port }]) })
        await sendTo(asker, Message.encode({ version: 1, type: TYPE.QUERY, rid: 99, command: '_holepunch', value }), node.port)
        assert.ok(await until(() => target.packets > before), 'relayed to an announced peer')
        const relayed = target.messages[target.messages.length - 1].m
        assert.strictEqual(relayed.command, '_holepunch')
        assert.strictEqual(peers.decode(Holepunch.decode(relayed.value).from)[0].host, '127.0.0.66')
      }
    } finally {
      node.destroy()
      asker.close()
      target.close()
    }
  }
  console.log(`relay to a non-peer: 20 requests made the node send ${figures.ours} bytes to the target (ours), ${figures.reference} bytes (reference)`)
})

test('200 requests of each kind from one unverified source get back at most 3x their bytes', async () => {
  const kinds = {
    ping: () => ({ command: '_ping' }),
    find_node: () => ({ command: '_find_node', target: crypto.randomBytes(32) }),
    'peers (query)': () => ({ command: 'peers', target: crypto.randomBytes(32), value: Buffer.alloc(0) }),
    'peers (update, bad token)': () => ({ type: TYPE.UPDATE, command: 'peers', target: crypto.randomBytes(32), value: Buffer.alloc(0), roundtripToken: crypto.randomBytes(32) }),
    holepunch: () => ({ command: '_holepunch', value: Holepunch.encode({ to: peers.encode([{ host: '127.0.0.1', port: 9 }]) }) }),
    'unknown command': () => ({ command: 'x', target: Buffer.from([1]) }),
    'bad target length': () => ({ command: '_find_node', target: crypto.randomBytes(20) })
  }
  const rows = []
  for (const impl of ['ours', 'reference']) {
    const node = await startNode(impl, { members: 8 })
    try {
      await sleep(1500) // members bootstrap, so closer-node lists are full
      let n = 0
      for (const [kind, make] of Object.entries(kinds)) {
        // A fresh source address per kind: a separate budget each.
        const src = await probe('127.0.1.' + (10 + n++))
        src.on('message', () => {}) // never answers: unverified
        let sent = 0
        for (let rid = 0; rid < 200; rid++) {
          const buf = Message.encode({ version: 1, type: TYPE.QUERY, rid, ...make() }) // `make` may override type
          sent += buf.length
          await sendTo(src, buf, node.port)
        }
        await sleep(300)
        rows.push({ impl, kind, sent, received: src.bytes, ratio: +(src.bytes / sent).toFixed(2) })
        src.close()
      }
    } finally {
      node.destroy()
    }
  }
  console.table(rows)
  const ours = rows.filter(r => r.impl === 'ours')
  assert.ok(ours.some(r => r.received > 0), 'positive control: the node answered')
  for (const r of ours) assert.ok(r.received <= 3 * r.sent, `${r.kind}: ${r.received} > 3 x ${r.sent}`)
})
