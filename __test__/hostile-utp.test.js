'use strict'
// Hostile uTP (issue 10): a flood of spoofed SYNs, 500 per second for 30 s
// against each of two swarms, while they go about their business.
//
// - 0 JS connections come of it (a SYN gets half-open state in a bounded
//   table and reaches JS only with the dialler's first data), while the
//   counters prove the SYNs arrived (positive control).
// - The seed swarm under attack still `connect()`s over uTP, and its own
//   dial queue connects to the honest peer.
// - A `./hyperswarm` swarm under attack keeps dialling and connects to the
//   honest peer (before, 24 spoofed SYNs filled `maxPeers`).
// - A SYN spoofed onto the key of an idle established connection (silent
//   for 3 s: the old rule replaced connections silent for 2 s) does not
//   close it; the target's counter proves the SYN hit it.
//
// The SYNs are forged by a python3 process with a raw socket: sources
// anywhere in 127/8 (loopback spoofing is free on `lo`), random ports,
// ids and seqs. To hit the idle connection it reads the connection id off
// `lo` (AF_PACKET) and forges a SYN from the dialler's own address.
// Runs in a loopback-only namespace; takes about 70 s.
const test = require('node:test')
const assert = require('node:assert')
const { spawn } = require('child_process')
const crypto = require('crypto')
const { assertIsolated } = require('./helpers/netns')
const network = require('..')
const hyperswarm = require('../hyperswarm')

assertIsolated()

const FLOOD_RATE = 500 // spoofed SYNs per second, per target
// 15,000 SYNs per target: fifteen times the half-open table (MAX_HALF_OPEN
// 1024), so eviction runs throughout; the steps under it take seconds.
const FLOOD_SECS = 30
const WAIT = 20000

const FORGER = String.raw`
import json, os, random, socket, struct, sys, time

def say(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()

raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

def send_syn(src, sport, dst, dport, conn_id, seq):
    # uTP v1 SYN (type 4): 20 bytes, no extensions.
    utp = struct.pack("!BBHIIIHH", 0x41, 0, conn_id, random.getrandbits(32), 0, 1 << 20, seq, 0)
    # UDP checksum 0: none (IPv4 allows it).
    udp = struct.pack("!HHHH", sport, dport, 8 + len(utp), 0) + utp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.getrandbits(16), 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    raw.sendto(ip + udp, (dst, 0))

def flood(targets, rate, secs):
    sent = {t: 0 for t in targets}
    start = time.monotonic()
    tick = 0.01
    n = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= secs:
            break
        due = int(min(elapsed + tick, secs) * rate)
        for t in targets:
            host, port = t.rsplit(":", 1)
            while sent[t] < due:
                src = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255), random.randint(1, 254))
                send_syn(src, random.randint(1024, 65535), host, int(port), random.getrandbits(16), random.getrandbits(16))
                sent[t] += 1
        n += 1
        if n % 100 == 0:
            say(progress=sent)
        time.sleep(max(0, start + (n * tick) - time.monotonic()))
    say(done=sent)

def collide(src, dst, idle, limit):
    sh, sp = src.rsplit(":", 1)
    dh, dp = dst.rsplit(":", 1)
    sp, dp = int(sp), int(dp)
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
    cap.bind(("lo", 0))
    cap.settimeout(1.0)
    say(ready=True)
    end = time.monotonic() + limit
    conn_id = None
    while conn_id is None and time.monotonic() < end:
        try:
            frame = cap.recv(65535)
        except socket.timeout:
            continue
        pkt = frame[14:]
        if len(pkt) < 28 or pkt[9] != 17:
            continue
        ihl = (pkt[0] & 15) * 4
        s_ip, d_ip = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
        s_port, d_port = struct.unpack("!HH", pkt[ihl:ihl + 4])
        utp = pkt[ihl + 8:]
        # A DATA packet (type 0, version 1) from the dialler to the target.
        if (s_ip, s_port, d_ip, d_port) == (sh, sp, dh, dp) and len(utp) > 20 and utp[0] == 0x01:
            conn_id = struct.unpack("!H", utp[2:4])[0]
    if conn_id is None:
        say(error="no DATA seen")
        return
    say(conn_id=conn_id)
    time.sleep(idle)
    # The SYN that would reopen this key: its id is the target's recv_id - 1.
    for seq in (1, 2, random.getrandbits(16)):
        send_syn(sh, sp, dh, dp, (conn_id - 1) & 0xffff, seq)
    say(collided=3)

mode = sys.argv[1]
if mode == "flood":
    flood(sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]))
else:
    collide(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
`

