'use strict'
// bin/connect-test.js: --local shows the whole flow offline (a loopback DHT
// testnet and an echo peer in the CLI's process), Ctrl-C exits cleanly, and
// the arguments are checked.
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawn } = require('child_process')
const { Lab, assertIsolated } = require('./helpers/netns')
const { capture, within } = require('./helpers/proc')

assertIsolated()
const CLI = path.join(__dirname, '..', 'bin', 'connect-test.js')
const VERDICT = /Your network is (not )?hole-punchable/
// On a loopback testnet every node sees our own address and bound port.
const NAT_LINE = /NAT type: open \(/

// Runs the CLI inside host 0 of `lab`. stdin stays open (a pipe we never
// write to), as on a terminal; a hard timer kills it whatever happens.
function run (lab, args, killAfterMs = 30000) {
  const proc = spawn('ip', ['netns', 'exec', lab.hosts[0].ns, process.execPath, CLI, ...args], {
    stdio: ['pipe', 'pipe', 'pipe']
  })
  return capture(proc, killAfterMs)
}

// Resolves once `pred(stdout)` holds; rejects after `ms` or on exit.
function waitOutput (r, pred, ms, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!pred(r.stdout)) return
      cleanup()
      resolve()
    }
    const fail = why => {
      cleanup()
      reject(new Error(`${why} before ${what}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`))
    }
    const timer = setTimeout(() => fail(`no output within ${ms} ms`), ms)
    const onexit = () => setTimeout(() => fail('exited'), 50)
    const cleanup = () => {
      clearTimeout(timer)
      r.proc.stdout.off('data', check)
      r.proc.off('exit', onexit)
    }
    r.proc.stdout.on('data', check)
    r.proc.once('exit', onexit)
    check()
  })
}


async function withLab (fn) {
  const lab = Lab.loopback()
  const procs = []
  try {
    return await fn(lab, procs)
  } finally {
    for (const r of procs) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL')
    await Promise.all(procs.map(r => r.exited))
    await lab.destroy()
  }
}

test('connect-test --local: verdict, a peer, a connection, then a clean Ctrl-C', () => withLab(async (lab, procs) => {
  const r = run(lab, ['--local'])
  procs.push(r)
  // The connection line and its details block may arrive in two chunks.
  await waitOutput(r, out => VERDICT.test(out) && NAT_LINE.test(out) && /New connection!/.test(out) && /^ {4}client: (true|false)$/m.test(out) &&
    /New connection! utp \(hole-punched\)/.test(out), 10000, 'the verdict, a connection and a hole-punched one')
  const out = r.stdout
  assert.match(out, /Hyperswarm Connect-Test/)
  assert.match(out, /▶ Joining hyperswarm under the sha256\('connect-test'\) topic c4625e4ea6b821978e8d5535651c6f1ab602eb44b4efdb06eefea867c4c0e249/)
  assert.match(out, /Testing hole-punchability\.\.\./)
  assert.ok(out.indexOf('Testing hole-punchability...') < out.search(VERDICT), 'the test is announced before its verdict')
  assert.match(out, /› New peer! 127\.0\.0\.1:\d+/)
  assert.match(out, /› New connection! tcp client 127\.0\.0\.1:\d+/, 'the echo peer over TCP')
  assert.match(out, /› New connection! utp \(hole-punched\) server 127\.0\.0\.1:\d+/, 'the punching peer over uTP')
  assert.match(out, /^ {4}client: (true|false)$/m, 'a details block follows the connection line')
  assert.match(out, /^ {4}type: '(tcp|utp)'$/m)
  await waitOutput(r, o => /Waiting for connections\.\.\./.test(o), 5000, 'Waiting for connections...')

  const t0 = Date.now()
  r.proc.kill('SIGINT')
  const { code, signal } = await within(r.exited, 5000, 'exiting after SIGINT')
  assert.strictEqual(signal, null, `killed by ${signal}`)
  assert.strictEqual(code, 0, `exit code ${code}\nstderr:\n${r.stderr}`)
  assert.ok(Date.now() - t0 < 5000)
  assert.match(r.stdout, /Shutting down/)
}))

test('connect-test --local with a topic of its own', () => withLab(async (lab, procs) => {
  const r = run(lab, ['--local', 'héllo wörld'])
  procs.push(r)
  const hex = require('crypto').createHash('sha256').update('héllo wörld', 'utf8').digest('hex')
  await waitOutput(r, out => /New connection!/.test(out), 10000, 'a connection')
  assert.ok(r.stdout.includes(`sha256('héllo wörld') topic ${hex}`), r.stdout)
  r.proc.kill('SIGINT')
  const { code } = await within(r.exited, 5000, 'exiting after SIGINT')
  assert.strictEqual(code, 0)
}))

test('connect-test --help prints usage and exits 0', () => withLab(async (lab, procs) => {
  const r = run(lab, ['--help'])
  procs.push(r)
  const { code } = await within(r.exited, 5000, '--help')
  assert.strictEqual(code, 0)
  assert.match(r.stdout, /Usage: connect-test \[topic\]/)
  assert.match(r.stdout, /--bootstrap host:port/)
  assert.match(r.stdout, /--local/)
  assert.doesNotMatch(r.stdout, /Joining hyperswarm/)
}))

for (const [label, args, reason] of [
  ['an unknown option', ['--nope'], /unknown option --nope/],
  ['a bootstrap entry without a port', ['--bootstrap', '127.0.0.1'], /not host:port/],
  ['--bootstrap without a value', ['--bootstrap'], /needs a host:port/],
  ['two topics', ['one', 'two'], /only one topic/],
  ['--local with --bootstrap', ['--local', '--bootstrap', '127.0.0.1:1'], /do not go together/]
]) {
  test(`connect-test rejects ${label} with a usage message`, () => withLab(async (lab, procs) => {
    const r = run(lab, args)
    procs.push(r)
    const { code } = await within(r.exited, 5000, 'a bad argument')
    assert.notStrictEqual(code, 0)
    assert.match(r.stderr, reason)
    assert.match(r.stderr, /Usage: connect-test/)
    assert.doesNotMatch(r.stdout, /Joining hyperswarm/)
  }))
}
