'use strict'
// `npm install` hook: use a prebuilt addon when one loads and is not older
// than the Rust sources beside it, else build it from source with the
// napi-rs CLI (a Rust toolchain is needed then). A published package has no
// `src/`, so there the prebuilt addon is always taken; in a source checkout
// an edit under `src/` makes the old addon stale and it is rebuilt.
const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')

const root = path.join(__dirname, '..')

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
  const abis = process.platform === 'linux' ? ['-gnu', '-musl'] : process.platform === 'win32' ? ['-msvc'] : ['']
  for (const abi of abis) {
    const file = path.join(root, `hyperswarm-native.${process.platform}-${process.arch}${abi}.node`)
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

function loads () {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

function main () {
  const stale = staleness()
  if (!process.env.HYPERSWARM_NATIVE_FORCE_BUILD && !stale && loads()) process.exit(0)
  if (stale) console.error(`hyperswarm-native: rebuilding: ${stale}`)
  if (!build()) {
    console.error('hyperswarm-native: building the native addon failed; a Rust toolchain (cargo) is required.')
    process.exit(1)
  }
}

if (require.main === module) main()

module.exports = { staleness, build, artifacts }
