'use strict'
// index.d.ts is complete enough to type the seed's documented usage and to
// reject misuse (the usage files carry @ts-expect-error lines); the generated
// binding.d.ts types the addon's events as tagged unions (usage-binding.ts).
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawnSync } = require('child_process')

test('tsc --noEmit over the typed usage file passes', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const res = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8', timeout: 120000 })
  assert.strictEqual(res.status, 0, res.stdout + res.stderr)
})
