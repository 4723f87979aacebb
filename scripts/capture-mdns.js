#!/usr/bin/env node
// Records golden mDNS datagrams from the real reference discovery packages
// for tests/golden_mdns.rs:
//   - @hyperswarm/discovery 2.0.1 (top level; used by hyperswarm 2.x)
//   - @hyperswarm/discovery 1.x nested under @hyperswarm/network 0.0.4
// Both drive multicast-dns 7 / dns-packet 5 (one shared copy here).
//
// Run it ONLY inside a fresh, loopback-only network namespace:
//
//   unshare -n sh -c 'ip link set lo up && node scripts/capture-mdns.js'
//
// It refuses to run when any interface other than `lo` exists, every
// discovery instance gets `bootstrap: []` (no DHT traffic), every datagram
// this process tries to send must go to 224.0.0.251:5353 (the mDNS group) or
// 127.0.0.1, and a watchdog ends the process after 20 s whatever happens
// (a normal run takes about 5 s).
//
// A passive dgram socket (reuseAddr, bound to 5353, member of 224.0.0.251 on
// 127.0.0.1) records every datagram that reaches the group. The packets are
// classified and their re-encoding inputs extracted by a small DNS reader in
// this file (not by dns-packet), and cross-checked against what the script
// knows (topic keys, ports, topic ids, querier address).
//
// Output: tests/fixtures/mdns/<discovery-major>_<scenario>.json.
'use strict'


// --- 0. Isolation checks, before anything can open a socket -----------------

require('./capture-guard')('capture-mdns', 20000)

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const dgram = require('dgram')

const GROUP = '224.0.0.251'
const MDNS_PORT = 5353
const LOOP = '127.0.0.1'
const STEP_MS = 100

// --- 1. Deterministic topic ids, so that re-running gives stable fixtures ----
// Topic ids are `id=` + crypto.randomBytes(32). Replace randomBytes with a
// seeded generator (sync and callback forms); the wire format is unaffected.

function mulberry32 (seed) {
  return function () {
    seed = (seed + 0x6D2B79F5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const prng = mulberry32(0x6d646e73)
crypto.randomBytes = function (n, cb) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(prng() * 256)
  if (typeof cb === 'function') { process.nextTick(cb, null, b); return }
  return b
}

// --- 2. Send guard: nothing but the mDNS group or loopback -------------------

const origSend = dgram.Socket.prototype.send
dgram.Socket.prototype.send = function (buf, ...args) {
  let port, host
  if (args.length >= 3 && typeof args[0] === 'number' && typeof args[1] === 'number' && typeof args[2] === 'number') {
    port = args[2]; host = args[3]
  } else {
    port = args[0]; host = args[1]
  }
  const ok = (host === GROUP && port === MDNS_PORT) || host === LOOP
  if (!ok) throw new Error('capture-mdns: refusing to send to ' + host + ':' + port)
  return origSend.call(this, buf, ...args)
}

// --- 3. Reference modules -----------------------------------------------------

const ROOT = path.join(__dirname, '..')
const NM = path.join(ROOT, 'node_modules')
const V2_DIR = path.join(NM, '@hyperswarm', 'discovery')
const V1_DIR = path.join(NM, '@hyperswarm', 'network', 'node_modules', '@hyperswarm', 'discovery')
const version = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
const REFS = [
  { tag: 'discovery2', dir: V2_DIR, make: require(V2_DIR) },
  { tag: 'discovery1', dir: V1_DIR, make: require(V1_DIR) }
]
const LIB_VERSIONS = {
  'multicast-dns': version(path.join(NM, 'multicast-dns')),
  'dns-packet': version(path.join(NM, 'dns-packet'))
}

const OUT_DIR = path.join(ROOT, 'tests', 'fixtures', 'mdns')

const sha256 = (s) => crypto.createHash('sha256').update(s).digest()
const TOPICS = {
  hello: sha256('hello'),
  world: sha256('world'),
  twin: sha256('twin'),
  local: sha256('localPort')
}
const hex = (b) => Buffer.from(b).toString('hex')
const labelOfKey = (key) => Object.keys(TOPICS).find((k) => TOPICS[k].equals(key))
const mdnsName = (key, domain) => hex(key.subarray(0, 20)) + '.' + domain

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// --- 4. Passive recorder -------------------------------------------------------

const captured = [] // { step, bytes, rinfo }
let currentStep = null

function startRecorder () {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    sock.once('error', reject)
    sock.on('message', (msg, rinfo) => {
      captured.push({ step: currentStep, bytes: Buffer.from(msg), rinfo: { address: rinfo.address, port: rinfo.port } })
    })
    sock.bind(MDNS_PORT, () => {
      sock.removeListener('error', reject)
      sock.addMembership(GROUP, LOOP)
      resolve(sock)
    })
  })
}

