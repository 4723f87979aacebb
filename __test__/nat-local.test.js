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

// Counters in the shared router: SYNs from either home to the router's own
// public address (a dial at the other home's public address, which is where
// the DHT saw it), and RSTs the router sends back into the homes (that dial
// refused: no hairpin NAT). The proof that the peers tried.
function hairpinCounters (lab, publicIp) {
  const rules = [
    'table ip hairpin {',
    '  counter syns { }',
    '  counter refused { }',
    '  chain toself {',
    '    type filter hook input priority -10; policy accept;',
    `    iifname "lan*" ip daddr ${publicIp} tcp flags & (syn | ack) == syn counter name syns`,
    '  }',
    '  chain back {',
    '    type filter hook output priority 0; policy accept;',
    '    oifname "lan*" tcp flags & rst == rst counter name refused',
    '  }',
    '}',
    ''
  ].join('\n')
  lab.execAt('router0', ['nft', '-f', '-'], { input: rules })
  const read = name => JSON.parse(lab.execAt('router0', ['nft', '-j', 'list', 'counter', 'ip', 'hairpin', name]))
    .nftables.find(e => e.counter).counter.packets
  return { syns: () => read('syns'), refused: () => read('refused') }
}

async function pair (impls, announceLocalAddress) {
  const lab = await NatLab.create({ peers: ['cone', 'same-nat'] })
  try {
    const counters = announceLocalAddress ? null : hairpinCounters(lab, lab.peers[0].publicIp)
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
    if (announceLocalAddress) {
      const got = await peers[1].wait('received', 15000)
      const peer = peers[1].messages.find(m => m.type === 'peer' && m.local)
      return { got, localPeer: peer, peers }
    }
    // The looker found the other home, at the shared public address …
    const found = await peers[1].wait(m => m.type === 'peer' && m.host === lab.peers[0].publicIp, 15000, 'the other home at the public address')
    // … dialled it there, and was refused by the router.
    const deadline = Date.now() + 15000
    while (!(counters.syns() >= 1 && counters.refused() >= counters.syns())) {
      if (Date.now() > deadline) throw new Error(`no refused dial: SYNs ${counters.syns()}, RSTs ${counters.refused()}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    return {
      found,
      syns: counters.syns(),
      connections: peers.flatMap(p => p.messages.filter(m => m.type === 'connection' || m.type === 'received')),
      peers
    }
  } finally {
    await lab.destroy()
  }
}

for (const [a, b] of [['hyperswarm', 'hyperswarm'], ['ours-hyperswarm', 'ours-hyperswarm'], ['hyperswarm', 'ours-hyperswarm'], ['ours-hyperswarm', 'hyperswarm']]) {
  test(`${a === 'hyperswarm' && b === 'hyperswarm' ? 'reference: ' : ''}announceLocalAddress: ${a} and ${b} behind one NAT find each other as local peers and connect`, async () => {
    const { got, localPeer } = await pair([a, b], true)
    assert.strictEqual(got.from, 'p0')
    assert.ok(localPeer, 'the DHT returned the other home as a local peer')
    assert.match(localPeer.host, /^10\./, 'at its LAN address')
  })
}

test('without announceLocalAddress the same two homes find but cannot reach each other (ours and the reference alike)', async () => {
  for (const impl of ['hyperswarm', 'ours-hyperswarm']) {
    const { found, syns, connections } = await pair([impl, impl], false)
    assert.strictEqual(found.local, false, `${impl}: found through the DHT at the public address`)
    assert.ok(syns >= 1, `${impl}: a dial was attempted`)
    assert.deepStrictEqual(connections, [], `${impl}: no connection without the LAN address`)
  }
})
