'use strict'
// What the upstream test "maxServerSockets is actually a soft limit" checks,
// without its function replacements (which cannot reach our engine, see
// upstream/expect.js): maxServerSockets applies to TCP and uTP separately.
// A reference uTP client (utp-native) and plain TCP clients dial one swarm
// with maxServerSockets: 1; the reference and ours must agree on the counts
// (and differ, as documented, in how a TCP dialer over the limit is turned
// away).
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
      const next = (what) => within(WAIT, `a connection (${what})`, new Promise((resolve) => swarm.once('connection', resolve)))

      // One TCP client: taken.
      const tcp1 = net.connect(port, '127.0.0.1')
      sockets.push(tcp1)
      tcp1.on('error', () => {})
      await next('tcp1')
      assert.strictEqual(swarm.serverSockets, 1)

      // One uTP client: taken as well, although the limit is 1.
      const u = utp()
      const utp1 = u.connect(port, '127.0.0.1')
      sockets.push(utp1, u)
      utp1.on('error', () => {})
      utp1.write('hi') // uTP connects on the first packet with data
      await next('utp1')
      assert.strictEqual(swarm.serverSockets, 2)
      assert.deepStrictEqual(connections.sort(), ['tcp', 'utp'])

      // A second TCP client: over TCP's limit. The reference's full server
      // accepts and closes at once (the client sees a connection end); ours
      // refuses at the SYN (the client sees ECONNREFUSED, and a hyperswarm
      // dialer goes on to its punch and uTP at once).
      const tcp2 = net.connect(port, '127.0.0.1')
      sockets.push(tcp2)
      let connected = false
      let error = null
      tcp2.on('connect', () => { connected = true })
      tcp2.on('error', (err) => { error = err })
      await within(WAIT, 'the refused socket to close', new Promise((resolve) => tcp2.once('close', resolve)))
      assert.strictEqual(swarm.serverSockets, 2)
      assert.strictEqual(connections.length, 2)
      if (impl === 'ours') {
        assert.strictEqual(connected, false, 'refused before connecting')
        assert.strictEqual(error && error.code, 'ECONNREFUSED')
      } else {
        assert.strictEqual(connected, true, 'the reference accepts, then closes')
      }

      // Room again on TCP (the first client leaves): a new TCP client is taken.
      tcp1.destroy()
      await within(WAIT, 'the first client to be gone', new Promise((resolve) => {
        const check = () => swarm.serverSockets === 1 ? resolve() : setTimeout(check, 10)
        check()
      }))
      const tcp3 = net.connect(port, '127.0.0.1')
      sockets.push(tcp3)
      tcp3.on('error', () => {})
      await next('tcp3')
      assert.strictEqual(swarm.serverSockets, 2)
      assert.deepStrictEqual(connections.sort(), ['tcp', 'tcp', 'utp'])
    } finally {
      for (const s of sockets) s.destroy ? s.destroy() : s.close()
      await new Promise((resolve) => swarm.destroy(resolve))
    }
  })
}
