'use strict'
// The Rust crate's examples/echo.rs against the real hyperswarm 2.15.3:
// both join one topic (announce and look up) on a reference DHT testnet
// (@hyperswarm/dht 4.0.1 over dht-rpc 4.9.6), find each other, connect,
// and the reference peer gets its own bytes back. Then SIGTERM ends the
// example with status 0.
//
// The binary is built by `npm test`'s cargo step (helpers/bins.js);
// ECHO_EXAMPLE_BIN points at another build.
require('./helpers/silence-mdns')
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const { spawn } = require('child_process')
const { assertIsolated } = require('./helpers/netns')
const { example } = require('./helpers/bins')
const { testnet } = require('./conformance/testnet')
const { within } = require('./conformance/wait')
const hyperswarm = require('hyperswarm')

assertIsolated()
const BIN = example('echo', 'ECHO_EXAMPLE_BIN')
const SIZE = 256 * 1024

function startEcho (args) {
  const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const r = { proc, stderr: '' }
  proc.stderr.on('data', d => { r.stderr += d })
  proc.on('error', () => {})
  r.exited = new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
  return r
}

test('the echo example and hyperswarm 2.15.3 meet on a reference DHT, and the reference peer gets its bytes back', async () => {
  const net = await testnet(3)
  const topic = crypto.randomBytes(32)
  const echo = startEcho(['--topic', topic.toString('hex'), '--no-multicast', ...net.bootstrap.flatMap(b => ['--bootstrap', b])])
  const swarm = hyperswarm({ bootstrap: net.bootstrap })
  try {
    const sent = crypto.randomBytes(SIZE)
    const echoed = new Promise((resolve, reject) => {
      let first = true
      swarm.on('connection', socket => {
        socket.on('error', () => {})
        if (!first) return
        first = false
        const chunks = []
        let got = 0
        socket.on('data', d => {
          chunks.push(d)
          got += d.length
          if (got >= SIZE) resolve(Buffer.concat(chunks))
        })
        socket.on('close', () => reject(new Error(`closed after ${got} of ${SIZE} bytes`)))
        socket.write(sent)
      })
      echo.exited.then(({ code, signal }) => reject(new Error(`echo exited (${code}, ${signal}) early; stderr: ${echo.stderr}`)))
    })
    swarm.join(topic, { announce: true, lookup: true })
    const back = await within(echoed, `the echo (stderr so far: ${echo.stderr})`, 30000)
    assert.strictEqual(back.length, SIZE)
    assert.ok(back.equals(sent), 'the same bytes, in order')
    assert.match(echo.stderr, /^connection 1: (dialled|accepted) (Tcp|Utp) 127\.0\.0\.1:\d+$/m, 'one line per connection on stderr')

    echo.proc.kill('SIGTERM')
    const { code, signal } = await within(echo.exited, 'the example to exit after SIGTERM', 10000)
    assert.deepStrictEqual({ code, signal }, { code: 0, signal: null }, `stderr: ${echo.stderr}`)
  } finally {
    echo.proc.kill('SIGKILL')
    await new Promise(resolve => swarm.destroy(resolve))
    net.destroy()
  }
})
