'use strict'
// Network safety for the benchmarks.
//
// - orchestrator(): the top-level script (outside any namespace) may not
//   open a socket of any kind; it only makes a loopback-only lab and talks to
//   its children over IPC. net/dgram are disarmed so a mistake throws instead
//   of sending. It also needs root (for `ip netns`), bounds the whole run in
//   time, and deletes the lab on Ctrl-C / SIGTERM.
// - child(): every process that opens a socket calls this first and refuses
//   to run unless its network namespace has no interface other than `lo`
//   (checked in /proc/net/dev, which lists interfaces without addresses too,
//   and in os.networkInterfaces()). It also exits when the orchestrator goes
//   away and after a hard deadline.
const { interfacesSeen, nonLoopback } = require('../../__test__/helpers/isolation')

function child ({ deadlineMs = 120000 } = {}) {
  const others = nonLoopback()
  if (others.length) {
    process.stderr.write(`refusing to run: this process sees interfaces other than lo (${others.join(', ')}). ` +
      'Benchmark children only run inside the loopback-only lab that bench/*.js makes.\n')
    process.exit(3)
  }
  if (!process.send) {
    process.stderr.write('refusing to run: start the benchmark with `node bench/<name>.js`, not this helper\n')
    process.exit(3)
  }
  process.on('disconnect', () => process.exit(0))
  setTimeout(() => {
    process.stderr.write(`deadline of ${deadlineMs} ms reached, exiting\n`)
    process.exit(4)
  }, deadlineMs).unref()
}

function orchestrator ({ deadlineMs, onAbort }) {
  if (process.platform !== 'linux' || !process.getuid || process.getuid() !== 0) {
    console.error('this benchmark must run as root on Linux: it makes a network namespace (ip netns) for all its traffic')
    process.exit(2)
  }
  disarm()
  const abort = (why, code) => {
    console.error(why)
    Promise.resolve(onAbort && onAbort()).catch(() => {}).finally(() => process.exit(code))
    setTimeout(() => process.exit(code), 5000).unref()
  }
  const timer = setTimeout(() => abort(`benchmark exceeded its ${deadlineMs / 1000} s budget, aborting`, 1), deadlineMs)
  process.once('SIGINT', () => abort('interrupted', 130))
  process.once('SIGTERM', () => abort('terminated', 143))
  const done = () => clearTimeout(timer)
  return {
    done,
    /**
     * Ends the run with `main`'s outcome: exit 0 once it resolves; on a
     * failure print it, run `cleanup` (tear the lab down) and exit 1.
     */
    finish (main, cleanup) {
      main.then(() => {
        done()
        process.exit(0)
      }, async err => {
        console.error(err && err.stack ? err.stack : err)
        await Promise.resolve(cleanup && cleanup()).catch(() => {})
        process.exit(1)
      })
    }
  }
}

// The orchestrator never needs a socket: make any attempt fail loudly.
function disarm () {
  const net = require('net')
  const dgram = require('dgram')
  const refuse = what => function () {
    throw new Error(`bench orchestrator refused ${what}: only processes inside the lab may use the network`)
  }
  net.Socket.prototype.connect = refuse('net connect')
  net.Server.prototype.listen = refuse('net listen')
  dgram.Socket.prototype.bind = refuse('dgram bind')
  dgram.Socket.prototype.send = refuse('dgram send')
}

/** Median of a list of numbers. */
function median (xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// Command-line options of the benchmarks: `--name <number>` and `--flag`.
const argv = process.argv.slice(2)

function numberArg (name, dflt) {
  const i = argv.indexOf('--' + name)
  return i >= 0 ? Number(argv[i + 1]) : dflt
}

function flag (name) {
  return argv.includes('--' + name)
}

module.exports = { child, orchestrator, median, interfacesSeen, numberArg, flag }
