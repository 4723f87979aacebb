'use strict'
// DHT interop with the real reference nodes (dht-rpc 4.9.6, @hyperswarm/dht
// 4.0.1, hyperswarm 2.15.3), all inside a loopback-only lab. LAN discovery is
// off on our side and silenced on theirs, so every peer is found through
// the DHT.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { Lab, assertIsolated, withLab } = require('./helpers/netns')
const { patternHash, topic } = require('./helpers/data')
const { dhtBinary } = require('./helpers/bins')

assertIsolated()
const H = name => path.join(__dirname, 'helpers', name)
const DHT_BIN = dhtBinary()
const BOOT = '127.0.0.1:49737'
const KiB = 1024

// A reference testnet: an ephemeral bootstrap node on 49737 and `n`
// persistent members.
async function jsTestnet (lab, n = 4) {
  const boot = lab.spawn(0, H('js-dht.js'), ['bootstrap', '49737'])
  await boot.wait('ready')
  const nodes = lab.spawn(0, H('js-dht.js'), ['nodes', String(n), BOOT])
  await nodes.wait('ready', 30000)
  return nodes
}

// Joins `t` as an announcer and waits for the end of its first DHT round,
// after which the announcement is stored.
async function announced (p, t) {
  p.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: false } })
  await p.wait('updated', 20000, 'the end of the announce round')
}

// Spawns reference lookups of `t` until `until(peers)` holds (at most
// `tries` of them), and returns the last answer.
async function lookupUntil (lab, t, until, tries = 10) {
  let found = null
  for (let i = 0; i < tries; i++) {
    const look = lab.spawn(0, H('js-dht-peers.js'), [BOOT, 'lookup', t])
    found = await look.wait('found', 20000)
    await look.kill()
    if (until(found.peers)) break
  }
  return found
}

function peer (lab, impl, name, swarm = {}) {
  const opts = { name, send: 64 * KiB, expect: 64 * KiB, noMdns: true, swarm: { bootstrap: [BOOT], ...swarm } }
  if (impl === 'ours') opts.swarm.multicast = false
  return lab.spawn(0, H('peer.js'), [impl, JSON.stringify(opts)])
}

async function exchange (a, nameA, b, nameB) {
  const ra = await a.wait('received', 20000)
  const rb = await b.wait('received', 20000)
  assert.strictEqual(ra.sha256, patternHash(nameB, 64 * KiB), 'data from ' + nameB)
  assert.strictEqual(rb.sha256, patternHash(nameA, 64 * KiB), 'data from ' + nameA)
}

const withLoopback = fn => withLab(Lab.loopback(), fn)

test('ours announces through reference DHT nodes; hyperswarm 2.15.3 looks up and connects', () => withLoopback(async lab => {
  await jsTestnet(lab)
  const t = topic('dht ours announces')
  const ours = peer(lab, 'ours', 'ours')
  await ours.wait('ready')
  // Our announce is stored before the lookup starts (the reference looks
  // up once per 5-10 min round).
  await announced(ours, t)
  const ref = peer(lab, 'hyperswarm', 'ref')
  await ref.wait('ready')
  ref.send({ cmd: 'join', topic: t, opts: { announce: false, lookup: true } })
  const p = await ref.wait('peer', 20000)
  assert.ok(p.referrer, 'a DHT peer comes with its referrer')
  const c = await ref.wait('connection', 20000)
  assert.strictEqual(c.client, true)
  const co = await ours.wait('connection', 20000)
  assert.strictEqual(co.client, false)
  await exchange(ours, 'ours', ref, 'ref')
}))

