#!/usr/bin/env node
'use strict'
// Time to connect over the DHT: two peers of one implementation join a fresh
// topic (announce + lookup) on a 5-node loopback testnet of REFERENCE DHT
// nodes (@hyperswarm/dht 4.0.1: one ephemeral bootstrap + 4 persistent
// nodes), LAN discovery off on both; we time from the join to the
// 'connection' event on BOTH sides (the later one). In the same run,
// interleaved: ours through the seed entry ↔ the same, ours through
// require('hyperswarm-native/hyperswarm') (the reference's own API) ↔ the
// same, and hyperswarm 2.15.3 ↔ hyperswarm 2.15.3. Ratios: ./hyperswarm
// entry / seed entry, and seed entry / reference.
//
// The two entries of ours are compared from the same state, twice:
//   bound     each swarm is bound and bootstrapped before its join (the
//             seed entry binds in its constructor; the ./hyperswarm peer
//             calls listen() first). This is the entry comparison's
//             target: the same engine, queue and dial path behind two APIs.
//   cold      each swarm is made at the join instant, so the time includes
//             binding and the first DHT hop from the bootstrap node
//             ('ours-cold', 'ours-hyperswarm-cold').
// The reference is made at start and binds at its first join, as
// hyperswarm 2.x does (so it is between the two states).
//
//   sudo node bench/connect-time.js [--runs 11] [--timeout-ms 20000] [--hyperswarm-entry]
//
// --hyperswarm-entry: the older run, ./hyperswarm entry vs the reference only
// (no seed entry; the ratio vs the reference is the entry's).
//
// Modes:
//   staggered     the second peer joins 0.5 s after the first; time runs
//                 from the second join
//   simultaneous  both join at the same instant
// Every process that opens a socket runs inside one loopback-only network
// namespace; this one only orchestrates over IPC (bench/lib/guard.js).
const crypto = require('crypto')
const path = require('path')
const guard = require('./lib/guard')
const { expect } = require('./lib/ipc')
const { Lab } = require('../__test__/helpers/netns')

const arg = guard.numberArg
const runs = arg('runs', 11)
const timeoutMs = arg('timeout-ms', 20000)
if (!(Number.isInteger(runs) && runs >= 1 && runs <= 50 && timeoutMs >= 1000 && timeoutMs <= 60000)) {
  console.error('usage: node bench/connect-time.js [--runs 1..50] [--timeout-ms 1000..60000] [--hyperswarm-entry]')
  process.exit(2)
}

const PEER = path.join(__dirname, 'lib', 'connect-peer.js')
const JS_DHT = path.join(__dirname, 'lib', 'dht-nodes.js') // __test__/helpers/js-dht.js, guarded
// OURS is what the ratio vs the reference is about. The entry-vs-seed
// comparison needs both of ours in the same run: same testnet, same load.
const OURS = guard.flag('hyperswarm-entry') ? 'ours-hyperswarm' : 'ours'
const IMPLS = OURS === 'ours' ? ['ours', 'ours-hyperswarm', 'ours-cold', 'ours-hyperswarm-cold', 'hyperswarm'] : [OURS, 'hyperswarm']
const ENTRY = IMPLS.includes('ours') && IMPLS.includes('ours-hyperswarm')
const ENTRY_TARGET = 1.1
const MODES = { staggered: 500, simultaneous: 0 } // delay of the second join, ms
const LABEL = {
  ours: 'ours (hyperswarm-native)',
  'ours-hyperswarm': 'ours (./hyperswarm entry)',
  'ours-cold': 'ours, cold',
  'ours-hyperswarm-cold': 'ours (./hyperswarm), cold',
  hyperswarm: 'hyperswarm 2.15.3'
}
const LEAD_MS = 300 // joins are scheduled this far ahead, once both peers are up
const DHT_NODES = 4

// Each attempt at worst: two process starts, the lead, the stagger, the
// timeout, the teardown.
const DEADLINE_MS = 60000 + runs * IMPLS.length * Object.keys(MODES).length * (timeoutMs + 8000)
let lab = null
const budget = guard.orchestrator({
  deadlineMs: DEADLINE_MS,
  onAbort: () => lab && lab.destroy()
})

const hr = () => process.hrtime.bigint()
const ms = (a, b) => Number(BigInt(b) - BigInt(a)) / 1e6

