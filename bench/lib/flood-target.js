'use strict'
// The swarm under attack, for bench/tcp-flood.js and bench/emfile.js, run
// inside the lab.
//   node flood-target.js <impl>
// impl: 'ours' (the seed entry), 'ours-hyperswarm' (our ./hyperswarm
// entry), or the references 'network004' (@hyperswarm/network 0.0.4, the
// seed) and 'hyperswarm' (2.15.3). Discovery is off or silent (`bootstrap: []`, no multicast), so
// the only traffic is the flood. The swarm joins one topic to bind, and
// holds every incoming connection open without reading or writing.
//
// Messages: ready { port, pid }; on { cmd: 'count' }: count { open,
// accepted, stats } (stats: our engine's counters, null for references);
// error. { cmd: 'exit' } ends it.
const guard = require('./guard')
guard.child({ deadlineMs: 300000 })

const path = require('path')

const [impl] = process.argv.slice(2)
const send = m => process.send(m)
const TOPIC = Buffer.alloc(32, 0x42)
const ROOT = path.join(__dirname, '..', '..')

if (impl === 'hyperswarm' || impl === 'network004') require('../../__test__/helpers/silence-mdns')

function fail (err) {
  send({ type: 'error', message: err && err.stack ? err.stack : String(err) })
  setTimeout(() => process.exit(1), 100)
}

let open = 0
let accepted = 0
function onConnection (socket, details) {
  const client = details && (details.client === true)
  if (client) return
  accepted++
  open++
  socket.on('error', () => {})
  socket.once('close', () => { open-- })
}

async function start () {
  let swarm, port, stats
  if (impl === 'ours') {
    swarm = require(ROOT)({ bootstrap: [], multicast: false })
    swarm.on('connection', onConnection)
    swarm.join(TOPIC, { announce: true, lookup: false })
    port = swarm.address().port
    stats = () => swarm.stats()
  } else if (impl === 'network004') {
    swarm = require('@hyperswarm/network')({ bootstrap: [] })
    swarm.on('connection', onConnection)
    swarm.join(TOPIC, { announce: true, lookup: false })
    if (!swarm.server.listening) await new Promise(resolve => swarm.server.once('listening', resolve))
    port = swarm.server.address().port
    stats = () => null
  } else {
    const hs = impl === 'ours-hyperswarm' ? require(path.join(ROOT, 'hyperswarm')) : require('hyperswarm')
    swarm = hs({ bootstrap: [], multicast: false })
    swarm.on('connection', onConnection)
    await new Promise((resolve, reject) => swarm.listen(0, err => err ? reject(err) : resolve()))
    port = swarm.address().port
    stats = impl === 'ours-hyperswarm' ? () => swarm.network._engine.stats() : () => null
  }
  process.on('message', m => {
    if (m.cmd === 'count') send({ type: 'count', open, accepted, stats: stats() })
    if (m.cmd === 'exit') process.exit(0)
  })
  send({ type: 'ready', port, pid: process.pid })
}

start().catch(fail)
