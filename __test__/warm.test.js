'use strict'
// lib/warm.js: before a swarm's first connection, its socket and stream
// paths are run once over a local socket pair and a stand-in uTP engine, so
// the first peer is not greeted late (bench/nat-matrix.js measures the
// gain). Here: the pair is real and connected, the warm-up runs once per
// process, sends its byte through both paths, closes what it opened and
// keeps nothing alive. No network is used.
const test = require('node:test')
const assert = require('node:assert')
const net = require('net')
const path = require('path')
const { spawnSync } = require('child_process')
const { once } = require('events')

const { socketPair } = require(path.join(__dirname, '..', 'binding'))

test('socketPair gives two connected descriptors that Node can own', async () => {
  const [fa, fb] = socketPair()
  assert.ok(Number.isInteger(fa) && Number.isInteger(fb) && fa !== fb)
  const a = new net.Socket({ fd: fa, readable: true, writable: true })
  const b = new net.Socket({ fd: fb, readable: true, writable: true })
  a.end('through the pair')
  const got = []
  b.on('data', d => got.push(d))
  await once(b, 'end')
  assert.strictEqual(Buffer.concat(got).toString(), 'through the pair')
  a.destroy()
  b.destroy()
  await Promise.all([once(a, 'close'), once(b, 'close')])
})

// In a fresh process, since the warm-up runs once per process.
const CHILD = `
const fs = require('fs')
const path = require(${JSON.stringify(require.resolve('path'))})
const root = ${JSON.stringify(path.join(__dirname, '..'))}
const { socketPair } = require(path.join(root, 'binding'))
const { warm } = require(path.join(root, 'lib', 'warm'))
const UtpStream = require(path.join(root, 'lib', 'utp-stream'))
const fds = () => fs.readdirSync('/proc/self/fd').map(Number)
// Open descriptors but libuv's spare /dev/null, which a loop opens with its
// first stream (any first socket does it; it is no leak).
const counted = () => fds().filter(fd => { try { return fs.readlinkSync('/proc/self/fd/' + fd) !== '/dev/null' } catch { return false } }).length
// (A closed number may be reused at once, by readdir's own descriptor.)
const isSocket = fd => { try { return fs.readlinkSync('/proc/self/fd/' + fd).startsWith('socket:') } catch { return false } }
const before = counted()
const pairs = []
const kinds = []
const spy = () => { const p = socketPair(); pairs.push(p); for (const fd of p) kinds.push(fs.readlinkSync('/proc/self/fd/' + fd).split(':')[0]); return p }
// What the stand-in uTP engine is asked to write, seen from the stream.
const written = []
const origWrite = UtpStream.prototype._write
UtpStream.prototype._write = function (chunk, enc, cb) { written.push(String(chunk)); return origWrite.call(this, chunk, enc, cb) }
warm(spy)
warm(spy)
process.on('exit', () => {
  const out = { calls: pairs.length, written, before, after: counted(), kinds, stillOpen: pairs.flat().filter(isSocket) }
  fs.writeSync(1, JSON.stringify(out) + '\\n')
})
`

test('the warm-up runs once, walks both paths, closes its descriptors and lets the process exit', () => {
  const started = Date.now()
  const r = spawnSync(process.execPath, ['-e', CHILD], { encoding: 'utf8', timeout: 10000 })
  assert.strictEqual(r.status, 0, r.stderr)
  // It exits by itself (nothing was unref'd by hand here), and soon.
  assert.ok(Date.now() - started < 5000, 'the process exits once the warm-up is done')
  const out = JSON.parse(r.stdout.trim().split('\n').pop())
  assert.strictEqual(out.calls, 1, 'one socket pair per process, however many swarms')
  assert.deepStrictEqual(out.kinds, ['socket', 'socket'], 'the pair is two sockets')
  assert.deepStrictEqual(out.written, ['w'], 'one write through a UtpStream')
  assert.deepStrictEqual(out.stillOpen, [], 'both sockets are closed')
  assert.strictEqual(out.after, out.before, 'no descriptor is left open')
})
