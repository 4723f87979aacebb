'use strict'
// The network-safety harness. Every test that sends a packet does it from a
// process inside a network namespace made here: a loopback-only one, or a
// LAN of several hosts on a bridge. Nothing reaches the machine's real
// interfaces, and every namespace is deleted when the lab is (or when the
// test process exits).
const { spawn, execFileSync } = require('child_process')
const { nonLoopback } = require('./isolation')
const path = require('path')

const live = new Set()
let counter = 0

/** Interfaces the test runner itself may see: loopback and lab veths. */
function assertIsolated () {
  const names = nonLoopback()
  if (names.length) {
    throw new Error(`refusing to run: this process sees real interfaces (${names.join(', ')}). ` +
      'Run the suite with `npm test`, which starts it inside a fresh network namespace.')
  }
}

function run (args, opts = {}) {
  return execFileSync(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10000, ...opts }).toString()
}

function ipn (ns, ...args) {
  return run(['ip', '-n', ns, ...args])
}

class Lab {
  /**
   * A LAN: `hosts` namespaces, each with `eth0` on one bridge, addresses
   * 10.201.0.1, .2, … (/24), a multicast route, and `lo` up.
   */
  static lan (hosts = 2) {
    const lab = new Lab()
    const sw = lab._ns('sw')
    ipn(sw, 'link', 'add', 'br0', 'type', 'bridge')
    ipn(sw, 'link', 'set', 'br0', 'up')
    for (let i = 1; i <= hosts; i++) {
      const ns = lab._ns('h' + i)
      ipn(sw, 'link', 'add', 'p' + i, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      ipn(sw, 'link', 'set', 'p' + i, 'master', 'br0', 'up')
      ipn(ns, 'addr', 'add', `10.201.0.${i}/24`, 'dev', 'eth0')
      ipn(ns, 'link', 'set', 'eth0', 'up')
      ipn(ns, 'link', 'set', 'lo', 'up')
      ipn(ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
      lab.hosts.push({ ns, ip: `10.201.0.${i}` })
    }
    return lab
  }

  /** One host with only `lo` (up, multicast-capable). */
  static loopback () {
    const lab = new Lab()
    const ns = lab._ns('lo')
    ipn(ns, 'link', 'set', 'lo', 'up')
    lab.hosts.push({ ns, ip: '127.0.0.1' })
    return lab
  }

  constructor () {
    this.prefix = `hsn${process.pid}x${counter++}`
    this.namespaces = []
    this.hosts = []
    this.children = new Set()
  }

  _ns (name) {
    const ns = `${this.prefix}-${name}`
    run(['ip', 'netns', 'add', ns])
    this.namespaces.push(ns)
    live.add(ns)
    return ns
  }

  /** Runs a command inside host `i`'s namespace, synchronously. */
  exec (i, args, opts) {
    return run(['ip', 'netns', 'exec', this.hosts[i].ns, ...args], opts)
  }

  /**
   * Starts `node script ...args` inside host `i`, with an IPC channel. The
   * returned Child collects messages; `timeoutMs` kills it no matter what.
   */
  spawn (i, script, args = [], { timeoutMs = 60000, env = {} } = {}) {
    const proc = spawn('ip', ['netns', 'exec', this.hosts[i].ns, process.execPath, script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...env }
    })
    const child = new Child(proc, timeoutMs, path.basename(script) + '@' + this.hosts[i].ns)
    this.children.add(child)
    proc.on('exit', () => this.children.delete(child))
    return child
  }

  /** Counts packets this host sends to multicast groups (nftables). */
  countMulticast (i) {
    const rules = [
      'table inet hsn {',
      '  counter mcast { }',
      '  chain out { type filter hook output priority 0; ip daddr 224.0.0.0/4 counter name mcast; }',
      '}', ''
    ].join('\n')
    this.exec(i, ['nft', '-f', '-'], { input: rules })
    return () => {
      const out = JSON.parse(this.exec(i, ['nft', '-j', 'list', 'counter', 'inet', 'hsn', 'mcast']))
      const c = out.nftables.find(e => e.counter)
      return c.counter.packets
    }
  }

  async destroy () {
    await Promise.all([...this.children].map(c => c.kill()))
    for (const ns of this.namespaces.reverse()) deleteNs(ns)
    this.namespaces = []
  }
}

class Child {
  constructor (proc, timeoutMs, name) {
    this.proc = proc
    this.name = name
    this.messages = []
    this.waiters = []
    this.stderr = ''
    this.stdout = ''
    this.exited = new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
    proc.stderr.on('data', d => { this.stderr += d })
    proc.stdout.on('data', d => { this.stdout += d })
    proc.on('message', m => {
      this.messages.push(m)
      this.waiters = this.waiters.filter(w => !w(m))
    })
    proc.on('error', () => {})
    this.timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    this.timer.unref()
    proc.on('exit', () => clearTimeout(this.timer))
  }

  send (msg) {
    if (this.proc.connected) this.proc.send(msg)
  }

  /** Resolves with the first message (past or future) that `pred` accepts. */
  wait (pred, timeoutMs = 20000, what = 'message') {
    if (typeof pred === 'string') {
      const type = pred
      what = type
      pred = m => m.type === type
    }
    const seen = this.messages.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proc.off('exit', onexit)
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms\nmessages: ${JSON.stringify(this.messages).slice(0, 2000)}\nstderr: ${this.stderr.slice(-2000)}`))
      }, timeoutMs)
      const onexit = () => setTimeout(() => {
        clearTimeout(timer)
        reject(new Error(`${this.name}: exited before ${what}\nstderr: ${this.stderr.slice(-2000)}`))
      }, 50)
      this.proc.once('exit', onexit)
      this.waiters.push(m => {
        if (!pred(m)) return false
        clearTimeout(timer)
        this.proc.off('exit', onexit)
        resolve(m)
        return true
      })
    })
  }

  async kill () {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL')
    await this.exited
  }
}

function deleteNs (ns) {
  try { run(['ip', 'netns', 'del', ns]) } catch {}
  live.delete(ns)
}

process.on('exit', () => { for (const ns of live) deleteNs(ns) })

/** Runs `fn(lab)` and deletes the lab afterwards, whatever happened. */
async function withLab (lab, fn) {
  try {
    return await fn(lab)
  } finally {
    await lab.destroy()
  }
}

module.exports = { Lab, assertIsolated, withLab }
