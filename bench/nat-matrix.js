#!/usr/bin/env node
'use strict'
// The NAT matrix, measured: two swarm peers behind every ordered pair of
// {public, cone, cone-nofw, symmetric} in the NAT lab with an ISP hop
// between each router and the public bridge (__test__/helpers/natlab.js,
// `transit: true`), each case in a fresh lab (reference DHT nodes, routers,
// homes). A joins first, B 750 ms later; the ordered pair (x, y) with B
// joining first is the case (y, x), so every pair is measured in both join
// orders. Per ordered pair: connected (n of runs), transport, median time
// to connect (from B's join until both sides received the other's hello),
// for ours↔ours, hyperswarm 2.15.3↔2.15.3 and both mixed placements. Then
// whether every pair the reference connects also connects for ours↔ours
// and the mixed placements, and no slower (median).
//
//   sudo node bench/nat-matrix.js [--runs 3] [--ref-runs 1] [--parallel 3]
//     [--combos ours,ref,ours-ref,ref-ours] [--reference-pairs]
//
// --runs: runs of each ours↔ours pair; --ref-runs: runs of each pair with
// the reference on one or both sides; --parallel: labs at once; --combos:
// only these combinations (ours↔ours, reference↔reference, ours first ×
// reference, reference first × ours); --reference-pairs: only the 7
// ordered pairs the recorded reference matrix connects (many runs of a
// mixed placement against the reference, without the 15 s waits of the
// pairs nobody connects).
//
// Network safety: this script re-executes itself under `unshare -n` (a
// namespace with only `lo`) and refuses to go on if it sees any other
// interface; sockets are disarmed in it (bench/lib/guard.js). Every peer and
// DHT node runs inside a NatLab namespace whose links are veth pairs to
// other lab namespaces only, on documentation prefixes; every child has a
// timeout, and the whole run a budget.
const { spawnSync } = require('child_process')
const path = require('path')
const guard = require('./lib/guard')
const { nonLoopback } = require('../__test__/helpers/isolation')

const arg = guard.numberArg
const runs = arg('runs', 3)
const refRuns = arg('ref-runs', 1)
const parallel = arg('parallel', 3)
const COMBO_NAMES = ['ours', 'ref', 'ours-ref', 'ref-ours']
const comboArg = process.argv.indexOf('--combos') >= 0 ? String(process.argv[process.argv.indexOf('--combos') + 1]).split(',') : COMBO_NAMES
const referencePairs = guard.flag('reference-pairs')
const USAGE = 'usage: node bench/nat-matrix.js [--runs 1..20] [--ref-runs 0..20] [--parallel 1..6] [--combos ours,ref,ours-ref,ref-ours] [--reference-pairs]'
if (![runs, refRuns, parallel].every(Number.isInteger) || runs < 1 || runs > 20 || refRuns < 0 || refRuns > 20 || parallel < 1 || parallel > 6 ||
  !comboArg.length || !comboArg.every(c => COMBO_NAMES.includes(c))) {
  console.error(USAGE)
  process.exit(2)
}

if (nonLoopback().length) {
  // Outside a namespace: run again inside a fresh one, with only `lo`.
  if (process.platform !== 'linux' || !process.getuid || process.getuid() !== 0) {
    console.error('this benchmark must run as root on Linux: it makes network namespaces (ip netns) for all its traffic')
    process.exit(2)
  }
  if (process.env.HSN_NAT_MATRIX_INSIDE) {
    console.error(`refusing to run: interfaces other than lo are visible inside the namespace (${nonLoopback().join(', ')})`)
    process.exit(3)
  }
  const inner = [process.execPath, __filename, ...process.argv.slice(2)].map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const r = spawnSync('unshare', ['-n', '--', 'sh', '-c', `ip link set lo up && exec ${inner}`], {
    stdio: 'inherit',
    env: { ...process.env, HSN_NAT_MATRIX_INSIDE: '1' }
  })
  process.exit(r.status === null ? 1 : r.status)
}

const { Quiet, KINDS, JOIN_GAP, WINDOW, BIRTHDAY_WINDOW, cases, runCase, pool, median, baseline } = require('../__test__/helpers/nat-matrix')

