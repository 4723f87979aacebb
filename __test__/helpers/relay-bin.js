'use strict'
// `hyperswarm-dht --relay` as a lab process: started inside a namespace,
// with its stderr kept, its counters read over SIGUSR1 (`relay stats
// {json}` lines), and a SIGKILL after `killAfterMs` whatever happens.
const { spawn } = require('child_process')
const { dhtBinary } = require('./bins')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Polls `pred` every 20 ms for at most `ms`; throws `why()` past it. */
async function until (pred, ms, why) {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(why())
    await sleep(20)
  }
}

/** The binary with `args` in namespace `ns`; `ready` resolves once it listens. */
function startRelay (ns, args, { killAfterMs = 60000 } = {}) {
  const proc = spawn('ip', ['netns', 'exec', ns, dhtBinary(), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  // 'close', not 'exit': the exit can come before the last of stderr.
  const relay = { proc, stderr: '', exited: new Promise(resolve => proc.on('close', (code, signal) => resolve({ code, signal }))) }
  proc.stderr.on('data', d => { relay.stderr += d })
  const killer = setTimeout(() => proc.kill('SIGKILL'), killAfterMs)
  proc.on('exit', () => clearTimeout(killer))
  relay.ready = until(() => /listening on/.test(relay.stderr), 10000, () => `relay did not start:\n${relay.stderr}`)
  return relay
}

/** The relay's counters now: SIGUSR1, then the newest stats line. */
async function relayStats (relay) {
  const seen = (relay.stderr.match(/relay stats /g) || []).length
  relay.proc.kill('SIGUSR1')
  await until(() => (relay.stderr.match(/relay stats /g) || []).length > seen, 5000, () => `no stats line:\n${relay.stderr}`)
  const lines = relay.stderr.split('\n').filter(l => l.startsWith('relay stats '))
  return JSON.parse(lines[lines.length - 1].slice('relay stats '.length))
}

/** Stops it (SIGKILL if it still runs) and waits for its exit. */
async function stopRelay (relay) {
  if (relay.proc.exitCode === null) relay.proc.kill('SIGKILL')
  return relay.exited
}

module.exports = { startRelay, relayStats, stopRelay, until }
