'use strict'
// One end of a bulk transfer, run inside the lab by bench/stream-throughput.js.
//   node throughput-peer.js receiver <impl> <bytes>
//   node throughput-peer.js sender   <impl> <bytes> <port> <chunkBytes>
// impl: 'ours' (this package), 'node' (net.createServer / net.connect) or
// 'network004' (reference @hyperswarm/network 0.0.4, its TCP path).
//
// Timing uses process.hrtime (CLOCK_MONOTONIC, one clock for the whole
// machine): the sender stamps t0 just before its first write, the receiver
// stamps t1 when the last byte arrives; the orchestrator takes t1 - t0.
const guard = require('./guard')
guard.child({ deadlineMs: 120000 })

const net = require('net')
const path = require('path')

const [role, impl, bytesArg, portArg, chunkArg] = process.argv.slice(2)
const BYTES = Number(bytesArg)
const send = m => process.send(m)
const now = () => process.hrtime.bigint().toString()
const TOPIC = Buffer.alloc(32, 0x42)
// Discovery off and no bootstrap: the one connection is the one we make.
const SWARM_OPTS = { bootstrap: [], multicast: false }

function swarm () {
  if (impl === 'ours') return require(path.join(__dirname, '..', '..'))(SWARM_OPTS)
  // Discovery 2.0.1 (under network 0.0.4) always runs mDNS; here it is lo only.
  if (impl === 'network004') return require('@hyperswarm/network')({ bootstrap: [] })
  throw new Error('unknown impl ' + impl)
}

function fail (err) {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
}

function receiver () {
  let taken = false
  const onconnection = socket => {
    if (taken) return socket.destroy()
    taken = true
    let got = 0
    let cpu0 = null
    let first = null
    socket.on('error', fail)
    socket.on('data', d => {
      if (first === null) { first = now(); cpu0 = process.cpuUsage() }
      got += d.length
      if (got >= BYTES) {
        const t1 = now()
        const cpu = process.cpuUsage(cpu0)
        socket.removeAllListeners('data')
        send({ type: 'received', bytes: got, t1, first, cpuUs: cpu.user + cpu.system })
        socket.end()
      }
    })
  }
  if (impl === 'node') {
    const server = net.createServer(onconnection)
    server.on('error', fail)
    server.listen(0, () => send({ type: 'listening', port: server.address().port }))
    return
  }
  const s = swarm()
  s.on('connection', onconnection)
  s.on('error', fail)
  s.join(TOPIC, { announce: true, lookup: false })
  const port = impl === 'ours' ? s.address().port : s.socket.address().port
  send({ type: 'listening', port })
}

function sender () {
  const port = Number(portArg)
  const peer = { host: '127.0.0.1', port }
  const ready = socket => {
    socket.on('error', fail)
    send({ type: 'connected' })
    process.on('message', m => { if (m.cmd === 'go') pump(socket) })
  }
  if (impl === 'node') {
    const socket = net.connect(port, '127.0.0.1', () => ready(socket))
    socket.on('error', fail)
    return
  }
  const s = swarm()
  s.connect(peer, (err, socket) => err ? fail(err) : ready(socket))
}

function pump (socket) {
  const chunkLen = Number(chunkArg)
  const t0 = now()
  const cpu0 = process.cpuUsage()
  let left = BYTES
  const chunk = Buffer.alloc(chunkLen, 0xa5)
  const write = () => {
    while (left > 0) {
      const n = Math.min(left, chunkLen)
      left -= n
      const ok = socket.write(n === chunkLen ? chunk : chunk.subarray(0, n))
      if (!ok) return socket.once('drain', write)
    }
    socket.end(() => {
      const cpu = process.cpuUsage(cpu0)
      send({ type: 'sent', t0, tEnd: now(), cpuUs: cpu.user + cpu.system })
    })
  }
  write()
}

try {
  if (role === 'receiver') receiver()
  else if (role === 'sender') sender()
  else throw new Error('unknown role ' + role)
} catch (err) {
  fail(err)
}
process.on('message', m => { if (m.cmd === 'exit') process.exit(0) })
