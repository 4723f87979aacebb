#!/usr/bin/env node
'use strict'
// CPU under EMFILE: a swarm process runs out of file descriptors while
// connections keep waiting in its listen backlog. The listener then stays
// readable and every accept() fails; an engine that retries at once spins
// a core. Ours pauses after a failed accept (20 ms, doubling to 1 s) and
// must stay under 5 % of one CPU. The reference hyperswarm 2.15.3 (Node's
// libuv) runs alongside for comparison.
//
//   sudo node bench/emfile.js [--window-ms 10000] [--connections 400] [--no-ref]
//
// How: the target process starts, joins a topic (to bind), and reports its
// pid; this script lowers its RLIMIT_NOFILE with `prlimit --pid` to what it
// uses plus 24, then a flooder opens idle connections from 4 loopback IPs
// (so that the per-IP cap is not what stops them). Once the connects have
// settled, the target's CPU time (utime + stime from /proc/<pid>/stat) is
// read over the window. Positive control: the fd table is full and (ours)
// the engine counted failed accepts. Every process that opens a socket
// runs inside one loopback-only network namespace; this one only
// orchestrates over IPC (bench/lib/guard.js).
const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')
const guard = require('./lib/guard')
const { expect, ask } = require('./lib/ipc')
const { Lab } = require('../__test__/helpers/netns')

const windowMs = guard.numberArg('window-ms', 10000)
const connections = guard.numberArg('connections', 400)
if (!(windowMs >= 1000 && windowMs <= 120000 && Number.isInteger(connections) && connections >= 50 && connections <= 5000)) {
  console.error('usage: node bench/emfile.js [--window-ms 1000..120000] [--connections 50..5000] [--no-ref]')
  process.exit(2)
}
const IMPLS = guard.flag('no-ref') ? ['ours'] : ['ours', 'hyperswarm']
const HEADROOM = 24 // descriptors left for connections above what the idle target uses
const LIMIT_PCT = 5
const TARGET = path.join(__dirname, 'lib', 'flood-target.js')
const FLOODER = path.join(__dirname, 'lib', 'tcp-flooder.js')
const DEADLINE_MS = 60000 + IMPLS.length * (60000 + windowMs)
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100

let lab = null
const budget = guard.orchestrator({ deadlineMs: DEADLINE_MS, onAbort: () => lab && lab.destroy() })
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))


/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS // utime, stime (fields 14, 15)
}

const fdCount = pid => fs.readdirSync(`/proc/${pid}/fd`).length

async function once (impl) {
  const target = lab.spawn(0, TARGET, [impl], { timeoutMs: 60000 + windowMs })
  let f = null
  try {
    const { port, pid } = await expect(target, 'ready', 15000)
    await sleep(500)
    const idleFds = fdCount(pid)
    const limit = idleFds + HEADROOM
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`])
    // Idle CPU first, for reference.
    const i0 = cpuSeconds(pid)
    await sleep(2000)
    const idlePct = (cpuSeconds(pid) - i0) / 2 * 100
    f = lab.spawn(0, FLOODER, [String(port), String(connections), '4'], { timeoutMs: 60000 + windowMs })
    await expect(f, 'ready', 15000)
    f.send({ cmd: 'start' })
    let o
    for (let i = 0; i < 300; i++) {
      o = await ask(f, 'open', 'opened')
      if (o.connected + o.failed >= connections) break
      await sleep(100)
    }
    await sleep(500)
    const fdsInUse = fdCount(pid)
    const c0 = cpuSeconds(pid)
    const t0 = process.hrtime.bigint()
    await sleep(windowMs)
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    const cpuPct = (cpuSeconds(pid) - c0) / secs * 100
    const t = await ask(target, 'count', 'count')
    return {
      impl,
      fdLimit: limit,
      fdsInUse,
      connected: o.connected,
      heldByApp: t.open,
      acceptErrors: t.stats ? t.stats.acceptErrors : null,
      idleCpuPct: Number(idlePct.toFixed(2)),
      cpuPct: Number(cpuPct.toFixed(2)),
      windowS: Number(secs.toFixed(1))
    }
  } finally {
    for (const c of [f, target]) if (c) c.send({ cmd: 'exit' })
    await Promise.all([f, target].filter(Boolean).map(c => Promise.race([c.exited, sleep(2000)])))
    await Promise.all([f, target].filter(Boolean).map(c => c.kill()))
  }
}

async function main () {
  lab = Lab.loopback()
  console.log(`EMFILE: the target's RLIMIT_NOFILE is lowered to its idle use + ${HEADROOM}, then ${connections} idle ` +
    `connections from 4 loopback IPs; CPU of the target over ${windowMs} ms once they settled (limit ${LIMIT_PCT} %)`)
  const rows = []
  for (const impl of IMPLS) rows.push(await once(impl))
  const pad = (s, n) => String(s).padStart(n)
  console.log(`${'implementation'.padEnd(14)}${pad('fd limit', 10)}${pad('fds used', 10)}${pad('accept errors', 15)}${pad('idle CPU %', 12)}${pad('CPU % (EMFILE)', 16)}`)
  for (const r of rows) {
    console.log(`${r.impl.padEnd(14)}${pad(r.fdLimit, 10)}${pad(r.fdsInUse, 10)}${pad(r.acceptErrors == null ? '-' : r.acceptErrors, 15)}${pad(r.idleCpuPct, 12)}${pad(r.cpuPct, 16)}`)
  }
  const ours = rows.find(r => r.impl === 'ours')
  const reached = ours.acceptErrors > 0 && ours.fdsInUse >= ours.fdLimit - 1
  const ok = reached && ours.cpuPct < LIMIT_PCT
  console.log(!reached ? 'FAIL: EMFILE was not reached (no failed accepts, or the fd table was not full)'
    : ok ? `ours: ${ours.cpuPct} % CPU under EMFILE (< ${LIMIT_PCT} %)` : `FAIL: ours used ${ours.cpuPct} % CPU under EMFILE`)
  console.log(JSON.stringify({ bench: 'emfile', windowMs, connections, limitPct: LIMIT_PCT, ours, reference: rows.find(r => r.impl === 'hyperswarm') || null, ok }))
  await lab.destroy()
  if (!ok) throw new Error('EMFILE check failed')
}

budget.finish(main(), () => lab && lab.destroy())
