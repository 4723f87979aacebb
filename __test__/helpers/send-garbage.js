'use strict'
// Multicasts three malformed mDNS datagrams (run inside a lab host only).
const dgram = require('dgram')
const os = require('os')

// Only inside a lab host: every address must be loopback or the lab LAN's.
const addrs = Object.values(os.networkInterfaces()).flat().filter(a => a.family === 'IPv4')
if (!addrs.every(a => a.address.startsWith('127.') || a.address.startsWith('10.201.0.'))) {
  console.error('refusing to send: not inside a lab namespace (see __test__/helpers/netns.js)')
  process.exit(3)
}
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
