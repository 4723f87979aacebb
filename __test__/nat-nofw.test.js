'use strict'
// Routers without a WAN input firewall (natlab.js, `cone-nofw`): the first
// packet of a hole punch, arriving at such a router before the home behind
// it has sent anything to the asker, becomes a conntrack entry of its own,
// and the home's answer leaves from another port. Our punches open our own
// NAT with a packet whose TTL lets it die before the other side's router
// (dht/node.rs, OPENING_TTL), so the other side's answer finds us open and
// our first full-TTL packet finds it open.
//
// Both tests run in the lab with an ISP hop per router (`transit: true`):
// on the internet two homes are many hops apart; in the flat lab the two
// routers share a bridge and any packet that leaves one reaches the other.
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const { NatLab } = require('./helpers/natlab')
const { PARALLEL, pool, cell, baseline, runCase } = require('./helpers/nat-matrix')

assertIsolated()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const got = (u, data) => u.messages.some(m => m.type === 'datagram' && m.data === data)

let sendId = 0
// One datagram from UDP tool `u`, and its 'sent' report (so a TTL set for
// it is back to 64 before the next).
async function send (u, host, port, data, ttl) {
  const id = 's' + sendId++
  u.send({ cmd: 'send', host, port, data, id, ttl })
  const m = await u.wait(m => m.type === 'sent' && m.id === id, 2000, 'sent')
  assert.strictEqual(m.error, null, `send ${data}`)
}

// A raw punch on `port`: peer `asker` asks, `answerer` answers, in one of
// the orders measured:
//   plain   the asker's first packet goes straight to the answerer (what
//           dht-rpc does: direct request, then the punch via the referrer),
//           the answer follows 20 ms later (the relay's detour);
//   ttl<N>  the same, with the asker's first packet at IP TTL N (ttl1
//           dies in the asker's own router: an opening packet that falls
//           short of a NAT further out, and the full-TTL sends after it);
//   order   the answerer goes first, the asker 50 ms later (the asker
//           waits for the relayed punch to be answered).
// Then five rounds of both sides sending. Returns who heard whom.
async function punch (lab, asker, answerer, port, how) {
  const ua = lab.udp('peer' + asker, port)
  const ub = lab.udp('peer' + answerer, port)
  try {
    await Promise.all([ua.wait('ready'), ub.wait('ready')])
    const A = lab.peers[asker].publicIp
    const B = lab.peers[answerer].publicIp
    if (how === 'order') {
      await send(ub, A, port, 'answer')
      await sleep(50)
      await send(ua, B, port, 'first')
    } else {
      await send(ua, B, port, 'first', how === 'plain' ? undefined : Number(how.slice(3)))
      await sleep(20)
      await send(ub, A, port, 'answer')
    }
    await sleep(50)
    for (let k = 0; k < 5; k++) {
      await send(ua, B, port, 'punch-a')
      await send(ub, A, port, 'punch-b')
      await sleep(30)
    }
    await sleep(200)
    return { ok: got(ua, 'punch-b') && got(ub, 'punch-a'), firstArrived: got(ub, 'first') }
  } finally {
    ua.send({ cmd: 'exit' })
    ub.send({ cmd: 'exit' })
  }
}

test('lab: a low-TTL opening packet punches routers without a WAN firewall, when ISP hops lie between them', { timeout: 120000 }, async () => {
  const HOWS = ['plain', 'ttl1', 'ttl2', 'ttl3', 'ttl4', 'order']
  const measured = {}
  // Transit: two cone-nofw homes and a cone one, five hops between homes.
  const lab = await NatLab.create({ peers: ['cone-nofw', 'cone-nofw', 'cone'], dht: false, transit: true })
  try {
    let port = 42000
    for (const [name, asker, answerer] of [['cone-nofw asks cone-nofw', 0, 1], ['cone asks cone-nofw', 2, 0], ['cone-nofw asks cone', 1, 2]]) {
      measured[name] = {}
      for (const how of HOWS) measured[name][how] = (await punch(lab, asker, answerer, port++, how)).ok
    }
  } finally {
    await lab.destroy()
  }
  // Flat: the routers share the bridge.
  const flat = await NatLab.create({ peers: ['cone-nofw', 'cone-nofw'], dht: false })
  try {
    measured['flat lab: cone-nofw asks cone-nofw'] = { ttl2: (await punch(flat, 0, 1, 42100, 'ttl2')).ok }
  } finally {
    await flat.destroy()
  }
  for (const [name, row] of Object.entries(measured)) {
    console.log(`${name}: ${Object.entries(row).map(([how, ok]) => `${how} ${ok ? 'connects' : 'fails'}`).join(', ')}`)
  }
  assert.deepStrictEqual(measured, {
    // The asker's full-TTL first packet takes the answerer's port; TTL 2
    // and 3 cross the asker's router and die at an ISP; TTL 4 reaches the
    // other router (r, isp, isp, r). Letting the answerer go first only
    // moves the problem to the asker's router.
    // An opening packet that makes no mapping (ttl1) is the answerer
    // going first.
    'cone-nofw asks cone-nofw': { plain: false, ttl1: false, ttl2: true, ttl3: true, ttl4: false, order: false },
    'cone asks cone-nofw': { plain: false, ttl1: true, ttl2: true, ttl3: true, ttl4: false, order: true },
    // The cone router drops the asker's first packet without keeping it:
    // every order works except the answerer's packet landing in the
    // asker's router before the asker sent.
    'cone-nofw asks cone': { plain: true, ttl1: false, ttl2: true, ttl3: true, ttl4: true, order: false },
    // Without a hop between the routers no TTL helps.
    'flat lab: cone-nofw asks cone-nofw': { ttl2: false }
  })
})

