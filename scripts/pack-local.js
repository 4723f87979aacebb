'use strict'
// `npm run pack-local`: the two tarballs npm would publish for this machine,
// in dist/: the root package (JavaScript only) and this platform's package
// (npm/<platform>/: the addon and the hyperswarm-dht binary). The addon and
// the binary are rebuilt first only when they are stale (as `npm install`
// decides it). Install both with
//   npm install dist/hyperswarm-native-<v>.tgz dist/hyperswarm-native-<platform>-<v>.tgz
// The release workflow (.github/workflows/release.yml) does the same for
// every target with napi-rs's `artifacts` and `prepublish`.
const { spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')
const { staleness, build, artifacts } = require('./install')
const platforms = require('../lib/platform')

const root = path.join(__dirname, '..')
const dist = path.join(root, 'dist')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function fail (why) {
  console.error(`pack-local: ${why}`)
  process.exit(1)
}

// `npm pack --json` in `dir`; returns what npm says it packed.
function pack (dir) {
  const res = spawnSync(npm, ['pack', '--json', '--pack-destination', dist], { cwd: dir, encoding: 'utf8' })
  if (res.status !== 0) fail(`npm pack in ${path.relative(root, dir) || '.'} failed:\n${res.stderr}`)
  return JSON.parse(res.stdout)[0]
}

const stale = staleness()
if (stale) {
  console.error(`pack-local: building: ${stale}`)
  if (!build()) fail('the build failed')
  const still = staleness()
  if (still) fail(`still stale after the build: ${still}`)
}
const [addon, dht] = artifacts()

const platform = platforms.find(p => addon && path.basename(addon) === `hyperswarm-native.${p}.node`)
const pkgDir = platform && path.join(root, 'npm', platform)
if (!pkgDir || !fs.existsSync(path.join(pkgDir, 'package.json'))) {
  fail(`no platform package npm/${platform || platforms[0]}/ for this machine's build`)
}
const rootPkg = require('../package.json')
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
if (pkg.version !== rootPkg.version) fail(`${pkg.name} is at ${pkg.version}, the root at ${rootPkg.version}`)
if ((rootPkg.optionalDependencies || {})[pkg.name] !== rootPkg.version) {
  fail(`the root's optionalDependencies do not list ${pkg.name}@${rootPkg.version}`)
}

// Stage the artefacts the way `napi artifacts` does, beside package.json.
fs.copyFileSync(addon, path.join(pkgDir, pkg.main))
const dhtStaged = path.join(pkgDir, path.basename(dht))
fs.copyFileSync(dht, dhtStaged)
fs.chmodSync(dhtStaged, 0o755)

fs.rmSync(dist, { recursive: true, force: true })
fs.mkdirSync(dist)
const packed = [pack(root), pack(pkgDir)]

// The root must not carry what the platform package does.
const leaked = packed[0].files.map(f => f.path).filter(f => f.endsWith('.node') || f.startsWith('target/') || f.startsWith('src/'))
if (leaked.length) fail(`the root tarball carries ${leaked.join(', ')}`)
const missing = pkg.files.filter(f => !packed[1].files.some(p => p.path === f))
if (missing.length) fail(`the ${platform} tarball lacks ${missing.join(', ')}`)

for (const p of packed) {
  console.log(`dist/${p.filename}  ${(p.size / 1024).toFixed(0)} KiB packed, ${(p.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${p.files.length} files`)
}
