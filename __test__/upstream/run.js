'use strict'
// Runs a reference package's own published test files (from its npm tarball,
// in node_modules) on its own runner, tap, against either the reference or
// ours. The files are copied at run time into a scratch directory and only
// the require of the package under test is rewritten; nothing of theirs is
// committed here. The result is parsed from tap's TAP output.
//
// Must run inside a loopback-only network namespace (`npm test` does): some
// upstream tests build swarms with the default (public) bootstrap nodes, and
// only the namespace keeps them from being contacted. `assertLoopbackOnly`
// refuses to run anywhere else.
const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawn } = require('child_process')

const ROOT = path.join(__dirname, '..', '..')
const NM = path.join(ROOT, 'node_modules')

// Each suite: where its tests live, which files are in scope (the tests of
// the reference's private lib/ modules are not), the tap it runs on (the
// version its package.json allows, pinned in our devDependencies) with the
// flags of its `npm test`, and per implementation the modules its requires
// of the package under test resolve to.
const SUITES = {
  hyperswarm: {
    dir: path.join(NM, 'hyperswarm', 'test'),
    files: [
      'swarm.main.test.js',
      'swarm.max-client-sockets.test.js',
      'swarm.max-peers.test.js',
      'swarm.max-peers.threshold-over-under.test.js',
      'swarm.max-server-sockets.test.js',
      'connectivity.test.js',
      'destroy.test.js'
    ],
    support: ['util.js', 'validate-peer.js'],
    // tap ^14.3.1; its script: `tap -j 1 -R classic test/*.test.js` (we
    // take the raw TAP stream and leave coverage off; tap's 30 s per-file
    // timeout stays: the reference needs 9 s for all seven files).
    tap: path.join(NM, 'tap', 'bin', 'run.js'),
    tapArgs: ['-j', '1', '-R', 'tap', '--no-coverage'],
    // `../swarm` (also `..`, `../`) is the package under test and
    // `../lib/queue` its peer queue, which one test patches;
    // `@hyperswarm/network` is the network module it is built on
    // (swarm.network is one of its resources).
    requires: {
      reference: {
        '../swarm': path.join(NM, 'hyperswarm', 'swarm.js'),
        '..': path.join(NM, 'hyperswarm', 'swarm.js'),
        '../': path.join(NM, 'hyperswarm', 'swarm.js'),
        '../lib/queue': path.join(NM, 'hyperswarm', 'lib', 'queue.js'),
        '@hyperswarm/network': path.join(NM, 'hyperswarm', 'node_modules', '@hyperswarm', 'network', 'index.js')
      },
      ours: {
        '../swarm': path.join(ROOT, 'hyperswarm.js'),
        '..': path.join(ROOT, 'hyperswarm.js'),
        '../': path.join(ROOT, 'hyperswarm.js'),
        '../lib/queue': path.join(ROOT, 'lib', 'hyperswarm', 'peer-queue.js'),
        '@hyperswarm/network': path.join(ROOT, 'network.js')
      }
    }
  },
  network: {
    dir: path.join(NM, '@hyperswarm', 'network-2', 'test'),
    files: ['index.test.js'],
    support: ['util.js'],
    // tap ^12.6.6; its script: `tap -T test/*.test.js` (no per-file
    // timeout: a hang ends at runSuite's own bound).
    tap: path.join(NM, 'tap-12', 'bin', 'run.js'),
    tapArgs: ['-T', '-R', 'tap', '--no-coverage', '-j', '1'],
    requires: {
      reference: { '..': path.join(NM, '@hyperswarm', 'network-2', 'index.js') },
      ours: { '..': path.join(ROOT, 'network.js') }
    }
  },
  dht: {
    dir: path.join(NM, '@hyperswarm', 'dht', 'test'),
    files: ['index.test.js', 'put-get.test.js'],
    // util.js builds each test's bootstrap nodes (bootstrap: [], on
    // loopback); six tests of index.test.js construct nodes with the
    // default (public) bootstrap list, which the namespace keeps unreachable.
    support: ['util.js'],
    // tap ^14.5.0; its script: `tap --nyc-arg=--exclude=messages.js -R
    // classic test/*.test.js` (raw TAP, coverage off). The per-file timeout
    // is 20 s instead of tap's 30: each file takes well under that on either
    // implementation, and two excused tests wait on ours until it (expect.js
    // `hangs`), which would cost a minute per run.
    tap: path.join(NM, 'tap', 'bin', 'run.js'),
    tapArgs: ['-j', '1', '-R', 'tap', '--no-coverage', '-t', '20'],
    // `../` (in the tests and in util.js) is the package under test.
    requires: {
      reference: { '../': path.join(NM, '@hyperswarm', 'dht', 'index.js') },
      ours: { '../': path.join(ROOT, 'dht.js') }
    }
  }
}

