'use strict'
// Every public method of every entry point, called with wrong argument
// types: a TypeError that names the argument, and the process lives on.
const test = require('node:test')
const assert = require('node:assert')
const { assertIsolated } = require('./helpers/netns')
const seed = require('..')
const network = require('../network')
const hyperswarm = require('../hyperswarm')

assertIsolated()
const KEY = Buffer.alloc(32, 7)
const OPTS = { bootstrap: [], multicast: false }

function throwsNaming (fn, word) {
  assert.throws(fn, err => err instanceof TypeError && new RegExp(word, 'i').test(err.message), `expected a TypeError naming ${word}`)
}

const badKeys = ['abc', 42, Buffer.alloc(31), null, {}]

test('seed entry (@hyperswarm/network 0.0.4 API)', async () => {
  throwsNaming(() => seed('x'), 'options')
  throwsNaming(() => seed({ bootstrap: 5 }), 'bootstrap')
  throwsNaming(() => seed({ maxIncomingPerIp: -1 }), 'options.maxIncomingPerIp')
  throwsNaming(() => seed({ dhtLimitScale: 0 }), 'options.dhtLimitScale')
  throwsNaming(() => seed({ dhtLimitScale: 1.5 }), 'options.dhtLimitScale')
  throwsNaming(() => seed({ relay: 'yes' }), 'options.relay')
  throwsNaming(() => seed({ relay: { maxPairs: 0 } }), 'options.relay.maxPairs')
  throwsNaming(() => seed({ relay: { rate: 1.5 } }), 'options.relay.rate')
  throwsNaming(() => seed({ relay: { port: 70000 } }), 'options.relay.port')
  throwsNaming(() => seed.DhtNode({ limitScale: 'x' }), 'options.limitScale')
  throwsNaming(() => hyperswarm({ dhtLimitScale: -3 }), 'options.dhtLimitScale')
  const nw = seed(OPTS)
  for (const k of badKeys) {
    throwsNaming(() => nw.join(k), 'topic')
    throwsNaming(() => nw.leave(k), 'topic')
  }
  throwsNaming(() => nw.join(KEY, 'announce'), 'options')
  throwsNaming(() => nw.connect('peer', () => {}), 'peer')
  throwsNaming(() => nw.connect({ host: 1, port: 1 }, () => {}), 'peer.host')
  throwsNaming(() => nw.connect({ host: 'a', port: 'x' }, () => {}), 'peer.port')
  throwsNaming(() => nw.connect({ host: 'a', port: 1 }), 'callback')
  throwsNaming(() => nw.destroy('x'), 'callback')
  await new Promise(resolve => nw.destroy(resolve))
  assert.throws(() => nw.join(KEY), /destroyed/)
})

test('network entry (@hyperswarm/network 2.1.0 API)', async () => {
  throwsNaming(() => network('x'), 'options')
  throwsNaming(() => network({ bind: 1 }), 'options.bind')
  throwsNaming(() => network({ close: 'x' }), 'options.close')
  throwsNaming(() => network({ id: 'abc' }), 'options.id')
  throwsNaming(() => network({ port: -1 }), 'options.port')
  throwsNaming(() => network({ preferredPort: 'x' }), 'options.preferredPort')
  throwsNaming(() => network({ announcePort: 1e6 }), 'options.announcePort')
  throwsNaming(() => network({ ephemeral: 'no' }), 'options.ephemeral')
  const nw = network(OPTS)
  throwsNaming(() => nw.bind('x'), 'preferredPort')
  throwsNaming(() => nw.bind(0, 'x'), 'callback')
  throwsNaming(() => nw.open(5), 'callback')
  throwsNaming(() => nw.close(5), 'callback')
  throwsNaming(() => nw.connect(null, () => {}), 'peer')
  throwsNaming(() => nw.connect({ host: 'h', port: 0 }, () => {}), 'peer.port')
  throwsNaming(() => nw.connect({ host: 'h', port: 1 }, 'x'), 'callback')
  await new Promise((resolve, reject) => nw.bind(err => err ? reject(err) : resolve()))
  for (const k of badKeys) {
    throwsNaming(() => nw.announce(k), 'key')
    throwsNaming(() => nw.lookup(k), 'key')
    throwsNaming(() => nw.lookupOne(k, () => {}), 'key')
  }
  throwsNaming(() => nw.announce(KEY, 'x'), 'options')
  throwsNaming(() => nw.announce(KEY, { port: 'x' }), 'port')
  throwsNaming(() => nw.lookupOne(KEY, 'x'), 'callback')
  const topic = nw.lookup(KEY)
  throwsNaming(() => topic.flush('x'), 'callback')
  topic.destroy()
  await new Promise(resolve => nw.close(resolve))
  const err = await new Promise(resolve => nw.bind(resolve))
  assert.match(err.message, /Resource is closed/)
})

test('hyperswarm entry (hyperswarm 2.15.3 API)', async () => {
  throwsNaming(() => hyperswarm('x'), 'options')
  throwsNaming(() => hyperswarm({ maxPeers: 'many' }), 'maxPeers')
  throwsNaming(() => hyperswarm({ maxClientSockets: {} }), 'maxClientSockets')
  throwsNaming(() => hyperswarm({ maxServerSockets: '1' }), 'maxServerSockets')
  throwsNaming(() => hyperswarm({ validatePeer: true }), 'validatePeer')
  throwsNaming(() => hyperswarm({ queue: 3 }), 'queue')
  throwsNaming(() => hyperswarm({ queue: { requeue: 'fast' } }), 'requeue')
  throwsNaming(() => hyperswarm({ bootstrap: 'host:1' }), 'bootstrap')
  const swarm = hyperswarm(OPTS)
  for (const k of badKeys) {
    throwsNaming(() => swarm.join(k), 'key')
    throwsNaming(() => swarm.leave(k), 'key')
    throwsNaming(() => swarm.status(k), 'key')
  }
  throwsNaming(() => swarm.join(KEY, 'x'), 'options')
  throwsNaming(() => swarm.join(KEY, {}, 'x'), 'callback')
  throwsNaming(() => swarm.leave(KEY, 'x'), 'callback')
  throwsNaming(() => swarm.connect('x', () => {}), 'peer')
  throwsNaming(() => swarm.connect({ host: 'h', port: 1 }, 5), 'callback')
  throwsNaming(() => swarm.connectivity('x'), 'callback')
  throwsNaming(() => swarm.flush(), 'callback')
  throwsNaming(() => swarm.listen('x'), 'preferredPort')
  throwsNaming(() => swarm.destroy(5), 'callback')
  assert.throws(() => swarm.join(KEY, { announce: false, lookup: false }), /lookup, announce or both/)
  await new Promise(resolve => swarm.destroy(resolve))
  assert.throws(() => swarm.join(KEY), /swarm has been destroyed/)
  assert.throws(() => swarm.address(), /swarm has been destroyed/)
})

test('hyperswarm PeerInfo.deduplicate checks its ids', () => {
  const { PeerInfo } = require('../lib/hyperswarm/peer-info')
  const { PeerQueue } = require('../lib/hyperswarm/peer-queue')
  const q = new PeerQueue()
  const info = new PeerInfo({ host: '10.0.0.1', port: 1, local: false }, q)
  throwsNaming(() => info.deduplicate('me', Buffer.alloc(32)), 'localId')
  throwsNaming(() => info.deduplicate(Buffer.alloc(32, 1), 7), 'remoteId')
  q.destroy()
})
