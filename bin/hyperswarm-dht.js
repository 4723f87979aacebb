#!/usr/bin/env node
'use strict'
// npm `bin` shim for the Rust bootstrap node built by `npm install`
// (target/release/hyperswarm-dht). Arguments and signals pass through.
const { spawn } = require('child_process')
const path = require('path')
const fs = require('fs')

const exe = path.join(__dirname, '..', 'target', 'release', process.platform === 'win32' ? 'hyperswarm-dht.exe' : 'hyperswarm-dht')
if (!fs.existsSync(exe)) {
  console.error(`hyperswarm-dht: ${exe} is missing; run \`npm run build\` (needs a Rust toolchain)`)
  process.exit(1)
}
const child = spawn(exe, process.argv.slice(2), { stdio: 'inherit' })
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
child.on('exit', (code, signal) => process.exit(signal ? 1 : code))
