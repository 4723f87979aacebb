'use strict'
// The connectivity matrix (helpers/nat-matrix.js): swarm peers behind
// every ordered pair of {public, cone, cone-nofw, symmetric} in the NAT lab
// with an ISP hop between each router and the bridge (natlab.js,
// `transit: true`), one run per case, measured and printed. A joins
// first; the pair with B joining first is the swapped case, so the ordered
// matrix holds both join orders.
//
// The lab also holds a relay of last resort (`hyperswarm-dht --relay` on a
// public DHT host), which only two peers of ours behind random NATs use.
//
// Asserted: the lab's sanity (no case broke, B's lookup always finds A, a
// public A is always reached); ours↔ours connects every pair, over the
// transport expected: with at most one symmetric side directly, and
// symmetric × symmetric through the relay;
// ours, on either side, connects every pair the reference connects, in
// this run or in its recorded baseline (helpers/nat-reference-baseline.json,
// recorded in the same lab: `node __test__/helpers/nat-matrix.js record`).
// A pair only a birthday punch connects (one symmetric NAT against a cone
// or cone-nofw one) gets the punch's budget as its window (35 s).
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const { KINDS, IMPLS, PARALLEL, cases, runCase, pool, table, baseline } = require('./helpers/nat-matrix')

assertIsolated()

// What a punched pair rides: uTP between two NATed peers (the punch, or a
// birthday punch when one NAT is random); a
// public peer is dialled over TCP by ours, or answers a NATed dialler's
// uTP punch.
// Two symmetric NATs meet at the lab's relay (helpers/nat-matrix.js RELAY).
const expectedOurs = (ka, kb) => ka === 'symmetric' && kb === 'symmetric' ? 'relay' : ka === 'public' && kb === 'public' ? 'tcp' : ka !== 'public' && kb !== 'public' ? 'utp' : null

test('connectivity matrix: ours and the reference behind every ordered pair of public / cone / cone-nofw / symmetric, with ISP hops', { timeout: 290000 }, async () => {
  const started = Date.now()
  const results = await pool(cases(IMPLS), PARALLEL, runCase)
  for (const [implA, implB] of IMPLS) console.log('\n' + table(results, implA, implB) + '\n')
  console.log(`matrix: ${results.length} runs in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  console.log(JSON.stringify(results.map(r => ({ a: r.a, b: r.b, ok: r.ok, transport: r.transport, infoType: r.infoType, dialer: r.dialer, ms: r.ms, bFoundA: r.bFoundA, aFoundB: r.aFoundB, attempts: r.attempts, alive: r.alive, error: r.error })), null, 0))

  const problems = []
  const name = r => `${r.a.impl}/${r.a.kind} × ${r.b.impl}/${r.b.kind}`
  const ours = impl => impl !== 'hyperswarm'
  // Sanity of the lab, whatever the implementation: no run broke, B's
  // lookup always found A through the DHT, a public A is always reached,
  // and two public peers connect over TCP when ours dials. Our peers never
  // die or write to stderr, whether the pair connects or not.
  for (const r of results) {
    if (r.error) { problems.push(`${name(r)}: ${r.error}`); continue }
    if (!r.bFoundA) problems.push(`${name(r)}: B's lookup did not find A`)
    if ((ours(r.a.impl) && !r.alive.a) || (ours(r.b.impl) && !r.alive.b)) problems.push(`${name(r)}: a peer of ours exited before the window ended (alive ${JSON.stringify(r.alive)}): ${r.stderr}`)
    if (ours(r.a.impl) && ours(r.b.impl) && r.stderr.trim()) problems.push(`${name(r)}: stderr: ${r.stderr}`)
    if (r.a.kind !== 'public') continue
    if (!r.ok) problems.push(`${name(r)}: did not connect`)
    // The reference dialler starts TCP and uTP at once and sometimes wins
    // with uTP, so only a pair whose dialler is ours is held to TCP.
    else if (r.b.kind === 'public' && r.transport !== 'tcp' && ours((r.dialer === 'A' ? r.a : r.b).impl)) {
      problems.push(`${name(r)}: connected over ${r.transport}, not tcp`)
    }
  }

  const base = baseline()
  const find = (ia, ib, ka, kb) => results.find(r => r.a.impl === ia && r.b.impl === ib && r.a.kind === ka && r.b.kind === kb)
  for (const ka of KINDS) {
    for (const kb of KINDS) {
      const ref = find('hyperswarm', 'hyperswarm', ka, kb)
      const recorded = base.find(p => p.a === ka && p.b === kb)
      if (!recorded) problems.push(`${ka} × ${kb}: not in the recorded baseline`)
      if (recorded && ref && ref.ok !== recorded.ok) console.log(`note: the reference ${ref.ok ? 'connected' : 'missed'} ${ka} × ${kb} in this run; the baseline says ${recorded.ok ? 'it connects' : 'it does not'}`)
      // Ours, on either side: every pair the reference connects (this
      // run, or the baseline: a miss of the reference here excuses
      // nothing), and Rust↔Rust over the transport the reference used.
      for (const [ia, ib] of [['ours', 'ours'], ['ours', 'hyperswarm'], ['hyperswarm', 'ours']]) {
        const r = find(ia, ib, ka, kb)
        if (!r || r.ok) continue
        if (ref && ref.ok) problems.push(`${name(r)}: the reference connects this pair (this run), we did not`)
        else if (recorded && recorded.ok) problems.push(`${name(r)}: the reference connects this pair (baseline, over ${recorded.transport}), we did not`)
      }
      const same = find('ours', 'ours', ka, kb)
      if (!same) continue
      if (recorded && recorded.ok && recorded.transport && same.ok && same.transport !== recorded.transport) {
        problems.push(`${name(same)}: connected over ${same.transport}, the reference over ${recorded.transport}`)
      }
      if (!same.ok) problems.push(`${name(same)}: Rust↔Rust must connect (at most one symmetric side directly, two through the lab's relay)`)
      else if (expectedOurs(ka, kb) && same.transport !== expectedOurs(ka, kb)) problems.push(`${name(same)}: expected ${expectedOurs(ka, kb)}, got ${same.transport}`)
    }
  }
  assert.deepStrictEqual(problems, [])
})
