'use strict'
// A private DHT for conformance suites: one ephemeral bootstrap node and a
// few persistent members of the reference DHT (@hyperswarm/dht 4.0.1), in
// this process, on loopback. Suites run inside the namespace `npm test`
// made; `assertIsolated()` refuses to run anywhere else.
const dht = require('@hyperswarm/dht')
const { assertIsolated } = require('../helpers/netns')

async function testnet (members = 3) {
  assertIsolated()
  const nodes = []
  const boot = dht({ bootstrap: [], ephemeral: true })
  nodes.push(boot)
  await new Promise((resolve, reject) => {
    boot.once('error', reject)
    boot.listen(0, '127.0.0.1', resolve)
  })
  const bootstrap = [`127.0.0.1:${boot.address().port}`]
  for (let i = 0; i < members; i++) {
    const node = dht({ bootstrap, ephemeral: false })
    node.on('warning', () => {})
    nodes.push(node)
    await new Promise(resolve => node.once('ready', resolve))
  }
  return {
    bootstrap,
    /** The reference DHT nodes themselves (bootstrap first), to look into. */
    nodes,
    destroy () {
      for (const n of nodes) n.destroy()
    }
  }
}

module.exports = { testnet }