// Counts UDP datagrams from the home that enter router `i` with TTL 2 (our
// opening packets; the home's stack sends everything else with 64).
function openingCounter (lab, i) {
  const rules = [
    'table ip opening {',
    '  counter ttl2 { }',
    '  chain pre {',
    '    type filter hook prerouting priority -300; policy accept;',
    '    iifname "lan*" meta l4proto udp ip ttl 2 counter name ttl2',
    '  }',
    '}',
    ''
  ].join('\n')
  lab.execAt('router' + i, ['nft', '-f', '-'], { input: rules })
  return () => JSON.parse(lab.execAt('router' + i, ['nft', '-j', 'list', 'counter', 'ip', 'opening', 'ttl2']))
    .nftables.find(e => e.counter).counter.packets
}

test('swarms behind routers without a WAN firewall connect: cone-nofw × cone-nofw and cone-nofw × cone, either joining first', { timeout: 240000 }, async () => {
  const setup = lab => {
    const counters = [0, 1].map(i => openingCounter(lab, i))
    return () => counters.map(c => c())
  }
  const PAIRS = [['cone-nofw', 'cone-nofw'], ['cone-nofw', 'cone'], ['cone', 'cone-nofw']]
  const both = (ia, ib) => PAIRS.map(([ka, kb]) => ({ a: { impl: ia, kind: ka }, b: { impl: ib, kind: kb }, transit: true, setup }))
  // Ours↔ours: every pair with A joining first and with B joining first
  // (runCase's A joins first, so B first is the pair swapped).
  const ours = [
    ...both('ours', 'ours').map(c => ({ ...c, order: 'A first' })),
    ...both('ours', 'ours').map(c => ({ ...c, a: c.b, b: c.a, order: 'B first' }))
  ]
  // Mixed with the reference, and the reference alone, in the same lab.
  const mixed = [...both('hyperswarm', 'hyperswarm'), ...both('ours', 'hyperswarm'), ...both('hyperswarm', 'ours')]
  const results = await pool([...ours, ...mixed], PARALLEL, runCase)
  const name = r => `${r.order ? r.order + ': ' : ''}${r.a.impl}/${r.a.kind} (joins first) × ${r.b.impl}/${r.b.kind}`
  for (const r of results) {
    const dialer = r.dialer === 'A' ? r.a : r.dialer === 'B' ? r.b : null
    console.log(`${name(r)}: ${cell(r)}; TTL-2 datagrams out of each home ${JSON.stringify(r.probe)}${dialer ? `, ${dialer.impl} dialled` : ''}`)
  }
  const problems = []
  for (const r of results.slice(0, ours.length)) {
    if (r.error) problems.push(`${name(r)}: ${r.error}`)
    else if (!r.ok) problems.push(`${name(r)}: did not connect`)
    else if (r.transport !== 'utp') problems.push(`${name(r)}: connected over ${r.transport}, expected punched uTP`)
    else {
      // The dialler's home sent an opening packet: the punch went the way
      // this test is about.
      const dialler = r.dialer === 'A' ? 0 : 1
      if (!(r.probe && r.probe[dialler] >= 1)) problems.push(`${name(r)}: no TTL-2 datagram left the dialler's home (${JSON.stringify(r.probe)})`)
    }
  }
  // With the reference: every pair the reference connects (here, or in the
  // recorded baseline, same lab), ours connects with it on either side.
  const base = baseline()
  const find = (ia, ib, ka, kb) => results.find(r => r.a.impl === ia && r.b.impl === ib && r.a.kind === ka && r.b.kind === kb)
  for (const [ka, kb] of PAIRS) {
    const ref = find('hyperswarm', 'hyperswarm', ka, kb)
    const recorded = base.find(p => p.a === ka && p.b === kb)
    if (ref && ref.error) problems.push(`${name(ref)}: ${ref.error}`)
    for (const [ia, ib] of [['ours', 'hyperswarm'], ['hyperswarm', 'ours']]) {
      const r = find(ia, ib, ka, kb)
      if (r.error) problems.push(`${name(r)}: ${r.error}`)
      else if (!r.ok && ((ref && ref.ok) || (recorded && recorded.ok))) problems.push(`${name(r)}: the reference connects this pair, we did not`)
    }
  }
  assert.deepStrictEqual(problems, [])
})
