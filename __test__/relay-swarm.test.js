'use strict'
// The relay of last resort used by the swarm (issue 11 items 5 and 6): two
// peers of ours behind symmetric routers (fully random ports: no punch of
// any kind gets through) meet on a topic in the NAT lab.
//   - With `hyperswarm-dht --relay` on a public host of the lab, they find
//     it on the DHT's relay topic, pair there with the token from the nonce
//     one of them sent through the referrer, and connect: uTP through the
//     relay, `details.type === 'relay'`, hellos both ways, the relay's
//     counters show the pair and the bytes it forwarded.
//   - With a public peer of ours offering a relay (`relay: true`) instead
//     of the binary, the same.
//   - With no relay anywhere, both fail clearly inside the budget: a
//     'warning' that names the reason, and no connection.
//   - Two cone routers whose path drops UDP: every punch fails, and the
//     punched peer falls back to the relay (below).
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const { NatLab } = require('./helpers/natlab')
const { NAT_PEER, JOIN_GAP } = require('./helpers/nat-matrix')
const { topic } = require('./helpers/data')
const { startRelay, relayStats, stopRelay } = require('./helpers/relay-bin')
const { ask, joined, until, natTypeBecomes } = require('./helpers/nat-peer-ipc')

assertIsolated()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
/** Issue 11: slow paths get at most 35 s. */
const BUDGET_MS = 35000

/** Two symmetric peers of ours, classified random, then on one topic. */
async function meet (lab, peers, label) {
  await Promise.all(peers.map(p => p.wait('ready')))
  await Promise.all(peers.map((p, i) => joined(p, topic(`relay warm-up ${label} ${i} ${process.pid} ${Date.now()}`))))
  for (const p of peers) {
    assert.strictEqual(await natTypeBecomes(p, 'random'), 'random', 'a symmetric router is classified random')
  }
  const t = topic(`relay ${label} ${process.pid} ${Date.now()}`)
  peers[0].send({ cmd: 'join', topic: t })
  await sleep(JOIN_GAP)
  const joinedSecond = Date.now()
  peers[1].send({ cmd: 'join', topic: t })
  return joinedSecond
}

/** Both peers connected through `relayAddr` and said hello; returns ms. */
async function assertRelayed (lab, peers, joinedSecond, relayAddr) {
  const got = await Promise.all(peers.map(p => p.wait('received', BUDGET_MS + 10000)))
  const ms = Date.now() - joinedSecond
  const conn = i => peers[i].messages.find(m => m.type === 'connection' && m.conn === got[i].conn)
  assert.deepStrictEqual(got.map(g => g.transport), ['relay', 'relay'], 'through the relay')
  assert.deepStrictEqual([conn(0).infoType, conn(1).infoType], ['relay', 'relay'], "details.type === 'relay'")
  assert.deepStrictEqual([conn(0).relay, conn(1).relay], [relayAddr, relayAddr], 'details.relay names the relay both picked')
  // Each side sees the other's router as the peer's address.
  assert.strictEqual(conn(0).remoteAddress, lab.peers[1].publicIp)
  assert.strictEqual(conn(1).remoteAddress, lab.peers[0].publicIp)
  for (const p of peers) {
    // Counters refresh within a second (the engine's stats pass).
    const s = (await until(p, m => m.stats.relayConnections >= 1, 5000)).stats
    assert.strictEqual(s.relayConnections, 1, 'one relayed connection')
    assert.ok(s.relaySessionsPaired >= 1, JSON.stringify(s))
    assert.strictEqual(s.birthdayStarted, 0, 'random × random never tries a birthday punch')
  }
  assert.ok(ms <= BUDGET_MS, `connected in ${ms} ms, inside the ${BUDGET_MS} ms budget`)
  return ms
}

test('symmetric × symmetric (ours): connect through hyperswarm-dht --relay found on the DHT, details.type relay, data both ways', { timeout: 150000 }, async () => {
  const lab = await NatLab.create({ peers: ['symmetric', 'symmetric', 'public'] })
  const relayIp = lab.peers[2].publicIp
  const relay = startRelay(lab.peers[2].ns, ['--host', relayIp, '--port', '49737', '--bootstrap', lab.bootstrap, '--relay', '--relay-port', '49738'], { killAfterMs: 140000 })
  const peers = [0, 1].map(i => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: `s${i}`, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 140000 }))
  try {
    await relay.ready
    const joinedSecond = await meet(lab, peers, 'binary')
    const ms = await assertRelayed(lab, peers, joinedSecond, `${relayIp}:49738`)
    const s = await relayStats(relay)
    assert.strictEqual(s.pairsFormed, 1, JSON.stringify(s))
    assert.ok(s.forwarded >= 4, `the handshake and the hellos went through it: ${JSON.stringify(s)}`)
    console.log(`relay (binary): symmetric × symmetric connected through ${relayIp}:49738 in ${ms} ms; relay forwarded ${s.forwarded} datagrams`)
  } finally {
    for (const p of peers) p.send({ cmd: 'exit' })
    await stopRelay(relay)
    await lab.destroy()
  }
})

