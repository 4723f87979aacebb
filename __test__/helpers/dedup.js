'use strict'
// The id handshake an application runs before deduplicating (hyperswarm
// 2.x leaves it to the app): on every connection each side writes its
// 32-byte id first, reads the other's, and calls info.deduplicate(). Bytes
// after the id are re-emitted as 'payload' on the socket.

/** Wires `swarm`; returns the live sockets and the infos dropped as duplicates. */
function exchangeIds (swarm, id) {
  const live = new Set()
  const dropped = []
  swarm.on('connection', (socket, info) => {
    socket.on('error', () => {})
    live.add(socket)
    socket.once('close', () => live.delete(socket))
    info.once('duplicate', () => dropped.push(info))
    socket.write(id)
    let got = Buffer.alloc(0)
    const ondata = d => {
      got = Buffer.concat([got, d])
      if (got.length < 32) return
      socket.removeListener('data', ondata)
      info.deduplicate(id, got.subarray(0, 32))
      const rest = got.subarray(32)
      if (rest.length) socket.emit('payload', rest)
      socket.on('data', d => socket.emit('payload', d))
    }
    socket.on('data', ondata)
  })
  return { live, dropped }
}

module.exports = { exchangeIds }
