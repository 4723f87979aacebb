'use strict'
// @hyperswarm/network 2.1.0's own tests (test/index.test.js of its npm
// package, on its own runner, tap 12), against the reference and against ours.
// Only the require of the package under test is changed, at run time (see
// upstream/run.js); upstream/expect.js names what ours is excused from and
// why. The reference run is the control: if the environment breaks a test,
// it fails there first.
const test = require('node:test')
const { runSuite } = require('./upstream/run')
const { SUITES, check } = require('./upstream/expect')

const suite = SUITES.network

for (const impl of ['reference', 'ours']) {
  const name = impl === 'reference' ? `reference: ${suite.title} upstream suite` : `${suite.title} upstream suite on ours`
  test(name, async (t) => {
    const r = await runSuite('network', impl)
    t.diagnostic(`${suite.title} upstream on ${impl}: ${r.passed}/${suite.tests} passed in ${(r.ms / 1000).toFixed(1)} s`)
    for (const f of r.failed) t.diagnostic(`not ok: ${f}`)
    check('network', impl, r)
  })
}
