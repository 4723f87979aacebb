'use strict'
// Loads the native addon: the file `npm install` built in this folder, or the
// prebuilt per-platform package (npm/<triple>), in that order.
// (No process.report here to tell glibc from musl: generating a report pages
// in about 2 MiB of Node's own code. Trying both names is enough.)
const path = require('path')
const fs = require('fs')

const { platform, arch } = process
const abis = platform === 'linux' ? ['-gnu', '-musl'] : platform === 'win32' ? ['-msvc'] : ['']
const triples = abis.map(abi => `${platform}-${arch}${abi}`)

function load () {
  for (const triple of triples) {
    const local = path.join(__dirname, `hyperswarm-native.${triple}.node`)
    if (fs.existsSync(local)) return require(local)
  }
  const errors = []
  for (const triple of triples) {
    try {
      return require(`hyperswarm-native-${triple}`)
    } catch (err) {
      errors.push(err.message)
    }
  }
  throw new Error(`hyperswarm-native: no native addon for ${triples.join(' or ')}. ` +
    'Build it with `npm run build` (needs a Rust toolchain). ' + errors.join('; '))
}

module.exports = load()
