'use strict'
// Our ./hyperswarm entry and the real hyperswarm 2.15.3 in one swarm: they
// find each other through a reference DHT testnet, connect, and agree on
// which duplicate to drop (both run deduplicate's rule on their own).
require('./helpers/silence-mdns')
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const { assertIsolated } = require('./helpers/netns')
const { testnet } = require('./conformance/testnet')
const { within, sleep } = require('./conformance/wait')
const { exchangeIds } = require('./helpers/dedup')
const reference = require('hyperswarm')
const ours = require('../hyperswarm')

assertIsolated()

const until = (check, what, ms = 15000) => within(new Promise(resolve => {
  const poll = () => check() ? resolve() : setTimeout(poll, 50)
  poll()
}), what, ms)

for (const [first, second] of [['ours', 'reference'], ['reference', 'ours']]) {
  test(`${first} joins first, ${second} second: both announce and look up; one connection survives dedup on both`, async () => {
    const net = await testnet(3)
    const make = { ours: opts => ours({ multicast: false, ...opts }), reference: opts => reference(opts) }
    const a = make[first]({ bootstrap: net.bootstrap })
    const b = make[second]({ bootstrap: net.bootstrap })
    try {
      const topic = crypto.randomBytes(32)
      const ta = exchangeIds(a, crypto.randomBytes(32))
      const tb = exchangeIds(b, crypto.randomBytes(32))
      await within(new Promise(resolve => a.join(topic, { announce: true, lookup: true }, resolve)), 'first join')
      await within(new Promise(resolve => b.join(topic, { announce: true, lookup: true }, resolve)), 'second join')
      // The second found the first; joining again makes the first look
      // again and dial too, so both sides briefly hold two connections.
      a.join(topic, { announce: true, lookup: true })
      await until(() => ta.dropped.length + tb.dropped.length >= 2, 'both sides to drop a duplicate')
      await until(() => ta.live.size === 1 && tb.live.size === 1, 'one live connection on each side')
      await sleep(2000)
      assert.strictEqual(ta.live.size, 1, `${first} keeps one`)
      assert.strictEqual(tb.live.size, 1, `${second} keeps one`)
      const [sa] = ta.live
      const [sb] = tb.live
      const got = within(new Promise(resolve => sb.on('payload', d => { if (String(d) === 'ping') resolve() })), 'data over the survivor')
      sa.write('ping')
      await got
    } finally {
      await Promise.all([a, b].map(s => new Promise(resolve => s.destroy(resolve))))
      net.destroy()
    }
  })
}
