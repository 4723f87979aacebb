#!/usr/bin/env node
'use strict'
// Bulk one-way TCP throughput: one of our swarm connections vs a plain Node
// net.Socket (and, as a third column, the reference @hyperswarm/network
// 0.0.4's TCP connection), all in the same run.
//
//   sudo node bench/stream-throughput.js [--mib 256] [--runs 7] [--chunk-kib 64] [--no-ref]
//
// Sender and receiver are two separate node processes in one loopback-only
// network namespace (made with __test__/helpers/netns.js). This process only
// orchestrates them over IPC; it opens no socket itself. For each run and
// implementation, fresh processes are started, the connection is made, and
// then the sender writes `mib` MiB in `chunk-kib` KiB writes (respecting
// backpressure). Time is from the sender's first write to the receiver's
// last byte. The runs of the implementations are interleaved and the median
// is reported.
const path = require('path')
const guard = require('./lib/guard')
const { Lab } = require('../__test__/helpers/netns')

const arg = guard.numberArg
const MIB = 1024 * 1024
const mib = arg('mib', 256)
const runs = arg('runs', 7)
const chunkKiB = arg('chunk-kib', 64)
const withRef = !guard.flag('no-ref')
if (!(mib >= 1 && mib <= 4096 && runs >= 1 && runs <= 20 && chunkKiB >= 1 && chunkKiB <= 16384)) {
  console.error('usage: node bench/stream-throughput.js [--mib 1..4096] [--runs 1..20] [--chunk-kib 1..16384] [--no-ref]')
  process.exit(2)
}
const BYTES = mib * MIB
const PEER = path.join(__dirname, 'lib', 'throughput-peer.js')
const IMPLS = ['ours', 'node', ...(withRef ? ['network004'] : [])]
const LABEL = { ours: 'ours (hyperswarm-native)', node: 'node net.Socket', network004: '@hyperswarm/network 0.0.4' }

let lab = null
const budget = guard.orchestrator({
  deadlineMs: 60000 + runs * IMPLS.length * 60000,
  onAbort: () => lab && lab.destroy()
})

// Waits for a message of `type` from a child; an 'error' message fails fast.
async function expect (child, type, ms) {
  const m = await child.wait(m => m.type === type || m.type === 'error', ms, type)
  if (m.type === 'error') throw new Error(`${child.name}: ${m.message}`)
  return m
}

async function once (impl) {
  const rx = lab.spawn(0, PEER, ['receiver', impl, String(BYTES)], { timeoutMs: 90000 })
  let tx = null
  try {
    const { port } = await expect(rx, 'listening', 20000)
    tx = lab.spawn(0, PEER, ['sender', impl, String(BYTES), String(port), String(chunkKiB * 1024)], { timeoutMs: 90000 })
    await expect(tx, 'connected', 20000)
    tx.send({ cmd: 'go' })
    const r = await expect(rx, 'received', 60000)
    const s = await expect(tx, 'sent', 60000)
    const seconds = Number(BigInt(r.t1) - BigInt(s.t0)) / 1e9
    return { mibps: (r.bytes / MIB) / seconds, seconds, txCpu: s.cpuUs / 1e6, rxCpu: r.cpuUs / 1e6 }
  } finally {
    for (const c of [rx, tx]) if (c) { c.send({ cmd: 'exit' }); await c.kill() }
  }
}

async function main () {
  lab = Lab.loopback()
  const results = Object.fromEntries(IMPLS.map(i => [i, []]))
  console.log(`stream throughput: ${mib} MiB one way, ${chunkKiB} KiB writes, ${runs} runs each (interleaved), ` +
    'sender and receiver in separate node processes, one loopback-only netns')
  for (let run = 0; run < runs; run++) {
    for (const impl of IMPLS) {
      const r = await once(impl)
      results[impl].push(r)
      console.log(`  run ${run + 1}/${runs} ${impl.padEnd(10)} ${r.mibps.toFixed(0).padStart(6)} MiB/s  ` +
        `(${r.seconds.toFixed(3)} s, cpu sender ${r.txCpu.toFixed(2)} s, receiver ${r.rxCpu.toFixed(2)} s)`)
    }
  }
  await lab.destroy()

  const med = Object.fromEntries(IMPLS.map(i => [i, {
    mibps: guard.median(results[i].map(r => r.mibps)),
    txCpu: guard.median(results[i].map(r => r.txCpu)),
    rxCpu: guard.median(results[i].map(r => r.rxCpu))
  }]))
  const ratio = med.ours.mibps / med.node.mibps
  console.log('')
  console.log('implementation               median MiB/s   min..max MiB/s   cpu s sender / receiver (median)')
  for (const i of IMPLS) {
    const xs = results[i].map(r => r.mibps)
    console.log(`${LABEL[i].padEnd(28)} ${med[i].mibps.toFixed(0).padStart(12)}   ` +
      `${(Math.min(...xs).toFixed(0) + '..' + Math.max(...xs).toFixed(0)).padStart(14)}   ` +
      `${med[i].txCpu.toFixed(2)} / ${med[i].rxCpu.toFixed(2)}`)
  }
  console.log(`ratio ours/node: ${ratio.toFixed(3)} (target >= 0.95: ${ratio >= 0.95 ? 'met' : 'NOT met'})`)
  const out = {
    bench: 'stream-throughput',
    mib,
    runs,
    chunk_kib: chunkKiB,
    processes: 'sender and receiver in separate processes',
    ours_mibps: round(med.ours.mibps),
    node_mibps: round(med.node.mibps),
    ...(withRef ? { network004_mibps: round(med.network004.mibps) } : {}),
    ratio: Math.round(ratio * 1000) / 1000,
    target: 0.95
  }
  console.log(JSON.stringify(out))
}

const round = x => Math.round(x * 10) / 10

budget.finish(main(), () => lab && lab.destroy())
