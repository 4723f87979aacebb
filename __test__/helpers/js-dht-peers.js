'use strict'
// A reference @hyperswarm/dht node that announces or looks up a topic
// directly on the DHT (no swarm), run inside a lab host only.
//   node js-dht-peers.js <bootstrap> announce <topicHex> <port>
//   node js-dht-peers.js <bootstrap> lookup <topicHex>
// Reports { type: 'announced' } or { type: 'found', peers: [{host, port}] }.
const dht = require('@hyperswarm/dht')
const [bootstrap, mode, topicHex, port] = process.argv.slice(2)
const send = m => process.send && process.send(m)
const node = dht({ bootstrap: [bootstrap], ephemeral: false })
node.on('warning', () => {})
const topic = Buffer.from(topicHex, 'hex')

node.once('ready', () => {
  if (mode === 'announce') {
    node.announce(topic, { port: Number(port) }, err => send({ type: 'announced', error: err ? err.message : null }))
  } else {
    const peers = []
    node.lookup(topic)
      .on('data', d => { for (const p of d.peers || []) peers.push({ host: p.host, port: p.port }) })
      .on('error', err => send({ type: 'found', peers, error: err.message }))
      .on('end', () => send({ type: 'found', peers }))
  }
})
setTimeout(() => process.exit(0), 5 * 60 * 1000).unref()