const OURS = ['ours', 'ours']
const REF = ['hyperswarm', 'hyperswarm']
const MIXED = [['ours', 'hyperswarm'], ['hyperswarm', 'ours']]
// --combos: which of them run (by COMBO_NAMES, in this order).
const COMBOS = [OURS, REF, ...MIXED].filter((c, k) => comboArg.includes(COMBO_NAMES[k]))
// --reference-pairs: only the ordered pairs the recorded reference matrix
// (nat-reference-baseline.json) connects, for many runs of just those.
const reached = new Set(baseline().filter(p => p.ok).map(p => `${p.a}×${p.b}`))
const wanted = c => !referencePairs || reached.has(`${c.a.kind}×${c.b.kind}`)
const label = ([a, b]) => `${a === 'hyperswarm' ? 'ref' : a}→${b === 'hyperswarm' ? 'ref' : b}`

// The worst case: lab set-up (~10 s), the first DHT round (up to 10 s),
// the join gap, the window, the teardown.
const CASE_MS = 10000 + 10000 + JOIN_GAP + BIRTHDAY_WINDOW + 10000
// Run by run, pair by pair, and the combinations of one pair next to each
// other: the labs that run at once are then mostly the same pair in
// different combinations, so each combination meets the same load (run
// combination by combination, a mixed pair met other mixed pairs and the
// reference pair other reference pairs, and their medians drifted apart by
// more than the gaps being measured).
const list = []
for (let run = 0; run < Math.max(runs, refRuns); run++) {
  const byCombo = COMBOS.map(combo => run < (combo === OURS ? runs : refRuns) ? cases([combo]) : [])
  for (let k = 0; k < KINDS.length * KINDS.length; k++) {
    for (const cs of byCombo) if (cs[k] && wanted(cs[k])) list.push({ ...cs[k], run })
  }
}
const DEADLINE_MS = 60000 + Math.ceil(list.length / parallel) * CASE_MS
const budget = guard.orchestrator({ deadlineMs: DEADLINE_MS, onAbort: () => {} })

const key = (combo, ka, kb) => `${label(combo)} ${ka}×${kb}`

