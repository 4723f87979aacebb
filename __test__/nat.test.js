'use strict'
// The NAT lab (helpers/natlab.js): first a check that its routers behave
// as their kinds say, then the ./hyperswarm entry through NATs. The
// connectivity matrix of swarm peers behind every pair of NAT kinds is in
// nat-matrix.test.js.
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const { NatLab } = require('./helpers/natlab')
const { PARALLEL, runCase, pool, cell } = require('./helpers/nat-matrix')

assertIsolated()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------
// The lab itself.

// Sends "echo" from UDP tool `u` to host:port until the echo answers (3
// tries); resolves to the source address the echo saw, { host, port }.
async function mappedBy (u, host, port) {
  for (let attempt = 0; attempt < 3; attempt++) {
    u.send({ cmd: 'send', host, port, data: 'echo' })
    const m = await u.wait(m => m.type === 'datagram' && m.from === host && m.port === port && m.data.startsWith('seen '), 500, 'echo').catch(() => null)
    if (m) {
      const [h, p] = m.data.slice(5).split(':')
      return { host: h, port: Number(p) }
    }
  }
  throw new Error(`no echo from ${host}:${port}`)
}

const got = (u, data) => u.messages.some(m => m.type === 'datagram' && m.data === data)

// A raw UDP hole punch between two homes on `port`: `a` fires first (the
// packet that reaches b's router before b has sent anything, as the first
// packet of any punch does), then both fire five times. Returns which sides
// heard the other.
async function punch (lab, a, b, port) {
  const ua = lab.udp('peer' + a, port)
  const ub = lab.udp('peer' + b, port)
  await Promise.all([ua.wait('ready'), ub.wait('ready')])
  const A = lab.peers[a]
  const B = lab.peers[b]
  ua.send({ cmd: 'send', host: B.publicIp, port, data: 'punch-first' })
  await sleep(200)
  for (let k = 0; k < 5; k++) {
    ua.send({ cmd: 'send', host: B.publicIp, port, data: 'punch-a' })
    ub.send({ cmd: 'send', host: A.publicIp, port, data: 'punch-b' })
    await sleep(50)
  }
  await sleep(200)
  return { aHeardB: got(ua, 'punch-b'), bHeardA: got(ub, 'punch-a') }
}

test('lab: the NAT lab: cone NATs keep ports, symmetric NATs do not, filtering is stateful, cone↔cone punches', async () => {
  const kinds = ['public', 'public', 'cone', 'cone', 'symmetric', 'cone-nofw', 'cone-nofw']
  const lab = await NatLab.create({ peers: kinds, dht: false })
  try {
    const echo = [lab.udp('peer0', 7000), lab.udp('peer1', 7000)]
    const stray = lab.udp('boot', 7001)
    await Promise.all([...echo, stray].map(u => u.wait('ready')))
    const E = [lab.peers[0].ip, lab.peers[1].ip]

    // Mapping: what two public hosts see of one socket in each home.
    const homes = {}
    for (let i = 2; i < kinds.length; i++) {
      const u = lab.udp('peer' + i, 40000)
      await u.wait('ready')
      const seen = [await mappedBy(u, E[0], 7000), await mappedBy(u, E[1], 7000)]
      homes[i] = { u, seen }
      const P = lab.peers[i]
      for (const s of seen) assert.strictEqual(s.host, P.publicIp, `${P.kind}: seen from its router's public address`)
      if (P.kind === 'symmetric') {
        assert.notStrictEqual(seen[0].port, seen[1].port, 'symmetric: each destination gets its own mapped port')
      } else {
        assert.deepStrictEqual(seen.map(s => s.port), [40000, 40000], `${P.kind}: the source port is kept, for every destination`)
      }
    }

    // Filtering: only the host a home talked to gets in, and only from the
    // port it talked to.
    for (const i of [2, 4]) {
      const { u, seen } = homes[i]
      stray.send({ cmd: 'send', host: seen[0].host, port: seen[0].port, data: 'stray' + i })
      echo[0].send({ cmd: 'send', host: seen[0].host, port: seen[0].port, data: 'again' + i })
      await u.wait(m => m.type === 'datagram' && m.data === 'again' + i, 2000, 'a reply on an open flow')
      await sleep(300)
      assert.ok(!got(u, 'stray' + i), `${lab.peers[i].kind}: an unsolicited datagram is filtered`)
    }

    // No route from the public network into a home.
    echo[0].send({ cmd: 'send', host: lab.peers[2].ip, port: 40000, data: 'private', id: 'private' })
    const sent = await echo[0].wait(m => m.type === 'sent' && m.id === 'private', 2000)
    await sleep(300)
    assert.ok(!got(homes[2].u, 'private'), `private addresses are not reachable from outside (send: ${sent.error})`)

    // Hole punching with plain UDP: works between two cone NATs; between two
    // routers without a WAN input firewall the first packet's conntrack
    // entry takes the port and the punch fails (see natlab.js, cone-nofw).
    assert.deepStrictEqual(await punch(lab, 2, 3, 41000), { aHeardB: true, bHeardA: true }, 'cone ↔ cone punch')
    assert.deepStrictEqual(await punch(lab, 5, 6, 41000), { aHeardB: false, bHeardA: false }, 'cone-nofw ↔ cone-nofw punch')
  } finally {
    await lab.destroy()
  }
})

// The ./hyperswarm entry (hyperswarm 2.x's API, its queue in JS) goes the
// same way through NATs: punched uTP between cones, with the reference on
// either side, and the symmetric-behind-public pair the reference misses.
test('the ./hyperswarm entry through NATs: cone↔cone punches with the reference either side', { timeout: 120000 }, async () => {
  const hs = 'ours-hyperswarm'
  const list = [
    [[hs, 'cone'], ['hyperswarm', 'cone'], 'utp'],
    [['hyperswarm', 'cone'], [hs, 'cone'], 'utp'],
    [[hs, 'cone'], [hs, 'cone'], 'utp'],
    [[hs, 'public'], ['hyperswarm', 'cone'], 'tcp'],
    [[hs, 'symmetric'], [hs, 'public'], 'utp']
  ].map(([[ia, ka], [ib, kb], want]) => ({ a: { impl: ia, kind: ka }, b: { impl: ib, kind: kb }, want }))
  const results = await pool(list, PARALLEL, runCase)
  const problems = []
  for (const r of results) {
    const name = `${r.a.impl}/${r.a.kind} × ${r.b.impl}/${r.b.kind}`
    if (!r.ok) problems.push(`${name}: did not connect${r.error ? ' (' + r.error + ')' : ''}`)
    else if (r.want === 'tcp' && r.transport === 'utp' && r.tcpReached) {
      // The reference dialer races TCP with punch-then-uTP and keeps the
      // first to connect; our public side answers the punch at once (the
      // reference's JS takes longer), so under load uTP can beat a TCP
      // connection that did arrive (2 in 30 runs, three labs at once). TCP
      // reaching us is what this pair checks.
      console.log(`note: ${name}: TCP reached the public side, but the dialer kept uTP`)
    } else if (r.transport !== r.want) problems.push(`${name}: connected over ${r.transport}, expected ${r.want}${r.want === 'tcp' ? ' (no TCP connection arrived)' : ''}`)
  }
  console.log(results.map(r => `${r.a.impl}/${r.a.kind} × ${r.b.impl}/${r.b.kind}: ${cell(r)}`).join('\n'))
  assert.deepStrictEqual(problems, [])
})
