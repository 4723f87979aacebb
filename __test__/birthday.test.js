'use strict'
// Birthday punching in the NAT lab (helpers/natlab.js): ours behind a
// symmetric router (fully random ports) and ours behind a cone router meet
// on one topic and connect directly over uTP, with either one joining
// first. Measured and printed per run: time from the second join to both
// hellos, the random side's extra sockets, the consistent side's probes.
// Asserted: the connection is uTP between the two public addresses, made
// by a birthday punch (stats), within the bounds (<= 256 sockets, probes
// <= 50/s over the session), and every extra socket of the random side's
// process is closed afterwards (its /proc/<pid>/fd count is back where it
// was before the punch).
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const { NatLab } = require('./helpers/natlab')
const { NAT_PEER, JOIN_GAP } = require('./helpers/nat-matrix')
const { topic } = require('./helpers/data')
const { ask, joined, until, natTypeBecomes } = require('./helpers/nat-peer-ipc')

assertIsolated()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// One run: kinds[0] joins the shared topic first, kinds[1] JOIN_GAP later.
async function run (kinds, index, { transit = false } = {}) {
  const lab = await NatLab.create({ peers: kinds, transit })
  const peers = kinds.map((k, i) => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: k, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 120000 }))
  try {
    await Promise.all(peers.map(p => p.wait('ready')))
    // A topic of its own first: binds the sockets and lets the DHT
    // classify each NAT, so the descriptor count below is the quiescent
    // one and the classes are known when the shared topic meets.
    await Promise.all(peers.map((p, i) => joined(p, topic(`birthday warm-up ${i} ${index} ${process.pid} ${Date.now()}`))))
    const want = { symmetric: 'random', cone: 'consistent', 'cone-nofw': 'consistent' }
    for (const [i, p] of peers.entries()) {
      assert.strictEqual(await natTypeBecomes(p, want[kinds[i]]), want[kinds[i]], `${kinds[i]} classified`)
    }
    const r = kinds.indexOf('symmetric')
    const c = 1 - r
    const before = await ask(peers[r], 'stats', 'stats')
    assert.strictEqual(before.stats.birthdayStarted, 0)

    const t = topic(`birthday ${index} ${process.pid} ${Date.now()}`)
    peers[0].send({ cmd: 'join', topic: t })
    await sleep(JOIN_GAP)
    const joinedSecond = Date.now()
    peers[1].send({ cmd: 'join', topic: t })
    // Sample the random side's descriptors while the punch runs.
    let peakFds = before.fds
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const s = await ask(peers[r], 'stats', 'stats').catch(() => null)
        if (s) peakFds = Math.max(peakFds, s.fds)
        await sleep(100)
      }
    })()
    const got = await Promise.all(peers.map(p => p.wait('received', 45000)))
    const ms = Date.now() - joinedSecond
    sampling = false
    await sampler

    const conn = i => peers[i].messages.find(m => m.type === 'connection' && m.conn === got[i].conn)
    assert.deepStrictEqual(got.map(g => g.transport), ['utp', 'utp'], 'over uTP')
    // Directly: each side sees the other's router.
    assert.strictEqual(conn(r).remoteAddress, lab.peers[c].publicIp)
    assert.strictEqual(conn(c).remoteAddress, lab.peers[r].publicIp)

    // A birthday punch ran on both sides and made the connection on the
    // random side: over its winning socket, or on its main socket, whose
    // mapping for the peer a probe opened so the ordinary punch's retry
    // got through (symmetric × cone never connects without it).
    const sr = await until(peers[r], s => s.stats.birthdayConnections >= 1 && s.stats.birthdaySocketsOpen <= 1 && s.stats.birthdayLastMs > 0, 10000)
    const sc = await until(peers[c], s => s.stats.birthdayStarted >= 1 && s.stats.birthdayLastMs > 0, 10000)
    assert.strictEqual(sr.stats.birthdayStarted, 1, 'one birthday punch on the random side')
    assert.strictEqual(sc.stats.birthdayStarted, 1, 'one on the consistent side')
    assert.strictEqual(sr.stats.birthdayConnections, 1, 'the connection is the birthday punch\'s')
    // The first joiner is punched by a peer it does not dial: it proves the
    // peer's address with a challenge through the referrer before it sends
    // a single birthday datagram, and the dialler's echo lets it start.
    const first = [sr, sc][kinds[0] === 'symmetric' ? 0 : 1].stats
    const second = [sr, sc][kinds[0] === 'symmetric' ? 1 : 0].stats
    assert.deepStrictEqual([first.birthdayChallengesSent >= 1, first.birthdayChallengesEchoed], [true, 1], 'the punched side challenged, and its echo came')
    assert.strictEqual(second.birthdayChallengesSent, 0, 'the dialler trusts the address it found itself')
    const path = sr.stats.birthdayViaMain ? 'main socket' : 'winning socket'
    const sockets = sr.stats.birthdayLastSocketsOpened
    const probes = sc.stats.birthdayLastProbesSent
    assert.ok(sockets >= 1 && sockets <= 256, `${sockets} extra sockets`)
    assert.ok(peakFds - before.fds <= 256 + 8, `descriptors ${before.fds} → peak ${peakFds}`)
    assert.strictEqual(sc.stats.birthdaySocketsOpened, 0, 'the consistent side opens no socket')
    assert.ok(probes >= 1 && probes <= Math.ceil(sc.stats.birthdayLastMs / 20) + 1, `${probes} probes in ${sc.stats.birthdayLastMs} ms: at most 50/s`)
    assert.strictEqual(sr.stats.birthdaySocketsOpen, sr.stats.birthdayViaMain ? 0 : 1, 'only the winning socket is left, carrying the connection')

    // Closing the connection closes the last extra socket: the process's
    // descriptors come back to where they were before the punch.
    for (const p of peers) p.send({ cmd: 'close-conns' })
    const after = await until(peers[r], s => s.stats.birthdaySocketsOpen === 0 && s.fds === before.fds, 20000)
    assert.strictEqual(after.stats.birthdaySocketsOpen, 0)
    assert.strictEqual(after.fds, before.fds, `descriptors of the random side: ${before.fds} before, ${after.fds} after`)
    return { kinds, ms, sockets, probes, path, peakExtraFds: peakFds - before.fds, randomSessionMs: sr.stats.birthdayLastMs }
  } finally {
    for (const p of peers) p.send({ cmd: 'exit' })
    await lab.destroy()
  }
}

