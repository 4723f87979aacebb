'use strict'
// A process holding one joined swarm (or none, for the baseline), run inside
// the lab by bench/idle-rss.js.
//   node idle-peer.js <impl> <settleMs> [gc|nogc]
// impl: 'bare' (no swarm, same waits), 'ours' (require('hyperswarm-native')),
// 'ours-hyperswarm' (our ./hyperswarm entry), 'hyperswarm' (2.15.3) or
// 'network004' (@hyperswarm/network 0.0.4). References get `bootstrap: []`,
// and so does ours, so nobody tries a public bootstrap node (there is no
// route out of the lab anyway). Multicast is each one's default, which in
// the lab means mDNS on lo only.
//
// It reads its own memory (/proc/self/status) after a full GC BEFORE the
// stack is required, then requires it, creates one swarm, joins one topic
// with announce + lookup, waits settleMs, runs a full GC (unless 'nogc'),
// reads its memory again and reports both as 'settled'. after - before is
// what the stack costs this process, without comparing two processes.
const guard = require('./guard')
guard.child({ deadlineMs: 60000 })

const fs = require('fs')
const v8 = require('v8')
const vm = require('vm')

// The lab starts `node script`, so --expose-gc cannot go on the command line.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

const [impl, settleArg, gcArg = 'gc'] = process.argv.slice(2)
const useGc = gcArg !== 'nogc'
const settleMs = Number(settleArg)
const TOPIC = Buffer.alloc(32, 0x17)
const send = m => process.send(m)
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const held = []

// Bytes resident (all, anonymous, file-backed) and thread count. Read here,
// not by the orchestrator: only this process knows when "before require" is.
function memory () {
  const text = fs.readFileSync('/proc/self/status', 'utf8')
  const kib = key => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))
    return m ? Number(m[1]) * 1024 : NaN
  }
  const threads = text.match(/^Threads:\s+(\d+)/m)
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile'), threads: threads ? Number(threads[1]) : NaN }
}

// Both readings come after the same GC sequence, so the heap garbage left
// by whatever ran before does not count on either side. Four rounds, not
// two: V8 shrinks its young generation over the first few GCs of a process,
// and with two rounds a bare process lost ~0.5 MiB between the readings.
async function quiet () {
  for (let i = 0; i < 4; i++) {
    if (useGc) gc()
    await sleep(300)
  }
}

function start () {
  // The stack is required here, not at the top: its code and the heap it
  // builds while loading belong to the increment.
  let swarm = null
  if (impl === 'bare') return
  if (impl === 'ours') swarm = require('hyperswarm-native')({ bootstrap: [] })
  else if (impl === 'ours-hyperswarm') swarm = require('hyperswarm-native/hyperswarm')({ bootstrap: [] })
  else if (impl === 'hyperswarm') swarm = require('hyperswarm')({ bootstrap: [] })
  else if (impl === 'network004') swarm = require('@hyperswarm/network')({ bootstrap: [] })
  else throw new Error('unknown impl ' + impl)
  swarm.on('error', err => send({ type: 'warning', message: err.message }))
  swarm.join(TOPIC, { announce: true, lookup: true })
  held.push(swarm)
}

async function main () {
  await quiet()
  const before = memory()
  start()
  await sleep(settleMs)
  await quiet()
  send({ type: 'settled', pid: process.pid, swarms: held.length, before, after: memory() })
}

process.on('message', m => { if (m.cmd === 'exit') process.exit(0) })
main().catch(err => {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
})
