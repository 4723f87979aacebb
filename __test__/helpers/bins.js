'use strict'
// Where the tests find the Rust executables.
//
// - `hyperswarm-dht` is the shipped binary: `npm run build` (and so
//   `npm install`) makes it in target/release, with the release profile's
//   LTO, and that is the one the tests run.
// - Examples (bench/utp_peer.rs, ...) are built by `npm test`'s
//   `cargo test --profile test-release --no-run`, into target/test-release.
//   That profile is release without LTO: one fat-LTO link per test binary
//   cost CI two of its twenty minutes, and no test measures speed.
//   Benchmarks build their own in target/release.
const fs = require('fs')
const path = require('path')

const ROOT = path.join(__dirname, '..', '..')
/** The cargo profile `npm test` builds the Rust tests and examples with. */
const TEST_PROFILE = 'test-release'

function dhtBinary () {
  const exe = path.join(ROOT, 'target', 'release', 'hyperswarm-dht')
  if (!fs.existsSync(exe)) throw new Error(`${exe} is missing: run \`npm run build\``)
  return exe
}

// `env` names a variable that overrides the path (for a binary built
// elsewhere).
function example (name, env) {
  const exe = (env && process.env[env]) || path.join(ROOT, 'target', TEST_PROFILE, 'examples', name)
  if (!fs.existsSync(exe)) throw new Error(`${exe} is missing: run \`cargo test --profile ${TEST_PROFILE} --no-run\` (npm test does)`)
  return exe
}

module.exports = { TEST_PROFILE, dhtBinary, example }
