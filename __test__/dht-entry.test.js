'use strict'
// The ./dht entry's own bounds and misuse handling (what the conformance
// suite cannot compare with the reference): events caused by remote
// requests are bounded while JS is busy, a node's first requests leave
// while it opens, bad arguments throw errors that name the problem, and
// nothing works after destroy. Loopback only, inside the namespace `npm
// test` makes.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const dgram = require('dgram')
const { spawnSync } = require('child_process')
const { assertIsolated } = require('./helpers/netns')

assertIsolated()

const ROOT = path.join(__dirname, '..')
const dht = require(path.join(ROOT, 'dht.js'))

/** MAX_PENDING_UNSOLICITED in src/binding/dht.rs. */
const MAX_PENDING = 1024

function listening (node) {
  return new Promise((resolve) => node.listen(0, '127.0.0.1', resolve))
}

const until = async (fn, ms, what) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`)
}

// A child process that sends `count` `peers` QUERYs to `port`, from two
// loopback sources (each under the per-IP request burst), paced so that
// the socket buffer keeps up. spawnSync blocks this process's JS thread
// for as long as the child runs: the node's events pile up meanwhile.
function flood (port, count) {
  const script = `
    const dgram = require('dgram')
    const crypto = require('crypto')
    const { Message, TYPE } = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'dht-rpc', 'lib', 'messages'))})
    const [port, count] = process.argv.slice(1).map(Number)
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
    ;(async () => {
      const socks = await Promise.all(['127.0.0.21', '127.0.0.22'].map((h) => new Promise((resolve) => {
        const s = dgram.createSocket('udp4'); s.bind(0, h, () => resolve(s))
      })))
      for (let i = 0; i < count; i++) {
        const buf = Message.encode({ version: 1, type: TYPE.QUERY, rid: i & 0xffff, command: 'peers', target: crypto.randomBytes(32) })
        await new Promise((resolve) => socks[i % 2].send(buf, port, '127.0.0.1', resolve))
        if ((i & 31) === 31) await sleep(1)
      }
      await sleep(300)
      for (const s of socks) s.close()
    })()`
  const res = spawnSync(process.execPath, ['-e', script, String(port), String(count)], { timeout: 30000, encoding: 'utf8' })
  assert.strictEqual(res.status, 0, `the flooder failed: ${res.stderr}`)
}

test('events caused by remote requests are bounded while JS is busy: the rest are dropped and counted, and the node goes on', async (t) => {
  const node = dht({ bootstrap: [], ephemeral: false })
  t.after(() => node.destroy())
  await listening(node)
  const port = node.address().port
  let lookups = 0
  node.on('lookup', () => lookups++)

  // Control: under the bound (400 requests while JS is blocked) every
  // request becomes an event.
  const before = lookups
  flood(port, 400)
  await until(() => lookups - before >= 400, 5000, '400 lookup events')
  assert.strictEqual(node.stats().eventsDropped, 0, 'none dropped under the bound')

  // 3000 requests while the JS thread is blocked by spawnSync.
  const start = lookups
  flood(port, 3000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const delivered = lookups - start
  const dropped = node.stats().eventsDropped
  console.log(`# 3000 lookups while JS was blocked: ${delivered} events delivered, ${dropped} dropped and counted`)
  assert.ok(delivered <= MAX_PENDING, `at most ${MAX_PENDING} waited for JS (${delivered})`)
  assert.ok(dropped > 0, 'the rest were dropped and counted')
  assert.ok(delivered + dropped >= 2500, `nearly all requests reached the node (${delivered + dropped})`)

  // The node goes on: it answers, and events flow again.
  const control = dht({ bootstrap: [], ephemeral: true })
  t.after(() => control.destroy())
  await listening(control)
  const pong = await new Promise((resolve, reject) => control.ping({ host: '127.0.0.1', port }, (err, p) => err ? reject(err) : resolve(p)))
  assert.strictEqual(pong.host, '127.0.0.1')
  const after = lookups
  control.addNodes([{ id: node.id, host: '127.0.0.1', port }])
  await new Promise((resolve) => control.lookup(Buffer.alloc(32, 2), () => resolve()))
  await until(() => lookups > after, 3000, 'a lookup event after the flood')
})

