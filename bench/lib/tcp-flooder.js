'use strict'
// Opens many idle TCP connections to one port, for bench/tcp-flood.js and
// bench/emfile.js, run inside the lab.
//   node tcp-flooder.js <port> <count> [sources]
// sources: how many local addresses to spread them over (127.0.0.1,
// 127.0.0.2, …; default 1: one IP). At most 200 connects are in flight at
// once. Each connection is held open, never written to.
//
// Messages: ready; on { cmd: 'open' }: opened { connected, failed, open,
// pending } where `open` counts connections that connected and have not
// been closed by the other side; { cmd: 'exit' }.
const guard = require('./guard')
guard.child({ deadlineMs: 300000 })

const net = require('net')

const [portArg, countArg, sourcesArg = '1'] = process.argv.slice(2)
const port = Number(portArg)
const count = Number(countArg)
const sources = Number(sourcesArg)
const IN_FLIGHT = 200
const CONNECT_TIMEOUT_MS = 5000

let connected = 0
let failed = 0
let open = 0
let started = 0
let pending = 0
const sockets = []

function next () {
  while (pending < IN_FLIGHT && started < count) {
    const i = started++
    pending++
    const localAddress = `127.0.0.${1 + (i % sources)}`
    const socket = net.connect({ host: '127.0.0.1', port, localAddress })
    sockets.push(socket)
    let done = false
    const settle = ok => {
      if (done) return
      done = true
      clearTimeout(timer)
      pending--
      if (ok) {
        connected++
        open++
        socket.once('close', () => { open-- })
      } else {
        failed++
      }
      next()
    }
    // A connect stuck in the peer's full backlog counts as failed here, and
    // stays pending in the kernel; the bench only needs the tally.
    const timer = setTimeout(() => settle(false), CONNECT_TIMEOUT_MS)
    socket.once('connect', () => settle(true))
    socket.once('error', () => settle(false))
    socket.on('error', () => {})
    socket.on('data', () => {})
  }
}

process.on('message', m => {
  if (m.cmd === 'start') next()
  if (m.cmd === 'open') process.send({ type: 'opened', connected, failed, open, pending, started })
  if (m.cmd === 'exit') {
    for (const s of sockets) s.destroy()
    process.exit(0)
  }
})
process.send({ type: 'ready' })