// --- 5. A small DNS reader of our own ------------------------------------------

function readName (buf, off) {
  const labels = []
  let jumped = false
  let end = off
  for (let guard = 0; guard < 128; guard++) {
    if (off >= buf.length) throw new Error('name past end')
    const len = buf[off]
    if (len === 0) { if (!jumped) end = off + 1; return { name: labels.join('.'), end } }
    if ((len & 0xc0) === 0xc0) {
      if (!jumped) end = off + 2
      off = ((len & 0x3f) << 8) | buf[off + 1]
      jumped = true
      continue
    }
    if (len & 0xc0) throw new Error('bad label type')
    if (off + 1 + len > buf.length) throw new Error('label past end')
    labels.push(buf.toString('latin1', off + 1, off + 1 + len))
    off += 1 + len
  }
  throw new Error('name loop')
}

function parseDns (buf) {
  if (buf.length < 12) throw new Error('short header')
  const h = {
    id: buf.readUInt16BE(0),
    flags: buf.readUInt16BE(2),
    qd: buf.readUInt16BE(4),
    an: buf.readUInt16BE(6),
    ns: buf.readUInt16BE(8),
    ar: buf.readUInt16BE(10)
  }
  let off = 12
  const questions = []
  for (let i = 0; i < h.qd; i++) {
    const n = readName(buf, off)
    off = n.end
    questions.push({ name: n.name, type: buf.readUInt16BE(off), class: buf.readUInt16BE(off + 2) })
    off += 4
  }
  const records = []
  for (let i = 0; i < h.an + h.ns + h.ar; i++) {
    const n = readName(buf, off)
    off = n.end
    const type = buf.readUInt16BE(off)
    const cls = buf.readUInt16BE(off + 2)
    const ttl = buf.readUInt32BE(off + 4)
    const rdlen = buf.readUInt16BE(off + 8)
    off += 10
    const rd = buf.subarray(off, off + rdlen)
    if (rd.length !== rdlen) throw new Error('rdata past end')
    const rec = { section: i < h.an ? 'an' : i < h.an + h.ns ? 'ns' : 'ar', name: n.name, type, class: cls, ttl }
    if (type === 33) {
      rec.priority = rd.readUInt16BE(0)
      rec.weight = rd.readUInt16BE(2)
      rec.port = rd.readUInt16BE(4)
      rec.target = readName(buf, off + 6).name
    } else if (type === 16) {
      rec.strings = []
      let p = 0
      while (p < rd.length) { rec.strings.push(rd.subarray(p + 1, p + 1 + rd[p])); p += 1 + rd[p] }
    } else if (type === 1) {
      rec.address = Array.from(rd).join('.')
    }
    records.push(rec)
    off += rdlen
  }
  if (off !== buf.length) throw new Error('trailing bytes: ' + (buf.length - off))
  return { h, questions, records }
}

// --- 6. Scenarios ------------------------------------------------------------------

function newDiscovery (ref, label, extra) {
  const d = ref.make(Object.assign({ bootstrap: [] }, extra || {}))
  d.label = label
  d.peers = []
  d.mdns.on('error', (err) => console.error('capture-mdns: ' + label + ' mdns error', err.message))
  d.mdns.on('warning', () => {})
  d.dht.on('error', () => {})
  d.dht.on('warning', () => {})
  return d
}

function watchPeers (d, topic, label) {
  topic.on('peer', (p) => {
    d.peers.push({ by: d.label, topic: label, host: p.host, port: p.port, local: p.local, referrer: p.referrer, has_to: 'to' in p })
  })
  return topic
}

