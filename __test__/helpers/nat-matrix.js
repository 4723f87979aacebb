'use strict'
// The NAT connectivity matrix (nat-matrix.test.js, bench/nat-matrix.js):
// swarm peers behind every ordered pair of {public, cone, cone-nofw,
// symmetric}, in the NAT lab with an ISP hop between each router and the
// public bridge (natlab.js, `transit: true`), with ours and the reference
// in every combination, each pair in a fresh NatLab. A is the first
// joiner, B the second: the pair (x, y) with B joining first is the case
// (y, x), so the ordered matrix holds both join orders of every pair.
//
// Run as a script, it records the reference's own matrix (hyperswarm
// 2.15.3 on both sides, same lab) into nat-reference-baseline.json, the
// baseline nat-matrix.test.js holds ours to whatever the reference does in
// the same run:
//   unshare -n sh -c 'ip link set lo up && node __test__/helpers/nat-matrix.js record [runs]'
// With several runs a pair is recorded as connecting only if it connected
// in every run, over the transport it used every time; `ms` is the median
// time to connect over its connected runs.
const fs = require('fs')
const path = require('path')
const { NatLab } = require('./natlab')
const { topic } = require('./data')
const { startRelay, stopRelay } = require('./relay-bin')

const NAT_PEER = path.join(__dirname, 'nat-peer.js')
const BASELINE = path.join(__dirname, 'nat-reference-baseline.json')
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const KINDS = ['public', 'cone', 'cone-nofw', 'symmetric']
// [first joiner, second joiner].
const IMPLS = [['hyperswarm', 'hyperswarm'], ['ours', 'ours'], ['ours', 'hyperswarm'], ['hyperswarm', 'ours']]
const PARALLEL = 3 // labs at once
const JOIN_GAP = 750 // ms between A's join and B's (and A's first DHT round must be done)
const WINDOW = 15000 // ms after B's join for both sides to exchange a hello
// Ours↔ours with exactly one symmetric NAT against a cone or cone-nofw
// one: a birthday punch's budget (30 s), and a few seconds for the NAT
// classes to be known and the challenge round trip.
const BIRTHDAY_WINDOW = 35000
const birthdayPair = c => c.a.impl !== 'hyperswarm' && c.b.impl !== 'hyperswarm' &&
  (c.a.kind === 'symmetric') !== (c.b.kind === 'symmetric') && c.a.kind !== 'public' && c.b.kind !== 'public'
/** How long case `c` waits for both hellos. */
const windowFor = c => birthdayPair(c) ? BIRTHDAY_WINDOW : WINDOW

// The lab the matrix runs in (natlab.js): ISP hops between routers and
// the bridge, so a low-TTL opening packet dies between the two NATs.
const TRANSIT = true
// And a relay of last resort on the public bridge (`hyperswarm-dht
// --relay` on the dht2 host, announced on the DHT): only two peers of ours
// behind random NATs ever use it.
const RELAY = true
const RELAY_AT = { host: 'dht2', ip: '192.0.2.1', port: 49740, relayPort: 49741 }

/** Every ordered pair of KINDS for each [first, second] joiner of `impls`. */
function cases (impls = IMPLS) {
  const out = []
  for (const [implA, implB] of impls) {
    for (const ka of KINDS) for (const kb of KINDS) out.push({ a: { impl: implA, kind: ka }, b: { impl: implB, kind: kb }, transit: TRANSIT, relay: RELAY })
  }
  return out
}

