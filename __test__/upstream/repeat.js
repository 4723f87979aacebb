'use strict'
// Runs both upstream suites on both implementations N times in a row and
// prints each run's counts and wall time, then one JSON line of them all.
// Run it inside the loopback namespace:
//   unshare -rn sh -c 'ip link set lo up && node __test__/upstream/repeat.js 10'
const { runSuite } = require('./run')
const { SUITES } = require('./expect')

async function main () {
  const n = Number(process.argv[2]) || 10
  const impls = process.argv[3] ? [process.argv[3]] : ['reference', 'ours']
  const runs = []
  for (let i = 1; i <= n; i++) {
    for (const suite of ['hyperswarm', 'network']) {
      for (const impl of impls) {
        const r = await runSuite(suite, impl)
        const hang = r.signal !== null
        runs.push({ run: i, suite, impl, passed: r.passed, of: SUITES[suite].tests, seconds: +(r.ms / 1000).toFixed(1), hang, failed: r.failed })
        console.log(`run ${i} ${suite} on ${impl}: ${r.passed}/${SUITES[suite].tests} in ${(r.ms / 1000).toFixed(1)} s${hang ? ' (killed: hang)' : ''}${r.failed.length ? ' failed: ' + r.failed.join(' | ') : ''}`)
      }
    }
  }
  console.log(JSON.stringify({ upstreamRepeat: runs }))
}

main()
