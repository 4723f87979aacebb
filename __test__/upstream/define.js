'use strict'
// The two node tests of one upstream suite: its run on the reference (the
// control: if the environment breaks a test, it fails there first) and on
// ours. upstream/expect.js names what ours is excused from and why.
const test = require('node:test')
const { runSuite } = require('./run')
const { SUITES, check } = require('./expect')

function defineUpstreamTests (name) {
  const suite = SUITES[name]
  for (const impl of ['reference', 'ours']) {
    const title = impl === 'reference' ? `reference: ${suite.title} upstream suite` : `${suite.title} upstream suite on ours`
    test(title, async (t) => {
      let r = await runSuite(name, impl)
      t.diagnostic(`${suite.title} upstream on ${impl}: ${r.passed}/${suite.tests} passed in ${(r.ms / 1000).toFixed(1)} s`)
      for (const f of r.failed) t.diagnostic(`not ok: ${f}`)
      // A known race, not excused: see RACY in upstream/expect.js. When it
      // is the only failure, the suite runs once more and must pass then;
      // the first run's failure stays in the output.
      const racy = impl === 'ours' ? (suite.racy || []) : []
      const unexcused = r.failed.filter((f) => !Object.keys(suite.excepted).includes(f) || impl !== 'ours')
      if (r.signal === null && unexcused.length && unexcused.every((f) => racy.includes(f))) {
        t.diagnostic(`retrying once: ${unexcused.join(', ')} lost its race`)
        r = await runSuite(name, impl)
        t.diagnostic(`retry: ${r.passed}/${suite.tests} passed in ${(r.ms / 1000).toFixed(1)} s`)
        for (const f of r.failed) t.diagnostic(`not ok: ${f}`)
      }
      check(name, impl, r)
    })
  }
}

module.exports = { defineUpstreamTests }