// Both peers join one topic with announce + lookup: A, then B JOIN_GAP
// later. Connected = each side received the other's hello within WINDOW
// (BIRTHDAY_WINDOW for a pair only a birthday punch connects);
// `ms` = from B's join until the later of the two hellos arrived. `alive`:
// each peer process was still running when the window ended (a pair that
// does not connect must still not crash); `stderr`: what either wrote.
// A case may ask for the lab with ISP hops (`transit`, see natlab.js) and
// bring `setup(lab)`, whose returned function's value is the result's
// `probe` (read once the pair is done).
async function runCase (c, index, quiet = QUIET_NONE) {
  const lab = await quiet.heavy(() => NatLab.create({ peers: [c.a.kind, c.b.kind], transit: !!c.transit }))
  let relay = null
  try {
    const probe = c.setup ? c.setup(lab) : null
    const opts = name => JSON.stringify({ name, swarm: { bootstrap: [lab.bootstrap] } })
    const { a, b } = await quiet.heavy(async () => {
      if (c.relay) {
        const ns = lab.lab.hosts[lab.hostIndex(RELAY_AT.host)].ns
        relay = startRelay(ns, ['--host', RELAY_AT.ip, '--port', String(RELAY_AT.port), '--bootstrap', lab.bootstrap, '--relay', '--relay-port', String(RELAY_AT.relayPort)], { killAfterMs: 90000 })
        await relay.ready
      }
      const a = lab.spawn(0, NAT_PEER, [c.a.impl, opts('a')], { timeoutMs: 60000 })
      const b = lab.spawn(1, NAT_PEER, [c.b.impl, opts('b')], { timeoutMs: 60000 })
      await Promise.all([a.wait('ready'), b.wait('ready')])
      return { a, b }
    })
    // When each side's first 'peer' event reached us (a diagnostic: the
    // time before it is discovery, the time after it dialling).
    const firstPeer = {}
    for (const [side, child] of [['a', a], ['b', b]]) {
      child.proc.on('message', m => { if (m.type === 'peer' && firstPeer[side] === undefined) firstPeer[side] = Date.now() })
    }
    const t = topic(`nat matrix ${index} ${process.pid} ${Date.now()}`)
    const joinedA = Date.now()
    a.send({ cmd: 'join', topic: t })
    const flushedA = await a.wait('flushed', 10000).catch(() => null)
    await sleep(Math.max(0, joinedA + JOIN_GAP - Date.now()))
    const stamp = p => p.then(m => ({ m, at: Date.now() }), () => null)
    let joinedB, both
    await quiet.timed(() => {
      joinedB = Date.now()
      b.send({ cmd: 'join', topic: t })
      both = Promise.all([stamp(a.wait('received', windowFor(c))), stamp(b.wait('received', windowFor(c)))])
      return both
    })
    const [ra, rb] = await both
    const flushedB = b.messages.find(m => m.type === 'flushed') || null
    const running = side => side.proc.exitCode === null && side.proc.signalCode === null
    const alive = { a: running(a), b: running(b) }
    const conns = side => side.messages.filter(m => m.type === 'connection')
    const dialer = conns(b).some(m => m.client) ? 'B' : conns(a).some(m => m.client) ? 'A' : null
    return {
      ...c,
      ok: !!(ra && rb),
      transport: ra && rb ? (ra.m.transport === rb.m.transport ? ra.m.transport : `${ra.m.transport}/${rb.m.transport}`) : null,
      infoType: ra && rb ? conns(a).find(m => m.conn === ra.m.conn).infoType : null,
      dialer,
      ms: ra && rb ? Math.max(ra.at, rb.at) - joinedB : null,
      // From B's join to the first 'peer' event on either side.
      firstPeerMs: Object.keys(firstPeer).length ? Math.min(...Object.values(firstPeer)) - joinedB : null,
      firstPeerSide: { a: firstPeer.a === undefined ? null : firstPeer.a - joinedB, b: firstPeer.b === undefined ? null : firstPeer.b - joinedB },
      aFoundB: a.messages.some(m => m.type === 'peer'),
      bFoundA: b.messages.some(m => m.type === 'peer'),
      attempts: conns(a).length + conns(b).length,
      // A TCP dial reached the other side, whichever connection was kept.
      tcpReached: conns(a).concat(conns(b)).some(m => m.transport === 'tcp' && !m.client),
      holepunchable: { a: flushedA && flushedA.holepunchable, b: flushedB && flushedB.holepunchable },
      flushMs: flushedA ? flushedA.ms : null,
      alive,
      errors: a.messages.concat(b.messages).filter(m => m.type === 'error' || m.type === 'warning').map(m => m.message),
      stderr: (a.stderr + b.stderr).slice(-2000),
      probe: probe ? probe() : undefined
    }
  } catch (err) {
    return { ...c, ok: false, error: err.message }
  } finally {
    await quiet.heavy(async () => {
      if (relay) await stopRelay(relay)
      await lab.destroy()
    })
  }
}

/**
 * Keeps what a case times apart from what loads the machine, for runs of
 * several labs at once (bench/nat-matrix.js): the heavy phases (making a
 * lab and starting its processes, tearing it down) may overlap each other
 * but no timed window, and timed windows (from B's join until both hellos,
 * at most `capMs`) run one at a time. Without it a pair's time measured
 * mostly which other lab was starting its seven processes meanwhile (the
 * same pair ranged 16..231 ms). A window longer than the cap goes on
 * unguarded (a pair that fails, or a birthday punch's seconds).
 */
class Quiet {
  constructor ({ capMs = 1000 } = {}) {
    this.capMs = capMs
    this.heavyNow = 0
    this.timing = false
    this.waiters = [] // { timed, resolve }, in arrival order
  }

  async heavy (fn) {
    await this._enter(false)
    try {
      return await fn()
    } finally {
      this.heavyNow--
      this._wake()
    }
  }