// Every step: a label, who acts, and what the step expects on the wire.
async function runScenario (ref, scenario) {
  const steps = []
  const topicIds = new Map() // id hex -> { owner, topic, port }
  const instances = []
  const ctx = {
    ref,
    make (label, extra) { const d = newDiscovery(ref, label, extra); instances.push(d); return d },
    announce (d, label, opts) {
      const t = watchPeers(d, d.announce(TOPICS[label], opts), label)
      topicIds.set(hex(t.id), { owner: d.label, topic: label, port: opts.localPort || opts.port })
      return t
    },
    lookup (d, label) { return watchPeers(d, d.lookup(TOPICS[label]), label) },
    async step (name, description, fn) {
      currentStep = scenario.name + '/' + name
      steps.push({ name, description })
      fn()
      await sleep(STEP_MS)
    }
  }
  currentStep = scenario.name + '/setup'
  await scenario.run(ctx)
  currentStep = null
  const peers = [].concat(...instances.map((d) => d.peers))
  for (const d of instances) d.destroy({ force: true })
  return { steps, topicIds, peers }
}

const SCENARIOS = [
  {
    name: 'basic',
    domain: 'hyperswarm.local',
    description: 'A announces hello (port 30001) then world (port 30002): one unsolicited response each. ' +
      'B looks up hello, then world: one SRV query each, answered by A with SRV + TXT + referrer A record.',
    async run (c) {
      const A = c.make('A')
      const B = c.make('B')
      await sleep(STEP_MS) // sockets bound, group joined
      await c.step('announce_hello', 'A.announce(hello, {port: 30001})', () => c.announce(A, 'hello', { port: 30001 }))
      await c.step('announce_world', 'A.announce(world, {port: 30002})', () => c.announce(A, 'world', { port: 30002 }))
      await c.step('lookup_hello', 'B.lookup(hello)', () => c.lookup(B, 'hello'))
      await c.step('lookup_world', 'B.lookup(world)', () => c.lookup(B, 'world'))
    }
  },
  {
    name: 'multi',
    domain: 'hyperswarm.local',
    description: 'A announces hello (30001) and world (30002). B sends, through its own multicast-dns instance, one query ' +
      'with two SRV questions (discovery itself never does; this shows how a two-topic response looks). ' +
      'Then A announces twin twice (ports 30003 and 30004, two topic objects of one key: every response for twin carries both ' +
      'SRV + TXT pairs) and B looks it up. Then A announces local with {port: 40000, localPort: 30005} and B looks it up.',
    async run (c) {
      const A = c.make('A')
      const B = c.make('B')
      await sleep(STEP_MS)
      await c.step('announce_hello', 'A.announce(hello, {port: 30001})', () => c.announce(A, 'hello', { port: 30001 }))
      await c.step('announce_world', 'A.announce(world, {port: 30002})', () => c.announce(A, 'world', { port: 30002 }))
      await c.step('query_two', 'B.mdns.query({questions: [SRV hello, SRV world]})', () => B.mdns.query({
        questions: [
          { type: 'SRV', name: mdnsName(TOPICS.hello, 'hyperswarm.local') },
          { type: 'SRV', name: mdnsName(TOPICS.world, 'hyperswarm.local') }
        ]
      }))
      await c.step('announce_twin_twice', 'A.announce(twin, {port: 30003}); A.announce(twin, {port: 30004}) in one tick', () => {
        c.announce(A, 'twin', { port: 30003 })
        c.announce(A, 'twin', { port: 30004 })
      })
      await c.step('lookup_twin', 'B.lookup(twin)', () => c.lookup(B, 'twin'))
      await c.step('announce_local', 'A.announce(local, {port: 40000, localPort: 30005})', () => c.announce(A, 'local', { port: 40000, localPort: 30005 }))
      await c.step('lookup_local', 'B.lookup(local)', () => c.lookup(B, 'local'))
    }
  },
  {
    name: 'known_answer',
    domain: 'hyperswarm.local',
    description: "A announces hello (30001). B sends, through its own multicast-dns instance, an SRV query for hello that lists A's " +
      'TXT id as a known answer (discovery itself never does): A must stay silent. Then B.lookup(hello) to show A still answers.',
    async run (c) {
      const A = c.make('A')
      const B = c.make('B')
      await sleep(STEP_MS)
      let t
      await c.step('announce_hello', 'A.announce(hello, {port: 30001})', () => { t = c.announce(A, 'hello', { port: 30001 }) })
      await c.step('query_known', 'B.mdns.query({questions: [SRV hello], answers: [TXT hello [A.id]]})', () => B.mdns.query({
        questions: [{ type: 'SRV', name: mdnsName(TOPICS.hello, 'hyperswarm.local') }],
        answers: [{ type: 'TXT', name: mdnsName(TOPICS.hello, 'hyperswarm.local'), data: [t.id] }]
      }))
      await c.step('lookup_hello', 'B.lookup(hello)', () => c.lookup(B, 'hello'))
    }
  },
  {
    name: 'announce_lookup',
    domain: 'hyperswarm.local',
    description: 'A alone: A.announce(hello, {port: 30001, lookup: true}) sends a query at once, the unsolicited response on the ' +
      'next tick, and then answers its own query (with referrer). A ignores its own answers (same id).',
    async run (c) {
      const A = c.make('A')
      await sleep(STEP_MS)
      await c.step('announce_lookup_hello', 'A.announce(hello, {port: 30001, lookup: true})', () => c.announce(A, 'hello', { port: 30001, lookup: true }))
    }
  },
  {
    name: 'domain',
    domain: 'swarm.example',
    description: "Both instances with {domain: 'swarm.example'}: A announces hello (30006), B looks it up.",
    async run (c) {
      const A = c.make('A', { domain: 'swarm.example' })
      const B = c.make('B', { domain: 'swarm.example' })
      await sleep(STEP_MS)
      await c.step('announce_hello', 'A.announce(hello, {port: 30006})', () => c.announce(A, 'hello', { port: 30006 }))
      await c.step('lookup_hello', 'B.lookup(hello)', () => c.lookup(B, 'hello'))
    }
  }
]

