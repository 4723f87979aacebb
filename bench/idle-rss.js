#!/usr/bin/env node
'use strict'
// Idle resident memory of one joined swarm: how much RSS a node process
// holding one swarm (one topic joined with announce + lookup, settled, after
// a full GC) has over a bare node process that did the same waits. Ours vs
// the reference hyperswarm 2.15.3, and @hyperswarm/network 0.0.4 as an extra
// column, all in the same run.
//
//   sudo node bench/idle-rss.js [--runs 5] [--settle-ms 3000] [--no-network004] [--no-gc]
//
// Each measured process runs inside a loopback-only network namespace (made
// with __test__/helpers/netns.js); this process only starts them, reads
// VmRSS from /proc/<pid>/status once they report 'settled', and stops them.
// It opens no socket itself. Configurations are interleaved (order rotated
// each round) and medians are reported; increment = median RSS of the
// configuration - median RSS of the bare process.
const fs = require('fs')
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

let lab = null
const budget = guard.orchestrator({
  deadlineMs: 60000 + runs * IMPLS.length * (settleMs + 20000),
  onAbort: () => lab && lab.destroy()
})

function status (pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = key => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))
    return m ? Number(m[1]) * 1024 : NaN
  }
  const threads = text.match(/^Threads:\s+(\d+)/m)
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile'), threads: threads ? Number(threads[1]) : NaN }
}

async function once (impl) {
  const child = lab.spawn(0, PEER, [impl, String(settleMs), useGc ? 'gc' : 'nogc'], { timeoutMs: settleMs + 30000 })
  try {
    const m = await child.wait(m => m.type === 'settled' || m.type === 'error', settleMs + 20000, 'settled')
    if (m.type === 'error') throw new Error(`${impl}: ${m.message}`)
    const warnings = child.messages.filter(m => m.type === 'warning').map(m => m.message)
    return { ...status(m.pid), warnings }
  } finally {
    child.send({ cmd: 'exit' })
    await child.kill()
  }
}

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
      console.log(`  run ${run + 1}/${runs} ${impl.padEnd(10)} VmRSS ${(r.rss / MiB).toFixed(1).padStart(6)} MiB ` +
        `(anon ${(r.anon / MiB).toFixed(1)}, file ${(r.file / MiB).toFixed(1)}, threads ${r.threads})` +
        (r.warnings.length ? ` warnings: ${r.warnings.slice(0, 2).join('; ')}` : ''))
    }
  }
  await lab.destroy()

  const med = Object.fromEntries(IMPLS.map(i => [i, {
    rss: guard.median(results[i].map(r => r.rss)),
    anon: guard.median(results[i].map(r => r.anon)),
    file: guard.median(results[i].map(r => r.file)),
    threads: guard.median(results[i].map(r => r.threads))
  }]))
  const inc = Object.fromEntries(IMPLS.map(i => [i, (med[i].rss - med.bare.rss) / MiB]))
  const ratio = inc.ours / inc.hyperswarm
  console.log('')
  console.log('configuration                median VmRSS MiB   increment MiB   (anon / file increment)   threads')
  for (const i of IMPLS) {
    const dAnon = (med[i].anon - med.bare.anon) / MiB
    const dFile = (med[i].file - med.bare.file) / MiB
    console.log(`${LABEL[i].padEnd(28)} ${(med[i].rss / MiB).toFixed(1).padStart(17)}   ` +
      `${(i === 'bare' ? '-' : inc[i].toFixed(1)).padStart(13)}   ` +
      `${(i === 'bare' ? '' : `(${dAnon.toFixed(1)} / ${dFile.toFixed(1)})`).padEnd(23)}   ${med[i].threads}`)
  }
  console.log(`ratio ours/hyperswarm increment: ${ratio.toFixed(3)} (target <= 0.3: ${ratio <= 0.3 ? 'met' : 'NOT met'})`)
  const ratioEntry = inc['ours-hyperswarm'] / inc.hyperswarm
  console.log(`ratio ours ./hyperswarm entry/hyperswarm increment: ${ratioEntry.toFixed(3)}`)
  const r1 = x => Math.round(x * 100) / 100
  const out = {
    bench: 'idle-rss',
    runs,
    settle_ms: settleMs,
    gc: useGc,
    bare_rss_mib: r1(med.bare.rss / MiB),
    ours_inc_mib: r1(inc.ours),
    ours_hyperswarm_entry_inc_mib: r1(inc['ours-hyperswarm']),
    ratio_hyperswarm_entry: Math.round(ratioEntry * 1000) / 1000,
    hyperswarm_inc_mib: r1(inc.hyperswarm),
    ...(IMPLS.includes('network004') ? { network004_inc_mib: r1(inc.network004) } : {}),
    ratio: Math.round(ratio * 1000) / 1000,
    target: 0.3
  }
  console.log(JSON.stringify(out))
}

budget.finish(main(), () => lab && lab.destroy())
