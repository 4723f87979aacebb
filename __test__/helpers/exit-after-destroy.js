'use strict'
// Two swarms connect over loopback, then both are destroyed and this script
// does nothing more: the process must exit by itself (run in a lab only).
const network = require('../..')
const crypto = require('crypto')

const topic = crypto.randomBytes(32)
const a = network()
const b = network()
let connections = 0
const onconnection = socket => {
  socket.write('x')
  if (++connections === 2) shutdown()
}
a.on('connection', onconnection)
b.on('connection', onconnection)
a.join(topic, { announce: true, lookup: true })
b.join(topic, { announce: true, lookup: false })

let left = 2
function shutdown () {
  const done = () => {
    if (--left === 0) process.stdout.write(`destroyed ${Date.now()}\n`)
  }
  a.destroy(done)
  b.destroy(done)
}
