'use strict'
// Failure is loud and contained (issue 10): a panic in the engine task
// reaches JS as 'error' then 'close' and the process exits by itself; a
// panic in a napi method is a JS Error and the process goes on;
// hyperswarm-dht exits non-zero when its node task dies; and the event
// queue to JS is bounded: past the bound, peers are merged or dropped while
// connections still arrive. Panics are injected through test-only hooks
// (HYPERSWARM_NATIVE_TEST_PANIC).
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const fs = require('fs')
const os = require('os')
const { spawn } = require('child_process')
const { Lab, assertIsolated, withLab } = require('./helpers/netns')
const { topic } = require('./helpers/data')
const { dhtBinary } = require('./helpers/bins')

assertIsolated()
const ROOT = path.join(__dirname, '..')
const ATTACKER = path.join(__dirname, 'helpers', 'mdns-attacker.js')

const withLoopback = fn => withLab(Lab.loopback(), fn)

// A swarm with an open TCP connection to itself; then the engine panics.
const ENGINE_PANIC = `
const net = require('net')
const network = require(${JSON.stringify(ROOT)})
const swarm = network({ bootstrap: [] })
const order = []
swarm.on('error', err => { order.push('error'); process.send({ type: 'error', message: err.message }) })
swarm.on('close', () => {
  order.push('close')
  process.send({ type: 'close', order }, () => process.channel.unref())
})
let closedSockets = 0
swarm.on('connection', socket => {
  socket.on('error', () => {})
  socket.on('close', () => { closedSockets++ })
  process.send({ type: 'connection', port: swarm.address().port })
  process.send({ type: 'panicking' })
  swarm._engine.native._testPanic('engine')
})
swarm.join(Buffer.alloc(32, 7), { announce: true, lookup: false })
const client = net.connect(swarm.address().port, '127.0.0.1')
client.on('error', () => {})
client.on('close', () => process.send({ type: 'client-closed' }))
process.on('exit', () => { try { process.send({ type: 'exit', closedSockets }) } catch {} })
`

test('an engine panic gives error then close in JS, and the process exits by itself', () => withLoopback(async lab => {
  const child = lab.spawn(0, '-e', [ENGINE_PANIC], { env: { HYPERSWARM_NATIVE_TEST_PANIC: '1' }, timeoutMs: 30000 })
  // Control: the engine worked before the panic (it accepted a connection).
  await child.wait('connection', 15000)
  await child.wait('panicking')
  const err = await child.wait('error', 10000)
  assert.match(err.message, /swarm engine failed: injected test panic/)
  const close = await child.wait('close', 10000)
  assert.deepStrictEqual(close.order, ['error', 'close'])
  // The connection it held was closed with the engine, so nothing is left.
  await child.wait('client-closed', 10000)
  const { code, signal } = await Promise.race([
    child.exited,
    new Promise((resolve, reject) => setTimeout(() => reject(new Error('child did not exit by itself within 10 s')), 10000))
  ])
  assert.strictEqual(signal, null)
  assert.strictEqual(code, 0)
}))

// The network 2.x entry (which hyperswarm 2.x sits on): its listeners
// report the failure as a failing server would, the resource is closed after
// it, and the process exits by itself.
const NETWORK_PANIC = `
const network = require(${JSON.stringify(path.join(ROOT, 'network.js'))})
const nw = network({ bootstrap: [], multicast: false })
nw.tcp.on('error', err => process.send({ type: 'error', message: err.message }))
nw.tcp.on('close', () => process.send({ type: 'tcp-close' }))
nw.bind(err => {
  if (err) throw err
  process.send({ type: 'bound', port: nw.address().port })
  nw._engine.native._testPanic('engine')
  const poll = setInterval(() => {
    if (!nw.closed) return
    clearInterval(poll)
    nw.open(err => process.send({ type: 'reopen', message: err && err.message }))
  }, 10)
  setTimeout(() => clearInterval(poll), 10000).unref()
})
`

test('an engine panic under the network 2.x entry: the tcp listener errors and closes, the resource is closed, the process exits', () => withLoopback(async lab => {
  const child = lab.spawn(0, '-e', [NETWORK_PANIC], { env: { HYPERSWARM_NATIVE_TEST_PANIC: '1' }, timeoutMs: 30000 })
  const bound = await child.wait('bound', 15000)
  assert.ok(bound.port > 0, 'control: the resource was bound before the panic')
  const err = await child.wait('error', 10000)
  assert.match(err.message, /swarm engine failed: injected test panic/)
  await child.wait('tcp-close', 10000)
  const reopen = await child.wait('reopen', 10000)
  assert.strictEqual(reopen.message, 'Resource is closed')
  const { code, signal } = await Promise.race([
    child.exited,
    new Promise((resolve, reject) => setTimeout(() => reject(new Error('child did not exit by itself within 10 s')), 10000))
  ])
  assert.strictEqual(signal, null)
  assert.strictEqual(code, 0)
}))

test('a panic in a napi method is a JS Error; the process and the swarm go on', () => {
  const { NativeSwarm } = require('../binding')
  const events = []
  const swarm = new NativeSwarm({ multicast: false, bootstrap: [] }, ev => events.push(ev.kind))
  const before = process.env.HYPERSWARM_NATIVE_TEST_PANIC
  try {
    delete process.env.HYPERSWARM_NATIVE_TEST_PANIC
    assert.throws(() => swarm._testPanic('method'), /needs HYPERSWARM_NATIVE_TEST_PANIC=1/)
    process.env.HYPERSWARM_NATIVE_TEST_PANIC = '1'
    assert.throws(() => swarm._testPanic('method'), err => {
      assert.ok(err instanceof Error)
      assert.match(err.message, /injected test panic in a napi method/)
      return true
    })
  } finally {
    if (before === undefined) delete process.env.HYPERSWARM_NATIVE_TEST_PANIC
    else process.env.HYPERSWARM_NATIVE_TEST_PANIC = before
  }
  // Still alive: the same swarm binds and reports a port.
  const port = swarm.bind()
  assert.ok(port > 0)
  assert.strictEqual(swarm.port(), port)
  return new Promise(resolve => {
    const check = setInterval(() => {
      if (events.includes('close')) { clearInterval(check); resolve() }
    }, 10)
    swarm.destroy()
  })
})

