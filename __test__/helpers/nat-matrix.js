'use strict'
// The NAT connectivity matrix (nat.test.js): swarm peers behind every pair
// of {public, cone, symmetric} NATs, with ours and the reference in every
// combination, each pair in a fresh NatLab.
//
// Run as a script, it records the reference's own matrix (hyperswarm
// 2.15.3 on both sides) into nat-reference-baseline.json, the baseline
// nat.test.js holds ours to whatever the reference does in the same run:
//   unshare -n sh -c 'ip link set lo up && node __test__/helpers/nat-matrix.js record [runs]'
// With several runs a pair is recorded as connecting only if it connected
// in every run, over the transport it used every time.
const fs = require('fs')
const path = require('path')
const { NatLab } = require('./natlab')
const { topic } = require('./data')

const NAT_PEER = path.join(__dirname, 'nat-peer.js')
const BASELINE = path.join(__dirname, 'nat-reference-baseline.json')
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const KINDS = ['public', 'cone', 'symmetric']
// [first joiner, second joiner].
const IMPLS = [['hyperswarm', 'hyperswarm'], ['ours', 'ours'], ['ours', 'hyperswarm'], ['hyperswarm', 'ours']]
// Measured beside the matrix: NAT routers without a WAN input firewall
// (natlab.js, cone-nofw), on either side.
const EXTRA = [['cone-nofw', 'public'], ['cone-nofw', 'cone'], ['cone', 'cone-nofw'], ['cone-nofw', 'cone-nofw']]
const PARALLEL = 3 // labs at once
const JOIN_GAP = 750 // ms between A's join and B's (and A's first DHT round must be done)
const WINDOW = 15000 // ms after B's join for both sides to exchange a hello

function cases () {
  const out = []
  for (const [implA, implB] of IMPLS) {
    for (const ka of KINDS) for (const kb of KINDS) out.push({ a: { impl: implA, kind: ka }, b: { impl: implB, kind: kb } })
    for (const [ka, kb] of EXTRA) out.push({ a: { impl: implA, kind: ka }, b: { impl: implB, kind: kb }, extra: true })
  }
  return out
}

// Both peers join one topic with announce + lookup: A, then B JOIN_GAP
// later. Connected = each side received the other's hello within WINDOW.
// A case may ask for the lab with ISP hops (`transit`, see natlab.js) and
// bring `setup(lab)`, whose returned function's value is the result's
// `probe` (read once the pair is done).
async function runCase (c, index) {
  const lab = await NatLab.create({ peers: [c.a.kind, c.b.kind], transit: !!c.transit })
  try {
    const probe = c.setup ? c.setup(lab) : null
    const opts = name => JSON.stringify({ name, swarm: { bootstrap: [lab.bootstrap] } })
    const a = lab.spawn(0, NAT_PEER, [c.a.impl, opts('a')], { timeoutMs: 60000 })
    const b = lab.spawn(1, NAT_PEER, [c.b.impl, opts('b')], { timeoutMs: 60000 })
    await Promise.all([a.wait('ready'), b.wait('ready')])
    const t = topic(`nat matrix ${index} ${process.pid} ${Date.now()}`)
    const joinedA = Date.now()
    a.send({ cmd: 'join', topic: t })
    const flushedA = await a.wait('flushed', 10000).catch(() => null)
    await sleep(Math.max(0, joinedA + JOIN_GAP - Date.now()))
    const joinedB = Date.now()
    b.send({ cmd: 'join', topic: t })
    const stamp = p => p.then(m => ({ m, at: Date.now() }), () => null)
    const [ra, rb] = await Promise.all([stamp(a.wait('received', WINDOW)), stamp(b.wait('received', WINDOW))])
    const flushedB = b.messages.find(m => m.type === 'flushed') || null
    const conns = side => side.messages.filter(m => m.type === 'connection')
    const dialer = conns(b).some(m => m.client) ? 'B' : conns(a).some(m => m.client) ? 'A' : null
    return {
      ...c,
      ok: !!(ra && rb),
      transport: ra && rb ? (ra.m.transport === rb.m.transport ? ra.m.transport : `${ra.m.transport}/${rb.m.transport}`) : null,
      infoType: ra && rb ? conns(a).find(m => m.conn === ra.m.conn).infoType : null,
      dialer,
      ms: ra && rb ? Math.max(ra.at, rb.at) - joinedB : null,
      aFoundB: a.messages.some(m => m.type === 'peer'),
      bFoundA: b.messages.some(m => m.type === 'peer'),
      attempts: conns(a).length + conns(b).length,
      // A TCP dial reached the other side, whichever connection was kept.
      tcpReached: conns(a).concat(conns(b)).some(m => m.transport === 'tcp' && !m.client),
      holepunchable: { a: flushedA && flushedA.holepunchable, b: flushedB && flushedB.holepunchable },
      flushMs: flushedA ? flushedA.ms : null,
      probe: probe ? probe() : undefined
    }
  } catch (err) {
    return { ...c, ok: false, error: err.message }
  } finally {
    await lab.destroy()
  }
}

