'use strict'
// Multicasts three malformed mDNS datagrams (run inside a lab host only).
const dgram = require('dgram')
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
const packets = [
  Buffer.from('not dns at all'),
  Buffer.from([0, 0, 0x84, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0x28]), // 9 answers promised, none there
  Buffer.alloc(12000, 0xff) // over the mDNS size limit
]
let left = packets.length
for (const p of packets) {
  sock.send(p, 5353, '224.0.0.251', () => { if (--left === 0) sock.close() })
}
