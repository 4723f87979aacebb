'use strict'
// `npm install` hook. In a source checkout (src/ is here), the addon and the
// hyperswarm-dht binary are built with the napi-rs CLI and cargo whenever
// they are missing or older than the Rust sources. Installed from npm there
// are no sources: the prebuilt platform package npm picked
// (hyperswarm-native-<platform>) is used, and when none fits this platform
// the install fails and says so, since there is nothing to build from.
const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..')
const platforms = require('../lib/platform')

/** Everything the addon and the bins are compiled from. */
const SOURCES = ['src', 'Cargo.toml', 'Cargo.lock', 'build.rs']

function newestMtime (p) {
  let st
  try { st = fs.statSync(p) } catch { return null }
  if (!st.isDirectory()) return { ms: st.mtimeMs, file: p }
  let best = null
  for (const name of fs.readdirSync(p)) {
    const m = newestMtime(path.join(p, name))
    if (m && (!best || m.ms > best.ms)) best = m
  }
  return best
}

/** The newest source file ({ ms, file }), or null outside a source checkout. */
function newestSource () {
  let best = null
  for (const s of SOURCES) {
    const m = newestMtime(path.join(root, s))
    if (m && (!best || m.ms > best.ms)) best = m
  }
  return best
}

/** The addon file binding.js loads first, if it is in this folder. */
function localAddon () {
  for (const p of platforms) {
    const file = path.join(root, `hyperswarm-native.${p}.node`)
    if (fs.existsSync(file)) return file
  }
  return null
}

/** The built files a source checkout must keep fresh: the addon and the bins. */
function artifacts () {
  const exe = process.platform === 'win32' ? '.exe' : ''
  return [localAddon(), path.join(root, 'target', 'release', 'hyperswarm-dht' + exe)]
}

/**
 * Why the build is out of date, or null when it is not: a missing artifact,
 * or one older than the newest source. Null when there are no sources.
 */
function staleness () {
  const src = newestSource()
  if (!src) return null
  const reasons = []
  const [addon, dht] = artifacts()
  for (const [what, file] of [['the addon', addon], ['the hyperswarm-dht binary', dht]]) {
    if (!file || !fs.existsSync(file)) {
      reasons.push(`${what} is missing`)
      continue
    }
    const ms = fs.statSync(file).mtimeMs
    if (ms < src.ms) reasons.push(`${what} (${path.relative(root, file)}) is older than ${path.relative(root, src.file)}`)
  }
  return reasons.length ? reasons.join('; ') : null
}

/**
 * Runs `npm run build`. Cargo decides by its own fingerprints what to
 * recompile; once it has succeeded every artifact is current, so each is
 * stamped with the build's time (cargo leaves a binary it did not need to
 * relink untouched, which would read as stale forever).
 */
function build () {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const res = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' })
  if (res.status !== 0) return false
  const now = new Date()
  for (const file of artifacts()) if (file && fs.existsSync(file)) fs.utimesSync(file, now, now)
  return true
}

/** Null when binding.js loads an addon (local or prebuilt), else why not. */
function loadError () {
  try {
    require(path.join(root, 'binding.js'))
    return null
  } catch (err) {
    return err
  }
}

function main () {
  if (!newestSource()) {
    const err = loadError()
    if (!err) process.exit(0)
    console.error(`${err.message}\nhyperswarm-native: prebuilt packages exist for ` +
      `${Object.keys(require('../package.json').optionalDependencies || {}).join(', ')}; ` +
      'on another platform, install from a source checkout (needs a Rust toolchain).')
    process.exit(1)
  }
  const stale = staleness()
  if (!process.env.HYPERSWARM_NATIVE_FORCE_BUILD && !stale && !loadError()) process.exit(0)
  if (stale) console.error(`hyperswarm-native: rebuilding: ${stale}`)
  if (!build()) {
    console.error('hyperswarm-native: building the native addon failed; a Rust toolchain (cargo) is required.')
    process.exit(1)
  }
}

if (require.main === module) main()

module.exports = { staleness, build, artifacts }