async function pool (items, n, fn) {
  const out = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
  return out
}

function cell (r) {
  if (!r) return '-'
  if (r.error) return 'error'
  if (!r.ok) return r.bFoundA ? 'failed' : 'failed (B never found A)'
  return `${r.transport} ${r.ms} ms, ${r.dialer} dials`
}

function table (results, implA, implB) {
  const pad = (s, n) => String(s).padEnd(n)
  const rows = [`${implA} (A, joins first) × ${implB} (B, joins ${JOIN_GAP} ms later); cell: transport, time from B's join, who dialled`]
  rows.push(pad('A | B', 12) + KINDS.map(k => pad(k, 24)).join(''))
  for (const ka of KINDS) {
    const find = kb => results.find(r => !r.extra && r.a.impl === implA && r.b.impl === implB && r.a.kind === ka && r.b.kind === kb)
    rows.push(pad(ka, 12) + KINDS.map(kb => pad(cell(find(kb)), 24)).join(''))
  }
  for (const r of results.filter(r => r.extra && r.a.impl === implA && r.b.impl === implB)) {
    rows.push(`extra ${r.a.kind} (A) × ${r.b.kind} (B): ${cell(r)}`)
  }
  const hp = {}
  for (const r of results) {
    if (r.a.impl === implA && r.holepunchable && r.holepunchable.a != null) hp[r.a.kind] = r.holepunchable.a
  }
  rows.push('A\'s DHT holepunchable() after its first round: ' + Object.entries(hp).map(([k, v]) => `${k} ${v}`).join(', '))
  return rows.join('\n')
}


/** The recorded reference matrix: [{ a, b, ok, transport }]. */
function baseline () {
  return JSON.parse(fs.readFileSync(BASELINE, 'utf8')).pairs
}

async function record (runs) {
  const { assertIsolated } = require('./netns')
  assertIsolated()
  const ref = cases().filter(c => c.a.impl === 'hyperswarm' && c.b.impl === 'hyperswarm')
  const all = []
  for (let i = 0; i < runs; i++) all.push(await pool(ref, PARALLEL, runCase))
  const pairs = ref.map((c, k) => {
    const seen = all.map(results => results[k])
    const ok = seen.every(r => r.ok)
    const transports = [...new Set(seen.map(r => r.transport))]
    return { a: c.a.kind, b: c.b.kind, extra: !!c.extra, ok, transport: ok && transports.length === 1 ? transports[0] : null, runs: seen.map(r => r.ok ? r.transport : (r.error ? 'error' : 'failed')) }
  })
  const out = {
    what: 'hyperswarm 2.15.3 on both sides of every NAT pair (A joins first, B 750 ms later), recorded by __test__/helpers/nat-matrix.js',
    recorded: new Date().toISOString().slice(0, 10),
    pairs
  }
  fs.writeFileSync(BASELINE, JSON.stringify(out, null, 2) + '\n')
  for (const p of pairs) console.log(`${p.a} × ${p.b}${p.extra ? ' (extra)' : ''}: ${p.runs.join(', ')}`)
}

module.exports = { NAT_PEER, KINDS, IMPLS, EXTRA, PARALLEL, JOIN_GAP, WINDOW, cases, runCase, pool, cell, table, baseline }

if (require.main === module && process.argv[2] === 'record') {
  record(Number(process.argv[3] || 1)).then(() => process.exit(0), err => { console.error(err); process.exit(1) })
}
