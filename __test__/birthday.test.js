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

assertIsolated()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Sends `cmd` to peer `p` and waits for the next message of `type`.
async function ask (p, cmd, type, ms = 5000) {
  const n = p.messages.filter(m => m.type === type).length
  p.send({ cmd })
  return p.wait(m => m.type === type && p.messages.filter(x => x.type === type).indexOf(m) >= n, ms, type)
}

async function joined (p, t) {
  const n = p.messages.filter(m => m.type === 'flushed').length
  p.send({ cmd: 'join', topic: t })
  return p.wait(m => m.type === 'flushed' && p.messages.filter(x => x.type === 'flushed').indexOf(m) >= n, 15000, 'flushed')
}

// Polls until `pred(stats message)` holds or `ms` pass; returns the last.
async function until (p, pred, ms) {
  const deadline = Date.now() + ms
  let last
  for (let i = 0; i < 200; i++) {
    last = await ask(p, 'stats', 'stats')
    if (pred(last) || Date.now() > deadline) return last
    await sleep(250)
  }
  return last
}

// One run: kinds[0] joins the shared topic first, kinds[1] JOIN_GAP later.
async function run (kinds, index) {
  const lab = await NatLab.create({ peers: kinds })
  const peers = kinds.map((k, i) => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: k, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 120000 }))
  try {
    await Promise.all(peers.map(p => p.wait('ready')))
    // A topic of its own first: binds the sockets and lets the DHT
    // classify each NAT, so the descriptor count below is the quiescent
    // one and the classes are known when the shared topic meets.
    await Promise.all(peers.map((p, i) => joined(p, topic(`birthday warm-up ${i} ${index} ${process.pid} ${Date.now()}`))))
    const want = { symmetric: 'random', cone: 'consistent' }
    for (const [i, p] of peers.entries()) {
      let nat
      for (let k = 0; k < 60 && nat !== want[kinds[i]]; k++) {
        nat = (await ask(p, 'address', 'address')).natType
        if (nat !== want[kinds[i]]) await sleep(250)
      }
      assert.strictEqual(nat, want[kinds[i]], `${kinds[i]} classified`)
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

    // The session ended won on both sides.
    const sr = await until(peers[r], s => s.stats.birthdayWon >= 1 && s.stats.birthdaySocketsOpen <= 1, 10000)
    const sc = await until(peers[c], s => s.stats.birthdayWon >= 1, 10000)
    assert.strictEqual(sr.stats.birthdayWon, 1, 'the random side won a birthday punch')
    assert.strictEqual(sc.stats.birthdayWon, 1, 'the consistent side won it too')
    assert.strictEqual(sr.stats.birthdayConnections, 1, 'uTP over the winning socket')
    const sockets = sr.stats.birthdayLastSocketsOpened
    const probes = sc.stats.birthdayLastProbesSent
    assert.ok(sockets >= 1 && sockets <= 256, `${sockets} extra sockets`)
    assert.ok(peakFds - before.fds <= 256 + 8, `descriptors ${before.fds} → peak ${peakFds}`)
    assert.strictEqual(sc.stats.birthdaySocketsOpened, 0, 'the consistent side opens no socket')
    assert.ok(probes >= 1 && probes <= Math.ceil(sc.stats.birthdayLastMs / 20) + 1, `${probes} probes in ${sc.stats.birthdayLastMs} ms: at most 50/s`)
    assert.strictEqual(sr.stats.birthdaySocketsOpen, 1, 'only the winning socket is left, carrying the connection')

    // Closing the connection closes the last extra socket: the process's
    // descriptors come back to where they were before the punch.
    for (const p of peers) p.send({ cmd: 'close-conns' })
    const after = await until(peers[r], s => s.stats.birthdaySocketsOpen === 0 && s.fds === before.fds, 20000)
    assert.strictEqual(after.stats.birthdaySocketsOpen, 0)
    assert.strictEqual(after.fds, before.fds, `descriptors of the random side: ${before.fds} before, ${after.fds} after`)
    return { kinds, ms, sockets, probes, peakExtraFds: peakFds - before.fds, randomSessionMs: sr.stats.birthdayLastMs }
  } finally {
    for (const p of peers) p.send({ cmd: 'exit' })
    await lab.destroy()
  }
}

const RUNS = Number(process.env.BIRTHDAY_RUNS || 1)

for (const kinds of [['symmetric', 'cone'], ['cone', 'symmetric']]) {
  test(`birthday punch: ours behind ${kinds[0]} (joins first) × ours behind ${kinds[1]} connect directly over uTP`, { timeout: 120000 * RUNS }, async () => {
    const results = []
    for (let i = 0; i < RUNS; i++) {
      const res = await run(kinds, i)
      console.log(`birthday ${kinds.join(' × ')}: connected in ${res.ms} ms; random side ${res.sockets} extra sockets (peak ${res.peakExtraFds} extra descriptors), consistent side ${res.probes} probes`)
      results.push(res)
    }
    if (RUNS > 1) {
      const ms = results.map(r => r.ms).sort((a, b) => a - b)
      console.log(`birthday ${kinds.join(' × ')}: ${RUNS} runs, median ${ms[Math.floor(RUNS / 2)]} ms, p90 ${ms[Math.min(RUNS - 1, Math.floor(RUNS * 0.9))]} ms`)
    }
  })
}
