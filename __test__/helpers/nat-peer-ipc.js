'use strict'
// Talking to a nat-peer.js child (a lab.spawn handle): a command and the
// answer it causes, a join and its first DHT round, a counter poll.

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Sends `cmd` to peer `p` and waits for the next message of `type`. */
async function ask (p, cmd, type, ms = 5000) {
  const n = p.messages.filter(m => m.type === type).length
  p.send({ cmd })
  return p.wait(m => m.type === type && p.messages.filter(x => x.type === type).indexOf(m) >= n, ms, type)
}

/** Joins topic `t` (hex) and waits for that join's first 'flushed'. */
async function joined (p, t) {
  const n = p.messages.filter(m => m.type === 'flushed').length
  p.send({ cmd: 'join', topic: t })
  return p.wait(m => m.type === 'flushed' && p.messages.filter(x => x.type === 'flushed').indexOf(m) >= n, 15000, 'flushed')
}

/** Polls `stats` until `pred(stats message)` holds or `ms` pass; returns the last. */
async function until (p, pred, ms) {
  const deadline = Date.now() + ms
  let last
  for (let i = 0; i < 200; i++) {
    last = await ask(p, 'stats', 'stats')
    if (pred(last) || Date.now() > deadline) return last
    await sleep(250)
  }
  return last
}

/** Polls `address` (every 250 ms, at most 60 times) until the peer's
 * NAT class is `want`; returns the last class seen. */
async function natTypeBecomes (p, want) {
  let nat
  for (let k = 0; k < 60 && nat !== want; k++) {
    nat = (await ask(p, 'address', 'address')).natType
    if (nat !== want) await sleep(250)
  }
  return nat
}

module.exports = { ask, joined, until, natTypeBecomes }
