'use strict'
// What every capture script does before it may open a socket: refuse to run
// unless this process sees only `lo` (a fresh `unshare -n` namespace), and
// arm a watchdog that ends the process whatever happens.
const { nonLoopback } = require('../__test__/helpers/isolation')

module.exports = function captureGuard (name, watchdogMs) {
  const others = nonLoopback()
  if (others.length) {
    console.error(`${name}: refusing to run: this process sees [${others.join(', ')}], expected only [lo].`)
    console.error(`Run as: unshare -n sh -c 'ip link set lo up && node scripts/${name}.js'`)
    process.exit(1)
  }
  setTimeout(() => {
    console.error(`${name}: watchdog fired, giving up`)
    process.exit(2)
  }, watchdogMs).unref()
}
