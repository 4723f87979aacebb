#!/usr/bin/env node
'use strict'
// Idle resident memory of one joined swarm (one topic joined with announce +
// lookup, settled, after a full GC), measured two ways in the same run:
//
// - from before require (the headline): each measured process reads its own
//   VmRSS after a full GC before it requires the stack, and again once the
//   swarm has settled; increment = after - before, median over runs.
// - vs a bare process: median VmRSS of the configuration - median VmRSS of a
//   bare node process that did the same waits.
//
// Ours (seed entry and ./hyperswarm entry) vs @hyperswarm/network 0.0.4 and
// the reference hyperswarm 2.15.3.
//
//   sudo node bench/idle-rss.js [--runs 5] [--settle-ms 3000] [--no-network004] [--no-gc]
//
// Each measured process runs inside a loopback-only network namespace (made
// with __test__/helpers/netns.js); this process only starts them, collects
// the readings they report over IPC, and stops them. It opens no socket
// itself. Configurations are interleaved (order rotated each round).
const path = require('path')
const guard = require('./lib/guard')
const { Lab } = require('../__test__/helpers/netns')

const arg = guard.numberArg
const runs = arg('runs', 5)
const settleMs = arg('settle-ms', 3000)
const useGc = !guard.flag('no-gc')
if (!(runs >= 1 && runs <= 20 && settleMs >= 0 && settleMs <= 30000)) {
  console.error('usage: node bench/idle-rss.js [--runs 1..20] [--settle-ms 0..30000] [--no-network004] [--no-gc]')
  process.exit(2)
}
const PEER = path.join(__dirname, 'lib', 'idle-peer.js')
const IMPLS = ['bare', 'ours', 'ours-hyperswarm', 'hyperswarm', ...(guard.flag('no-network004') ? [] : ['network004'])]
const LABEL = {
  bare: 'bare node (baseline)',
  ours: 'ours (hyperswarm-native)',
  'ours-hyperswarm': 'ours (./hyperswarm entry)',
  hyperswarm: 'hyperswarm 2.15.3',
  network004: '@hyperswarm/network 0.0.4'
}
const MiB = 1024 * 1024
const FIELDS = ['rss', 'anon', 'file', 'threads']

let lab = null
const budget = guard.orchestrator({
  deadlineMs: 60000 + runs * IMPLS.length * (settleMs + 20000),
  onAbort: () => lab && lab.destroy()
})

async function once (impl) {
  const child = lab.spawn(0, PEER, [impl, String(settleMs), useGc ? 'gc' : 'nogc'], { timeoutMs: settleMs + 30000 })
  try {
    const m = await child.wait(m => m.type === 'settled' || m.type === 'error', settleMs + 20000, 'settled')
    if (m.type === 'error') throw new Error(`${impl}: ${m.message}`)
    const warnings = child.messages.filter(m => m.type === 'warning').map(m => m.message)
    return { before: m.before, after: m.after, warnings }
  } finally {
    child.send({ cmd: 'exit' })
    await child.kill()
  }
}

// Field-wise difference of two readings.
const minus = (a, b) => Object.fromEntries(FIELDS.map(f => [f, a[f] - b[f]]))
// Field-wise median of a list of readings (each field on its own).
const medians = xs => Object.fromEntries(FIELDS.map(f => [f, guard.median(xs.map(x => x[f]))]))
const mib = x => (x / MiB).toFixed(1)
const signed = x => (x >= 0 ? '+' : '') + x

