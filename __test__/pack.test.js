'use strict'
// Prebuilt packages: npm/<platform>/ matches package.json's napi targets,
// and what `npm run pack-local` writes installs offline, with no Rust
// toolchain on PATH, into a project where `npx connect-test --local` and
// `npx hyperswarm-dht` run from the platform package's files (not from a
// build of this checkout).
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawn, spawnSync } = require('child_process')
const { assertIsolated } = require('./helpers/netns')
const { capture, within } = require('./helpers/proc')

assertIsolated()
const ROOT = path.join(__dirname, '..')
const rootPkg = require('../package.json')
const PLATFORM = 'linux-x64-gnu' // the one target this machine builds

// napi-rs's platform name for a Rust target triple (the npm/ folder).
function platformOf (triple) {
  const [arch, , sys, abi] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64' }[arch]
  const platform = { linux: 'linux', darwin: 'darwin', windows: 'win32' }[sys]
  assert.ok(cpu && platform, `unknown triple ${triple}`)
  return { name: [platform, cpu, abi].filter(Boolean).join('-'), os: platform, cpu, libc: abi === 'gnu' ? 'glibc' : undefined }
}

test('every napi target has its npm/<platform> package, listed in optionalDependencies', () => {
  const targets = rootPkg.napi.targets
  assert.ok(targets.includes('x86_64-unknown-linux-gnu'))
  const expected = {}
  for (const triple of targets) {
    const p = platformOf(triple)
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', p.name, 'package.json'), 'utf8'))
    const addon = `${rootPkg.napi.binaryName}.${p.name}.node`
    const exe = p.os === 'win32' ? 'hyperswarm-dht.exe' : 'hyperswarm-dht'
    assert.strictEqual(pkg.name, `hyperswarm-native-${p.name}`)
    assert.strictEqual(pkg.version, rootPkg.version, `${pkg.name}'s version`)
    assert.strictEqual(pkg.main, addon)
    assert.deepStrictEqual([...pkg.files].sort(), [addon, exe].sort(), `${pkg.name} ships the addon and the binary`)
    assert.deepStrictEqual(pkg.os, [p.os])
    assert.deepStrictEqual(pkg.cpu, [p.cpu])
    assert.deepStrictEqual(pkg.libc, p.libc && [p.libc])
    expected[pkg.name] = rootPkg.version
  }
  assert.deepStrictEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), targets.map(t => platformOf(t).name).sort(), 'no npm/ folder without a target')
  assert.deepStrictEqual(rootPkg.optionalDependencies, expected)
  assert.deepStrictEqual(rootPkg.dependencies || {}, {}, 'the root has no runtime dependencies to fetch')
})