/** Runs the forger; `lines` collects its JSON messages, `next(key)` waits for one. */
function forger (args, limitMs) {
  const proc = spawn('python3', ['-c', FORGER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const f = { proc, lines: [], stderr: '', waiters: [] }
  let buf = ''
  proc.stdout.on('data', d => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()
    for (const line of parts) {
      if (!line.trim()) continue
      const msg = JSON.parse(line)
      f.lines.push(msg)
      f.waiters = f.waiters.filter(w => !w(msg))
    }
  })
  proc.stderr.on('data', d => { f.stderr += d })
  const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs)
  f.exited = new Promise(resolve => proc.on('exit', code => { clearTimeout(timer); resolve(code) }))
  f.next = (key, ms) => {
    const seen = f.lines.find(m => key in m)
    if (seen) return Promise.resolve(seen)
    return within(new Promise(resolve => f.waiters.push(m => {
      if (!(key in m)) return false
      resolve(m)
      return true
    })), `forger's ${key} (stderr: ${f.stderr.slice(-500)})`, ms)
  }
  return f
}

function within (promise, what, ms = WAIT) {
  let timer
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

/** Polls `get()` every 50 ms until `ok(value)`; bounded. */
async function until (get, ok, what, ms = WAIT) {
  const end = Date.now() + ms
  for (;;) {
    const v = get()
    if (ok(v)) return v
    if (Date.now() > end) throw new Error(`gave up after ${ms} ms waiting for ${what} (last: ${JSON.stringify(v)})`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Resolves with the first `n` bytes that arrive on `socket`. */
function read (socket, n, what) {
  return within(new Promise(resolve => {
    let got = Buffer.alloc(0)
    const on = d => {
      got = Buffer.concat([got, d])
      if (got.length >= n) {
        socket.removeListener('data', on)
        resolve(got.toString())
      }
    }
    socket.on('data', on)
  }), what)
}

test('spoofed SYN flood: no JS connections, connect() and dialling go on, idle connections survive', { timeout: 150000 }, async () => {
  const cleanup = []
  try {
    // A private DHT of our own nodes.
    const boot = new network.DhtNode({ port: 0, ephemeral: true })
    cleanup.push(() => boot.destroy())
    const bootstrap = [`127.0.0.1:${boot.port}`]
    for (let i = 0; i < 2; i++) {
      const n = new network.DhtNode({ port: 0, bootstrap, ephemeral: false })
      cleanup.push(() => n.destroy())
    }
    const topic = crypto.randomBytes(32)

    // The honest peer: announces, never dials.
    const honest = network({ bootstrap, multicast: false })
    cleanup.push(() => honest.destroy())
    const honestConns = []
    honest.on('connection', (socket, details) => honestConns.push({ socket, details }))
    const announced = new Promise(resolve => honest.once('update', resolve))
    honest.join(topic, { announce: true, lookup: false })
    const honestPort = honest.address().port
    await within(announced, 'the honest peer\'s first announce')

    // The seed swarm under attack: uTP only, so every connection it makes
    // goes through the endpoint the flood hits.
    const seed = network({ bootstrap, multicast: false, tcp: false })
    cleanup.push(() => seed.destroy())
    const seedIncoming = []
    const seedOutgoing = []
    let onSeedOut
    const seedOut = new Promise(resolve => { onSeedOut = resolve })
    seed.on('connection', (socket, details) => {
      if (details.client) {
        seedOutgoing.push({ socket, details })
        onSeedOut({ socket, details })
      } else {
        seedIncoming.push(details)
        socket.destroy()
      }
    })
    let onPeer
    const seedPeer = new Promise(resolve => { onPeer = resolve })
    seed.on('peer', peer => { if (peer.port === honestPort && peer.referrer) onPeer(peer) })

    // The ./hyperswarm swarm under attack.
    const swarm = hyperswarm({ bootstrap, multicast: false })
    cleanup.push(() => swarm.destroy())
    const swarmIncoming = []
    let onSwarmOut
    const swarmOut = new Promise(resolve => { onSwarmOut = resolve })
    swarm.on('connection', (socket, info) => {
      socket.on('error', () => {})
      if (info.client) onSwarmOut({ socket, info })
      else swarmIncoming.push(info)
    })

    // Bind both before the flood starts, so it has its targets (the seed
    // binds on its first join: a topic nobody announces).
    seed.join(crypto.randomBytes(32), { lookup: true, announce: false })
    const seedPort = seed.address().port
    await new Promise((resolve, reject) => swarm.listen(0, err => err ? reject(err) : resolve()))
    const swarmPort = swarm.address().port
    const seedStats = () => seed.stats()
    const swarmStats = () => swarm.network._engine.stats()

    const collider = forger(['collide', `127.0.0.1:${seedPort}`, `127.0.0.1:${honestPort}`, '3', '90'], 120000)
    cleanup.push(() => collider.proc.kill('SIGKILL'))
    await collider.next('ready')
    const flood = forger(['flood', `127.0.0.1:${seedPort},127.0.0.1:${swarmPort}`, String(FLOOD_RATE), String(FLOOD_SECS)], (FLOOD_SECS + 30) * 1000)
    cleanup.push(() => flood.proc.kill('SIGKILL'))
    const floodStart = Date.now()
    await flood.next('progress', 5000)

    // 1. The seed's own dial queue connects to the honest peer over uTP.
    seed.join(topic, { lookup: true, announce: false })
    const first = await within(seedOut, 'the seed swarm dialling the honest peer during the flood', 30000)
    assert.strictEqual(first.details.type, 'utp')
    first.socket.write('hello')
    const idleAtHonest = await until(() => honestConns.find(c => !c.details.client && c.details.type === 'utp'), Boolean,
      'the honest peer seeing the seed\'s uTP connection')
    assert.strictEqual(await read(idleAtHonest.socket, 5, 'hello at the honest peer'), 'hello')

    // 2. Left idle, then a SYN spoofed from the dialler's address onto the
    // connection's key. It hits (counter), and the connection lives on.
    const { conn_id: connId } = await collider.next('conn_id', WAIT)
    await collider.next('collided', WAIT)
    await until(() => honest.stats().utpSynCollisions, n => n >= 1, 'the honest peer counting the spoofed SYN on the idle connection')
    let closed = false
    for (const s of [first.socket, idleAtHonest.socket]) s.once('close', () => { closed = true })
    first.socket.write('ping')
    assert.strictEqual(await read(idleAtHonest.socket, 4, 'ping after the spoofed SYN'), 'ping')
    idleAtHonest.socket.write('pong')
    assert.strictEqual(await read(first.socket, 4, 'pong after the spoofed SYN'), 'pong')
    assert.strictEqual(closed, false, 'the idle connection was closed by a spoofed SYN')

    // 3. connect() from the attacked seed swarm, over uTP, succeeds.
    const peer = await within(seedPeer, 'the honest peer found by the seed swarm')
    const [err, socket, details] = await within(new Promise(resolve => seed.connect(peer, (...a) => resolve(a))), 'connect()')
    assert.ifError(err)
    assert.strictEqual(details.type, 'utp')
    socket.destroy()

    // 4. The ./hyperswarm swarm joins mid-flood and connects.
    swarm.join(topic, { lookup: true, announce: false })
    const out = await within(swarmOut, 'the ./hyperswarm swarm connecting to the honest peer during the flood', 30000)
    assert.strictEqual(out.info.peer.port, honestPort)
    const midFlood = (Date.now() - floodStart) / 1000
    assert.ok(midFlood < FLOOD_SECS, `all of the above happened during the flood (${midFlood.toFixed(1)} s in)`)

    // The whole 30 s.
    const { done } = await flood.next('done', (FLOOD_SECS + 20) * 1000)
    const sentSeed = done[`127.0.0.1:${seedPort}`]
    const sentSwarm = done[`127.0.0.1:${swarmPort}`]
    assert.ok(sentSeed >= FLOOD_RATE * FLOOD_SECS * 0.98, `forger sent ${sentSeed}`)
    assert.ok(sentSwarm >= FLOOD_RATE * FLOOD_SECS * 0.98, `forger sent ${sentSwarm}`)

    // Positive control: the SYNs arrived and made half-open state.
    const s1 = await until(seedStats, s => s.utpHalfOpened >= sentSeed * 0.9, 'the seed swarm counting the SYNs')
    const s2 = await until(swarmStats, s => s.utpHalfOpened >= sentSwarm * 0.9, 'the ./hyperswarm swarm counting the SYNs')
    // The result: not one JS connection from them.
    assert.strictEqual(seedIncoming.length, 0, `seed swarm: ${seedIncoming.length} incoming connections`)
    assert.strictEqual(swarmIncoming.length, 0, `./hyperswarm swarm: ${swarmIncoming.length} incoming connections`)
    assert.ok(s1.utpHalfOpen <= 1024 && s2.utpHalfOpen <= 1024, 'half-open tables stay bounded')
    assert.strictEqual(s1.connectionsAccepted, 0)
    assert.strictEqual(s2.connectionsAccepted, 0)

    const figures = {
      test: 'hostile-utp',
      floodRate: FLOOD_RATE,
      floodSecs: FLOOD_SECS,
      sent: { seed: sentSeed, hyperswarm: sentSwarm },
      received: { seed: s1.utpReceived, hyperswarm: s2.utpReceived },
      halfOpened: { seed: s1.utpHalfOpened, hyperswarm: s2.utpHalfOpened },
      evicted: { seed: s1.utpHalfOpenEvicted, hyperswarm: s2.utpHalfOpenEvicted },
      jsConnections: { seed: seedIncoming.length, hyperswarm: swarmIncoming.length },
      idleConnection: { connId, synCollisions: honest.stats().utpSynCollisions, survived: !closed },
      dialledDuringFlood: { seedAuto: seedOutgoing.length, connect: true, hyperswarm: true, atSecond: Number(midFlood.toFixed(1)) }
    }
    console.log(JSON.stringify(figures))
  } finally {
    for (const f of cleanup.reverse()) {
      try { f() } catch {}
    }
  }
})

test('maxIncomingPerIp caps incoming TCP connections from one IP; a closed one frees its place', { timeout: 30000 }, async () => {
  const netMod = require('net')
  assert.throws(() => network({ maxIncomingPerIp: -1 }), { name: 'TypeError', message: /maxIncomingPerIp/ })
  const swarm = network({ bootstrap: [], multicast: false, maxIncomingPerIp: 4 })
  const held = []
  swarm.on('connection', (socket, details) => { if (!details.client) held.push(socket) })
  swarm.join(crypto.randomBytes(32), { announce: true, lookup: false })
  const port = swarm.address().port
  const clients = []
  const gone = new WeakSet()
  const dial = () => {
    const c = netMod.connect({ host: '127.0.0.1', port })
    c.on('error', () => {})
    c.once('close', () => gone.add(c))
    clients.push(c)
  }
  try {
    const open = () => clients.filter(c => !gone.has(c)).length
    for (let i = 0; i < 10; i++) dial()
    // Positive control: all ten reached the listener and six were refused.
    await until(() => swarm.stats().tcpRefusedPerIp, n => n === 6, 'six refused connections')
    await until(open, n => n === 4, 'four connections left open')
    await until(() => held.length, n => n === 4, 'four connections in JS')
    // One closes: the next one from that IP is taken.
    const freed = new Promise(resolve => held[0].once('close', resolve))
    held[0].destroy()
    await within(freed, 'the held connection to close')
    dial()
    await until(() => swarm.stats().tcpRefusedPerIp + held.length, n => n >= 11, 'the next connection to be taken or refused')
    await until(() => held.length, n => n === 5, 'the fifth connection in JS after one closed')
    assert.strictEqual(swarm.stats().tcpRefusedPerIp, 6)
    assert.strictEqual(swarm.stats().connectionsAccepted, 5)
  } finally {
    for (const c of clients) c.destroy()
    await new Promise(resolve => swarm.destroy(resolve))
  }
})
