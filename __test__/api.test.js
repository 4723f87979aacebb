'use strict'
// The seed API's contract: argument checking, calls after destroy, faults
// from peers, and a clean exit after destroy.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawn } = require('child_process')
const { Lab, assertIsolated } = require('./helpers/netns')
const { topic } = require('./helpers/data')
const { hasNft, refuseTcp } = require('./conformance/refuse-tcp')
const { within, sleep, fixedPort } = require('./conformance/wait')
const network = require('..')

assertIsolated()
const PEER = path.join(__dirname, 'helpers', 'peer.js')
const RUDE = path.join(__dirname, 'helpers', 'rude.js')

test('the export is a factory and an EventEmitter', () => {
  const net = network({ multicast: false })
  assert.ok(net instanceof require('events').EventEmitter)
  assert.ok(net instanceof network.Network)
  assert.strictEqual(net.address(), null, 'not bound before the first join')
  net.destroy()
})

test('bad arguments throw TypeErrors that name the argument', () => {
  assert.throws(() => network('nope'), { name: 'TypeError', message: /options/ })
  assert.throws(() => network({ bootstrap: 'host:1' }), { name: 'TypeError', message: /bootstrap/ })
  assert.throws(() => network({ bootstrap: ['no port'] }), { name: 'TypeError', message: /bootstrap/ })
  assert.throws(() => network({ ephemeral: 'yes' }), { name: 'TypeError', message: /ephemeral/ })
  assert.throws(() => network({ preferredPort: 70000 }), { name: 'TypeError', message: /preferredPort/ })
  assert.throws(() => network({ multicast: 3 }), { name: 'TypeError', message: /multicast/ })
  const net = network({ multicast: false })
  try {
    for (const bad of [undefined, null, 'a'.repeat(32), Buffer.alloc(31), Buffer.alloc(33), 42, {}]) {
      assert.throws(() => net.join(bad), { name: 'TypeError', message: /topic/ })
      assert.throws(() => net.leave(bad), { name: 'TypeError', message: /topic/ })
    }
    assert.throws(() => net.join(Buffer.alloc(32), 'announce'), { name: 'TypeError', message: /options/ })
    assert.throws(() => net.connect(null, () => {}), { name: 'TypeError', message: /peer/ })
    assert.throws(() => net.connect({ host: 1, port: 1 }, () => {}), { name: 'TypeError', message: /peer\.host/ })
    assert.throws(() => net.connect({ host: 'h', port: 0 }, () => {}), { name: 'TypeError', message: /peer\.port/ })
    assert.throws(() => net.connect({ host: 'h', port: 1.5 }, () => {}), { name: 'TypeError', message: /peer\.port/ })
    assert.throws(() => net.connect({ host: 'h', port: 1 }), { name: 'TypeError', message: /callback/ })
    assert.throws(() => net.destroy('cb'), { name: 'TypeError', message: /callback/ })
  } finally {
    net.destroy()
  }
})

test('a 32-byte Uint8Array is accepted as a topic', (t, done) => {
  const net = network({ multicast: false })
  net.join(new Uint8Array(32), { lookup: true })
  net.once('listening', () => {
    assert.ok(net.address().port > 0)
    net.destroy(done)
  })
})

test('calls after destroy throw an Error; destroy is idempotent', async () => {
  const net = network({ multicast: false })
  let calls = 0
  await new Promise(resolve => net.destroy(() => { calls++; resolve() }))
  await new Promise(resolve => net.destroy(() => { calls++; resolve() }))
  assert.strictEqual(calls, 2)
  assert.throws(() => net.join(Buffer.alloc(32)), { name: 'Error', message: /destroyed/ })
  assert.throws(() => net.leave(Buffer.alloc(32)), { name: 'Error', message: /destroyed/ })
  assert.throws(() => net.connect({ host: '127.0.0.1', port: 1 }, () => {}), { name: 'Error', message: /destroyed/ })
  assert.strictEqual(net.address(), null)
})

test('connect to a closed port calls back with an error', async () => {
  const net = network({ multicast: false })
  const err = await new Promise(resolve => net.connect({ host: '127.0.0.1', port: 1 }, resolve))
  assert.match(err.message, /connect/i)
  await new Promise(resolve => net.destroy(resolve))
})