async function main () {
  lab = Lab.loopback()
  const results = Object.fromEntries(IMPLS.map(i => [i, []]))
  console.log(`idle RSS: one topic joined (announce + lookup), ${settleMs} ms settle${useGc ? ' + full GC' : ', no GC'}, ` +
    `${runs} runs per configuration, one process each, loopback-only netns`)
  for (let run = 0; run < runs; run++) {
    const order = IMPLS.map((_, k) => IMPLS[(k + run) % IMPLS.length])
    for (const impl of order) {
      const r = await once(impl)
      results[impl].push(r)
      const d = minus(r.after, r.before)
      console.log(`  run ${run + 1}/${runs} ${impl.padEnd(15)} VmRSS ${mib(r.before.rss).padStart(5)} -> ${mib(r.after.rss).padStart(5)} MiB ` +
        `(${signed(mib(d.rss))}: anon ${signed(mib(d.anon))}, file ${signed(mib(d.file))}; threads ${r.before.threads} -> ${r.after.threads})` +
        (r.warnings.length ? ` warnings: ${r.warnings.slice(0, 2).join('; ')}` : ''))
    }
  }
  await lab.destroy()

  // From before require: the median of each process's own after - before.
  const fromRequire = Object.fromEntries(IMPLS.map(i => [i, medians(results[i].map(r => minus(r.after, r.before)))]))
  // Vs a bare process: median after-reading minus the bare one's.
  const after = Object.fromEntries(IMPLS.map(i => [i, medians(results[i].map(r => r.after))]))
  const vsBare = Object.fromEntries(IMPLS.map(i => [i, minus(after[i], after.bare)]))

  console.log('')
  console.log('from before require (in-process after - before, median)')
  console.log('configuration                increment MiB   (anon / file)   threads added')
  for (const i of IMPLS) {
    const d = fromRequire[i]
    console.log(`${(i === 'bare' ? 'bare node (control)' : LABEL[i]).padEnd(28)} ${mib(d.rss).padStart(13)}   ` +
      `${`(${mib(d.anon)} / ${mib(d.file)})`.padEnd(13)}   ${d.threads}`)
  }
  console.log('')
  console.log('vs a bare process (median VmRSS - median VmRSS of bare)')
  console.log('configuration                median VmRSS MiB   increment MiB   (anon / file increment)   threads')
  for (const i of IMPLS) {
    const d = vsBare[i]
    console.log(`${LABEL[i].padEnd(28)} ${mib(after[i].rss).padStart(17)}   ` +
      `${(i === 'bare' ? '-' : mib(d.rss)).padStart(13)}   ` +
      `${(i === 'bare' ? '' : `(${mib(d.anon)} / ${mib(d.file)})`).padEnd(23)}   ${after[i].threads}`)
  }
  console.log('')

  const ratioOf = (table, a, b) => table[a] && table[b] ? table[a].rss / table[b].rss : null
  const shown = r => r == null ? 'n/a' : r.toFixed(3)
  const req = {
    network004: ratioOf(fromRequire, 'ours', 'network004'),
    hyperswarm: ratioOf(fromRequire, 'ours', 'hyperswarm'),
    entryNetwork004: ratioOf(fromRequire, 'ours-hyperswarm', 'network004'),
    entryHyperswarm: ratioOf(fromRequire, 'ours-hyperswarm', 'hyperswarm')
  }
  console.log(`ratio ours/network004, from before require: ${shown(req.network004)}` +
    (req.network004 == null ? ' (--no-network004)' : ` (target <= 0.3: ${req.network004 <= 0.3 ? 'met' : 'NOT met'})`))
  console.log(`ratio ours/hyperswarm, from before require: ${shown(req.hyperswarm)}`)
  console.log(`ratio ./hyperswarm entry/network004, from before require: ${shown(req.entryNetwork004)}`)
  console.log(`ratio ./hyperswarm entry/hyperswarm, from before require: ${shown(req.entryHyperswarm)}`)
  const ratio = ratioOf(vsBare, 'ours', 'hyperswarm')
  const ratioEntry = ratioOf(vsBare, 'ours-hyperswarm', 'hyperswarm')
  console.log(`ratio ours/hyperswarm increment vs bare process: ${ratio.toFixed(3)} (target <= 0.3: ${ratio <= 0.3 ? 'met' : 'NOT met'})`)
  console.log(`ratio ours ./hyperswarm entry/hyperswarm increment vs bare process: ${ratioEntry.toFixed(3)}`)

  const r1 = x => Math.round(x / MiB * 100) / 100
  const r3 = x => x == null ? null : Math.round(x * 1000) / 1000
  const has004 = IMPLS.includes('network004')
  const out = {
    bench: 'idle-rss',
    runs,
    settle_ms: settleMs,
    gc: useGc,
    // vs a bare process (the older method; `ratio` and `target` keep their meaning)
    bare_rss_mib: r1(after.bare.rss),
    ours_inc_mib: r1(vsBare.ours.rss),
    ours_hyperswarm_entry_inc_mib: r1(vsBare['ours-hyperswarm'].rss),
    ratio_hyperswarm_entry: r3(ratioEntry),
    hyperswarm_inc_mib: r1(vsBare.hyperswarm.rss),
    ...(has004 ? { network004_inc_mib: r1(vsBare.network004.rss) } : {}),
    ratio: r3(ratio),
    target: 0.3,
    // from before require (the headline: ours / network004 <= 0.3)
    bare_inc_from_require_mib: r1(fromRequire.bare.rss),
    ours_inc_from_require_mib: r1(fromRequire.ours.rss),
    ours_inc_from_require_anon_mib: r1(fromRequire.ours.anon),
    ours_inc_from_require_file_mib: r1(fromRequire.ours.file),
    ours_threads_added: fromRequire.ours.threads,
    ours_hyperswarm_entry_inc_from_require_mib: r1(fromRequire['ours-hyperswarm'].rss),
    hyperswarm_inc_from_require_mib: r1(fromRequire.hyperswarm.rss),
    ...(has004 ? { network004_inc_from_require_mib: r1(fromRequire.network004.rss) } : {}),
    ratio_from_require: r3(req.network004),
    ratio_from_require_hyperswarm: r3(req.hyperswarm),
    ratio_from_require_hyperswarm_entry: r3(req.entryNetwork004),
    ratio_from_require_hyperswarm_entry_vs_hyperswarm: r3(req.entryHyperswarm),
    target_from_require: 0.3
  }
  console.log(JSON.stringify(out))
}

budget.finish(main(), () => lab && lab.destroy())
