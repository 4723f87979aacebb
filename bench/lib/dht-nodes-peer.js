'use strict'
// Holds N DHT nodes in one process, run inside the lab by bench/dht-memory.js.
//   node dht-nodes-peer.js <impl> <count>
// impl: 'baseline' (only a bootstrap node, for the subtraction), 'ours'
// (network.DhtNode, all on the addon's one runtime) or 'reference'
// (@hyperswarm/dht 4.0.1). Each process first starts one ephemeral bootstrap
// node of its own kind; the N members are persistent and bootstrap from it.
// Reports 'settled' with its pid; the orchestrator reads VmRSS.
const guard = require('./guard')
guard.child({ deadlineMs: 120000 })

const path = require('path')
const v8 = require('v8')
const vm = require('vm')

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')
const [impl, countArg] = process.argv.slice(2)
const count = Number(countArg)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const held = []

async function main () {
  if (impl === 'ours' || impl === 'baseline-ours') {
    const { DhtNode } = require(path.join(__dirname, '..', '..'))
    const boot = new DhtNode({ ephemeral: true })
    held.push(boot)
    const bootstrap = [`127.0.0.1:${boot.port}`]
    for (let i = 0; i < (impl === 'ours' ? count : 0); i++) held.push(new DhtNode({ bootstrap }))
  } else {
    const dht = require('@hyperswarm/dht')
    const boot = dht({ bootstrap: [], ephemeral: true })
    await new Promise(resolve => boot.listen(0, resolve))
    held.push(boot)
    const bootstrap = [`127.0.0.1:${boot.address().port}`]
    for (let i = 0; i < (impl === 'reference' ? count : 0); i++) {
      const node = dht({ bootstrap, ephemeral: false })
      node.on('warning', () => {})
      held.push(node)
      await new Promise(resolve => node.listen(0, resolve))
    }
  }
  // Let every bootstrap walk finish and the tables fill.
  await sleep(8000)
  gc()
  await sleep(500)
  gc()
  const tables = impl === 'ours' ? held.slice(1).map(n => n.nodes()) : []
  process.send({ type: 'settled', pid: process.pid, tables })
  await new Promise(resolve => process.once('message', resolve))
  process.exit(0)
}

main().catch(err => {
  process.send({ type: 'error', message: err.stack })
  process.exit(1)
})
