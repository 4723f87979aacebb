'use strict'
// The TCP gate seen from JS (src/io/tcp_gate.rs): the ./hyperswarm entry
// stops TCP while maxServerSockets is full and starts it again when there is
// room. If another socket took the port in between, starting again fails:
// that must be a process warning, with TCP left off, never an exception
// thrown out of a socket's 'close' handler. Loopback only.
const test = require('node:test')
const assert = require('node:assert')
const net = require('net')
const path = require('path')
const { once } = require('events')
const { assertLoopbackOnly } = require('./upstream/run')

const hyperswarm = require(path.join(__dirname, '..', 'hyperswarm.js'))

function dial (port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve('connected') })
    s.once('error', (err) => resolve(err.code))
  })
}

async function waitFor (what, cond, ms) {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('a port taken while TCP is stopped: a warning, TCP stays off, the swarm goes on', async () => {
  assertLoopbackOnly()
  const swarm = hyperswarm({ bootstrap: [], maxServerSockets: 1, multicast: false })
  const warnings = []
  const codes = []
  const onwarning = (w) => { if (w.name === 'HyperswarmNativeWarning') { warnings.push(w.message); codes.push(w.code) } }
  process.on('warning', onwarning)
  const open = []
  try {
    await new Promise((resolve, reject) => swarm.listen(0, (err) => err ? reject(err) : resolve()))
    const { port } = swarm.address()
    const first = net.connect(port, '127.0.0.1')
    open.push(first)
    first.on('error', () => {})
    await once(swarm, 'connection')
    assert.strictEqual(await dial(port), 'ECONNREFUSED', 'full: refused at the SYN')

    // Someone else takes the port (Node sets SO_REUSEADDR, as ours does,
    // and ours is not listening now).
    const other = net.createServer((s) => s.destroy())
    open.push(other)
    await new Promise((resolve, reject) => { other.once('error', reject); other.listen(port, resolve) })

    // Room again: ours cannot listen on the port any more.
    first.destroy()
    await waitFor('the warning', () => warnings.length > 0, 5000)
    assert.match(warnings[0], /^TCP listener: cannot start listening on TCP: .*in use/i)
    assert.strictEqual(codes[0], 'EADDRINUSE', 'the OS error, by name')
    assert.strictEqual(swarm.serverSockets, 0)
    assert.strictEqual(warnings.length, 1)
  } finally {
    process.removeListener('warning', onwarning)
    for (const o of open) o.destroy ? o.destroy() : o.close()
    await new Promise((resolve) => swarm.destroy(resolve))
  }
})
