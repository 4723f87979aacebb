'use strict'
// What the upstream test "maxServerSockets is actually a soft limit" checks,
// without its function replacements (which cannot reach our engine, see
// upstream/expect.js): maxServerSockets applies to TCP and uTP separately.
// A reference uTP client (utp-native) and plain TCP clients dial one swarm
// with maxServerSockets: 1; the reference and ours must agree.
const test = require('node:test')
const assert = require('node:assert')
const net = require('net')
const path = require('path')
const utp = require('utp-native')
const { assertLoopbackOnly } = require('./upstream/run')

const IMPLS = {
  reference: () => require('hyperswarm'),
  ours: () => require(path.join(__dirname, '..', 'hyperswarm.js'))
}

const WAIT = 5000

function within (ms, what, promise) {
  let timer
  const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms) })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

for (const impl of ['reference', 'ours']) {
  const name = impl === 'reference' ? 'reference: maxServerSockets is a limit per transport' : 'maxServerSockets is a limit per transport on ours'
  test(name, async () => {
    assertLoopbackOnly()
    const hyperswarm = IMPLS[impl]()
    const swarm = hyperswarm({ bootstrap: [], maxServerSockets: 1, multicast: impl === 'ours' ? false : undefined })
    const sockets = []
    try {
      await within(WAIT, 'listening', new Promise((resolve, reject) => swarm.listen(0, (err) => err ? reject(err) : resolve())))
      const { port } = swarm.address()
      const connections = []
      swarm.on('connection', (socket, info) => connections.push(info.type))
      const next = () => within(WAIT, 'a connection', new Promise((resolve) => swarm.once('connection', resolve)))

      // One TCP client: taken.
      const tcp1 = net.connect(port, '127.0.0.1')
      sockets.push(tcp1)
      tcp1.on('error', () => {})
      await next()
      assert.strictEqual(swarm.serverSockets, 1)

      // One uTP client: taken as well, although the limit is 1.
      const u = utp()
      const utp1 = u.connect(port, '127.0.0.1')
      sockets.push(utp1, u)
      utp1.on('error', () => {})
      utp1.write('hi') // uTP connects on the first packet with data
      await next()
      assert.strictEqual(swarm.serverSockets, 2)
      assert.deepStrictEqual(connections.sort(), ['tcp', 'utp'])

      // A second TCP client: over TCP's limit, closed by the server at once.
      const tcp2 = net.connect(port, '127.0.0.1')
      sockets.push(tcp2)
      tcp2.on('error', () => {})
      await within(WAIT, 'the refused socket to close', new Promise((resolve) => tcp2.once('close', resolve)))
      assert.strictEqual(swarm.serverSockets, 2)
      assert.strictEqual(connections.length, 2)
    } finally {
      for (const s of sockets) s.destroy ? s.destroy() : s.close()
      await new Promise((resolve) => swarm.destroy(resolve))
    }
  })
}
