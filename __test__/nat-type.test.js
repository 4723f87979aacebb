'use strict'
// NAT classification in the NAT lab (helpers/natlab.js, DHT members in three
// /24s): natType() per router kind, nothing decided from one /24, and
// connect-test printing the class and each connection's path. Kept apart
// from nat.test.js, whose matrix alone takes most of a file's time budget.
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const { NatLab } = require('./helpers/natlab')
const { NAT_PEER } = require('./helpers/nat-matrix')
const { topic } = require('./helpers/data')

assertIsolated()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------
// NAT classification (src/dht/nat.rs): natType() from the addresses DHT
// nodes report, decided only when nodes of 3 or more /24s agree.

const CONNECT_TEST = require('path').join(__dirname, '..', 'bin', 'connect-test.js')

// Joins ours in every peer of `lab` and polls natType() until every peer
// has the class `want` names for its kind, or `ms` pass. Returns what each
// reported last, by kind.
async function natTypes (lab, want, ms) {
  const peers = lab.peers.map((p, i) => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: p.kind, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 60000 }))
  await Promise.all(peers.map(p => p.wait('ready')))
  const t = topic(`nat types ${process.pid} ${Date.now()}`)
  for (const p of peers) p.send({ cmd: 'join', topic: t })
  await Promise.all(peers.map(p => p.wait('flushed', 15000)))
  const seen = {}
  const deadline = Date.now() + ms
  for (let round = 0; round < 100; round++) {
    for (const [i, p] of peers.entries()) {
      const n = p.messages.filter(m => m.type === 'address').length
      p.send({ cmd: 'address' })
      const m = await p.wait(m => m.type === 'address' && p.messages.filter(x => x.type === 'address').length > n, 5000)
      seen[lab.peers[i].kind + i] = m.natType
    }
    if (lab.peers.every((p, i) => seen[p.kind + i] === want(p.kind)) || Date.now() > deadline) break
    await sleep(250)
  }
  return seen
}

test('natType: public is open, cone and cone-nofw consistent, symmetric random, once DHT nodes of three /24s report', { timeout: 90000 }, async () => {
  const lab = await NatLab.create({ peers: ['public', 'cone', 'symmetric', 'cone-nofw'] })
  try {
    const want = { public: 'open', cone: 'consistent', 'cone-nofw': 'consistent', symmetric: 'random' }
    const seen = await natTypes(lab, k => want[k], 15000)
    assert.deepStrictEqual(seen, { public0: 'open', cone1: 'consistent', symmetric2: 'random', 'cone-nofw3': 'consistent' })
  } finally {
    await lab.destroy()
  }
})

test('natType: DHT nodes of one /24 decide nothing, however many agree', { timeout: 60000 }, async () => {
  const lab = await NatLab.create({ peers: ['cone', 'symmetric'], dht: { nodes: 6, hosts: 1 } })
  try {
    // Give it the same time the three-/24 lab needed, and more.
    const seen = await natTypes(lab, () => 'never', 6000)
    assert.deepStrictEqual(seen, { cone0: 'unknown', symmetric1: 'unknown' })
  } finally {
    await lab.destroy()
  }
})

test('connect-test in the lab prints the NAT type and the path of each connection', { timeout: 90000 }, async () => {
  const lab = await NatLab.create({ peers: ['cone', 'public', 'cone'] })
  try {
    const name = `nat lab connect-test ${process.pid}`
    const t = topic(name) // connect-test joins sha256(name)
    const peers = [1, 2].map(i => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: 'p' + i, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 60000 }))
    await Promise.all(peers.map(p => p.wait('ready')))
    for (const p of peers) p.send({ cmd: 'join', topic: t })
    await Promise.all(peers.map(p => p.wait('flushed', 15000)))
    const cli = lab.spawn(0, CONNECT_TEST, ['--bootstrap', lab.bootstrap, name], { timeoutMs: 40000 })
    const out = () => cli.stdout
    const deadline = Date.now() + 30000
    const done = () => /NAT type: consistent \(/.test(out()) &&
      out().includes(`New connection! tcp client ${lab.peers[1].ip}:`) &&
      /New connection! utp \(hole-punched\) (client|server) 203\.0\.113\.12:/.test(out())
    while (!done() && Date.now() < deadline) await sleep(200)
    assert.ok(done(), 'connect-test output:\n' + out().split('\n').filter(l => !l.startsWith('    ')).join('\n') + '\nstderr:\n' + cli.stderr.slice(-1500))
  } finally {
    await lab.destroy()
  }
})
