'use strict'
// Breaks a behaviour on purpose, in the product code, and checks that the
// test suite notices. For each break: run the relevant test file on the
// intact tree (the control: it must pass), patch the product source, run
// the same file through scripts/test.js (which rebuilds whatever the patch
// made stale), check that it fails, restore the source. Prints a table.
//
//   node scripts/break-check.js [name ...]      (root: the suites need namespaces)
//
// The patches are applied to the files of this checkout and restored from
// memory afterwards (also on Ctrl-C); the checkout must have no local
// changes in the patched files. At the end the build is brought back up to
// date with the restored sources. Only the test files that cover each break
// run, to spare a small machine the whole suite.
const { spawnSync, execFileSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..')
const TEST = path.join(__dirname, 'test.js')

/**
 * Each break: `patches` (file, the exact text to find, its replacement) and
 * the `run` (arguments to scripts/test.js) that must fail with them.
 */
const BREAKS = [
  {
    name: 'dht-never-starts',
    what: 'the hyperswarm-dht binary exits at once, before binding',
    patches: [['src/bin/hyperswarm-dht.rs', 'fn main() -> ExitCode {\n', 'fn main() -> ExitCode {\n    if true { return ExitCode::SUCCESS; }\n']],
    run: ['--node-only', '--test-name-pattern=Rust DHT nodes', '__test__/dht.test.js']
  },
  {
    name: 'dht-never-joins',
    what: 'the hyperswarm-dht binary starts and listens but ignores --bootstrap',
    patches: [['src/bin/hyperswarm-dht.rs', 'adaptive: false, bootstrap, seed', 'adaptive: false, bootstrap: { let _ = bootstrap; Vec::new() }, seed']],
    run: ['--node-only', '--test-name-pattern=Rust DHT nodes', '__test__/dht.test.js']
  },
  {
    name: 'relay-ignores-max-pairs',
    what: 'hyperswarm-dht --relay starts a session beyond --relay-max-pairs',
    patches: [['src/relay/server.rs', '            if self.sessions.pairs() >= self.config.max_pairs {\n', '            if false && self.sessions.pairs() >= self.config.max_pairs {\n']],
    run: ['--node-only', '__test__/relay.test.js']
  },
  {
    name: 'destroy-leaves-pending-connects',
    what: 'destroy() no longer fails the connects still in flight',
    patches: [['lib/engine.js', '    for (const req of requests) req.cb(err)\n', '    void requests; void err\n']],
    run: ['--node-only', '--test-name-pattern=pending connects', '__test__/api.test.js']
  },
  {
    name: 'maxServerSockets-ignored',
    what: 'hyperswarm.js takes every incoming connection whatever maxServerSockets says',
    patches: [['hyperswarm.js', '    if (this.maxServerSockets === 0) return Infinity\n', '    return Infinity\n']],
    run: ['--node-only', '--test-name-pattern=maxServerSockets', '__test__/conformance-hyperswarm.test.js']
  },
  {
    name: 'stale-addon',
    what: 'a Rust edit (accepted TCP connections no longer counted in stats) left unbuilt',
    patches: [['src/swarm/engine.rs', '                let id = self.conn_id();\n                self.stats(|s| s.connections_accepted += 1);\n                (self.sink)(SwarmEvent::Connection { id, stream: ConnStream::Tcp(stream)',
      '                let id = self.conn_id();\n                (self.sink)(SwarmEvent::Connection { id, stream: ConnStream::Tcp(stream)']],
    run: ['--node-only', '--test-name-pattern=reset or half-close', '__test__/api.test.js'],
    // Also shown: what a run without the freshness check (node --test on
    // the old addon, as `npm test` used to do) and `--no-build` make of it.
    stale: true
  }
]

const saved = new Map() // file → original text

function restore () {
  for (const [file, text] of saved) fs.writeFileSync(path.join(root, file), text)
  saved.clear()
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    restore()
    process.exit(130)
  })
}