test('hyperswarm 2.15.3 announces through reference DHT nodes; ours looks up and connects', () => withLoopback(async lab => {
  await jsTestnet(lab)
  const t = topic('dht reference announces')
  const ref = peer(lab, 'hyperswarm', 'ref')
  await ref.wait('ready')
  await announced(ref, t)
  const ours = peer(lab, 'ours', 'ours')
  await ours.wait('ready')
  ours.send({ cmd: 'join', topic: t, opts: { announce: false, lookup: true } })
  const p = await ours.wait('peer', 20000)
  assert.strictEqual(p.local, false)
  assert.deepStrictEqual(Object.keys(p.referrer).sort(), ['host', 'port'])
  const c = await ours.wait('connection', 20000)
  assert.strictEqual(c.client, true)
  await ref.wait('connection', 20000)
  await exchange(ours, 'ours', ref, 'ref')
}))

test('two of ours joining at the same moment find each other through the DHT at once', () => withLoopback(async lab => {
  await jsTestnet(lab)
  const t = topic('dht simultaneous')
  const a = peer(lab, 'ours', 'a')
  const b = peer(lab, 'ours', 'b')
  await a.wait('ready')
  await b.wait('ready')
  const start = Date.now()
  a.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  b.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  await a.wait('connection', 10000)
  await b.wait('connection', 10000)
  assert.ok(Date.now() - start < 10000)
  await exchange(a, 'a', b, 'b')
}))

test('our standalone bootstrap node serves reference nodes; two reference swarms meet through it', () => withLoopback(async lab => {
  const { spawn } = require('child_process')
  const boot = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, DHT_BIN, '--host', '127.0.0.1', '--port', '49737'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  boot.stderr.on('data', d => { log += d })
  const exited = new Promise(resolve => boot.on('exit', (code, signal) => resolve({ code, signal })))
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bootstrap node did not start: ' + log)), 10000)
      boot.stderr.on('data', () => { if (/listening/.test(log)) { clearTimeout(timer); resolve() } })
    })
    const nodes = lab.spawn(0, H('js-dht.js'), ['nodes', '4', BOOT])
    await nodes.wait('ready', 30000)
    const t = topic('dht our bootstrap')
    const a = peer(lab, 'hyperswarm', 'a')
    const b = peer(lab, 'hyperswarm', 'b')
    await a.wait('ready')
    await announced(a, t)
    await b.wait('ready')
    b.send({ cmd: 'join', topic: t, opts: { announce: false, lookup: true } })
    await b.wait('connection', 20000)
    await a.wait('connection', 20000)
    await exchange(a, 'a', b, 'b')
  } finally {
    boot.kill('SIGTERM')
    const { code, signal } = await exited
    assert.strictEqual(signal, null, 'exits by itself on SIGTERM')
    assert.strictEqual(code, 0)
    assert.match(log, /stopped/)
  }
}))

