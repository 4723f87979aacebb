#!/usr/bin/env node
'use strict'
// uTP throughput: our sans-IO uTP (src/utp, in the bench/utp_peer.rs example
// binary) against utp-native@2.5.3 (libutp), in all pairings.
//
//   sudo node bench/utp-throughput.js [--mib 64] [--runs 3]
//
// Each run transfers `mib` MiB in BOTH directions at once over one
// connection, then both sides close; time is the client's, from connect to
// close. Pairings: utp-native ↔ utp-native, ours client ↔ utp-native
// server, utp-native client ↔ ours server, ours ↔ ours. Runs are
// interleaved; the median is reported. Needs the example built:
// `cargo build --release --example utp_peer` (or UTP_PEER_BIN=path).
const path = require('path')
const { spawn } = require('child_process')
const guard = require('./lib/guard')
const { Lab } = require('../__test__/helpers/netns')

const arg = guard.numberArg
const MIB = 1024 * 1024
const mib = arg('mib', 64)
const runs = arg('runs', 3)
if (!(mib >= 1 && mib <= 1024 && runs >= 1 && runs <= 20)) {
  console.error('usage: node bench/utp-throughput.js [--mib 1..1024] [--runs 1..20]')
  process.exit(2)
}
const BYTES = mib * MIB
const JS_PEER = path.join(__dirname, 'lib', 'utp-native-peer.js')
const BIN = process.env.UTP_PEER_BIN || path.join(__dirname, '..', 'target', 'release', 'examples', 'utp_peer')
const PAIRS = [
  ['native', 'native'],
  ['ours', 'native'],
  ['native', 'ours'],
  ['ours', 'ours']
]

let lab = null
const budget = guard.orchestrator({
  deadlineMs: 60000 + runs * PAIRS.length * 150000,
  onAbort: () => lab && lab.destroy()
})

// A Rust peer in the lab; resolves its JSON lines.
function rust (args) {
  const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines = []
  const waiters = []
  let buf = ''
  let stderr = ''
  proc.stdout.on('data', d => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()
    for (const l of parts) {
      if (!l.trim()) continue
      const m = JSON.parse(l)
      lines.push(m)
      for (const w of waiters.splice(0)) if (!w(m)) waiters.push(w)
    }
  })
  proc.stderr.on('data', d => { stderr += d })
  const timer = setTimeout(() => proc.kill('SIGKILL'), 140000)
  proc.on('exit', () => clearTimeout(timer))
  return {
    kill: () => proc.kill('SIGKILL'),
    wait: (key, ms) => new Promise((resolve, reject) => {
      const seen = lines.find(m => key in m)
      if (seen) return resolve(seen)
      const t = setTimeout(() => reject(new Error(`utp_peer: no ${key} within ${ms} ms\n${stderr.slice(-2000)}`)), ms)
      waiters.push(m => {
        if (!(key in m)) return false
        clearTimeout(t)
        resolve(m)
        return true
      })
    })
  }
}

function js (args) {
  const child = lab.spawn(0, JS_PEER, args, { timeoutMs: 140000 })
  return {
    kill: () => child.kill(),
    wait: (key, ms) => child.wait(m => m.type === (key === 'listening' ? 'listening' : 'done'), ms, key)
      .then(m => key === 'listening' ? { listening: m.port } : m)
  }
}

async function once ([client, server]) {
  const srv = server === 'ours' ? rust(['server', '127.0.0.1:0', String(BYTES)]) : js(['server', '0', String(BYTES)])
  let cli = null
  try {
    const { listening: port } = await srv.wait('listening', 20000)
    const target = `127.0.0.1:${port}`
    cli = client === 'ours' ? rust(['client', target, String(BYTES)]) : js(['client', target, String(BYTES)])
    const [c, s] = await Promise.all([cli.wait('done', 130000), srv.wait('done', 130000)])
    if (c.error || s.error) throw new Error(`closed with ${c.error || s.error}`)
    if (c.shaSent !== s.shaRecv || s.shaSent !== c.shaRecv) throw new Error('checksum mismatch')
    return { mibps: 2 * mib / c.secs, secs: c.secs }
  } finally {
    for (const p of [srv, cli]) if (p) p.kill()
  }
}

async function main () {
  lab = Lab.loopback()
  const key = p => `${p[0]} client ↔ ${p[1]} server`
  const results = Object.fromEntries(PAIRS.map(p => [key(p), []]))
  console.log(`uTP throughput: ${mib} MiB each way at once, ${runs} runs per pairing (interleaved), loopback-only netns`)
  for (let run = 0; run < runs; run++) {
    for (const p of PAIRS) {
      const r = await once(p)
      results[key(p)].push(r.mibps)
      console.log(`  run ${run + 1}/${runs} ${key(p).padEnd(30)} ${r.mibps.toFixed(1).padStart(7)} MiB/s total (${r.secs.toFixed(2)} s)`)
    }
  }
  await lab.destroy()
  const med = Object.fromEntries(Object.entries(results).map(([k, xs]) => [k, guard.median(xs)]))
  console.log('')
  for (const [k, v] of Object.entries(med)) console.log(`${k.padEnd(32)} median ${v.toFixed(1)} MiB/s`)
  const round = x => Math.round(x * 10) / 10
  console.log(JSON.stringify({
    bench: 'utp-throughput',
    mib,
    runs,
    native_native_mibps: round(med[key(PAIRS[0])]),
    ours_client_native_server_mibps: round(med[key(PAIRS[1])]),
    native_client_ours_server_mibps: round(med[key(PAIRS[2])]),
    ours_ours_mibps: round(med[key(PAIRS[3])]),
    ratio: round(med[key(PAIRS[1])] / med[key(PAIRS[0])])
  }))
}

budget.finish(main(), () => lab && lab.destroy())
