'use strict'
// LAN discovery over mDNS between two hosts of a lab, ours with ours and ours
// with the reference stack, and data through the connections it makes.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { Lab, assertIsolated, withLab } = require('./helpers/netns')
const { patternHash, topic } = require('./helpers/data')

assertIsolated()
const PEER = path.join(__dirname, 'helpers', 'peer.js')
const MiB = 1024 * 1024

const withLan = fn => withLab(Lab.lan(2), fn)

// Starts a peer on host `i` that sends and expects `bytes` on every connection.
async function start (lab, i, impl, name, bytes, swarm = {}) {
  const child = lab.spawn(i, PEER, [impl, JSON.stringify({ name, send: bytes, expect: bytes, swarm })])
  await child.wait('ready')
  return child
}

test('two of our swarms find each other on a LAN and move 1 MiB each way', () => withLan(async lab => {
  const t = topic('lan ours-ours')
  const a = await start(lab, 0, 'ours', 'a', MiB)
  const b = await start(lab, 1, 'ours', 'b', MiB)
  a.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  b.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  await a.wait('connection')
  await b.wait('connection')
  const fromB = patternHash('b', MiB)
  const fromA = patternHash('a', MiB)
  const ra = await a.wait(m => m.type === 'received', 20000, 'data from b')
  const rb = await b.wait(m => m.type === 'received', 20000, 'data from a')
  assert.strictEqual(ra.sha256, fromB)
  assert.strictEqual(rb.sha256, fromA)
  assert.strictEqual(ra.bytes, MiB)
  // The peer each side found is the other host, on its LAN address.
  const pa = await a.wait('peer')
  assert.strictEqual(pa.host, '10.201.0.2')
  assert.strictEqual(pa.local, true)
}))

for (const [label, ref, refOpts, ourOpts] of [
  ['reference announces, ours looks up', 'hyperswarm', { announce: true, lookup: false }, { announce: false, lookup: true }],
  ['ours announces, reference looks up', 'hyperswarm', { announce: false, lookup: true }, { announce: true, lookup: false }],
  ['seed reference (network 0.0.4) announces, ours looks up', 'network004', { announce: true, lookup: false }, { announce: false, lookup: true }],
  ['ours announces, seed reference (network 0.0.4) looks up', 'network004', { announce: false, lookup: true }, { announce: true, lookup: false }]
]) {
  test(`interop over mDNS only: ${label}`, () => withLan(async lab => {
    const t = topic('lan interop ' + label)
    const theirs = await start(lab, 0, ref, 'ref', 256 * 1024)
    const ours = await start(lab, 1, 'ours', 'ours', 256 * 1024)
    theirs.send({ cmd: 'join', topic: t, opts: refOpts })
    ours.send({ cmd: 'join', topic: t, opts: ourOpts })
    const co = await ours.wait('connection')
    const ct = await theirs.wait('connection')
    // Exactly the side that looked up dialled.
    assert.strictEqual(co.client, ourOpts.lookup)
    assert.strictEqual(ct.client, refOpts.lookup)
    const ro = await ours.wait('received', 20000)
    const rt = await theirs.wait('received', 20000)
    assert.strictEqual(ro.sha256, patternHash('ref', 256 * 1024))
    assert.strictEqual(rt.sha256, patternHash('ours', 256 * 1024))
  }))
}

test('multicast: false sends no multicast at all', () => withLan(async lab => {
  const t = topic('lan quiet')
  const quiet = lab.countMulticast(0)
  const loud = lab.countMulticast(1)
  const a = await start(lab, 0, 'ours', 'a', 0, { multicast: false })
  const b = await start(lab, 1, 'ours', 'b', 0)
  a.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  b.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  await a.wait('joined')
  await b.wait('joined')
  // Control: the default swarm, joined at the same moment, sends its
  // queries; by the time it sent two, the quiet one had the same chance.
  const deadline = Date.now() + 10000
  while (loud() < 2) {
    if (Date.now() > deadline) throw new Error(`control: the default swarm sent ${loud()} multicast packets`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  assert.strictEqual(quiet(), 0, 'the swarm with multicast: false sent multicast')
  a.send({ cmd: 'stats' })
  const s = await a.wait('stats')
  assert.strictEqual(s.stats.multicastSent, 0)
}))

test('a malformed mDNS packet is dropped and counted; discovery still works', () => withLan(async lab => {
  const t = topic('lan malformed')
  const a = await start(lab, 0, 'ours', 'a', 1024)
  a.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  await a.wait('joined')
  lab.exec(1, [process.execPath, path.join(__dirname, 'helpers', 'send-garbage.js')])
  const b = await start(lab, 1, 'ours', 'b', 1024)
  b.send({ cmd: 'join', topic: t, opts: { announce: true, lookup: true } })
  await a.wait('received')
  a.send({ cmd: 'stats' })
  const s = await a.wait('stats')
  assert.ok(s.stats.mdnsMalformed >= 3, `malformed count ${s.stats.mdnsMalformed}`)
}))
