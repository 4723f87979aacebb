'use strict'
// `npm test`: the Rust tests, then the Node suites. Both run inside a fresh
// network namespace (`unshare -n`) so that no test can reach a real
// interface; the suites build their LAN labs from inside it. This needs root
// (or an unprivileged user namespace); without it the run fails loudly.
const { spawnSync } = require('child_process')
const path = require('path')

const root = path.join(__dirname, '..')
const sh = (cmd, opts = {}) => spawnSync('sh', ['-c', cmd], { cwd: root, stdio: 'inherit', ...opts }).status

// Compile outside the namespace: cargo may need to fetch dev-dependencies.
if (sh('cargo test --release --no-run')) process.exit(1)

const inside = [
  'ip link set lo up',
  'cargo test --release --offline',
  `"${process.execPath}" --test --test-concurrency=1 --test-timeout=180000 __test__/`
].join(' && ')
const isolate = process.getuid && process.getuid() === 0 ? 'unshare -n' : 'unshare -rn'
const status = sh(`${isolate} -- sh -c '${inside}'`)
if (status === null) {
  console.error('could not start the isolated test namespace (is `unshare` available?)')
}
process.exit(status === 0 ? 0 : 1)
