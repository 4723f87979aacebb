'use strict'
// Loads the native addon: the file `npm install` built in this folder, or the
// prebuilt per-platform package (npm/<triple>), in that order.
const { platform, arch } = process
const path = require('path')
const fs = require('fs')

function libc () {
  if (platform !== 'linux') return ''
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
  const glibc = report && report.header && report.header.glibcVersionRuntime
  return glibc ? '-gnu' : '-musl'
}

const suffix = {
  win32: '-msvc'
}[platform] || libc()
const triple = `${platform}-${arch}${suffix}`
const local = path.join(__dirname, `hyperswarm-native.${triple}.node`)

let binding
if (fs.existsSync(local)) {
  binding = require(local)
} else {
  try {
    binding = require(`hyperswarm-native-${triple}`)
  } catch (err) {
    throw new Error(`hyperswarm-native: no native addon for ${triple}. ` +
      'Build it with `npm run build` (needs a Rust toolchain). ' + err.message)
  }
}
module.exports = binding