test('pending connects fail with an error when the network is destroyed', async (t) => {
  assert.ok(hasNft(), 'nftables (nft) is needed to swallow SYNs: .ci/run installs it')
  // SYNs to this port are swallowed, so the dial stays pending: only
  // destroy (or the 10 s connect timeout, far later) can end it.
  const port = fixedPort()
  const syns = refuseTcp(t, port, 'drop')
  const net = network({ multicast: false, bootstrap: [] })
  let calledBack = null
  const p = new Promise(resolve => net.connect({ host: '127.0.0.1', port }, (err, socket) => {
    calledBack = Date.now()
    resolve({ err, socket })
  }))
  // The positive control: the dial reached the port and is still pending.
  await within((async () => { while (syns() === 0) await sleep(20) })(), 'the dial\'s SYN')
  assert.strictEqual(calledBack, null, 'the dial is still pending before destroy')
  const destroyedAt = Date.now()
  net.destroy()
  const { err, socket } = await within(p, 'the pending connect\'s callback after destroy', 3000)
  assert.ok(err instanceof Error, 'an error')
  assert.ok(!socket, 'no socket')
  assert.ok(calledBack - destroyedAt < 2000, `called back ${calledBack - destroyedAt} ms after destroy`)
})

test('peers that reset or half-close never crash the process', async () => {
  const lab = Lab.loopback()
  try {
    const t = topic('rude peers')
    const ours = lab.spawn(0, PEER, ['ours', JSON.stringify({ bare: true, swarm: { multicast: false } })])
    await ours.wait('ready')
    ours.send({ cmd: 'join', topic: t, opts: { announce: true } })
    ours.send({ cmd: 'stats' })
    const { address } = await ours.wait('stats')
    for (const mode of ['reset', 'halfclose', 'reset']) {
      const rude = lab.spawn(0, RUDE, [mode, String(address.port)])
      await rude.wait('done')
    }
    // Outgoing: a server that resets every connection we make.
    const server = lab.spawn(0, RUDE, ['server'])
    const { port } = await server.wait('listening')
    ours.send({ cmd: 'connect', peer: { host: '127.0.0.1', port }, write: 'x'.repeat(100000) })
    const dialled = await ours.wait(m => m.type === 'connected' || m.type === 'connect-error')
    // The reset has arrived once the socket closed.
    if (dialled.type === 'connected') await ours.wait('connect-closed', 10000)
    // Still alive and serving.
    ours.messages.length = 0
    ours.send({ cmd: 'stats' })
    const s = await ours.wait('stats')
    assert.ok(s.stats.connectionsAccepted >= 3, `accepted ${s.stats.connectionsAccepted}`)
    assert.strictEqual(ours.proc.exitCode, null)
  } finally {
    await lab.destroy()
  }
})

test('after destroy calls back, the process exits by itself', async () => {
  const lab = Lab.loopback()
  try {
    const script = path.join(__dirname, 'helpers', 'exit-after-destroy.js')
    const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, process.execPath, script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', d => { out += d })
    proc.stderr.on('data', d => { err += d })
    const killer = setTimeout(() => proc.kill('SIGKILL'), 15000)
    const { code, signal } = await new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
    clearTimeout(killer)
    const exitedAt = Date.now()
    assert.strictEqual(signal, null, `killed: did not exit by itself. stdout: ${out} stderr: ${err}`)
    assert.strictEqual(code, 0, err)
    const m = /destroyed (\d+)/.exec(out)
    assert.ok(m, 'destroy callbacks ran: ' + out + err)
    assert.ok(exitedAt - Number(m[1]) < 2000, `exit took ${exitedAt - Number(m[1])} ms after destroy`)
  } finally {
    await lab.destroy()
  }
})

test('a punch that cannot succeed ends connect with an error within the timeout; destroy mid-punch is safe', { timeout: 30000 }, async () => {
  const lab = Lab.loopback()
  try {
    const { spawn } = require('child_process')
    const script = `
      const network = require(${JSON.stringify(path.join(__dirname, '..'))})
      const net = network({ multicast: false, bootstrap: [] })
      net.join(Buffer.alloc(32, 1), { announce: true })
      // Nothing listens on port 9, and the referrer is no DHT node.
      const peer = { host: '127.0.0.1', port: 9, referrer: { host: '127.0.0.1', port: 7, id: null } }
      const t0 = Date.now()
      net.connect(peer, err => {
        console.log(JSON.stringify({ err: err && err.message, ms: Date.now() - t0 }))
        // A second attempt, destroyed while its punch is in flight.
        net.connect(peer, () => {})
        setTimeout(() => net.destroy(() => console.log('destroyed')), 200)
      })
    `
    const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    proc.stdout.on('data', d => { out += d })
    proc.stderr.on('data', d => { err += d })
    const killer = setTimeout(() => proc.kill('SIGKILL'), 25000)
    const { code, signal } = await new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
    clearTimeout(killer)
    assert.strictEqual(signal, null, 'exits by itself: ' + out + err)
    assert.strictEqual(code, 0, err)
    const first = JSON.parse(out.split('\n')[0])
    assert.ok(first.err, 'connect called back with an error')
    assert.ok(first.ms <= 10500, `within the 10 s timeout (${first.ms} ms)`)
    assert.match(out, /destroyed/)
  } finally {
    await lab.destroy()
  }
})
