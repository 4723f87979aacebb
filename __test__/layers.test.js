'use strict'
// The layering rules of scripts/check-layers.js hold on this tree, and the
// checker does catch each kind of break when one is planted in a copy.
// No network: this only reads source files.
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { check, cratePaths, code } = require('../scripts/check-layers')

const ROOT = path.join(__dirname, '..')

test('src/ has no import cycle and every module imports only from layers below; entry points use lib/engine.js', () => {
  const { problems, modules } = check()
  assert.deepStrictEqual(problems, [])
  // The graph is the real one, not an empty parse.
  assert.ok(modules.get('swarm').has('discovery') && modules.get('swarm').has('utp'))
  assert.ok(modules.get('dht').has('wire'))
  assert.ok(!modules.get('discovery').has('swarm'))
})

test('crate paths are read from plain paths and nested use groups, not from comments or strings', () => {
  const src = code([
    'use crate::a::{b::{C, d::E}, f as g};',
    'let x = crate::h::i(); // crate::nope::x',
    'let s = "crate::string::y";'
  ].join('\n'))
  assert.deepStrictEqual(cratePaths(src).map(p => p.join('::')).sort(), ['a::b::C', 'a::b::d::E', 'a::f', 'h::i'])
})

// A copy of the checked files with one edit, checked from scratch.
function planted (file, edit) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hsn-layers-'))
  for (const part of ['src', 'lib', 'index.js', 'network.js', 'hyperswarm.js', 'dht.js']) {
    fs.cpSync(path.join(ROOT, part), path.join(dir, part), { recursive: true })
  }
  const p = path.join(dir, file)
  fs.writeFileSync(p, edit(fs.readFileSync(p, 'utf8')))
  try {
    return check(dir).problems
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

test('the checker catches an upward import, a module cycle, a file cycle and a reach into the native swarm', () => {
  const up = planted('src/wire/mod.rs', s => s + '\nuse crate::swarm::Swarm;\n')
  assert.ok(up.some(p => /src\/wire\/mod\.rs uses swarm::Swarm: wire \(layer 0\) must not use swarm/.test(p)), up.join('\n'))

  const cycle = planted('src/dht/mod.rs', s => s + '\npub fn x() -> crate::discovery::Topic { [0; 32] }\n')
  assert.ok(cycle.some(p => /import cycle among modules: dht ↔ discovery/.test(p)), cycle.join('\n'))

  const files = planted('src/utp/config.rs', s => s + '\nuse super::endpoint::Endpoint;\n')
  assert.ok(files.some(p => /import cycle among files: .*src\/utp\/config\.rs.*src\/utp\/endpoint\.rs|import cycle among files: .*src\/utp\/endpoint\.rs.*src\/utp\/config\.rs/.test(p)), files.join('\n'))

  const native = planted('hyperswarm.js', s => s + '\nfunction f (e) { return e.native.port() }\n')
  assert.ok(native.some(p => /^hyperswarm\.js:\d+: reaches into the engine's native swarm/.test(p)), native.join('\n'))

  const priv = planted('hyperswarm.js', s => s + '\nfunction g (s) { s.network._syncTcp() }\n')
  assert.ok(priv.some(p => /^hyperswarm\.js:\d+: calls a private member of the network entry/.test(p)), priv.join('\n'))
})
