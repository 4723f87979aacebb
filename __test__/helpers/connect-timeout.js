'use strict'
// Dials a TCP port whose SYNs the lab drops, through one entry point, and
// reports how the connect ended and after how long. Lab hosts only.
//   node connect-timeout.js <entry> <port>
// entry: seed, network, hyperswarm (ours), or the same with -reference
// (@hyperswarm/network 0.0.4 and 2.1.0, hyperswarm 2.15.3).
const { assertIsolated } = require('./netns')
assertIsolated()
const [entry, port] = process.argv.slice(2)
const peer = { host: '127.0.0.1', port: Number(port) }
const started = Date.now()
const report = (err, socket) => {
  process.send({ type: 'result', message: err ? err.message : null, code: err ? err.code : null, connected: !!socket, ms: Date.now() - started })
  setTimeout(() => process.exit(0), 100)
}
const opts = { bootstrap: [], multicast: false }
if (entry.endsWith('-reference')) require('./silence-mdns')
const factories = {
  seed: () => require('../..'),
  network: () => require('../../network'),
  hyperswarm: () => require('../../hyperswarm'),
  'seed-reference': () => require('@hyperswarm/network'),
  'network-reference': () => require('@hyperswarm/network-2'),
  'hyperswarm-reference': () => require('hyperswarm')
}
const swarm = factories[entry]()(entry.endsWith('-reference') ? { bootstrap: [] } : opts)
if (entry === 'network-reference') swarm.bind(() => swarm.connect(peer, report))
else swarm.connect(peer, report)
setTimeout(() => process.exit(2), 30000)
