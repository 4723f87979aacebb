'use strict'
// The Rust crate packs for crates.io (`cargo package`), with the sources and
// examples a user builds and none of the Node package, tests or build
// output. No network: --offline uses the registry cache the build filled.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawnSync } = require('child_process')

const ROOT = path.join(__dirname, '..')
const fs = require('fs')
const version = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1]

test('cargo package --no-verify packs the crate: sources, examples, README; no node_modules, tests or target', () => {
  const r = spawnSync('cargo', ['package', '--no-verify', '--offline', '--allow-dirty'], { cwd: ROOT, encoding: 'utf8', timeout: 120000 })
  assert.strictEqual(r.status, 0, `cargo package failed:\n${r.stderr}`)
  const crate = path.join(ROOT, 'target', 'package', `hyperswarm-native-${version}.crate`)
  const list = spawnSync('tar', ['tzf', crate], { encoding: 'utf8' })
  assert.strictEqual(list.status, 0, list.stderr)
  const files = list.stdout.split('\n').filter(Boolean).map(f => f.split('/').slice(1).join('/'))
  for (const f of ['Cargo.toml', 'README.md', 'build.rs', 'src/lib.rs', 'src/api/mod.rs', 'src/sansio.rs', 'examples/echo.rs']) {
    assert.ok(files.includes(f), `${f} is packed`)
  }
  for (const f of files) {
    assert.ok(!/^(node_modules|__test__|target|dist|npm|tests|bench)\//.test(f), `${f} is not packed`)
    assert.ok(!f.endsWith('.node') && !f.endsWith('.js'), `${f} is not packed`)
  }
})
