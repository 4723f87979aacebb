'use strict'
// Loads the native addon: the file `npm install` built in this folder (a
// source checkout), or else the prebuilt platform package npm installed
// beside us (`hyperswarm-native-<platform>`, made from npm/<platform>/).
const path = require('path')
const fs = require('fs')
const platforms = require('./lib/platform')

function load () {
  for (const p of platforms) {
    const local = path.join(__dirname, `hyperswarm-native.${p}.node`)
    if (fs.existsSync(local)) return require(local)
  }
  const errors = []
  for (const p of platforms) {
    try {
      return require(`hyperswarm-native-${p}`)
    } catch (err) {
      errors.push(err.message.split('\n')[0])
    }
  }
  throw new Error(`hyperswarm-native: no native addon for ${platforms.join(' or ')}: ` +
    `no prebuilt package loaded (${errors.join('; ')}). ` +
    'In a source checkout, build it with `npm run build` (needs a Rust toolchain).')
}

module.exports = load()