function run (exe, args, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(exe, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr.on('data', d => { stderr += d })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('hyperswarm-dht still running after 10 s:\n' + stderr)) }, 10000)
    p.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stderr }) })
    if (env.STOP_WHEN_LISTENING) {
      p.stderr.on('data', () => { if (/listening on/.test(stderr)) p.kill('SIGTERM') })
    }
  })
}

test('hyperswarm-dht exits non-zero when its node task dies', async () => {
  const exe = dhtBinary()
  const dead = await run(exe, ['--host', '127.0.0.1', '--port', '0'], { HYPERSWARM_NATIVE_TEST_PANIC: 'node' })
  assert.strictEqual(dead.signal, null)
  assert.strictEqual(dead.code, 1, dead.stderr)
  assert.match(dead.stderr, /injected test panic in the DHT node task/)
  assert.match(dead.stderr, /node task died/)
  // Control: without the hook it runs until told to stop, then exits 0.
  const live = await run(exe, ['--host', '127.0.0.1', '--port', '0'], { STOP_WHEN_LISTENING: '1' })
  assert.strictEqual(live.code, 0, live.stderr)
  assert.match(live.stderr, /stopped/)
})

// Blocks its JS thread (as a busy app would) until a flag file appears,
// then counts what arrives.
const BLOCKED_LOOKER = `
const fs = require('fs')
const network = require(${JSON.stringify(ROOT)})
const swarm = network({ bootstrap: [] })
const [topicHex, flag] = process.argv.slice(1)
const ports = new Set()
let peers = 0
let connections = 0
swarm.on('peer', p => { peers++; ports.add(p.port) })
swarm.on('connection', s => { connections++; s.on('error', () => {}); s.destroy() })
swarm.join(Buffer.from(topicHex, 'hex'), { announce: false, lookup: true })
process.on('message', m => {
  if (m.cmd === 'block') {
    process.send({ type: 'blocking', port: swarm.address().port }, () => {
      const until = Date.now() + 20000
      const cell = new Int32Array(new SharedArrayBuffer(4))
      while (!fs.existsSync(flag) && Date.now() < until) Atomics.wait(cell, 0, 0, 20)
      // Let what was queued while we were blocked arrive, then report.
      const report = () => {
        const s = swarm.stats()
        if (s.eventsPending > 0) return setImmediate(report)
        process.send({ type: 'report', peers, distinct: ports.size, connections, stats: s })
      }
      setImmediate(report)
    })
  } else if (m.cmd === 'exit') process.exit(0)
})
process.send({ type: 'ready' })
`

test('the event queue to JS is bounded: past it peers are merged or dropped, connections never', () => withLoopback(async lab => {
  const t = topic('bounded event queue')
  const flag = path.join(os.tmpdir(), `hsn-unblock-${process.pid}-${Date.now()}`)
  const looker = lab.spawn(0, '-e', [BLOCKED_LOOKER, t, flag], { timeoutMs: 60000 })
  try {
    await looker.wait('ready')
    looker.send({ cmd: 'block' })
    const { port } = await looker.wait('blocking')
    // While its JS thread is blocked: 3,000 distinct peers, 300 copies of one
    // more (one after every 100 distinct ones: discovery itself reports a
    // LAN peer repeated within 1 s once, unless 64 others came between), and
    // 3 TCP connections among them (paced so that the socket buffer does
    // not drop them before the engine reads them).
    const flood = JSON.parse(lab.exec(0, [process.execPath, ATTACKER, JSON.stringify({
      cmd: 'flood', topic: t, host: '127.0.0.1', ports: [20001, 3000], repeats: 300, interleave: 100, connectPort: port, connections: 3, gapMs: 1
    })], { timeout: 30000 }).trim().split('\n').pop())
    assert.strictEqual(flood.connections, 3)
    fs.writeFileSync(flag, '')
    const r = await looker.wait('report', 30000)
    const s = r.stats
    console.log(`# event queue: ${s.mdnsReceived} mDNS answers received while JS was blocked; ` +
      `${r.peers} peer events delivered (${r.distinct} distinct), ${s.peersMerged} merged, ${s.peersDropped} dropped; ` +
      `${r.connections} of 3 connections delivered`)
    // Control: the flood reached the engine.
    assert.ok(s.mdnsReceived >= 2500, `only ${s.mdnsReceived} answers reached the engine`)
    assert.strictEqual(r.connections, 3, 'a connection was dropped')
    assert.ok(r.peers <= 1024, `${r.peers} peer events got through a bound of 1024`)
    assert.ok(s.peersDropped > 0, 'nothing was dropped past the bound')
    assert.ok(s.peersMerged > 0, 'repeated peers were not merged')
    // Every answer is accounted for: delivered, dropped, merged, or (its
    // copies within 1 s) reported once by discovery: 30 copies at most.
    assert.ok(r.peers + s.peersDropped + s.peersMerged >= s.mdnsReceived - 30 - 10,
      `${s.mdnsReceived} answers, ${r.peers} delivered + ${s.peersDropped} dropped + ${s.peersMerged} merged`)
  } finally {
    try { fs.unlinkSync(flag) } catch {}
    looker.send({ cmd: 'exit' })
  }
}))
