'use strict'
// Misbehaving TCP peers (run inside a lab host only).
//   node rude.js reset <port>      connect, write, then reset the connection
//   node rude.js halfclose <port>  connect, write, end our side, stay open 1 s
//   node rude.js server            listen; reset every connection at once
const net = require('net')
const [mode, port] = process.argv.slice(2)
const send = m => process.send && process.send(m)

if (mode === 'server') {
  const server = net.createServer(s => s.resetAndDestroy())
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: server.address().port }))
  setTimeout(() => process.exit(0), 30000).unref()
} else {
  const s = net.connect(Number(port), '127.0.0.1', () => {
    s.write('hello, then trouble')
    if (mode === 'reset') {
      setTimeout(() => { s.resetAndDestroy(); send({ type: 'done' }) }, 100)
    } else {
      s.end()
      setTimeout(() => { s.destroy(); send({ type: 'done' }) }, 1000)
    }
  })
  s.on('error', err => send({ type: 'done', error: err.message }))
}
