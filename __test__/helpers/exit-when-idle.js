'use strict'
// Whether an entry point lets the process exit once nothing is left to do,
// as the reference does (lab hosts only).
//   node exit-when-idle.js <case>
// Cases: hyperswarm-unused, network-unused, network-connect (a TCP dial and
// nothing else), network-bound (bound; closed when the test sends
// { cmd: 'close' }). Every case reports { type: 'drained' } the first time
// its event loop runs dry (node's 'beforeExit'): a bound network must not
// let that happen before it is closed.
const { assertIsolated } = require('./netns')
assertIsolated()
process.channel.unref() // the IPC channel must not be what keeps us alive
const which = process.argv[2]
const opts = { bootstrap: [], multicast: false }
const say = m => process.send(m)
if (which === 'hyperswarm-unused') require('../../hyperswarm')(opts)
if (which === 'network-unused') require('../../network')(opts)
if (which === 'network-connect') {
  const srv = require('net').createServer(s => s.end('hi')).listen(0, '127.0.0.1', () => {
    require('../../network')(opts).connect({ host: '127.0.0.1', port: srv.address().port }, (err, socket) => {
      if (err) throw err
      socket.on('data', d => say({ type: 'data', data: String(d) }))
      socket.on('close', () => srv.close())
    })
  })
}
if (which === 'network-bound') {
  const nw = require('../../network')(opts)
  nw.bind(() => say({ type: 'bound' }))
  process.on('message', m => {
    if (m.cmd === 'close') nw.close(() => say({ type: 'closed' }))
  })
}
let drained = false
process.on('beforeExit', () => {
  if (drained) return
  drained = true
  say({ type: 'drained' })
})
// A hard stop far beyond what any case needs, unref'd so it is not itself a reason to stay.
setTimeout(() => process.exit(3), 20000).unref()
