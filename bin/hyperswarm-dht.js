#!/usr/bin/env node
'use strict'
// npm `bin` shim for the Rust bootstrap node: target/release/hyperswarm-dht
// in a source checkout (built by `npm install`), else the copy in the
// prebuilt platform package (hyperswarm-native-<platform>). Arguments and
// signals pass through.
const { spawn } = require('child_process')
const path = require('path')
const fs = require('fs')
const platforms = require('../lib/platform')

const name = process.platform === 'win32' ? 'hyperswarm-dht.exe' : 'hyperswarm-dht'

function find () {
  const built = path.join(__dirname, '..', 'target', 'release', name)
  if (fs.existsSync(built)) return built
  for (const p of platforms) {
    let dir
    try {
      dir = path.dirname(require.resolve(`hyperswarm-native-${p}/package.json`))
    } catch {
      continue
    }
    if (fs.existsSync(path.join(dir, name))) return path.join(dir, name)
  }
  return null
}

const exe = find()
if (!exe) {
  console.error(`hyperswarm-dht: no binary: neither target/release/${name} (run \`npm run build\`, needs a Rust toolchain) ` +
    `nor a prebuilt package hyperswarm-native-{${platforms.join(',')}} with one`)
  process.exit(1)
}
// The handlers go in before the binary starts: on a loaded machine this
// process can be descheduled right after spawn() while the binary already
// runs and says it listens, and a SIGINT then would kill us with the
// default action and orphan the binary (CI saw npx exit 130 with the node
// still running).
let child = null
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
child = spawn(exe, process.argv.slice(2), { stdio: 'inherit' })
child.on('error', err => {
  console.error(`hyperswarm-dht: cannot run ${exe}: ${err.message}`)
  process.exit(1)
})
child.on('exit', (code, signal) => process.exit(signal ? 1 : code))