// --- 7. Turning captured bytes into fixture entries --------------------------

function keyForName (name, domain) {
  for (const label of Object.keys(TOPICS)) {
    if (mdnsName(TOPICS[label], domain) === name) return label
  }
  return null
}

function describePacket (entry, index, scenario, topicIds, problems) {
  const bytes = entry.bytes
  const p = parseDns(bytes)
  const domain = scenario.domain
  const out = {
    index,
    step: entry.step.split('/')[1],
    src: entry.rinfo.address + ':' + entry.rinfo.port,
    dst: GROUP + ':' + MDNS_PORT,
    len: bytes.length,
    hex: hex(bytes),
    kind: null,
    domain,
    header: { id: p.h.id, flags: p.h.flags, qdcount: p.h.qd, ancount: p.h.an, nscount: p.h.ns, arcount: p.h.ar }
  }
  const bad = (msg) => problems.push(scenario.name + ' #' + index + ': ' + msg)
  if (p.h.ns || p.h.ar) bad('authority/additional records present')
  if ((p.h.flags & 0x8000) === 0) {
    out.kind = 'query'
    out.names = p.questions.map((q) => q.name)
    out.questions = p.questions.map((q) => ({ name: q.name, topic: hex(TOPICS[keyForName(q.name, domain)] || []), qtype: q.type, qclass: q.class }))
    for (const q of p.questions) if (q.type !== 33 || q.class !== 1 || !keyForName(q.name, domain)) bad('unexpected question ' + JSON.stringify(q))
    out.known_answers = p.records.filter((r) => r.type === 16).map((r) => ({ name: r.name, id: hex(r.strings[0] || []) }))
    out.reencodable = out.known_answers.length === 0 && p.records.length === 0
  } else {
    const a = p.records.find((r) => r.type === 1)
    out.kind = a ? 'answer' : 'unsolicited'
    out.referrer = a ? a.address : null
    if (a) {
      if (a.name !== 'referrer.' + domain) bad('A record name ' + a.name)
      if (p.records[p.records.length - 1] !== a) bad('A record not last')
      if (a.address !== LOOP) bad('referrer ' + a.address)
    }
    out.answers = []
    const rest = p.records.filter((r) => r !== a)
    for (let i = 0; i < rest.length; i += 2) {
      const srv = rest[i]
      const txt = rest[i + 1]
      if (!srv || srv.type !== 33 || !txt || txt.type !== 16 || srv.name !== txt.name) { bad('records not SRV/TXT pairs'); break }
      if (srv.target !== '0.0.0.0' || srv.priority || srv.weight || srv.ttl || txt.ttl || srv.class !== 1 || txt.class !== 1) bad('odd SRV/TXT ' + JSON.stringify(srv))
      if (txt.strings.length !== 1 || txt.strings[0].length !== 35) bad('TXT not one 35-byte string')
      const label = keyForName(srv.name, domain)
      if (!label) bad('unknown name ' + srv.name)
      const id = hex(txt.strings[0])
      const known = topicIds.get(id)
      if (!known) bad('TXT id of no known topic: ' + id)
      else if (known.topic !== label || known.port !== srv.port) bad('id/port/topic mismatch ' + JSON.stringify(known) + ' vs ' + label + ':' + srv.port)
      out.answers.push({
        name: srv.name,
        topic: label ? hex(TOPICS[label]) : null,
        topic_label: label,
        port: srv.port,
        target: srv.target,
        id,
        owner: known ? known.owner : null
      })
    }
    out.reencodable = true
  }
  if (out.kind === 'query') {
    out.names.forEach((n) => { if (!n.endsWith('.' + domain)) bad('domain of ' + n) })
  }
  return out
}

