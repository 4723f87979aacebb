'use strict'
// hyperswarm 2.15.3's own tests (the swarm, connectivity and destroy files of
// its npm package), on its own runner (tap 14), against the reference and
// against ours. Only the require of the package under test is changed, at
// run time (see upstream/run.js). The reference run is the control: if the
// environment breaks a test, it shows there first.
const test = require('node:test')
const assert = require('node:assert')
const { runSuite } = require('./upstream/run')

/** Top-level tests in those seven files (hyperswarm 2.15.3). */
const TESTS = 59

for (const impl of ['reference', 'ours']) {
  const name = impl === 'reference' ? 'reference: hyperswarm 2.15.3 upstream suite' : 'hyperswarm 2.15.3 upstream suite on ours'
  test(name, async (t) => {
    const r = await runSuite('hyperswarm', impl)
    t.diagnostic(`hyperswarm 2.15.3 upstream on ${impl}: ${r.passed}/${r.total} passed (of ${TESTS}) in ${(r.ms / 1000).toFixed(1)} s`)
    for (const f of r.failed) t.diagnostic(`not ok: ${f}`)
    assert.strictEqual(r.signal, null, `tap was killed (a hang):\n${tail(r)}`)
    assert.deepStrictEqual(r.failed, [], `failed:\n${tail(r)}`)
    assert.strictEqual(r.total, TESTS, `ran ${r.total} of ${TESTS} tests:\n${tail(r)}`)
    assert.strictEqual(r.code, 0, `tap exited with ${r.code}:\n${tail(r)}`)
  })
}

function tail (r) {
  return (r.out + r.err).split('\n').slice(-60).join('\n')
}
