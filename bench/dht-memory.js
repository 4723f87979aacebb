'use strict'
// Memory of many real DHT nodes in one process: ours (network.DhtNode, each
// with its own UDP socket, all on the addon's one tokio runtime) against the
// reference (@hyperswarm/dht 4.0.1), in the same run. Every node is a full
// (persistent) member bootstrapped from a local bootstrap node in the same
// process; all traffic stays in a loopback-only lab.
//
//   node bench/dht-memory.js [--nodes 200] [--runs 3]
//
// Prints KiB per node: (VmRSS with N nodes - VmRSS with only the bootstrap
// node) / N, medians over the runs, and the ratio. Target: ours <= 40 KiB.
const fs = require('fs')
const path = require('path')
const guard = require('./lib/guard')
const { Lab } = require('../__test__/helpers/netns')

const NODES = guard.numberArg('nodes', 200)
const RUNS = guard.numberArg('runs', 3)
const PEER = path.join(__dirname, 'lib', 'dht-nodes-peer.js')

let lab = null
const run = guard.orchestrator({ deadlineMs: 15 * 60 * 1000, onAbort: () => lab && lab.destroy() })

const rssKiB = pid => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
const median = guard.median

async function measure (impl, count) {
  const child = lab.spawn(0, PEER, [impl, String(count)], { timeoutMs: 120000 })
  const m = await child.wait(x => x.type === 'settled' || x.type === 'error', 110000, 'settled')
  if (m.type === 'error') throw new Error(m.message)
  const kib = rssKiB(m.pid)
  child.send({ cmd: 'exit' })
  await child.exited
  return { kib, tables: m.tables }
}

async function main () {
  lab = Lab.loopback()
  const results = { ours: [], reference: [] }
  let tables = []
  for (let r = 0; r < RUNS; r++) {
    for (const [impl, base] of [['ours', 'baseline-ours'], ['reference', 'baseline-reference']]) {
      const b = await measure(base, NODES)
      const n = await measure(impl, NODES)
      if (n.tables.length) tables = n.tables
      const perNode = (n.kib - b.kib) / NODES
      results[impl].push(perNode)
      console.log(`  run ${r + 1}/${RUNS} ${impl.padEnd(9)} ${NODES} nodes: ${(n.kib / 1024).toFixed(1)} MiB, baseline ${(b.kib / 1024).toFixed(1)} MiB -> ${perNode.toFixed(1)} KiB/node`)
    }
  }
  const ours = median(results.ours)
  const ref = median(results.reference)
  const avgTable = tables.length ? tables.reduce((a, b) => a + b, 0) / tables.length : 0
  console.log('')
  console.log(`nodes per process        ${NODES}`)
  console.log(`ours                     ${ours.toFixed(1)} KiB/node (target <= 40), mean routing table ${avgTable.toFixed(1)} contacts`)
  console.log(`@hyperswarm/dht 4.0.1    ${ref.toFixed(1)} KiB/node`)
  console.log(`ratio ours/reference     ${(ours / ref).toFixed(3)}`)
  console.log(JSON.stringify({ bench: 'dht-memory', nodes: NODES, runs: RUNS, ours_kib_per_node: +ours.toFixed(1), reference_kib_per_node: +ref.toFixed(1), ratio: +(ours / ref).toFixed(3), target_kib: 40 }))
}

main().then(() => run.done(), err => { console.error(err); process.exitCode = 1 }).finally(() => lab && lab.destroy())
