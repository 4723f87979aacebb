'use strict'
// uTP interop: our sans-IO implementation (src/utp, driven by the example
// binary bench/utp_peer.rs) against the real utp-native@2.5.3 (libutp), in
// a loopback-only lab. 64 MiB each way, SHA-256 checked on both ends, in
// both roles, then both sides close cleanly. Prints MiB/s next to
// utp-native ↔ utp-native for the record.
//
// The binary is built by `npm test`'s cargo step (helpers/bins.js).
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const path = require('path')
const { spawn } = require('child_process')
const { Lab, assertIsolated } = require('./helpers/netns')
const { example } = require('./helpers/bins')

assertIsolated()
const ROOT = path.join(__dirname, '..')
const BIN = example('utp_peer', 'UTP_PEER_BIN')
const JS_PEER = path.join(ROOT, 'bench', 'lib', 'utp-native-peer.js')
const MiB = 1024 * 1024
const SIZE = 64 * MiB
const TIMEOUT_MS = 150000

// Runs the Rust peer inside host 0 of `lab`; resolves messages parsed from
// its JSON stdout lines.
function rustPeer (lab, args) {
  const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const r = { proc, stdout: '', stderr: '', lines: [] }
  const waiters = []
  proc.stdout.on('data', d => {
    r.stdout += d
    const parts = r.stdout.split('\n')
    r.stdout = parts.pop()
    for (const line of parts) {
      if (!line.trim()) continue
      const msg = JSON.parse(line)
      r.lines.push(msg)
      for (const w of waiters.splice(0)) if (!w(msg)) waiters.push(w)
    }
  })
  proc.stderr.on('data', d => { r.stderr += d })
  proc.on('error', () => {})
  const timer = setTimeout(() => proc.kill('SIGKILL'), TIMEOUT_MS)
  r.exited = new Promise(resolve => proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }) }))
  r.wait = (key, ms = TIMEOUT_MS) => {
    const seen = r.lines.find(m => key in m)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`rust peer: no ${key} within ${ms} ms\nstderr: ${r.stderr.slice(-2000)}`)), ms)
      r.exited.then(({ code }) => setTimeout(() => {
        clearTimeout(t)
        reject(new Error(`rust peer exited (${code}) before ${key}\nstderr: ${r.stderr.slice(-2000)}`))
      }, 200))
      waiters.push(m => {
        if (!(key in m)) return false
        clearTimeout(t)
        resolve(m)
        return true
      })
    })
  }
  return r
}

const mibps = (bytes, secs) => (bytes / MiB / secs).toFixed(1)

function checkPair (ours, theirs, label, size = SIZE) {
  assert.strictEqual(ours.error, null, `${label}: our side closed with ${ours.error}`)
  assert.strictEqual(theirs.error, null, `${label}: utp-native closed with ${theirs.error}`)
  assert.strictEqual(ours.sent, size)
  assert.strictEqual(theirs.sent, size)
  assert.strictEqual(ours.received, size, `${label}: we received ${ours.received}`)
  assert.strictEqual(theirs.received, size, `${label}: utp-native received ${theirs.received}`)
  assert.strictEqual(theirs.shaRecv, ours.shaSent, `${label}: our data arrived intact`)
  assert.strictEqual(ours.shaRecv, theirs.shaSent, `${label}: their data arrived intact`)
}

let lab
test.before(() => {
  lab = Lab.loopback()
})
test.after(() => lab && lab.destroy())

const results = {}

test('ours (client) ↔ utp-native (server): 64 MiB each way, clean close', { timeout: TIMEOUT_MS + 10000 }, async () => {
  const js = lab.spawn(0, JS_PEER, ['server', '0', String(SIZE)], { timeoutMs: TIMEOUT_MS })
  const { port } = await js.wait('listening')
  const rs = rustPeer(lab, ['client', `127.0.0.1:${port}`, String(SIZE)])
  const [theirs, ours] = await Promise.all([js.wait('done', TIMEOUT_MS), rs.wait('done')])
  const { code } = await rs.exited
  checkPair(ours, theirs, 'ours→utp-native')
  assert.strictEqual(code, 0)
  results.oursClient = ours
  console.log(`# ours client ↔ utp-native server: ${SIZE / MiB} MiB each way in ${ours.secs.toFixed(2)} s ` +
    `(${mibps(2 * SIZE, ours.secs)} MiB/s total), sha256 ${ours.shaSent.slice(0, 16)}… / ${ours.shaRecv.slice(0, 16)}…`)
})