const RUNS = Number(process.env.BIRTHDAY_RUNS || 1)

// The third: a consistent router without a WAN input firewall, with ISP
// hops (natlab.js `transit`): the openers must die before its router, or it
// masquerades the probes to their ports from another port.
for (const [kinds, transit] of [[['symmetric', 'cone'], false], [['cone', 'symmetric'], false], [['symmetric', 'cone-nofw'], true]]) {
  test(`birthday punch: ours behind ${kinds[0]} (joins first) × ours behind ${kinds[1]}${transit ? ' (ISP hops)' : ''} connect directly over uTP`, { timeout: 120000 * RUNS }, async () => {
    const results = []
    for (let i = 0; i < RUNS; i++) {
      const res = await run(kinds, i, { transit })
      console.log(`birthday ${kinds.join(' × ')}: connected in ${res.ms} ms over the ${res.path}; random side ${res.sockets} extra sockets (peak ${res.peakExtraFds} extra descriptors), consistent side ${res.probes} probes`)
      results.push(res)
    }
    if (RUNS > 1) {
      const ms = results.map(r => r.ms).sort((a, b) => a - b)
      console.log(`birthday ${kinds.join(' × ')}: ${RUNS} runs, median ${ms[Math.floor(RUNS / 2)]} ms, p90 ${ms[Math.min(RUNS - 1, Math.floor(RUNS * 0.9))]} ms`)
    }
  })
}

// A JS peer never sends a capability record, so ours never starts a
// birthday punch with it: no extra socket, no probe, whichever side is
// random. (Whether the pair connects is nat.test.js's business: it holds
// ours to the reference's matrix.)
test('birthday punch: never with a reference peer (hyperswarm 2.15.3), in either NAT placement', { timeout: 120000 }, async () => {
  // The two placements in labs of their own, at once: most of each is waiting.
  await Promise.all([[['symmetric', 'cone'], ['ours', 'hyperswarm']], [['symmetric', 'cone'], ['hyperswarm', 'ours']]].map(async ([kinds, impls]) => {
    const lab = await NatLab.create({ peers: kinds })
    const peers = kinds.map((k, i) => lab.spawn(i, NAT_PEER, [impls[i], JSON.stringify({ name: k, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 120000 }))
    try {
      await Promise.all(peers.map(p => p.wait('ready')))
      const o = impls.indexOf('ours')
      await joined(peers[o], topic(`birthday mixed warm-up ${process.pid} ${Date.now()}`))
      const t = topic(`birthday mixed ${impls.join(' ')} ${process.pid} ${Date.now()}`)
      peers[0].send({ cmd: 'join', topic: t })
      await sleep(JOIN_GAP)
      peers[1].send({ cmd: 'join', topic: t })
      // Long enough for both sides' lookups, dials and punches to fail.
      await peers[1 - o].wait('peer', 15000).catch(() => null)
      await sleep(12000)
      const s = (await ask(peers[o], 'stats', 'stats')).stats
      assert.ok(peers.some(p => p.messages.some(m => m.type === 'peer')), 'the peers found each other')
      assert.deepStrictEqual(
        [s.birthdayStarted, s.birthdaySocketsOpened, s.birthdayProbesSent, s.peersOursSeen],
        [0, 0, 0, 0],
        `ours (${kinds[o]}) with a reference peer (${kinds[1 - o]})`
      )
    } finally {
      for (const p of peers) p.send({ cmd: 'exit' })
      await lab.destroy()
    }
  }))
})
