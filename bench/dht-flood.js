#!/usr/bin/env node
'use strict'
// A datagram flood at one swarm's DHT socket: 10,000 datagrams/s for 10 s
// (by default) of garbage, valid-looking queries (_find_node, peers, _ping
// with fresh ids, _holepunch to 127.0.0.1:53) and forged responses naming
// fresh nodes, from 16 source addresses (127.0.5.1-16). The swarm under
// attack announces a topic on a DHT testnet of ours (one bootstrap node, 8
// members); 3 s into the flood another swarm of ours looks the topic up and
// must find it. We sample the attacked process's RSS every 100 ms and print
// before / peak / after, against a bound.
//
//   sudo node bench/dht-flood.js [--rate 10000] [--seconds 10] [--bound-mib 16] [--no-ref]
//
// Targets: 'ours' (the seed entry, require('hyperswarm-native')) and, unless
// --no-ref, 'hyperswarm' 2.15.3 announcing through the same testnet (its
// RSS under the same flood, for comparison; not held to the bound).
// Bound: peak RSS - RSS before the flood <= --bound-mib (default 16 MiB):
// every table the flood can reach is capped (budget.rs MAX_SOURCES: 8,192
// sources, ~0.5 MiB; the routing table's /24 caps; 256 queries of at most
// 256 requests; 4,096 queued datagrams of at most 4 KiB, 16 MiB at the very
// worst, ~1 MiB in practice), so the flood can only cost buffers in flight.
// Exit status 1 when our bound is exceeded or the lookup fails.
const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const guard = require('./lib/guard')
const { Lab } = require('../__test__/helpers/netns')

const RATE = guard.numberArg('rate', 10000)
const SECONDS = guard.numberArg('seconds', 10)
const BOUND_MIB = guard.numberArg('bound-mib', 16)
const REF = !guard.flag('no-ref')
if (!(RATE >= 1 && RATE <= 50000 && SECONDS >= 1 && SECONDS <= 60 && BOUND_MIB > 0)) {
  console.error('--rate 1..50000, --seconds 1..60, --bound-mib > 0')
  process.exit(2)
}
const PEER = path.join(__dirname, 'lib', 'dht-flood-peer.js')

let lab = null
const run = guard.orchestrator({ deadlineMs: 5 * 60 * 1000, onAbort: () => lab && lab.destroy() })

const rssKiB = pid => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
  } catch {
    return 0
  }
}
const mib = kib => (kib / 1024).toFixed(1)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function attack (impl, bootstrap) {
  const topic = crypto.randomBytes(32).toString('hex')
  const target = lab.spawn(0, PEER, ['target', impl, bootstrap, topic], { timeoutMs: 90000 })
  const { port, pid } = await target.wait('ready', 20000)
  await sleep(1000)
  const before = rssKiB(pid)
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(pid)) }, 100)
  const flood = lab.spawn(0, PEER, ['flood', String(port), String(RATE), String(SECONDS)], { timeoutMs: (SECONDS + 30) * 1000 })
  await sleep(3000)
  const looker = lab.spawn(0, PEER, ['looker', bootstrap, topic, String(port)], { timeoutMs: 60000 })
  let found = null
  const lookup = looker.wait('found', SECONDS * 1000 + 10000).then(m => { found = m }, () => {})
  const done = await flood.wait(m => m.type === 'done' || m.type === 'error', (SECONDS + 20) * 1000, 'done')
  if (done.type === 'error') throw new Error(done.message)
  await lookup
  await sleep(2000)
  clearInterval(sampler)
  const after = rssKiB(pid)
  peak = Math.max(peak, after)
  for (const c of [target, looker]) c.send({ cmd: 'exit' })
  await Promise.all([target.exited, looker.exited, flood.exited])
  return { impl, before, peak, after, found, flood: done }
}

async function main () {
  lab = Lab.loopback()
  const net = lab.spawn(0, PEER, ['net'], { timeoutMs: 240000 })
  const { bootstrap } = await net.wait('ready', 20000)
  const rows = [await attack('ours', bootstrap)]
  if (REF) rows.push(await attack('hyperswarm', bootstrap))
  net.send({ cmd: 'exit' })
  console.log(`flood: ${RATE} datagrams/s for ${SECONDS} s from 16 sources at one swarm's DHT socket`)
  console.log('target       sent    rate/s  replies  reply/sent bytes   RSS before  peak   after (MiB)  lookup during flood')
  for (const r of rows) {
    const f = r.flood
    console.log(`${r.impl.padEnd(11)} ${String(f.sent).padStart(6)} ${String(Math.round(f.sent / f.seconds)).padStart(8)} ${String(f.replies).padStart(8)} ${(f.replyBytes / f.bytes).toFixed(2).padStart(10)}        ` +
      `${mib(r.before).padStart(6)} ${mib(r.peak).padStart(6)} ${mib(r.after).padStart(6)}        ${r.found ? `found the announcer after ${r.found.ms} ms` : 'NOT FOUND'}`)
  }
  const ours = rows[0]
  const grew = (ours.peak - ours.before) / 1024
  console.log(`ours: peak - before = ${grew.toFixed(1)} MiB (bound ${BOUND_MIB} MiB)`)
  const ref = rows[1]
  console.log(JSON.stringify({
    bench: 'dht-flood',
    rate: RATE,
    seconds: SECONDS,
    ours: { sent: ours.flood.sent, rss_before_mib: +mib(ours.before), rss_peak_mib: +mib(ours.peak), rss_after_mib: +mib(ours.after), reply_ratio: +(ours.flood.replyBytes / ours.flood.bytes).toFixed(3), lookup_ms: ours.found ? ours.found.ms : null },
    reference: ref ? { sent: ref.flood.sent, rss_before_mib: +mib(ref.before), rss_peak_mib: +mib(ref.peak), rss_after_mib: +mib(ref.after), reply_ratio: +(ref.flood.replyBytes / ref.flood.bytes).toFixed(3), lookup_ms: ref.found ? ref.found.ms : null } : null,
    bound_mib: BOUND_MIB
  }))
  if (grew > BOUND_MIB) throw new Error(`RSS grew ${grew.toFixed(1)} MiB under the flood (bound ${BOUND_MIB})`)
  if (!ours.found) throw new Error('the lookup during the flood did not find our announcer')
}

run.finish(main().finally(() => lab && lab.destroy()), () => lab && lab.destroy())
