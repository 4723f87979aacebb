'use strict'
// Two homes behind one NAT router with no hairpin NAT: each peer can reach
// the other only at its LAN address. With `announceLocalAddress` (network
// 2.x / hyperswarm 2.x), DHT nodes hand each back to the other as a local
// peer and they connect; without it they cannot. The reference is run the
// same way, in the same lab, to show the lab is fair.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const crypto = require('crypto')
const { assertIsolated } = require('./helpers/netns')
const { NatLab } = require('./helpers/natlab')

assertIsolated()
const PEER = path.join(__dirname, 'helpers', 'nat-peer.js')

async function pair (impls, announceLocalAddress, settleMs) {
  const lab = await NatLab.create({ peers: ['cone', 'same-nat'] })
  try {
    const topic = crypto.randomBytes(32).toString('hex')
    const peers = impls.map((impl, i) => lab.spawn(i, PEER, [impl, JSON.stringify({
      name: 'p' + i,
      swarm: { bootstrap: [lab.bootstrap], announceLocalAddress }
    })], { timeoutMs: 60000 }))
    await Promise.all(peers.map(p => p.wait('ready', 10000)))
    peers[0].send({ cmd: 'join', topic })
    await peers[0].wait('flushed', 15000)
    peers[1].send({ cmd: 'join', topic })
    await peers[1].wait('flushed', 15000)
    if (!settleMs) {
      const got = await peers[1].wait('received', 15000)
      const peer = peers[1].messages.find(m => m.type === 'peer' && m.local)
      return { got, localPeer: peer, peers }
    }
    await new Promise(resolve => setTimeout(resolve, settleMs))
    return { received: peers.flatMap(p => p.messages.filter(m => m.type === 'received')), peers }
  } finally {
    await lab.destroy()
  }
}

for (const [a, b] of [['hyperswarm', 'hyperswarm'], ['ours-hyperswarm', 'ours-hyperswarm'], ['hyperswarm', 'ours-hyperswarm'], ['ours-hyperswarm', 'hyperswarm']]) {
  test(`announceLocalAddress: ${a} and ${b} behind one NAT find each other as local peers and connect`, async () => {
    const { got, localPeer } = await pair([a, b], true)
    assert.strictEqual(got.from, 'p0')
    assert.ok(localPeer, 'the DHT returned the other home as a local peer')
    assert.match(localPeer.host, /^10\./, 'at its LAN address')
  })
}

test('without announceLocalAddress the same two homes do not connect (ours and the reference alike)', async () => {
  for (const impl of ['hyperswarm', 'ours-hyperswarm']) {
    const { received } = await pair([impl, impl], false, 4000)
    assert.deepStrictEqual(received, [], `${impl}: no connection without the LAN address`)
  }
})
