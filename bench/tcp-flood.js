#!/usr/bin/env node
'use strict'
// 1,000 idle TCP connections from one IP against one swarm: how many stay
// open? Ours caps incoming connections per IP (`maxIncomingPerIp`, default
// 128: a hyperswarm swarm keeps at most `maxPeers` = 24 connections, so no
// honest host comes near it) and closes the rest at once. The reference
// seed (@hyperswarm/network 0.0.4) keeps them all; hyperswarm 2.15.3 (and
// our ./hyperswarm entry) closes what is over `maxPeers` in JS, after the
// descriptor was taken.
//
//   sudo node bench/tcp-flood.js [--connections 1000] [--settle-ms 3000] [--no-ref]
//
// Rows: ours (seed entry) beside the reference seed, and our ./hyperswarm
// entry beside hyperswarm 2.15.3. Every process that opens a socket runs inside one
// loopback-only network namespace; this one only orchestrates over IPC
// (bench/lib/guard.js).
const path = require('path')
const guard = require('./lib/guard')
const { expect, ask } = require('./lib/ipc')
const { Lab } = require('../__test__/helpers/netns')

const connections = guard.numberArg('connections', 1000)
const settleMs = guard.numberArg('settle-ms', 3000)
if (!(Number.isInteger(connections) && connections >= 1 && connections <= 10000 && settleMs >= 0 && settleMs <= 60000)) {
  console.error('usage: node bench/tcp-flood.js [--connections 1..10000] [--settle-ms 0..60000] [--no-ref]')
  process.exit(2)
}
const IMPLS = guard.flag('no-ref') ? ['ours', 'ours-hyperswarm'] : ['ours', 'network004', 'ours-hyperswarm', 'hyperswarm']
const CAP = 128 // src/utp/endpoint.rs MAX_INCOMING_PER_IP, SwarmConfig's default
const TARGET = path.join(__dirname, 'lib', 'flood-target.js')
const FLOODER = path.join(__dirname, 'lib', 'tcp-flooder.js')
const DEADLINE_MS = 60000 + IMPLS.length * (90000 + settleMs)

let lab = null
const budget = guard.orchestrator({ deadlineMs: DEADLINE_MS, onAbort: () => lab && lab.destroy() })
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))


async function once (impl) {
  const target = lab.spawn(0, TARGET, [impl], { timeoutMs: 120000 + settleMs })
  const { port } = await expect(target, 'ready', 15000)
  const flooder = lab.spawn(0, FLOODER, [String(port), String(connections), '1'], { timeoutMs: 120000 + settleMs })
  try {
    await expect(flooder, 'ready', 15000)
    const t0 = Date.now()
    flooder.send({ cmd: 'start' })
    let o
    for (let i = 0; i < 600; i++) {
      o = await ask(flooder, 'open', 'opened')
      if (o.connected + o.failed >= connections) break
      await sleep(100)
    }
    const connectMs = Date.now() - t0
    await sleep(settleMs)
    o = await ask(flooder, 'open', 'opened')
    const t = await ask(target, 'count', 'count')
    return {
      impl,
      attempted: connections,
      connected: o.connected,
      failed: o.failed,
      stillOpen: o.open,
      heldByApp: t.open,
      deliveredToApp: t.accepted,
      refusedPerIp: t.stats ? t.stats.tcpRefusedPerIp : null,
      connectMs
    }
  } finally {
    for (const c of [flooder, target]) c.send({ cmd: 'exit' })
    await Promise.all([flooder, target].map(c => Promise.race([c.exited, sleep(2000)])))
    await Promise.all([flooder.kill(), target.kill()])
  }
}

async function main () {
  lab = Lab.loopback()
  console.log(`TCP flood: ${connections} idle connections from one IP (127.0.0.1) to one swarm, ` +
    `counted ${settleMs} ms after the last connect settled; our per-IP cap is ${CAP}`)
  const rows = []
  for (const impl of IMPLS) {
    const r = await once(impl)
    rows.push(r)
  }
  const pad = (s, n) => String(s).padStart(n)
  console.log(`${'implementation'.padEnd(18)}${pad('connected', 11)}${pad('still open', 12)}${pad('held by app', 13)}${pad('refused', 9)}`)
  for (const r of rows) {
    console.log(`${r.impl.padEnd(18)}${pad(r.connected, 11)}${pad(r.stillOpen, 12)}${pad(r.heldByApp, 13)}${pad(r.refusedPerIp == null ? '-' : r.refusedPerIp, 9)}`)
  }
  const ours = rows.filter(r => r.impl.startsWith('ours'))
  const ok = ours.every(r => r.stillOpen <= CAP && r.heldByApp <= CAP && r.connected >= CAP)
  const ref = rows.find(r => r.impl === 'network004')
  console.log(ok ? `ours: at most the cap (${CAP}) stay open` : `FAIL: more than the cap (${CAP}) stayed open, or fewer than the cap connected`)
  console.log(JSON.stringify({
    bench: 'tcp-flood',
    connections,
    cap: CAP,
    ours: rows.find(r => r.impl === 'ours'),
    oursHyperswarm: rows.find(r => r.impl === 'ours-hyperswarm'),
    reference: ref || null,
    referenceHyperswarm: rows.find(r => r.impl === 'hyperswarm') || null,
    ok
  }))
  await lab.destroy()
  if (!ok) throw new Error('cap not held')
}

budget.finish(main(), () => lab && lab.destroy())
