'use strict'
// Runs `npm test` (scripts/test.js) N times in a row, stopping at nothing,
// and prints each run's exit status, wall time and test counts, then a
// summary and one JSON line of them all. Each run's full output goes to
// <dir>/run-<i>.log. With --until-fail it stops after the first failed
// run (a streak of consecutive passes is what counts).
//   node scripts/repeat.js [N=10] [dir=./repeat-logs] [--until-fail]
const fs = require('fs')
const path = require('path')
const { spawnSync } = require('child_process')

const untilFail = process.argv.includes('--until-fail')
const [nArg, dirArg] = process.argv.slice(2).filter(a => !a.startsWith('--'))
const n = Number(nArg) || 10
const dir = path.resolve(dirArg || 'repeat-logs')
fs.mkdirSync(dir, { recursive: true })
const runs = []
for (let i = 1; i <= n; i++) {
  const log = path.join(dir, `run-${i}.log`)
  const started = Date.now()
  const r = spawnSync(process.execPath, [path.join(__dirname, 'test.js')], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, CI: 'true' },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    // A run longer than an hour is a hang: the suite itself takes ~15 min.
    timeout: 60 * 60 * 1000
  })
  const seconds = Math.round((Date.now() - started) / 1000)
  fs.writeFileSync(log, (r.stdout || '') + (r.stderr || ''))
  const counts = ((r.stdout || '').match(/^test counts: .*$/m) || ['(no counts line)'])[0]
  const failed = ((r.stdout || '').match(/^not ok \d+ - .*$/gm) || [])
  const run = { run: i, status: r.status, signal: r.signal, seconds, counts, failed }
  runs.push(run)
  console.log(`run ${i}: exit ${r.status}${r.signal ? ' ' + r.signal : ''} in ${Math.floor(seconds / 60)} min ${seconds % 60} s | ${counts}${failed.length ? ' | ' + failed.join('; ') : ''}`)
  if (untilFail && r.status !== 0) break
}
const ok = runs.filter((r) => r.status === 0).length
console.log(`${ok}/${runs.length} runs passed${runs.length < n ? ` (stopped after run ${runs.length} of ${n})` : ''}; wall times (s): ${runs.map((r) => r.seconds).join(', ')}`)
console.log(JSON.stringify({ repeat: runs }))
process.exitCode = ok === n ? 0 : 1