// dht-rpc has sent a node's first bootstrap request before the JS that
// opened the node can run anything else; upstream 'announce event' depends
// on it (a node made beside the announcer must be known to the bootstrap
// node before the announce reaches it). A stand-in bootstrap socket sees
// what comes first: the requests of nodes opened together, or a datagram
// JS sends once they have opened (on the next tick or the next immediate).
// Before the fix each node's task sent its request whenever a runtime
// thread got to it, and JS often came first.
test('nodes have sent their first bootstrap requests before any JS after their opening runs', async (t) => {
  const ROUNDS = 40
  const NODES = 8
  const bind = () => new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    s.bind(0, '127.0.0.1', () => resolve(s))
  })
  const stand = await bind()
  const js = await bind()
  t.after(() => { stand.close(); js.close() })
  const port = stand.address().port
  // Connected, so that send() leaves at once (no address lookup tick).
  await new Promise((resolve) => js.connect(port, '127.0.0.1', resolve))
  const late = []
  for (let i = 0; i < ROUNDS; i++) {
    let nodes = []
    const before = new Promise((resolve) => {
      const heard = new Set()
      const on = (msg, from) => {
        if (from.port === js.address().port) {
          stand.off('message', on)
          resolve(heard.size)
        } else if (nodes.some((n) => n.address().port === from.port)) {
          heard.add(from.port)
        }
      }
      stand.on('message', on)
    })
    nodes = Array.from({ length: NODES }, () => dht({ bootstrap: [`127.0.0.1:${port}`], ephemeral: false }))
    // They open on the next tick, as dht-rpc's do; this runs after that.
    const send = () => js.send(Buffer.from('js'))
    if (i % 2) process.nextTick(send)
    else setImmediate(send)
    const n = await before
    if (n !== NODES) late.push(`${i} (${n} of ${NODES})`)
    for (const node of nodes) node.destroy()
  }
  assert.deepStrictEqual(late, [], `JS's datagram came before some nodes' first requests in rounds ${late.join(', ')} of ${ROUNDS}`)
})

test('bad arguments throw errors that name the problem, and nothing runs after destroy', async (t) => {
  const node = dht({ bootstrap: [], ephemeral: true })
  await listening(node)
  const throwsNaming = (fn, words) => assert.throws(fn, (err) => err instanceof Error && words.every((w) => err.message.includes(w)), words.join(' '))
  throwsNaming(() => dht({ bootstrap: 'x' }), ['bootstrap'])
  throwsNaming(() => dht({ bootstrap: ['nohost'] }), ['bootstrap', 'nohost'])
  throwsNaming(() => dht({ id: Buffer.alloc(3) }), ['id', '32'])
  throwsNaming(() => dht({ socket: {} }), ['socket'])
  throwsNaming(() => dht({ adaptive: true }), ['adaptive', 'ephemeral'])
  throwsNaming(() => node.lookup(Buffer.alloc(31)), ['topic'])
  throwsNaming(() => node.announce(Buffer.alloc(32), { port: 70000 }), ['port'])
  throwsNaming(() => node.lookup(Buffer.alloc(32), { localAddress: { host: 'x', port: 1 } }), ['localAddress'])
  throwsNaming(() => node.ping({ host: '127.0.0.1' }, () => {}), ['peer.port'])
  throwsNaming(() => node.holepunch({ host: '127.0.0.1', port: 1 }, () => {}), ['referrer'])
  throwsNaming(() => node.immutable.get('key', () => {}), ['Key must be a buffer'])
  throwsNaming(() => node.immutable.get(Buffer.alloc(31), () => {}), ['key', '32'])
  throwsNaming(() => node.immutable.put(Buffer.alloc(1001), () => {}), ['Value size must be <= 1000'])
  throwsNaming(() => node.immutable.put(Buffer.alloc(1)), ['Callback is required'])
  const keypair = node.mutable.keypair()
  throwsNaming(() => node.mutable.put(Buffer.alloc(1), { keypair, seq: 1.5 }, () => {}), ['seq'])
  throwsNaming(() => node.mutable.put(Buffer.alloc(1), { keypair, seq: 2 ** 53 }, () => {}), ['seq'])
  throwsNaming(() => node.mutable.put(Buffer.alloc(1), { keypair: { publicKey: keypair.publicKey, secretKey: Buffer.alloc(10) } }, () => {}), ['secretKey', '64'])
  throwsNaming(() => node.mutable.get(Buffer.alloc(32), { salt: Buffer.alloc(65) }, () => {}), ['salt size must be no greater than 64 bytes'])
  throwsNaming(() => node.mutable.salt('x', 8), ['salt size must be between 16 and 64'])
  throwsNaming(() => node.listen(0), ['already bound'])

  // A signature that does not verify fails the put before anything is sent.
  const err = await new Promise((resolve) => node.mutable.put(Buffer.from('v'), { keypair: { publicKey: keypair.publicKey }, signature: Buffer.alloc(64, 1) }, resolve))
  assert.ok(err instanceof Error && /signature does not verify/.test(err.message), String(err))

  const closed = new Promise((resolve) => node.once('close', resolve))
  node.destroy()
  await closed
  assert.strictEqual(node.destroyed, true)
  throwsNaming(() => node.address(), ['Not running'])
  throwsNaming(() => node.listen(0), ['destroyed'])
  assert.deepStrictEqual(node.getNodes(), [])
  const after = await new Promise((resolve) => node.lookup(Buffer.alloc(32), (e) => resolve(e)))
  assert.ok(after instanceof Error && /destroyed/.test(after.message), String(after))
})
