'use strict'
// Process lifetime: an unused or unbound swarm does not hold the process
// open (an unlistening net.Server does not either), a bound one does until
// it is closed.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { Lab, assertIsolated } = require('./helpers/netns')

assertIsolated()
const HELPER = path.join(__dirname, 'helpers', 'exit-when-idle.js')

async function run (lab, which) {
  const started = Date.now()
  const child = lab.spawn(0, HELPER, [which], { timeoutMs: 30000 })
  const { code } = await child.exited
  return { code, ms: Date.now() - started, messages: child.messages, stderr: child.stderr }
}

test('unused hyperswarm and network instances, and a connect-only network, let the process exit', async () => {
  const lab = Lab.loopback()
  try {
    for (const which of ['hyperswarm-unused', 'network-unused', 'network-connect']) {
      const r = await run(lab, which)
      assert.strictEqual(r.code, 0, `${which}: exit code ${r.code} ${r.stderr}`)
      assert.ok(r.ms < 5000, `${which} took ${r.ms} ms to exit`)
      if (which === 'network-connect') assert.deepStrictEqual(r.messages.filter(m => m.type === 'data').map(m => m.data), ['hi'])
      assert.strictEqual(r.messages[r.messages.length - 1].type, 'drained', `${which}: exited because its loop ran dry`)
    }
  } finally {
    await lab.destroy()
  }
})

test('a bound network keeps the process alive until close, then lets it exit', async () => {
  const lab = Lab.loopback()
  try {
    const child = lab.spawn(0, HELPER, ['network-bound'], { timeoutMs: 30000 })
    await child.wait('bound', 10000)
    // A round trip over IPC (which does not hold the process either): the
    // process is still there after bind's callback, its loop not drained.
    child.send({ cmd: 'close' })
    await child.wait('closed', 10000)
    const { code } = await child.exited
    assert.strictEqual(code, 0, child.stderr)
    assert.deepStrictEqual(child.messages.map(m => m.type), ['bound', 'closed', 'drained'],
      'the loop ran dry only after close')
  } finally {
    await lab.destroy()
  }
})
