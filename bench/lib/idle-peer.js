'use strict'
// A process holding one joined swarm (or none, for the baseline), run inside
// the lab by bench/idle-rss.js.
//   node idle-peer.js <impl> <settleMs> [gc|nogc]
// impl: 'bare' (no swarm, same waits), 'ours', 'ours-hyperswarm' (our
// ./hyperswarm entry), 'hyperswarm' (2.15.3) or
// 'network004' (@hyperswarm/network 0.0.4). References get `bootstrap: []`,
// and so does ours, so nobody tries a public bootstrap node (there is no
// route out of the lab anyway). Multicast is each one's default, which in
// the lab means mDNS on lo only.
//
// It joins one topic with announce + lookup, waits settleMs, runs a full GC
// (unless 'nogc'), waits a little more, and then reports 'settled' with its pid; the
// orchestrator reads VmRSS from /proc/<pid>/status.
const guard = require('./guard')
guard.child({ deadlineMs: 60000 })

const path = require('path')
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

function start () {
  let swarm = null
  if (impl === 'bare') return
  if (impl === 'ours') swarm = require(path.join(__dirname, '..', '..'))({ bootstrap: [] })
  else if (impl === 'ours-hyperswarm') swarm = require(path.join(__dirname, '..', '..', 'hyperswarm'))({ bootstrap: [] })
  else if (impl === 'hyperswarm') swarm = require('hyperswarm')({ bootstrap: [] })
  else if (impl === 'network004') swarm = require('@hyperswarm/network')({ bootstrap: [] })
  else throw new Error('unknown impl ' + impl)
  swarm.on('error', err => send({ type: 'warning', message: err.message }))
  swarm.join(TOPIC, { announce: true, lookup: true })
  held.push(swarm)
}

async function main () {
  start()
  await sleep(settleMs)
  if (useGc) gc()
  await sleep(500)
  if (useGc) gc()
  await sleep(200)
  send({ type: 'settled', pid: process.pid, swarms: held.length })
}

process.on('message', m => { if (m.cmd === 'exit') process.exit(0) })
main().catch(err => {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
})
