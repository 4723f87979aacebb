'use strict'
// Runs the connection paths once, locally, before the first real
// connection needs them. V8 compiles a function on its first call, and the
// first socket a swarm hands out walks a long cold path: `net.Socket` from a
// descriptor, stream setup, the first write and read. In the NAT lab that
// cold path held our first hello back 1.3–4.8 ms after the TCP handshake
// (0.7–1.0 ms warm), enough to make a peer of ours slower to greet a
// reference dialler than a reference peer is. The reference does its own
// warming for free: its listener's sockets are made on the same thread.
//
// Nothing here touches the network: a TCP connection's JS path is walked
// over a local socket pair (the same `net.Socket` code; only the handle
// type differs), and a uTP connection's over a UtpStream whose engine is a
// stand-in that answers in process. Once per process, a turn of the event
// loop after the first swarm is made; a failure only means no warming.
const net = require('net')
const UtpStream = require('./utp-stream')

let warmed = false

function warm (socketPair) {
  if (warmed) return
  warmed = true
  setImmediate(() => {
    try {
      warmNet(socketPair())
    } catch {}
    try {
      warmUtp()
    } catch {}
  })
}

function warmNet ([fa, fb]) {
  const opts = fd => ({ fd, readable: true, writable: true })
  const a = new net.Socket(opts(fa))
  const b = new net.Socket(opts(fb))
  for (const s of [a, b]) {
    s.unref()
    s.on('error', () => s.destroy())
    s.setNoDelay(true)
  }
  b.once('data', () => {
    a.destroy()
    b.destroy()
  })
  a.write('w')
}

function warmUtp () {
  let stream = null
  const native = {
    utpRead () {},
    utpWrite (id, request, chunk) {
      setImmediate(() => {
        stream._onnative({ kind: 'written', request })
        stream._onnative({ kind: 'data', data: chunk })
      })
    },
    utpShutdown () {},
    utpClose () {}
  }
  stream = new UtpStream(native, 0, { remoteHost: '127.0.0.1', remotePort: 0 })
  stream.on('error', () => {})
  stream.once('data', () => stream.destroy())
  stream.write('w')
}

module.exports = { warm }