test('the release workflow builds every napi target into its npm/<platform> package', () => {
  const yml = fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8')
  const built = [...yml.matchAll(/^\s*- \{ target: ([\w-]+), platform: ([\w-]+),/gm)].map(m => [m[1], m[2]])
  assert.deepStrictEqual(built.map(([t]) => t).sort(), [...rootPkg.napi.targets].sort())
  for (const [triple, platform] of built) assert.strictEqual(platform, platformOf(triple).name, triple)
})

// --- the packed tarballs, installed -----------------------------------------

// Only node's own folder and the system's: no ~/.cargo/bin.
const PATH = [...new Set([path.dirname(process.execPath), '/usr/bin', '/bin'])].join(':')

function tarList (tgz) {
  const r = spawnSync('tar', ['tzvf', tgz], { encoding: 'utf8' })
  assert.strictEqual(r.status, 0, r.stderr)
  // "-rwxr-xr-x 0/0 1164376 1985-10-26 08:15 package/hyperswarm-dht"
  return r.stdout.trim().split('\n').map(l => {
    const f = l.split(/\s+/)
    return { mode: f[0], path: f[f.length - 1].replace(/^package\//, '') }
  })
}

// All processes below `pid`, from /proc (npx runs the bin through `sh -c`).
function descendants (pid) {
  const parent = new Map()
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out = []
  const walk = p => { for (const [c, pp] of parent) if (pp === p) { out.push(c); walk(c) } }
  walk(pid)
  return out
}

function cmdline (pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean) } catch { return [] }
}

// Runs `npx args` in `cwd` with the toolchain-free PATH; stdin stays open.
function npx (cwd, env, args, killAfterMs) {
  const proc = spawn('npx', ['--offline', ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
  const r = capture(proc, killAfterMs, () => { for (const p of [...descendants(proc.pid), proc.pid]) try { process.kill(p, 'SIGKILL') } catch {} })
  r.found = []
  return r
}

function waitFor (r, pred, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const poll = () => {
      if (pred()) return resolve()
      if (r.proc.exitCode !== null || r.proc.signalCode !== null) return reject(new Error(`exited before ${what}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`))
      if (Date.now() - t0 > ms) return reject(new Error(`no ${what} within ${ms} ms\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`))
      setTimeout(poll, 50)
    }
    poll()
  })
}


// The one process below npx whose command line matches `pred`.
async function findChild (r, pred, what) {
  let pid = null
  await waitFor(r, () => { pid = descendants(r.proc.pid).find(p => pred(cmdline(p))) || null; return pid !== null }, 10000, what)
  r.found.push(pid)
  return pid
}

// Ends an npx run whatever state it is in: its tree while npx lives, and
// every process we found under it even if npx is gone (an orphan would hold
// our pipes open and keep this file from ever finishing), then our ends of
// the pipes.
async function stop (r) {
  const alive = r.proc.exitCode === null && r.proc.signalCode === null
  for (const p of [...(alive ? descendants(r.proc.pid) : []), ...r.found, ...(alive ? [r.proc.pid] : [])]) {
    try { process.kill(p, 'SIGKILL') } catch {}
  }
  await r.exited
  r.proc.stdout.destroy()
  r.proc.stderr.destroy()
}

test('pack-local tarballs install offline without cargo, and connect-test and hyperswarm-dht run from the platform package', async t => {
  const t0 = Date.now()
  const packed = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'pack-local.js')], { cwd: ROOT, encoding: 'utf8', timeout: 600000 })
  assert.strictEqual(packed.status, 0, `pack-local failed:\n${packed.stdout}\n${packed.stderr}`)
  const dist = path.join(ROOT, 'dist')
  const rootTgz = path.join(dist, `hyperswarm-native-${rootPkg.version}.tgz`)
  const platTgz = path.join(dist, `hyperswarm-native-${PLATFORM}-${rootPkg.version}.tgz`)
  assert.deepStrictEqual(fs.readdirSync(dist).sort(), [rootTgz, platTgz].map(f => path.basename(f)).sort())

  const rootFiles = tarList(rootTgz)
  assert.ok(rootFiles.some(f => f.path === 'binding.js') && rootFiles.some(f => f.path === 'bin/connect-test.js'))
  assert.deepStrictEqual(rootFiles.filter(f => /\.node$|^target\/|^src\/|^npm\//.test(f.path)).map(f => f.path), [],
    'the root tarball carries no addon, build output or sources')
  const platFiles = tarList(platTgz)
  for (const f of [`hyperswarm-native.${PLATFORM}.node`, 'hyperswarm-dht']) {
    const e = platFiles.find(p => p.path === f)
    assert.ok(e, `the platform tarball carries ${f}`)
    assert.match(e.mode, /^-rwx/, `${f} is executable in the tarball`)
  }

  // No Rust toolchain: if the install hook fell back to building, it fails.
  const which = spawnSync('sh', ['-c', 'command -v cargo || command -v rustc'], { env: { PATH }, encoding: 'utf8' })
  assert.notStrictEqual(which.status, 0, `cargo or rustc is on ${PATH}: ${which.stdout}`)

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hyperswarm-native-pack-'))
  try {
    const app = path.join(tmp, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    // A clean environment: no npm_config_* from an outer `npm test`, an
    // empty cache, and no update check.
    const env = { PATH, HOME: tmp, npm_config_cache: path.join(tmp, 'cache'), npm_config_update_notifier: 'false' }
    const install = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', rootTgz, platTgz],
      { cwd: app, env, encoding: 'utf8', timeout: 120000 })
    assert.strictEqual(install.status, 0, `npm install failed:\n${install.stdout}\n${install.stderr}`)

    const installed = path.join(app, 'node_modules', 'hyperswarm-native')
    const platDir = path.join(app, 'node_modules', `hyperswarm-native-${PLATFORM}`)
    const addon = fs.realpathSync(path.join(platDir, `hyperswarm-native.${PLATFORM}.node`))
    for (const gone of ['src', 'target', 'Cargo.toml']) assert.ok(!fs.existsSync(path.join(installed, gone)), `the installed package has no ${gone}`)
    assert.deepStrictEqual(fs.readdirSync(installed).filter(f => f.endsWith('.node')), [], 'nothing was built into the installed package')

    // connect-test, as a user runs it.
    const ct = npx(app, env, ['connect-test', '--local'], 30000)
    try {
      await waitFor(ct, () => /Your network is (not )?hole-punchable/.test(ct.stdout) &&
        /New connection! tcp client 127\.0\.0\.1:\d+/.test(ct.stdout) &&
        /hello from the local echo peer/.test(ct.stdout), 15000, 'the verdict, a connection and the echo peer\'s greeting')
      assert.match(ct.stdout, /› New peer! 127\.0\.0\.1:\d+/)
      assert.match(ct.stdout, /^ {4}type: 'tcp'$/m, 'a details block follows the connection line')
      const cli = await findChild(ct, a => a[0].endsWith('node') && a.some(s => s.endsWith('connect-test')), 'the connect-test process')
      const maps = fs.readFileSync(`/proc/${cli}/maps`, 'utf8')
      const mapped = [...new Set(maps.split('\n').map(l => l.split(/\s+/)[5]).filter(f => f && f.endsWith('.node')))]
      assert.deepStrictEqual(mapped, [addon], 'the CLI runs the platform package\'s addon and no other')

      const t1 = Date.now()
      process.kill(cli, 'SIGINT')
      const { code, signal } = await within(ct.exited, 5000, 'exiting after SIGINT')
      assert.strictEqual(signal, null, `killed by ${signal}`)
      assert.strictEqual(code, 0, `exit code ${code}\nstderr:\n${ct.stderr}`)
      assert.ok(Date.now() - t1 < 5000)
      assert.match(ct.stdout, /Shutting down/)
    } finally {
      await stop(ct)
    }

    // The bootstrap node's binary, from the platform package.
    const dht = npx(app, env, ['hyperswarm-dht', '--host', '127.0.0.1', '--port', '0'], 15000)
    try {
      await waitFor(dht, () => /hyperswarm-dht listening on 127\.0\.0\.1:\d+/.test(dht.stderr), 10000, 'the listening line')
      const bin = await findChild(dht, a => a[0].endsWith('/hyperswarm-dht'), 'the hyperswarm-dht process')
      assert.strictEqual(fs.realpathSync(`/proc/${bin}/exe`), fs.realpathSync(path.join(platDir, 'hyperswarm-dht')))
      const shim = await findChild(dht, a => a[0].endsWith('node') && a.some(s => s.endsWith('/.bin/hyperswarm-dht')), 'the shim')
      process.kill(shim, 'SIGINT') // passed on to the binary
      const { code, signal } = await within(dht.exited, 5000, 'hyperswarm-dht exiting after SIGINT')
      assert.deepStrictEqual({ code, signal }, { code: 0, signal: null }, dht.stderr)
    } finally {
      await stop(dht)
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  t.diagnostic(`pack, install and both runs: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
})
