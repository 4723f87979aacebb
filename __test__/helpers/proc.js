'use strict'
// A child process whose output a test reads: stdout and stderr collected as
// text, `exited` resolving to { code, signal }, and a hard timer that runs
// `kill` (default: SIGKILL the process) whatever happens.

function capture (proc, killAfterMs, kill = () => proc.kill('SIGKILL')) {
  const r = { proc, stdout: '', stderr: '' }
  proc.stdout.on('data', d => { r.stdout += d })
  proc.stderr.on('data', d => { r.stderr += d })
  proc.on('error', () => {})
  const timer = setTimeout(kill, killAfterMs)
  r.exited = new Promise(resolve => proc.on('exit', (code, signal) => {
    clearTimeout(timer)
    resolve({ code, signal })
  }))
  return r
}

/** `p`, or a rejection naming `what` once `ms` pass. */
const within = (p, ms, what) => Promise.race([
  p,
  new Promise((resolve, reject) => setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms).unref())
])

module.exports = { capture, within }
