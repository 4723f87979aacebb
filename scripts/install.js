'use strict'
// `npm install` hook: use a prebuilt addon when one loads, else build it from
// source with the napi-rs CLI (a Rust toolchain is needed then).
const { spawnSync } = require('child_process')
const path = require('path')

const root = path.join(__dirname, '..')

function loads () {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

if (!process.env.HYPERSWARM_NATIVE_FORCE_BUILD && loads()) process.exit(0)

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const res = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' })
if (res.status !== 0) {
  console.error('hyperswarm-native: building the native addon failed; a Rust toolchain (cargo) is required.')
  process.exit(res.status || 1)
}