async function main () {
  const recorder = await startRecorder()
  fs.mkdirSync(OUT_DIR, { recursive: true })
  const problems = []
  const written = []
  const perRef = {}
  for (const ref of REFS) {
    perRef[ref.tag] = {}
    for (const scenario of SCENARIOS) {
      const from = captured.length
      const { steps, topicIds, peers } = await runScenario(ref, scenario)
      await sleep(100)
      const mine = captured.slice(from).filter((e) => e.step && e.step.startsWith(scenario.name + '/'))
      const stray = captured.slice(from).length - mine.length
      if (stray) problems.push(ref.tag + ' ' + scenario.name + ': ' + stray + ' datagrams outside any step')
      const packets = mine.map((e, i) => describePacket(e, i, scenario, topicIds, problems))
      const fixture = {
        generator: 'scripts/capture-mdns.js',
        reference: Object.assign({ '@hyperswarm/discovery': version(ref.dir) }, LIB_VERSIONS),
        reference_path: path.relative(ROOT, ref.dir),
        scenario: scenario.name,
        description: scenario.description,
        domain: scenario.domain,
        querier_ip: LOOP,
        topics: Object.keys(TOPICS).map((k) => ({ label: k, key: hex(TOPICS[k]), name: mdnsName(TOPICS[k], scenario.domain) })),
        steps,
        topic_ids: [...topicIds].map(([id, v]) => Object.assign({ id }, v)),
        peers_emitted: peers,
        packets
      }
      const file = path.join(OUT_DIR, ref.tag + '_' + scenario.name + '.json')
      fs.writeFileSync(file, JSON.stringify(fixture, null, 1) + '\n')
      written.push(path.relative(ROOT, file) + ' (' + packets.length + ' packets: ' + packets.map((p) => p.kind + '/' + p.len).join(', ') + ')')
      perRef[ref.tag][scenario.name] = packets.map((p) => ({ kind: p.kind, len: p.len, step: p.step, header: p.header }))
    }
  }
  recorder.close()
  for (const w of written) console.log('wrote ' + w)
  // Compare the two reference versions packet by packet (shape only; ids differ).
  const same = JSON.stringify(perRef.discovery1) === JSON.stringify(perRef.discovery2)
  console.log('discovery 1.x vs 2.0.1 packet sequence (kind/len/step/header): ' + (same ? 'identical' : 'DIFFERENT'))
  for (const p of problems) console.error('capture-mdns: PROBLEM: ' + p)
  process.exit(problems.length ? 3 : 0)
}

main().catch((err) => {
  console.error('capture-mdns: failed', err)
  process.exit(1)
})
