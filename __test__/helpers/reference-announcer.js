'use strict'
// A hyperswarm 2.15.3 (reference) peer in a child process, for tests that
// must not wait on its teardown (utp-native closes its socket only once
// every uTP connection has finished closing, which can take long after the
// other side left): the parent kills it.
//   fork('reference-announcer.js', [bootstrap (JSON array), topic (hex)])
// Sends { type: 'joined' } once the first announce round flushed, and
// { type: 'connection', details } per connection; the data it receives is
// echoed back.
const { assertIsolated } = require('./netns')
assertIsolated()
require('./silence-mdns')
const hyperswarm = require('hyperswarm')
const [bootstrap, topic] = [JSON.parse(process.argv[2]), Buffer.from(process.argv[3], 'hex')]
const swarm = hyperswarm({ bootstrap, maxPeers: 4 })
swarm.on('connection', (socket, info) => {
  socket.on('error', () => {})
  socket.on('data', d => socket.write(d))
  process.send({ type: 'connection', details: { type: info.type, client: info.client } })
})
swarm.join(topic, { announce: true, lookup: false }, () => process.send({ type: 'joined' }))
