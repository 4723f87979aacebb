'use strict'
// `npm test`: the Rust tests, then the Node suites. Both run inside a fresh
// network namespace (`unshare -n`) so that no test can reach a real
// interface; the suites build their LAN labs from inside it. This needs root
// (or an unprivileged user namespace); without it the run fails loudly.
//
//   node scripts/test.js [--no-build] [--node-only] [--test-name-pattern=RE] [__test__/x.test.js ...]
//
// Before anything runs, the addon and the hyperswarm-dht binary are checked
// against the Rust sources: when a file under src/ (or Cargo.toml,
// Cargo.lock, build.rs) is newer, they are rebuilt (`npm run build`), so the
// Node suites never test an old build. `--no-build` fails instead.
// `--node-only` skips the cargo tests; file arguments run only those suites,
// and `--test-name-pattern` only the matching tests (as node's flag does).
//
// At the end, after node's own summary, three counts: tests that run our
// code, tests that run only the reference (named `reference: …`), and checks
// of the lab itself (named `lab: …`); see scripts/test-reporter.js.
const { spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { staleness, build } = require('./install')
const { TEST_PROFILE } = require('../__test__/helpers/bins')

const root = path.join(__dirname, '..')
const sh = (cmd, opts = {}) => spawnSync('sh', ['-c', cmd], { cwd: root, stdio: 'inherit', ...opts }).status
const q = s => `'${String(s).replace(/'/g, "'\\''")}'`

const argv = process.argv.slice(2)
const patterns = argv.filter(a => a.startsWith('--test-name-pattern='))
const flags = new Set(argv.filter(a => a.startsWith('--') && !patterns.includes(a)))
const files = argv.filter(a => !a.startsWith('--'))
for (const f of flags) {
  if (f !== '--no-build' && f !== '--node-only') {
    console.error(`unknown option ${f}`)
    process.exit(2)
  }
}

function fresh () {
  const stale = staleness()
  if (!stale) return true
  if (flags.has('--no-build')) {
    console.error(`stale build: ${stale}. Run \`npm run build\` (or drop --no-build).`)
    return false
  }
  console.error(`stale build: ${stale}; rebuilding (npm run build)`)
  if (!build()) {
    console.error('the rebuild failed: not running the tests against an old build')
    return false
  }
  const still = staleness()
  if (still) {
    console.error(`still stale after the rebuild: ${still}`)
    return false
  }
  return true
}

if (!fresh()) process.exit(1)

const cargo = !flags.has('--node-only')
// Compile outside the namespace: cargo may need to fetch dev-dependencies.
// `--features internals`: the tests, benches and the hyperswarm-dht bin use
// the engine's modules, which are crate-private without it (the package's
// dev-dependency on itself turns it on for tests anyway; the flag keeps the
// bin's `required-features` met whatever cargo decides).
const cargoTest = `cargo test --profile ${TEST_PROFILE} --features internals`
if (cargo && sh(`${cargoTest} --no-run`)) process.exit(1)

const report = path.join(os.tmpdir(), `hyperswarm-native-test-${process.pid}.jsonl`)
// node's default reporter (spec on a terminal, TAP otherwise) stays on
// stdout, so the closing `# pass` / `# fail` lines read as they always did.
const visible = process.stdout.isTTY ? 'spec' : 'tap'
// node applies --test-timeout to each file as well as to each test: the NAT
// matrix alone takes about 205 s in nat-matrix.test.js, so a file gets 5 minutes.
// Every test inside bounds its own waits far below that.
const nodeTest = [
  q(process.execPath), '--test', '--test-concurrency=1', '--test-timeout=300000',
  `--test-reporter=${visible}`, '--test-reporter-destination=stdout',
  `--test-reporter=${q(path.join(__dirname, 'test-reporter.js'))}`, `--test-reporter-destination=${q(report)}`,
  ...patterns.map(q),
  ...(files.length ? files.map(q) : ['__test__/'])
].join(' ')
// No TIME_WAIT in the test namespace. A dialer's closed TCP socket holds
// its ephemeral port in TIME_WAIT for 60 s without SO_REUSEADDR, and
// @hyperswarm/network 0.0.4 listens on TCP at whatever port its UDP
// socket got from bind(0): when the two draws meet, the reference half of
// a conformance case dies of EADDRINUSE (seen once in ~15 full runs).
// The setting is per namespace and only loopback lives here.
const noTimeWait = 'sysctl -qw net.ipv4.tcp_max_tw_buckets=0 || echo "warning: TIME_WAIT stays on (sysctl refused)" >&2'
const inside = ['ip link set lo up', `{ ${noTimeWait}; }`, cargo && `${cargoTest} --offline`, nodeTest].filter(Boolean).join(' && ')
const isolate = process.getuid && process.getuid() === 0 ? 'unshare -n' : 'unshare -rn'
const status = sh(`${isolate} -- sh -c ${q(inside)}`)
if (status === null) {
  console.error('could not start the isolated test namespace (is `unshare` available?)')
}

let failed = 0
try {
  const lines = fs.readFileSync(report, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l))
  const counts = { ours: {}, reference: {}, lab: {} }
  for (const { kind, outcome } of lines) counts[kind][outcome] = (counts[kind][outcome] || 0) + 1
  const show = (label, c) => {
    const total = Object.values(c).reduce((a, b) => a + b, 0)
    const parts = Object.entries(c).map(([k, v]) => `${v} ${k}`).join(', ')
    return `${label}: ${total}${parts ? ` (${parts})` : ''}`
  }
  console.log('test counts: ' + [
    show('our code', counts.ours),
    show('reference only', counts.reference),
    show('lab sanity', counts.lab)
  ].join(' | '))
  failed = lines.filter(l => l.outcome === 'fail').length
} catch (err) {
  console.error(`no per-kind counts (${err.message})`)
} finally {
  try { fs.unlinkSync(report) } catch {}
}
process.exit(status === 0 && failed === 0 ? 0 : 1)