  async timed (fn) {
    await this._enter(true)
    let timer
    try {
      const cap = new Promise(resolve => { timer = setTimeout(resolve, this.capMs) })
      return await Promise.race([fn(), cap])
    } finally {
      clearTimeout(timer)
      this.timing = false
      this._wake()
    }
  }

  // A phase is admitted, and counted, in the same synchronous step, so two
  // callers in one turn can never both pass. A waiting timed window bars
  // new heavy phases, so a stream of set-ups cannot starve it.
  _may (timed) {
    if (this.timing) return false
    return timed ? this.heavyNow === 0 : !this.waiters.some(w => w.timed)
  }

  _take (timed) {
    if (timed) this.timing = true
    else this.heavyNow++
  }

  _enter (timed) {
    if (this._may(timed)) {
      this._take(timed)
      return Promise.resolve()
    }
    return new Promise(resolve => this.waiters.push({ timed, resolve }))
  }

  _wake () {
    // In arrival order. A waiter's own entry never changes what _may says
    // of it (only waiting timed windows bar heavy phases), so it leaves the
    // list only when admitted.
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i]
      if (!this._may(w.timed)) {
        i++
        continue
      }
      this.waiters.splice(i, 1)
      this._take(w.timed)
      w.resolve()
    }
  }
}

/** No guard: every phase runs at once (the suites, one lab per pair). */
const QUIET_NONE = { heavy: fn => fn(), timed: fn => fn() }

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
  const rows = [`${implA} (A, joins first) × ${implB} (B, joins ${JOIN_GAP} ms later)${TRANSIT ? ', ISP hops' : ''}; cell: transport, time from B's join, who dialled`]
  rows.push(pad('A | B', 12) + KINDS.map(k => pad(k, 24)).join(''))
  for (const ka of KINDS) {
    const find = kb => results.find(r => r.a.impl === implA && r.b.impl === implB && r.a.kind === ka && r.b.kind === kb)
    rows.push(pad(ka, 12) + KINDS.map(kb => pad(cell(find(kb)), 24)).join(''))
  }
  const hp = {}
  for (const r of results) {
    if (r.a.impl === implA && r.holepunchable && r.holepunchable.a != null) hp[r.a.kind] = r.holepunchable.a
  }
  rows.push('A\'s DHT holepunchable() after its first round: ' + Object.entries(hp).map(([k, v]) => `${k} ${v}`).join(', '))
  return rows.join('\n')
}

function median (xs) {
  const s = [...xs].sort((x, y) => x - y)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The recorded reference matrix: [{ a, b, ok, transport, ms, runs }]. */
function baseline () {
  return JSON.parse(fs.readFileSync(BASELINE, 'utf8')).pairs
}

async function record (runs) {
  const { assertIsolated } = require('./netns')
  assertIsolated()
  const ref = cases([['hyperswarm', 'hyperswarm']])
  const all = []
  for (let i = 0; i < runs; i++) all.push(await pool(ref, PARALLEL, runCase))
  const pairs = ref.map((c, k) => {
    const seen = all.map(results => results[k])
    const ok = seen.every(r => r.ok)
    const transports = [...new Set(seen.map(r => r.transport))]
    const times = seen.filter(r => r.ok).map(r => r.ms)
    return { a: c.a.kind, b: c.b.kind, ok, transport: ok && transports.length === 1 ? transports[0] : null, ms: times.length ? median(times) : null, runs: seen.map(r => r.ok ? `${r.transport} ${r.ms} ms` : (r.error ? 'error' : 'failed')) }
  })
  const out = {
    what: `hyperswarm 2.15.3 on both sides of every ordered NAT pair (A joins first, B ${JOIN_GAP} ms later)${TRANSIT ? ', in the lab with ISP hops (transit)' : ''}, recorded by __test__/helpers/nat-matrix.js`,
    transit: TRANSIT,
    recorded: new Date().toISOString().slice(0, 10),
    pairs
  }
  fs.writeFileSync(BASELINE, JSON.stringify(out, null, 2) + '\n')
  for (const p of pairs) console.log(`${p.a} × ${p.b}: ${p.runs.join(', ')}`)
}

module.exports = { Quiet, NAT_PEER, KINDS, IMPLS, PARALLEL, JOIN_GAP, WINDOW, BIRTHDAY_WINDOW, windowFor, TRANSIT, RELAY, cases, runCase, pool, cell, table, baseline, median }

if (require.main === module && process.argv[2] === 'record') {
  record(Number(process.argv[3] || 1)).then(() => process.exit(0), err => { console.error(err); process.exit(1) })
}