test('mixed network of 10 reference and 10 Rust DHT nodes: every Rust node is up and in a reference routing table; either kind finds either kind', () => withLoopback(async lab => {
  const { spawn } = require('child_process')
  const members = await jsTestnet(lab, 10)
  const rust = []
  try {
    for (let i = 0; i < 10; i++) {
      const port = 30000 + i // below the ephemeral range: no bind(0) here takes it
      const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, DHT_BIN, '--host', '127.0.0.1', '--port', String(port), '--bootstrap', BOOT], { stdio: ['ignore', 'ignore', 'pipe'] })
      const node = { port, proc, log: '', exit: null }
      proc.stderr.on('data', d => { node.log += d })
      proc.on('exit', (code, signal) => { node.exit = { code, signal } })
      rust.push(node)
    }
    // Each Rust node says it listens on its port, or the test fails here.
    await Promise.all(rust.map(node => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Rust DHT node ${node.port} did not start: ${node.log}`)), 10000)
      const check = () => {
        if (node.log.includes(`listening on 127.0.0.1:${node.port}`)) {
          clearTimeout(timer)
          resolve()
        }
      }
      node.proc.stderr.on('data', check)
      node.proc.on('exit', () => {
        clearTimeout(timer)
        reject(new Error(`Rust DHT node ${node.port} exited (${JSON.stringify(node.exit)}): ${node.log}`))
      })
      check()
    })))
    // … and each is taken into a reference node's routing table, which
    // happens only after it answered that node's query with its id.
    for (const node of rust) {
      await members.wait(m => m.type === 'add-node' && m.port === node.port, 20000, `Rust node ${node.port} in a reference routing table`)
    }

    const tJs = topic('mixed js announcer')
    const tRs = topic('mixed rust announcer')
    // A reference DHT node announces port 7777; one of our swarms (a full
    // Rust DHT member) announces its own port.
    const jsAnn = lab.spawn(0, H('js-dht-peers.js'), [BOOT, 'announce', tJs, '7777'])
    assert.strictEqual((await jsAnn.wait('announced', 20000)).error, null)
    const ours = peer(lab, 'ours', 'ours-announcer', { ephemeral: false })
    await ours.wait('ready')
    await announced(ours, tRs)
    ours.send({ cmd: 'stats' })
    const { address } = await ours.wait('stats')

    // Reference lookups.
    const f1 = await lookupUntil(lab, tRs, peers => peers.some(p => p.port === address.port), 3)
    assert.ok(f1.peers.some(p => p.port === address.port), 'a reference lookup finds our announcement: ' + JSON.stringify(f1))
    const jsFindsJs = lab.spawn(0, H('js-dht-peers.js'), [BOOT, 'lookup', tJs])
    assert.ok((await jsFindsJs.wait('found', 20000)).peers.some(p => p.port === 7777))

    // Our lookups (a Rust DHT node inside our swarm).
    const looker = peer(lab, 'ours', 'ours-looker', { ephemeral: false })
    await looker.wait('ready')
    looker.send({ cmd: 'join', topic: tJs, opts: { announce: false, lookup: true } })
    looker.send({ cmd: 'join', topic: tRs, opts: { announce: false, lookup: true } })
    await looker.wait(m => m.type === 'peer' && m.port === 7777, 20000, 'the reference announcer')
    await looker.wait(m => m.type === 'peer' && m.port === address.port, 20000, 'our announcer')

    // The Rust nodes are still up and still in the reference routing tables.
    members.messages = members.messages.filter(m => m.type !== 'table')
    members.send({ cmd: 'table' })
    const { ports } = await members.wait('table', 5000)
    for (const node of rust) {
      assert.strictEqual(node.exit, null, `Rust node ${node.port} still running: ${node.log}`)
      assert.ok(ports.includes(node.port), `Rust node ${node.port} in a reference routing table at the end`)
    }
  } finally {
    for (const node of rust) node.proc.kill('SIGKILL')
  }
}))

test('an empty, unresolvable or dead bootstrap list warns, and LAN discovery still works', () => withLoopback(async lab => {
  const t = topic('dht bad bootstrap')
  const cases = [[], ['no-such-host.invalid:49737'], ['127.0.0.1:9']]
  const peers = cases.map((bootstrap, i) => lab.spawn(0, H('peer.js'), ['ours', JSON.stringify({ name: 'p' + i, send: KiB, expect: KiB, swarm: { bootstrap } })]))
  for (const p of peers) await p.wait('ready')
  for (const p of peers) p.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  for (const p of peers) {
    const w = await p.wait('warning', 15000)
    assert.match(w.message, /bootstrap/)
  }
  // mDNS on the lab's loopback still connects them.
  for (const p of peers) await p.wait('received', 20000)
}))

test('leave unannounces: a reference lookup stops finding us', () => withLoopback(async lab => {
  await jsTestnet(lab)
  const t = topic('dht leave unannounces')
  const ours = peer(lab, 'ours', 'ours', { ephemeral: false })
  await ours.wait('ready')
  await announced(ours, t)
  ours.send({ cmd: 'stats' })
  const { address } = await ours.wait('stats')
  const listed = peers => peers.some(p => p.port === address.port)
  // The positive control: a reference lookup finds the announcement.
  const before = await lookupUntil(lab, t, listed, 3)
  assert.ok(listed(before.peers), 'announced: ' + JSON.stringify(before.peers))
  ours.send({ cmd: 'leave', topic: t })
  // Lookups until one no longer finds us (the unannounce has no event).
  const after = await lookupUntil(lab, t, peers => !listed(peers), 10)
  assert.ok(!listed(after.peers), 'still listed after leave: ' + JSON.stringify(after.peers))
}))

// Runs the reference client of helpers/js-dht-stores.js in the lab: `ops`
// in order, one JSON answer per op.
async function storesClient (lab, ops) {
  const c = lab.spawn(0, H('js-dht-stores.js'), ['client', BOOT, JSON.stringify(ops)])
  const { code } = await c.exited
  assert.strictEqual(code, 0, 'the reference client ran its ops: ' + c.stderr.slice(-1000))
  return c.stdout.trim().split('\n').map(line => JSON.parse(line))
}

test('reference clients put and get records through a network of only hyperswarm-dht binaries; forged, older and oversized records are refused and the nodes stay up', () => withLoopback(async lab => {
  const { spawn } = require('child_process')
  const nodes = []
  const start = (port, extra) => {
    const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, DHT_BIN, '--host', '127.0.0.1', '--port', String(port), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] })
    const node = { port, proc, log: '', exit: null }
    proc.stderr.on('data', d => { node.log += d })
    proc.on('exit', (code, signal) => { node.exit = { code, signal } })
    nodes.push(node)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`DHT node ${port} did not start: ${node.log}`)), 10000)
      const check = () => { if (node.log.includes(`listening on 127.0.0.1:${port}`)) { clearTimeout(timer); resolve() } }
      proc.stderr.on('data', check)
    })
  }
  try {
    await start(49737, ['--ephemeral'])
    for (let i = 0; i < 4; i++) await start(30200 + i, ['--bootstrap', BOOT])
    // The members' first walks (to their own ids) have gone out and come back.
    await new Promise(resolve => setTimeout(resolve, 1000))

    const seed = '01'.repeat(32)
    const hex = s => Buffer.from(s).toString('hex')
    const put = await storesClient(lab, [
      { op: 'mput', seed, salt: 'profile', seq: 0, value: hex('first') },
      { op: 'mput', seed, salt: 'profile', seq: 1, value: hex('second') },
      { op: 'mput', seed, seq: 0, value: hex('unsalted') },
      { op: 'iput', value: hex('immutable bytes') }
    ])
    for (const r of put) assert.strictEqual(r.error, undefined, 'put: ' + JSON.stringify(r))
    const key = put[3].key

    const bad = await storesClient(lab, [
      { op: 'mput', seed, salt: 'profile', seq: 0, value: hex('older') },
      { op: 'mput', seed, seq: 7, value: hex('forged'), forge: true },
      { op: 'iput', value: '00'.repeat(1001) }
    ])
    assert.strictEqual(bad[0].error, 'ERR_SEQ_MUST_EXCEED_CURRENT', 'a lower seq: ' + JSON.stringify(bad[0]))
    assert.ok(bad[1].warnings.length >= 1 && bad[1].warnings.every(w => w === 'ERR_INVALID_INPUT'), 'a forged signature is refused by every node that answered: ' + JSON.stringify(bad[1]))
    assert.strictEqual(bad[2].throws, 'Value size must be <= 1000')

    const got = await storesClient(lab, [
      { op: 'mget', seed, salt: 'profile', seq: 0 },
      { op: 'mget', seed, seq: 0 },
      { op: 'iget', key }
    ])
    assert.strictEqual(Buffer.from(got[0].value, 'hex').toString(), 'second')
    assert.strictEqual(got[0].seq, 1)
    assert.strictEqual(Buffer.from(got[1].value, 'hex').toString(), 'unsalted', 'the forged record was not stored')
    assert.strictEqual(got[1].seq, 0)
    assert.strictEqual(Buffer.from(got[2].value, 'hex').toString(), 'immutable bytes')
    for (const node of nodes) assert.strictEqual(node.exit, null, `node ${node.port} is still up: ${node.log.slice(-500)}`)
  } finally {
    for (const node of nodes) node.proc.kill('SIGTERM')
  }
}))