function patch (b) {
  for (const [file, find, replace] of b.patches) {
    const full = path.join(root, file)
    const text = saved.get(file) || fs.readFileSync(full, 'utf8')
    if (!saved.has(file)) saved.set(file, text)
    const current = fs.readFileSync(full, 'utf8')
    const at = current.indexOf(find)
    if (at < 0 || current.indexOf(find, at + 1) >= 0) throw new Error(`${b.name}: the text to patch is not found exactly once in ${file}`)
    fs.writeFileSync(full, current.slice(0, at) + replace + current.slice(at + find.length))
  }
}

// Runs scripts/test.js with `args`; the exit status, the time, and the names
// of the failed tests.
function runTests (args) {
  const started = Date.now()
  const res = spawnSync(process.execPath, [TEST, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  const out = (res.stdout || '') + (res.stderr || '')
  const failed = [...out.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map(m => m[1]).filter(n => !/\.test\.js$/.test(n))
  return { status: res.status, s: ((Date.now() - started) / 1000).toFixed(0), failed, out }
}

// `node --test` on its own (no freshness check), inside a namespace.
function runPlain (args) {
  const files = args.filter(a => !a.startsWith('--'))
  const pattern = args.filter(a => a.startsWith('--test-name-pattern='))
  const started = Date.now()
  const inner = [process.execPath, '--test', '--test-concurrency=1', ...pattern, ...files].map(a => `'${a}'`).join(' ')
  const res = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && ${inner}`], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  return { status: res.status, s: ((Date.now() - started) / 1000).toFixed(0) }
}

function dirty (files) {
  try {
    execFileSync('git', ['diff', '--quiet', 'HEAD', '--', ...files], { cwd: root })
    return false
  } catch {
    return true
  }
}

function main () {
  const only = process.argv.slice(2)
  const breaks = only.length ? BREAKS.filter(b => only.includes(b.name)) : BREAKS
  const files = [...new Set(breaks.flatMap(b => b.patches.map(p => p[0])))]
  if (dirty(files)) {
    console.error(`refusing: local changes in ${files.join(', ')}`)
    process.exit(2)
  }
  const rows = []
  try {
    for (const b of breaks) {
      console.error(`\n== ${b.name}: ${b.what}`)
      const control = runTests(b.run)
      console.error(`control (intact): exit ${control.status} in ${control.s} s`)
      patch(b)
      const row = { name: b.name, control: control.status === 0 ? 'pass' : `FAIL (${control.failed.join('; ')})` }
      if (b.stale) {
        // The patched source is newer than the addon and nothing rebuilt it.
        const plain = runPlain(b.run)
        row.plain = plain.status === 0 ? 'pass (old addon tested)' : 'fail'
        const noBuild = runTests(['--no-build', ...b.run])
        row.noBuild = noBuild.status !== 0 && /stale build/.test(noBuild.out) ? 'fails: stale build' : `exit ${noBuild.status}`
        console.error(`plain node --test: exit ${plain.status}; test.js --no-build: exit ${noBuild.status}`)
      }
      const broken = runTests(b.run)
      row.broken = broken.status === 0 ? 'PASS (not caught)' : 'fail'
      row.caughtBy = broken.failed.join('; ')
      row.s = broken.s
      console.error(`broken: exit ${broken.status} in ${broken.s} s; failed: ${row.caughtBy}`)
      if (broken.status !== 0 && !broken.failed.length) console.error(broken.out.slice(-3000))
      restore()
      rows.push(row)
    }
  } finally {
    restore()
  }
  // The restored sources are newer than the build made from the patches.
  const { staleness, build } = require('./install')
  if (staleness()) console.error(`\nrebuilding from the restored sources: ${build() ? 'done' : 'FAILED'}`)

  console.log('\n| break | control (intact) | broken | caught by | s | without the check | --no-build |')
  console.log('|---|---|---|---|---|---|---|')
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.control} | ${r.broken} | ${r.caughtBy || '-'} | ${r.s} | ${r.plain || '-'} | ${r.noBuild || '-'} |`)
  }
  const ok = rows.every(r => r.control === 'pass' && r.broken === 'fail')
  console.log(ok ? '\nevery break was caught' : '\nSOME BREAK WAS NOT CAUGHT (or a control failed)')
  process.exit(ok ? 0 : 1)
}

main()