/** Throws unless this process sees no network interface but `lo`. */
function assertLoopbackOnly () {
  // /proc/self/net is this process's network namespace (/sys/class/net
  // would show the mount namespace's view).
  const ifaces = fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
    .map((l) => l.split(':')[0].trim()).filter((n) => n && n !== 'lo')
  if (ifaces.length) {
    throw new Error('upstream suites use the default public bootstrap nodes in places; ' +
      'run them only in a loopback-only namespace (npm test does); found ' + ifaces.join(', '))
  }
}

/** Copies the suite's files into a fresh scratch directory with the require rewritten. */
function stage (suite, impl) {
  const s = SUITES[suite]
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `upstream-${suite}-${impl}-`))
  const map = s.requires[impl]
  for (const f of [...s.files, ...s.support]) {
    let src = fs.readFileSync(path.join(s.dir, f), 'utf8')
    for (const [from, to] of Object.entries(map)) {
      const pat = new RegExp(`require(\\.resolve)?\\((['"])${from.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\2\\)`, 'g')
      src = src.replace(pat, (_, resolve) => `require${resolve || ''}(${JSON.stringify(to)})`)
    }
    fs.writeFileSync(path.join(dir, f), src)
  }
  return dir
}

/**
 * Runs one suite against one implementation. Resolves with the counts parsed
 * from the TAP stream, each top-level test's name and result, the wall time
 * and the raw output.
 */
function runSuite (suite, impl, { timeoutMs = 170000, only = null } = {}) {
  assertLoopbackOnly()
  const s = SUITES[suite]
  const dir = stage(suite, impl)
  const started = Date.now()
  return new Promise((resolve) => {
    const files = only ? s.files.filter((f) => only.includes(f)) : s.files
    const child = spawn(process.execPath, [s.tap, ...s.tapArgs, ...files], {
      cwd: dir,
      // Their bare requires (tap, nonsynchronous, utp-native, @hyperswarm/dht)
      // resolve from our node_modules, the pinned versions.
      env: { ...process.env, NODE_PATH: NM, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that a hang is ended with tap's children
      // (a test file tap started keeps our pipes open otherwise).
      detached: true
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const kill = () => { try { process.kill(-child.pid, 'SIGKILL') } catch {} }
    const timer = setTimeout(kill, timeoutMs)
    process.once('exit', kill)
    const onsignal = (sig) => { kill(); process.exit(128 + (sig === 'SIGINT' ? 2 : 15)) }
    process.once('SIGTERM', onsignal)
    process.once('SIGINT', onsignal)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      process.removeListener('exit', kill)
      process.removeListener('SIGTERM', onsignal)
      process.removeListener('SIGINT', onsignal)
      fs.rmSync(dir, { recursive: true, force: true })
      resolve({ ...parse(out), code, signal, ms: Date.now() - started, out, err })
    })
  })
}

/**
 * Counts the leaf assertions tap reports per test file. The top level of the
 * stream is one subtest per file; inside each, every `test()` is a subtest
 * whose ok/not ok line is the test's verdict. Those are what we count.
 */
function parse (tap) {
  const tests = []
  const lines = tap.split('\n')
  // File subtests sit at indent 0 ("ok 1 - swarm.main.test.js"); the
  // upstream test() calls at indent 4 inside them.
  for (const line of lines) {
    const m = /^ {4}(not ok|ok) \d+ - (.*?)(?: # (?:time=.*|SKIP.*|TODO.*))?$/.exec(line)
    if (m) tests.push({ ok: m[1] === 'ok', name: m[2] })
  }
  const passed = tests.filter((t) => t.ok).length
  return { total: tests.length, passed, failed: tests.filter((t) => !t.ok).map((t) => t.name), tests }
}

module.exports = { SUITES, runSuite, stage, parse, assertLoopbackOnly }

// `node __test__/upstream/run.js <hyperswarm|network|dht> <reference|ours> [file…] [--raw]`
// (inside the namespace) prints the counts, the failures and the wall time.
if (require.main === module) {
  const [suite, impl, ...rest] = process.argv.slice(2)
  const only = rest.filter((a) => !a.startsWith('--'))
  runSuite(suite, impl, { only: only.length ? only : null }).then((r) => {
    if (process.argv.includes('--raw')) process.stdout.write(r.out + r.err)
    console.log(`${suite} on ${impl}: ${r.passed}/${r.total} in ${(r.ms / 1000).toFixed(1)} s (exit ${r.code}${r.signal ? ' ' + r.signal : ''})`)
    for (const f of r.failed) console.log('  not ok: ' + f)
  })
}