test('utp-native (client) ↔ ours (server): 64 MiB each way, clean close', { timeout: TIMEOUT_MS + 10000 }, async () => {
  const rs = rustPeer(lab, ['server', '127.0.0.1:0', String(SIZE)])
  const { listening: port } = await rs.wait('listening', 10000)
  const js = lab.spawn(0, JS_PEER, ['client', `127.0.0.1:${port}`, String(SIZE)], { timeoutMs: TIMEOUT_MS })
  const [theirs, ours] = await Promise.all([js.wait('done', TIMEOUT_MS), rs.wait('done')])
  const { code } = await rs.exited
  checkPair(ours, theirs, 'utp-native→ours')
  assert.strictEqual(code, 0)
  results.oursServer = ours
  console.log(`# utp-native client ↔ ours server: ${SIZE / MiB} MiB each way in ${ours.secs.toFixed(2)} s ` +
    `(${mibps(2 * SIZE, ours.secs)} MiB/s total), sha256 ${ours.shaSent.slice(0, 16)}… / ${ours.shaRecv.slice(0, 16)}…`)
})

// True half-close (what librqbit-utp got wrong): one side sends and ends;
// the other only starts sending once it has seen that end, so all of its
// data flows after the FIN. libutp acceptors cannot send first (spec §3),
// so the initiator is always the one that ends first.
const HALF = 8 * MiB

test('half-close: ours ends first, utp-native sends 8 MiB after our FIN', { timeout: 60000 }, async () => {
  const js = lab.spawn(0, JS_PEER, ['server', '0', String(HALF), 'after-end'], { timeoutMs: 50000 })
  const { port } = await js.wait('listening')
  const rs = rustPeer(lab, ['client', `127.0.0.1:${port}`, String(HALF), '50'])
  const [theirs, ours] = await Promise.all([js.wait('done', 50000), rs.wait('done', 50000)])
  checkPair(ours, theirs, 'half-close ours first', HALF)
  assert.ok(ours.endSecs >= ours.sentAllSecs, 'utp-native finished only after we ended')
  assert.strictEqual((await rs.exited).code, 0)
})

test('half-close: utp-native ends first, ours sends 8 MiB after its FIN', { timeout: 60000 }, async () => {
  const rs = rustPeer(lab, ['server', '127.0.0.1:0', String(HALF), '50', '--after-end'])
  const { listening: port } = await rs.wait('listening', 10000)
  const js = lab.spawn(0, JS_PEER, ['client', `127.0.0.1:${port}`, String(HALF)], { timeoutMs: 50000 })
  const [theirs, ours] = await Promise.all([js.wait('done', 50000), rs.wait('done', 50000)])
  checkPair(ours, theirs, 'half-close utp-native first', HALF)
  assert.ok(ours.sentAllSecs >= ours.endSecs, 'we sent only after their end')
  assert.strictEqual((await rs.exited).code, 0)
})

// A quarter of the transfer: at libutp's ~5 MiB/s the full one took 24 s
// of every run, for a figure only (bench/utp-throughput.js measures it).
const SELF_SIZE = SIZE / 4

test('lab: utp-native ↔ utp-native, a quarter of the transfer (the reference against itself, for the record)', { timeout: TIMEOUT_MS + 10000 }, async () => {
  const server = lab.spawn(0, JS_PEER, ['server', '0', String(SELF_SIZE)], { timeoutMs: TIMEOUT_MS })
  const { port } = await server.wait('listening')
  const client = lab.spawn(0, JS_PEER, ['client', `127.0.0.1:${port}`, String(SELF_SIZE)], { timeoutMs: TIMEOUT_MS })
  const [s, c] = await Promise.all([server.wait('done', TIMEOUT_MS), client.wait('done', TIMEOUT_MS)])
  assert.strictEqual(s.shaRecv, c.shaSent)
  assert.strictEqual(c.shaRecv, s.shaSent)
  const line = [`# utp-native ↔ utp-native: ${mibps(2 * SELF_SIZE, c.secs)} MiB/s total`]
  if (results.oursClient) line.push(`ours client: ${mibps(2 * SIZE, results.oursClient.secs)}`)
  if (results.oursServer) line.push(`ours server: ${mibps(2 * SIZE, results.oursServer.secs)}`)
  console.log(line.join(', '))
})
