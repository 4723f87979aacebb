'use strict'
// Child process of conformance-dht.test.js: one DHT node of the
// implementation named in argv[2] bootstraps on the testnet whose bootstrap
// node is argv[3], announces once, starts a lookup and is destroyed while
// that lookup is still running. After that nothing is left to do, so the
// process must exit by itself (the parent measures how long it takes).
// Prints `destroyed <ms>` when destroy() has been called and `closed <ms>`
// on the node's 'close' event.
const { assertIsolated } = require('../helpers/netns')
assertIsolated()
const { randomBytes } = require('crypto')
const { surfaces } = require('./impls')

const [impl, bootstrap] = process.argv.slice(2)
const dht = surfaces.dht[impl]()
const node = dht({ bootstrap: [bootstrap], ephemeral: true })
const topic = randomBytes(32)
node.on('warning', () => {})

node.once('ready', () => {
  node.announce(topic, { port: 4321 }, (err) => {
    if (err) {
      process.stderr.write(`announce failed: ${err.message}\n`)
      process.exit(4)
    }
    const stream = node.lookup(topic)
    stream.on('error', () => {})
    stream.resume()
    node.once('close', () => process.stdout.write(`closed ${Date.now()}\n`))
    node.destroy()
    process.stdout.write(`destroyed ${Date.now()}\n`)
  })
})

// A hard stop far beyond what the case allows, unref'd so that it is not
// itself a reason to stay alive.
setTimeout(() => process.exit(3), 20000).unref()
