'use strict'
// require('hyperswarm-native/dht'): the API of @hyperswarm/dht 4.0.1, a
// factory as the reference exports. See lib/dht/node.js.
const { HyperDHT } = require('./lib/dht/node')

module.exports = function dht (opts) {
  return new HyperDHT(opts)
}
