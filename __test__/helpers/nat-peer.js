'use strict'
// A swarm peer for the NAT lab, driven over IPC; it reports how each
// connection was made.
//   node nat-peer.js <impl> <json options>
// impl: 'hyperswarm' (2.15.3), 'ours' (the seed entry) or 'ours-hyperswarm'
// (our ./hyperswarm entry). Options: name, swarm (passed to the
// constructor; give it the lab's bootstrap). LAN discovery is off on our
// side and silenced on the reference's (as in peer.js), so peers meet
// through the DHT only.
//
// Messages: ready; flushed (join's first DHT round is done: holepunchable,
// remoteAddress, natType on ours); peer; warning { message }; connection { client, transport: 'tcp' | 'utp' | 'relay'
// (net.Socket or not), socketClass, infoType (the reference's details.type,
// sticky, see api-network.md §4.3) }; received (the other side's hello
// arrived); socket-error.
// Commands: join { topic }, address (→ address { holepunchable,
// remoteAddress, natType }), stats (→ stats { stats: ours only, fds: open
// descriptors of this process }), close-conns (destroys every connection),
// exit.
const net = require('net')
const path = require('path')

const [impl, raw] = process.argv.slice(2)
const opts = JSON.parse(raw || '{}')
const send = m => process.send && process.send(m)
const HELLO = 'hello from '

if (impl === 'hyperswarm') {
  require('./silence-mdns')
}

function create () {
  if (impl === 'ours') return require(path.join(__dirname, '..', '..'))({ ...(opts.swarm || {}), multicast: false })
  if (impl === 'ours-hyperswarm') return require(path.join(__dirname, '..', '..', 'hyperswarm'))({ ...(opts.swarm || {}), multicast: false })
  if (impl === 'hyperswarm') return require('hyperswarm')({ bootstrap: [], ...(opts.swarm || {}) })
  throw new Error('unknown impl ' + impl)
}

const swarm = create()
const started = Date.now()
let nextConn = 0
const live = new Set()
const fds = () => require('fs').readdirSync('/proc/self/fd').length

if (swarm.on) swarm.on('warning', err => send({ type: 'warning', message: err.message }))
swarm.on('peer', p => send({
  type: 'peer',
  host: p.host,
  port: p.port,
  local: !!p.local,
  referrer: p.referrer ? { host: p.referrer.host, port: p.referrer.port } : null,
  ms: Date.now() - started
}))

swarm.on('connection', (socket, details) => {
  const conn = nextConn++
  const client = !!(details && details.client)
  // 'relay': uTP through a relay of last resort (ours only, details.type).
  const transport = socket instanceof net.Socket ? 'tcp' : details && details.type === 'relay' ? 'relay' : 'utp'
  send({
    type: 'connection',
    conn,
    client,
    transport,
    socketClass: socket.constructor && socket.constructor.name,
    infoType: details ? details.type : null,
    relay: (details && details.relay) || null,
    remoteAddress: socket.remoteAddress || null,
    remotePort: socket.remotePort || null,
    ms: Date.now() - started
  })
  socket.on('error', err => send({ type: 'socket-error', conn, message: err.message }))
  socket.write(HELLO + opts.name)
  let got = ''
  socket.on('data', d => {
    if (got === null) return
    got += d.toString()
    if (got.startsWith(HELLO) && got.length > HELLO.length) {
      send({ type: 'received', conn, client, transport, from: got.slice(HELLO.length), ms: Date.now() - started })
      got = null
    }
  })
  live.add(socket)
  socket.on('close', () => {
    live.delete(socket)
    send({ type: 'closed', conn })
  })
})

function addressInfo () {
  try {
    return {
      holepunchable: !!swarm.holepunchable(),
      remoteAddress: swarm.remoteAddress() || null,
      natType: swarm.natType ? swarm.natType() : null
    }
  } catch (err) {
    return { holepunchable: null, remoteAddress: null, error: err.message }
  }
}

process.on('message', m => {
  try {
    if (m.cmd === 'join') {
      const key = Buffer.from(m.topic, 'hex')
      const joinOpts = { announce: true, lookup: true }
      if (impl === 'ours') {
        // The seed API has no join callback: its first 'update' is the end
        // of the join's first DHT round.
        swarm.once('update', () => send({ type: 'flushed', ...addressInfo(), ms: Date.now() - started }))
        swarm.join(key, joinOpts)
      } else {
        swarm.join(key, joinOpts, () => send({ type: 'flushed', ...addressInfo(), ms: Date.now() - started }))
      }
    } else if (m.cmd === 'address') {
      send({ type: 'address', ...addressInfo(), ms: Date.now() - started })
    } else if (m.cmd === 'stats') {
      send({ type: 'stats', stats: swarm.stats ? swarm.stats() : null, fds: fds(), ms: Date.now() - started })
    } else if (m.cmd === 'close-conns') {
      for (const s of live) s.destroy()
    } else if (m.cmd === 'exit') {
      process.exit(0)
    }
  } catch (err) {
    send({ type: 'error', message: err.message })
  }
})

process.on('disconnect', () => process.exit(0))
setTimeout(() => process.exit(0), 5 * 60 * 1000).unref()
send({ type: 'ready', pid: process.pid })