async function main () {
  const started = Date.now()
  console.log(`NAT matrix, lab with ISP hops: ${KINDS.length}×${KINDS.length} ordered pairs (A joins first, B ${JOIN_GAP} ms later; ` +
    `connected = both hellos within ${WINDOW} ms), ours↔ours ${runs} run(s), with the reference ${refRuns} run(s); ` +
    `${list.length} cases, ${parallel} labs at once, budget ${Math.round(DEADLINE_MS / 1000)} s`)
  let done = 0
  // Labs start and stop while others run, but never during another's timed
  // window (its first second), and timed windows take turns (Quiet).
  const quiet = new Quiet()
  const results = await pool(list, parallel, async (c, i) => {
    const r = await runCase(c, i, quiet)
    done++
    const dialer = r.dialer === 'A' ? r.a.impl : r.dialer === 'B' ? r.b.impl : '-'
    console.log(`  ${String(done).padStart(3)}/${list.length} run ${c.run + 1} ${key([c.a.impl, c.b.impl], c.a.kind, c.b.kind).padEnd(34)} ` +
      (r.error ? `ERROR ${r.error.split('\n')[0]}` : r.ok ? `${r.transport} ${r.ms} ms (first peer ${r.firstPeerMs} ms, ${dialer} dialled)` : `failed${r.bFoundA ? '' : ' (B never found A)'}`) +
      (r.alive && !(r.alive.a && r.alive.b) ? ' (a peer exited!)' : ''))
    return r
  })
  const wallS = (Date.now() - started) / 1000

  // Per combination and ordered pair.
  const pairs = {}
  for (const combo of COMBOS) {
    for (const ka of KINDS) {
      for (const kb of KINDS) {
        const rs = results.filter(r => r.a.impl === combo[0] && r.b.impl === combo[1] && r.a.kind === ka && r.b.kind === kb)
        if (!rs.length) continue
        const okRs = rs.filter(r => r.ok)
        const transports = [...new Set(okRs.map(r => r.transport))]
        pairs[key(combo, ka, kb)] = {
          combo: label(combo),
          a: ka,
          b: kb,
          connected: okRs.length,
          runs: rs.length,
          transport: transports.join('/') || null,
          median_ms: okRs.length ? median(okRs.map(r => r.ms)) : null,
          first_peer_ms: okRs.length ? median(okRs.map(r => r.firstPeerMs)) : null,
          min_ms: okRs.length ? Math.min(...okRs.map(r => r.ms)) : null,
          max_ms: okRs.length ? Math.max(...okRs.map(r => r.ms)) : null,
          errors: rs.filter(r => r.error).length,
          crashed: rs.filter(r => r.alive && !(r.alive.a && r.alive.b)).length
        }
      }
    }
  }

  // Tables: one per combination, A's kind down, B's across.
  const cellOf = p => !p ? '-' : p.connected ? `${p.connected}/${p.runs} ${p.transport} ${Math.round(p.median_ms)}` : `0/${p.runs}${p.errors ? ' error' : ''}`
  const W = 22
  for (const combo of COMBOS) {
    if (!pairs[key(combo, KINDS[0], KINDS[0])]) continue
    console.log(`\n${label(combo)} (A joins first → B); cell: connected/runs, transport, median ms from B's join`)
    console.log('A \\ B'.padEnd(12) + KINDS.map(k => k.padEnd(W)).join(''))
    for (const ka of KINDS) console.log(ka.padEnd(12) + KINDS.map(kb => cellOf(pairs[key(combo, ka, kb)]).padEnd(W)).join(''))
  }

  // Against the reference: every ordered pair ref↔ref connected in any
  // run must connect in every run of the others, with a median no slower.
  const checks = []
  for (const ka of KINDS) {
    for (const kb of KINDS) {
      const ref = pairs[key(REF, ka, kb)]
      if (!ref || !ref.connected) continue
      for (const combo of [OURS, ...MIXED]) {
        const p = pairs[key(combo, ka, kb)]
        if (!p) continue
        checks.push({
          pair: `${ka}×${kb}`,
          combo: label(combo),
          connects: p.connected === p.runs,
          ms: p.median_ms,
          range: p.connected ? `${p.min_ms}..${p.max_ms}` : '-',
          ref_ms: ref.median_ms,
          ref_range: `${ref.min_ms}..${ref.max_ms}`,
          first_peer_ms: p.first_peer_ms,
          ref_first_peer_ms: ref.first_peer_ms,
          no_slower: p.connected === p.runs && p.median_ms <= ref.median_ms
        })
      }
    }
  }
  console.log('\nagainst ref→ref, on the pairs it connects (connects in every run; median no slower than ref→ref; ms: median (min..max; median first peer event)):')
  for (const c of checks) {
    console.log(`  ${c.pair.padEnd(22)} ${c.combo.padEnd(10)} ${c.connects ? 'connects' : 'MISSES  '}  ` +
      `${c.ms == null ? '-' : Math.round(c.ms)} ms (${c.range}; first peer ${c.first_peer_ms}) vs ${Math.round(c.ref_ms)} ms (${c.ref_range}; first peer ${c.ref_first_peer_ms})  ${c.no_slower ? 'no slower' : 'SLOWER'}`)
  }
  // One figure per placement, steadier than any one pair's median of a few
  // runs: the geometric mean over those pairs of median / ref→ref median.
  const ratios = {}
  for (const combo of [OURS, ...MIXED]) {
    const cs = checks.filter(c => c.combo === label(combo) && c.connects && c.ms > 0 && c.ref_ms > 0)
    ratios[label(combo)] = cs.length ? Math.exp(cs.reduce((sum, c) => sum + Math.log(c.ms / c.ref_ms), 0) / cs.length) : null
  }
  console.log('geometric mean of median / ref→ref median over those pairs: ' +
    Object.entries(ratios).map(([k, v]) => `${k} ${v == null ? '-' : v.toFixed(2)}`).join(', '))
  // null: nothing to compare (no run with the reference, or it connected nothing).
  const allConnect = checks.length ? checks.every(c => c.connects) : null
  const noSlower = checks.length ? checks.every(c => c.no_slower) : null
  const yes = v => v === null ? 'n/a' : v ? 'yes' : 'NO'

  const oursRows = Object.values(pairs).filter(p => p.combo === 'ours→ours')
  const oneSymmetric = oursRows.filter(p => !(p.a === 'symmetric' && p.b === 'symmetric'))
  console.log(`\nevery pair ref→ref connects also connects for ours→ours and both mixed placements: ${yes(allConnect)}; no slower: ${yes(noSlower)}`)
  console.log(`ours→ours pairs with at most one symmetric side connected in every run: ${oneSymmetric.filter(p => p.connected === p.runs).length} of ${oneSymmetric.length}`)
  console.log(`wall time ${wallS.toFixed(0)} s`)
  console.log(JSON.stringify({
    bench: 'nat-matrix',
    lab: 'transit',
    runs,
    ref_runs: refRuns,
    parallel,
    cases: list.length,
    wall_s: Math.round(wallS),
    pairs: Object.values(pairs),
    ref_pairs_connect: allConnect,
    ref_pairs_no_slower: noSlower,
    ratio_vs_ref: ratios,
    ours_one_symmetric_connected: oneSymmetric.filter(p => p.connected === p.runs).length,
    ours_one_symmetric_pairs: oneSymmetric.length
  }))
}

budget.finish(main())
