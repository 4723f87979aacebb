'use strict'
// Dials a TCP port whose SYNs the lab drops, through one entry point, and
// reports how the connect ended and after how long. Lab hosts only.
//   node connect-timeout.js <seed|network|hyperswarm> <port>
const { assertIsolated } = require('./netns')
assertIsolated()
const [entry, port] = process.argv.slice(2)
const peer = { host: '127.0.0.1', port: Number(port) }
const started = Date.now()
const report = (err, socket) => {
  process.send({ type: 'result', message: err ? err.message : null, connected: !!socket, ms: Date.now() - started })
  setTimeout(() => process.exit(0), 100)
}
const opts = { bootstrap: [], multicast: false }
if (entry === 'seed') {
  require('../..')(opts).connect(peer, report)
} else if (entry === 'network') {
  require('../../network')(opts).connect(peer, report)
} else {
  require('../../hyperswarm')(opts).connect(peer, report)
}
setTimeout(() => process.exit(2), 30000)
