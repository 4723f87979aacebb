'use strict'
// The implementations each conformance suite runs against. The reference
// packages are the real npm releases (pinned devDependencies); "ours" is this
// package's matching entry point. The reference's LAN discovery is replaced
// by a silent stand-in and ours is switched off, so peers are found through
// the test's own DHT testnet only, the same way for both.
require('../helpers/silence-mdns')
const path = require('path')

const ROOT = path.join(__dirname, '..', '..')

const surfaces = {
  // hyperswarm 2.15.3 ↔ require('hyperswarm-native/hyperswarm')
  hyperswarm: {
    reference: () => require('hyperswarm'),
    ours: () => withOptions(require(path.join(ROOT, 'hyperswarm.js')))
  },
  // @hyperswarm/network 2.1.0 ↔ require('hyperswarm-native/network')
  network: {
    reference: () => require('@hyperswarm/network-2'),
    ours: () => withOptions(require(path.join(ROOT, 'network.js')))
  },
  // @hyperswarm/network 0.0.4 (the seed) ↔ require('hyperswarm-native')
  seed: {
    reference: () => require('@hyperswarm/network'),
    ours: () => withOptions(require(ROOT))
  },
  // @hyperswarm/dht 4.0.1 ↔ require('hyperswarm-native/dht'): a DHT node
  // has no LAN discovery, so no options are added.
  dht: {
    reference: () => require('@hyperswarm/dht'),
    ours: () => require(path.join(ROOT, 'dht.js'))
  }
}

// Ours takes `multicast: false`; the reference has no such switch (it gets
// the stand-in above). Everything else passes through untouched.
function withOptions (factory) {
  const wrapped = (opts) => factory({ multicast: false, ...opts })
  return Object.assign(wrapped, factory)
}

/** The implementations a suite runs: both, always. */
const IMPLS = ['reference', 'ours']

module.exports = { surfaces, IMPLS }
