'use strict'
// Capability exchange (README, "Capability exchange") through a DHT of the
// reference (@hyperswarm/dht 4.0.1 relays): two of ours that hole-punch
// learn each other's NAT class; a dial from ours to a reference peer over
// punched uTP works as before and its details carry no peerNatType.
// Loopback, inside the namespace `npm test` makes.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const path = require('path')
const { fork } = require('child_process')
const { testnet } = require('./conformance/testnet')
const { surfaces } = require('./conformance/impls')

const NAT_TYPES = ['open', 'consistent', 'random', 'unknown']

function within (ms, what, promise) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('timed out: ' + what)), ms) })
  ]).finally(() => clearTimeout(timer))
}

const once = (emitter, name, where = () => true) => new Promise(resolve => {
  const on = (...args) => {
    if (!where(...args)) return
    emitter.removeListener(name, on)
    resolve(args)
  }
  emitter.on(name, on)
})

// The announcer: ours (the seed's API) in this process, or hyperswarm
// 2.15.3 (the reference) in a child process the test kills at the end.
async function announcer (t, which, bootstrap, topic) {
  if (which === 'ours') {
    const b = surfaces.seed.ours()({ bootstrap })
    const sockets = []
    b.on('connection', socket => { sockets.push(socket); socket.on('error', () => {}) })
    t.after(async () => {
      for (const s of sockets) s.destroy()
      await within(5000, 'destroy B', new Promise(resolve => b.destroy(resolve)))
    })
    const accepted = once(b, 'connection')
    b.join(topic, { announce: true, lookup: false })
    await within(15000, 'announce', once(b, 'update'))
    return { b, accepted }
  }
  const child = fork(path.join(__dirname, 'helpers', 'reference-announcer.js'), [JSON.stringify(bootstrap), topic.toString('hex')])
  t.after(() => child.kill('SIGKILL'))
  const message = type => once(child, 'message', m => m.type === type)
  const accepted = message('connection')
  await within(15000, 'announce', message('joined'))
  return { b: null, accepted }
}

async function dialOverUtp (t, which) {
  const net = await testnet(3)
  t.after(() => net.destroy())
  const topic = crypto.randomBytes(32)
  const { b, accepted } = await announcer(t, which, net.bootstrap, topic)
  // TCP off at the dialler: the only path is a punch through the referrer.
  const a = surfaces.seed.ours()({ bootstrap: net.bootstrap, tcp: false })
  const sockets = []
  t.after(async () => {
    for (const s of sockets) s.destroy()
    await within(5000, 'destroy A', new Promise(resolve => a.destroy(resolve)))
  })
  const connected = once(a, 'connection')
  a.join(topic, { announce: false, lookup: true })
  const [socket, details] = await within(15000, 'a punched connection', connected)
  sockets.push(socket)
  socket.on('error', () => {})
  // The dialler speaks first (uTP: the acceptor cannot send before).
  socket.write('hello')
  await within(5000, 'the announcer\'s connection', accepted)
  return { a, b, socket, details }
}

test('two of ours punched through reference relays: the dialler learns the peer\'s NAT class', async (t) => {
  const { a, b, details } = await dialOverUtp(t, 'ours')
  assert.strictEqual(details.type, 'utp')
  assert.strictEqual(details.client, true)
  assert.ok(NAT_TYPES.includes(details.peerNatType), `peerNatType: ${details.peerNatType}`)
  assert.ok(a.stats().peersOursSeen >= 1)
  assert.ok(a.stats().dhtCapabilitiesLearned >= 1)
  // The announcer learned the dialler's record from the relayed punch.
  await within(5000, 'B counts the record', (async () => {
    while (b.stats().dhtCapabilitiesLearned < 1) await new Promise(resolve => setTimeout(resolve, 20))
  })())
})

test('ours punched to a reference peer (hyperswarm 2.15.3): uTP as before, no peerNatType', async (t) => {
  const { a, socket, details } = await dialOverUtp(t, 'reference')
  const [echo] = await within(5000, 'the echo', once(socket, 'data'))
  assert.strictEqual(String(echo), 'hello')
  assert.deepStrictEqual(Object.keys(details).sort(), ['client', 'peer', 'type'])
  assert.strictEqual(details.type, 'utp')
  assert.strictEqual(a.stats().peersOursSeen, 0)
  assert.strictEqual(a.stats().dhtCapabilitiesMalformed, 0)
})