// One measurement: fresh peers, a fresh topic. Resolves with
// { ms } or { failed: reason }.
async function once (impl, delayMs, bootstrap) {
  const opts = { timeoutMs: timeoutMs + 15000 }
  const a = lab.spawn(0, PEER, [impl, bootstrap], opts)
  const b = lab.spawn(0, PEER, [impl, bootstrap], opts)
  try {
    await Promise.all([expect(a, 'ready', 15000), expect(b, 'ready', 15000)])
    const topic = crypto.randomBytes(32).toString('hex')
    const at = hr() + BigInt(LEAD_MS * 1e6)
    a.send({ cmd: 'join', topic, at: at.toString() })
    b.send({ cmd: 'join', topic, at: (at + BigInt(delayMs * 1e6)).toString() })
    const [ja, jb] = await Promise.all([expect(a, 'joined', LEAD_MS + delayMs + 5000), expect(b, 'joined', LEAD_MS + delayMs + 5000)])
    let ca, cb
    try {
      ;[ca, cb] = await Promise.all([expect(a, 'connection', timeoutMs), expect(b, 'connection', timeoutMs)])
    } catch (err) {
      const sides = [a, b].map((c, i) => {
        const got = c.messages.map(m => m.type).filter(t => t === 'peer' || t === 'connection')
        return `${'ab'[i]}: ${got.length ? got.join('+') : 'nothing'}`
      })
      return { failed: `no connection on both sides within ${timeoutMs} ms (${sides.join(', ')})` }
    }
    // From the later join to the later connection.
    const start = BigInt(ja.t) > BigInt(jb.t) ? ja.t : jb.t
    const end = BigInt(ca.t) > BigInt(cb.t) ? ca.t : cb.t
    // Diagnostic: the first 'peer' event on either side, from the same
    // start. It splits the time into finding (DHT, and the trip up into
    // JS) and dialling, which tells where an entry's extra time goes.
    const peers = [a, b].flatMap(c => c.messages.filter(m => m.type === 'peer').map(m => BigInt(m.t)))
    const found = peers.length ? peers.reduce((x, y) => x < y ? x : y) : null
    return { ms: ms(start, end), peerMs: found == null ? null : ms(start, found), skewMs: Math.abs(ms(ja.t, jb.t) - delayMs) }
  } finally {
    for (const c of [a, b]) c.send({ cmd: 'exit' })
    await Promise.all([a, b].map(c => Promise.race([c.exited, new Promise(resolve => setTimeout(resolve, 2000))])))
    await Promise.all([a.kill(), b.kill()])
  }
}

