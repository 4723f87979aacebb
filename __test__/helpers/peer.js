'use strict'
// A swarm peer run inside a lab namespace, driven over IPC by a test.
//   node peer.js <impl> <json options>
// impl: 'ours' (this package), 'hyperswarm' (2.15.3) or 'network004'
// (@hyperswarm/network 0.0.4). Both references get an empty bootstrap list:
// discovery is LAN-only and nothing leaves the lab.
//
// Messages to the test: ready, peer, connection, received (per connection,
// once `expect` bytes arrived, with their sha256), updated, closed, error.
// Commands: join, leave, destroy, stats, connect (→ connected, then
// connect-closed; or connect-error), exit.
const crypto = require('crypto')
const path = require('path')
const { pattern } = require('./data')

const [impl, raw] = process.argv.slice(2)
const opts = JSON.parse(raw || '{}')
const send = m => process.send && process.send(m)

// `noMdns`: the reference gets a silent stand-in for multicast-dns, so that
// it discovers over the DHT only.
if (opts.noMdns && impl !== 'ours') {
  require('./silence-mdns')
}

function create () {
  if (impl === 'ours') return require(path.join(__dirname, '..', '..'))(opts.swarm || {})
  if (impl === 'hyperswarm') return require('hyperswarm')({ bootstrap: [], ...(opts.swarm || {}) })
  if (impl === 'network004') return require('@hyperswarm/network')({ bootstrap: [], ...(opts.swarm || {}) })
  throw new Error('unknown impl ' + impl)
}

const swarm = create()
let nextConn = 0

swarm.on('peer', p => send({ type: 'peer', host: p.host, port: p.port, local: p.local, referrer: p.referrer ? { host: p.referrer.host, port: p.referrer.port } : null }))
if (swarm.on) swarm.on('warning', err => send({ type: 'warning', message: err.message }))
// A DHT round of a topic ended (the seed says 'update', hyperswarm 2.x
// 'updated'): the test's signal that an announce is stored.
swarm.on('update', () => send({ type: 'updated' }))
swarm.on('updated', () => send({ type: 'updated' }))
swarm.on('connection', (socket, details) => {
  const conn = nextConn++
  const client = !!(details && details.client)
  send({ type: 'connection', conn, client, remoteAddress: socket.remoteAddress })
  // `bare` leaves errors unhandled, as careless user code does.
  if (!opts.bare) socket.on('error', err => send({ type: 'socket-error', conn, message: err.message }))
  if (opts.send) {
    // Every connection carries `send` bytes of this peer's pattern.
    const data = pattern(opts.name, opts.send)
    socket.write(data)
  }
  if (opts.expect) {
    // The hash covers the first `expect` bytes; `bytes` counts every byte
    // that came, so a peer sending more than it should is seen.
    const hash = crypto.createHash('sha256')
    let hashed = 0
    let total = 0
    let reported = false
    socket.on('data', d => {
      total += d.length
      const take = Math.min(d.length, opts.expect - hashed)
      if (take > 0) hash.update(d.subarray(0, take))
      hashed += Math.max(take, 0)
      if (hashed >= opts.expect && !reported) {
        reported = true
        send({ type: 'received', conn, client, bytes: total, sha256: hash.digest('hex') })
      }
    })
    socket.on('end', () => send({ type: 'ended', conn, bytes: total }))
  }
  socket.on('close', () => send({ type: 'closed', conn }))
})

process.on('message', m => {
  try {
    if (m.cmd === 'join') {
      // hyperswarm 2.x joins with lookup by default; the seed API needs it asked.
      swarm.join(Buffer.from(m.topic, 'hex'), m.opts)
      send({ type: 'joined' })
    } else if (m.cmd === 'leave') {
      swarm.leave(Buffer.from(m.topic, 'hex'))
    } else if (m.cmd === 'stats') {
      send({ type: 'stats', stats: swarm.stats ? swarm.stats() : null, address: swarm.address ? swarm.address() : null })
    } else if (m.cmd === 'destroy') {
      const done = () => {
        send({ type: 'destroyed' })
        if (process.channel) process.channel.unref()
        process.removeAllListeners('message')
      }
      if (impl === 'network004') {
        swarm.discovery.destroy()
        swarm.server.close()
        swarm.socket.close()
        done()
      } else {
        swarm.destroy(done)
      }
    } else if (m.cmd === 'connect') {
      swarm.connect(m.peer, (err, socket, details) => {
        if (err) return send({ type: 'connect-error', message: err.message })
        send({ type: 'connected', client: details.client, remotePort: socket.remotePort })
        socket.on('close', () => send({ type: 'connect-closed' }))
        if (m.write) socket.write(m.write)
      })
    } else if (m.cmd === 'exit') {
      process.exit(0)
    }
  } catch (err) {
    send({ type: 'error', message: err.message, name: err.name })
  }
})

send({ type: 'ready', pid: process.pid })
