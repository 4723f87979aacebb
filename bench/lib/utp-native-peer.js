'use strict'
// One utp-native@2.5.3 peer for __test__/utp.test.js and
// bench/utp-throughput.js, run inside the lab.
//   node utp-native-peer.js server <port> <sendBytes>
//   node utp-native-peer.js client <host:port> <sendBytes> [after-end]
// One connection: sends `sendBytes` random bytes with backpressure, then
// end()s (with `after-end`: only starts sending once the peer has ended,
// to test half-close); SHA-256s what it sends and receives. Messages: { type:
// 'listening', port } (server), then { type: 'done', sent, received,
// shaSent, shaRecv, secs, endSecs, error }.
const guard = require('./guard')
guard.child({ deadlineMs: 300000 })

const crypto = require('crypto')
const utp = require('utp-native')

const [mode, where, sendArg, flag] = process.argv.slice(2)
const afterEnd = flag === 'after-end'
const total = Number(sendArg)
const send = m => process.send(m)

function run (sock, started) {
  const sentHash = crypto.createHash('sha256')
  const recvHash = crypto.createHash('sha256')
  let sent = 0
  let received = 0
  let endSecs = null
  let error = null
  const secs = () => Number(process.hrtime.bigint() - started) / 1e9

  sock.on('data', d => {
    recvHash.update(d)
    received += d.length
  })
  sock.on('end', () => {
    endSecs = secs()
    if (afterEnd) pump()
  })
  sock.on('error', err => { error = err.code || err.message })
  sock.on('close', () => {
    send({ type: 'done', sent, received, shaSent: sentHash.digest('hex'), shaRecv: recvHash.digest('hex'), secs: secs(), endSecs, error })
    setTimeout(() => process.exit(0), 100)
  })

  const CHUNK = 64 * 1024
  function pump () {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent)
      const buf = crypto.randomBytes(n)
      sentHash.update(buf)
      sent += n
      if (!sock.write(buf)) return sock.once('drain', pump)
    }
    sock.end()
  }
  if (!afterEnd) pump()
}

if (mode === 'server') {
  const server = utp.createServer(sock => run(sock, process.hrtime.bigint()))
  server.listen(Number(where), () => send({ type: 'listening', port: server.address().port }))
} else if (mode === 'client') {
  const [host, port] = where.split(':')
  const started = process.hrtime.bigint()
  const sock = utp.connect(Number(port), host)
  run(sock, started)
} else {
  throw new Error('mode must be server or client')
}