test('symmetric × symmetric (ours): connect through a public peer of ours that offers a relay (relay: true)', { timeout: 150000 }, async () => {
  const lab = await NatLab.create({ peers: ['symmetric', 'symmetric', 'public'] })
  const relayPeer = lab.spawn(2, NAT_PEER, ['ours', JSON.stringify({ name: 'relay', swarm: { bootstrap: [lab.bootstrap], relay: { port: 49800 } } })], { timeoutMs: 140000 })
  const peers = [0, 1].map(i => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: `s${i}`, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 140000 }))
  try {
    await relayPeer.wait('ready')
    // The swarm binds (and starts its relay) on its first join.
    await joined(relayPeer, topic(`relay peer ${process.pid} ${Date.now()}`))
    const joinedSecond = await meet(lab, peers, 'swarm')
    const ms = await assertRelayed(lab, peers, joinedSecond, `${lab.peers[2].publicIp}:49800`)
    console.log(`relay (swarm option): symmetric × symmetric connected in ${ms} ms`)
  } finally {
    for (const p of [...peers, relayPeer]) p.send({ cmd: 'exit' })
    await lab.destroy()
  }
})

test('symmetric × symmetric (ours) with no relay in the lab: fails clearly within the budget', { timeout: 120000 }, async () => {
  const lab = await NatLab.create({ peers: ['symmetric', 'symmetric'] })
  const peers = [0, 1].map(i => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: `s${i}`, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 110000 }))
  try {
    const joinedSecond = await meet(lab, peers, 'none')
    const warned = await Promise.race(peers.map(p => p.wait(m => m.type === 'warning' && /both NATs are random/.test(m.message), BUDGET_MS + 5000, 'relay warning')))
    const ms = Date.now() - joinedSecond
    assert.match(warned.message, /no relay is announced on the DHT|no relay was found/)
    assert.ok(ms <= BUDGET_MS, `failed after ${ms} ms, inside the ${BUDGET_MS} ms budget`)
    assert.ok(!peers.some(p => p.messages.some(m => m.type === 'connection')), 'no connection')
    const s = (await ask(peers[0], 'stats', 'stats')).stats
    const t = (await ask(peers[1], 'stats', 'stats')).stats
    assert.ok(s.relaySessionsFailed + t.relaySessionsFailed >= 1, 'the session failed')
    assert.strictEqual(s.relayConnections + t.relayConnections, 0)
    console.log(`relay (none): symmetric × symmetric failed clearly in ${ms} ms: ${warned.message}`)
  } finally {
    for (const p of peers) p.send({ cmd: 'exit' })
    await lab.destroy()
  }
})

// Every punch fails: two cone routers whose ISP hop drops UDP between
// their public addresses (as a filtering middlebox might), while both
// reach the DHT and the relay. The dialler's race gives up at 10 s; the
// punched peer saw a peer of ours punch it and never connect, starts a
// relay session at 11 s and sends its nonce back through the referrer;
// the two connect through the relay within 35 s.
test('cone × cone (ours) with UDP between them dropped: every punch fails, and the punched peer falls back to the relay', { timeout: 150000 }, async () => {
  const lab = await NatLab.create({ peers: ['cone', 'cone', 'public'], transit: true })
  const [p0, p1] = [lab.peers[0].publicIp, lab.peers[1].publicIp]
  const relayIp = lab.peers[2].publicIp
  let relay = null
  let peers = []
  try {
    lab.execAt('isp0', ['nft', '-f', '-'], {
      input: `table ip cut {\n  chain through {\n    type filter hook forward priority filter; policy accept;\n    ip saddr ${p0} ip daddr ${p1} ip protocol udp drop\n    ip saddr ${p1} ip daddr ${p0} ip protocol udp drop\n  }\n}\n`
    })
    relay = startRelay(lab.peers[2].ns, ['--host', relayIp, '--port', '49737', '--bootstrap', lab.bootstrap, '--relay', '--relay-port', '49738'], { killAfterMs: 140000 })
    peers = [0, 1].map(i => lab.spawn(i, NAT_PEER, ['ours', JSON.stringify({ name: `c${i}`, swarm: { bootstrap: [lab.bootstrap] } })], { timeoutMs: 140000 }))
    await relay.ready
    await Promise.all(peers.map(p => p.wait('ready')))
    await Promise.all(peers.map((p, i) => joined(p, topic(`fallback warm-up ${i} ${process.pid} ${Date.now()}`))))
    const t = topic(`fallback ${process.pid} ${Date.now()}`)
    peers[0].send({ cmd: 'join', topic: t })
    await sleep(JOIN_GAP)
    const joinedSecond = Date.now()
    peers[1].send({ cmd: 'join', topic: t })
    const got = await Promise.all(peers.map(p => p.wait('received', BUDGET_MS + 10000)))
    const ms = Date.now() - joinedSecond
    assert.deepStrictEqual(got.map(g => g.transport), ['relay', 'relay'], 'through the relay')
    assert.ok(ms > 10000, `not before the direct attempts gave up (${ms} ms)`)
    assert.ok(ms <= BUDGET_MS, `connected in ${ms} ms, inside the ${BUDGET_MS} ms budget`)
    const s0 = (await until(peers[0], m => m.stats.relayConnections >= 1, 5000)).stats
    assert.strictEqual(s0.relayFallbacks, 1, 'the punched peer (the first joiner) fell back')
    const s = await relayStats(relay)
    assert.strictEqual(s.pairsFormed, 1, JSON.stringify(s))
    console.log(`relay (fallback): cone × cone with UDP cut connected through the relay in ${ms} ms`)
  } finally {
    for (const p of peers) p.send({ cmd: 'exit' })
    if (relay) await stopRelay(relay)
    await lab.destroy()
  }
})
