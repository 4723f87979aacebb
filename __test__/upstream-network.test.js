'use strict'
// @hyperswarm/network 2.1.0's own tests (test/index.test.js of its npm
// package), on its own runner (tap 12), against the reference and against
// ours. Only the require of the package under test is changed, at run time
// (see upstream/run.js). The reference run is the control.
const test = require('node:test')
const assert = require('node:assert')
const { runSuite } = require('./upstream/run')

/** Top-level tests in test/index.test.js (network 2.1.0). */
const TESTS = 36

/**
 * Tests that replace functions of the reference's internals to fake a hole
 * punch (`discovery.holepunch`) and take TCP away by closing the reference's
 * own net.Server (`nw.tcp`) while UDP stays: ours punches and dials inside
 * the engine, where neither seam reaches. README, "What differs", lists them.
 */
const EXCEPTED = [
  'temporary tcp connection outage prior holepunch from bind due to referrer',
  'only destroys socket once on error (utp)',
  'destroys socket on error (utp)'
]

for (const impl of ['reference', 'ours']) {
  const name = impl === 'reference' ? 'reference: @hyperswarm/network 2.1.0 upstream suite' : '@hyperswarm/network 2.1.0 upstream suite on ours'
  test(name, async (t) => {
    const r = await runSuite('network', impl)
    t.diagnostic(`@hyperswarm/network 2.1.0 upstream on ${impl}: ${r.passed}/${r.total} passed (of ${TESTS}) in ${(r.ms / 1000).toFixed(1)} s`)
    for (const f of r.failed) t.diagnostic(`not ok: ${f}`)
    assert.strictEqual(r.signal, null, `tap was killed (a hang):\n${tail(r)}`)
    assert.strictEqual(r.total, TESTS, `ran ${r.total} of ${TESTS} tests:\n${tail(r)}`)
    const allowed = impl === 'ours' ? EXCEPTED : []
    assert.deepStrictEqual(r.failed.filter((f) => !allowed.includes(f)), [], `failed:\n${tail(r)}`)
    // Every excepted test ran (positive control: it is there to fail).
    for (const name of allowed) assert.ok(r.tests.some((x) => x.name === name), `${name} did not run`)
  })
}

function tail (r) {
  return (r.out + r.err).split('\n').slice(-60).join('\n')
}