async function main () {
  lab = Lab.loopback()
  const boot = lab.spawn(0, JS_DHT, ['bootstrap', '0'], { timeoutMs: DEADLINE_MS, env: { BENCH_DEADLINE_MS: String(DEADLINE_MS) } })
  const { ports: [bootPort] } = await expect(boot, 'ready', 15000)
  const bootstrap = `127.0.0.1:${bootPort}`
  const members = lab.spawn(0, JS_DHT, ['nodes', String(DHT_NODES), bootstrap], { timeoutMs: DEADLINE_MS, env: { BENCH_DEADLINE_MS: String(DEADLINE_MS) } })
  await expect(members, 'ready', 30000)

  console.log(`connect time over the DHT: ${runs} runs per implementation and mode (interleaved), ` +
    `testnet of reference DHT nodes (1 bootstrap + ${DHT_NODES}) at ${bootstrap}, LAN discovery off, ` +
    `fresh peer processes and topic per run, timeout ${timeoutMs} ms`)
  const results = {}
  for (const mode of Object.keys(MODES)) results[mode] = Object.fromEntries(IMPLS.map(i => [i, []]))
  for (let run = 0; run < runs; run++) {
    for (const mode of Object.keys(MODES)) {
      // Rotate which implementation goes first, so none always runs
      // right after the testnet was busy with a particular other one.
      const order = IMPLS.map((_, k) => IMPLS[(k + run) % IMPLS.length])
      for (const impl of order) {
        const r = await once(impl, MODES[mode], bootstrap)
        results[mode][impl].push(r)
        console.log(`  run ${String(run + 1).padStart(2)}/${runs} ${mode.padEnd(12)} ${impl.padEnd(20)} ` +
          (r.failed ? `FAILED: ${r.failed}` : `${r.ms.toFixed(1).padStart(8)} ms` +
            (r.peerMs == null ? '' : ` (first peer ${r.peerMs.toFixed(1)} ms)`)))
      }
    }
  }
  await lab.destroy()

  // A run that did not connect counts as "longer than the timeout": the
  // median over all runs is then either a time or "> timeout".
  const summary = {}
  const fmt = x => x === Infinity ? `>${timeoutMs}` : x.toFixed(1)
  console.log('')
  console.log('mode          implementation               median ms   (connected runs only)   min..max ms        failures   first peer ms')
  for (const mode of Object.keys(MODES)) {
    summary[mode] = {}
    for (const impl of IMPLS) {
      const all = results[mode][impl].map(r => r.failed ? Infinity : r.ms)
      const ok = all.filter(Number.isFinite)
      const s = {
        median: guard.median(all),
        medianConnected: ok.length ? guard.median(ok) : null,
        // Over the connected runs: a failed run may have found no peer.
        peerMedian: medianOf(results[mode][impl].filter(r => !r.failed && r.peerMs != null).map(r => r.peerMs)),
        min: ok.length ? Math.min(...ok) : null,
        max: ok.length ? Math.max(...ok) : null,
        failures: all.length - ok.length
      }
      summary[mode][impl] = s
      console.log(`${mode.padEnd(13)} ${LABEL[impl].padEnd(28)} ${fmt(s.median).padStart(9)}   ` +
        `${(s.medianConnected == null ? '-' : s.medianConnected.toFixed(1)).padStart(21)}   ` +
        `${(ok.length ? s.min.toFixed(1) + '..' + s.max.toFixed(1) : '-').padStart(16)}   ${`${s.failures}/${all.length}`.padEnd(8)}   ` +
        `${s.peerMedian == null ? '-' : s.peerMedian.toFixed(1)}`)
    }
    summary[mode].ref = compare(summary[mode][OURS], summary[mode].hyperswarm)
    if (ENTRY) {
      summary[mode].entry = compare(summary[mode]['ours-hyperswarm'], summary[mode].ours)
      summary[mode].entryCold = compare(summary[mode]['ours-hyperswarm-cold'], summary[mode]['ours-cold'])
    }
  }
  for (const mode of Object.keys(MODES)) {
    if (ENTRY) printRatio(`./hyperswarm entry/seed entry, ${mode}, both bound`, summary[mode].entry, ENTRY_TARGET)
    if (ENTRY) printRatio(`./hyperswarm entry/seed entry, ${mode}, both cold`, summary[mode].entryCold, ENTRY_TARGET)
    printRatio(`ours/reference, ${mode}`, summary[mode].ref, 0.5)
  }
  const num = x => x == null || x === Infinity ? null : Math.round(x * 10) / 10
  const r3 = x => x == null ? null : Number(x.toPrecision(3))
  // The worse of the two modes.
  const worst = key => {
    const ratios = Object.keys(MODES).map(m => summary[m][key].ratio)
    return ratios.includes(null) ? null : r3(Math.max(...ratios))
  }
  const out = { bench: 'connect-time', ours: OURS, runs, timeout_ms: timeoutMs, testnet: `reference DHT, 1 bootstrap + ${DHT_NODES}` }
  for (const mode of Object.keys(MODES)) {
    const { [OURS]: ours, hyperswarm, ref } = summary[mode]
    out[`${mode}_ours_ms`] = num(ours.median)
    out[`${mode}_ref_ms`] = num(hyperswarm.median)
    if (hyperswarm.median === Infinity) out[`${mode}_ref_ms_over`] = timeoutMs
    out[`${mode}_ours_failures`] = ours.failures
    out[`${mode}_ref_failures`] = hyperswarm.failures
    out[`${mode}_ratio`] = r3(ref.ratio)
    if (ref.bound) out[`${mode}_ratio_bound`] = ref.bound
    out[`${mode}_ratio_connected_only`] = r3(ref.ratioConnected)
    out[`${mode}_ours_first_peer_ms`] = num(ours.peerMedian)
    out[`${mode}_ref_first_peer_ms`] = num(hyperswarm.peerMedian)
    if (ENTRY) {
      const { 'ours-hyperswarm': e, entry } = summary[mode]
      out[`${mode}_hyperswarm_entry_ms`] = num(e.median)
      out[`${mode}_hyperswarm_entry_failures`] = e.failures
      out[`${mode}_hyperswarm_entry_first_peer_ms`] = num(e.peerMedian)
      out[`${mode}_entry_ratio`] = r3(entry.ratio)
      out[`${mode}_entry_ratio_connected_only`] = r3(entry.ratioConnected)
      const { 'ours-cold': oc, 'ours-hyperswarm-cold': ec, entryCold } = summary[mode]
      out[`${mode}_cold_ours_ms`] = num(oc.median)
      out[`${mode}_cold_hyperswarm_entry_ms`] = num(ec.median)
      out[`${mode}_cold_failures`] = oc.failures + ec.failures
      out[`${mode}_cold_entry_ratio`] = r3(entryCold.ratio)
    }
  }
  out.ratio = worst('ref')
  out.target = 0.5
  if (ENTRY) Object.assign(out, { entry_ratio: worst('entry'), cold_entry_ratio: worst('entryCold'), entry_target: ENTRY_TARGET })
  console.log(JSON.stringify(out))
}

const medianOf = xs => xs.length ? guard.median(xs) : null

// Ratio of two implementations' medians (a / b). A median of "> timeout"
// makes it unknown (a) or an upper bound (b).
function compare (a, b) {
  const ratioConnected = a.medianConnected != null && b.medianConnected ? a.medianConnected / b.medianConnected : null
  const failures = a.failures + b.failures
  if (a.median === Infinity) return { ratio: null, ratioConnected, failures }
  if (b.median === Infinity) return { ratio: a.median / timeoutMs, bound: 'upper', ratioConnected, failures }
  return { ratio: a.median / b.median, ratioConnected, failures }
}

function printRatio (name, { ratio: r, bound, ratioConnected: rc, failures }, target) {
  const shown = r == null ? 'n/a' : (bound ? '< ' + r.toPrecision(2) : r.toFixed(3))
  console.log(`ratio ${name}: ${shown} (target <= ${target}: ${r != null && r <= target ? 'met' : 'NOT met'})` +
    (failures ? `; connected runs only: ${rc == null ? 'n/a' : rc.toFixed(3)}` : ''))
}

budget.finish(main(), () => lab && lab.destroy())
