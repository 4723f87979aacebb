// Compiled with `tsc --noEmit` by __test__/types.test.js: the typings must
// accept the seed's documented usage and reject misuse.
import network = require('../..')

const net = network({ bootstrap: ['127.0.0.1:49737', { host: 'localhost', port: 1 }], ephemeral: true, multicast: false })
network({ relay: true })
network({ relay: { port: 49738, maxPairs: 4, rate: 65536 } })
const topic = Buffer.alloc(32)
net.join(topic, { lookup: true, announce: true })
net.join(new Uint8Array(32))
net.leave(topic)
net.on('connection', (socket: network.Connection, details: network.ConnectionDetails) => {
  const type: 'tcp' | 'utp' | 'relay' = details.type
  const relay: string | undefined = details.relay
  void relay
  const client: boolean = details.client
  if (details.peer) {
    const host: string = details.peer.host
    const local: boolean = details.peer.local
    void host; void local
  }
  socket.write('hi')
  void type; void client
})
net.on('peer', (peer: network.Peer) => {
  net.connect(peer, (err, socket, details) => {
    if (err) {
      const code: 'ETIMEDOUT' | 'EHOLEPUNCH' | 'ENOPATH' | 'ECONNFAILED' | 'EDESTROYED' = err.code
      return void code
    }
    socket!.end()
    void details
  })
})
const addr: network.AddressInfo | null = net.address()
void addr
net.destroy(() => {})

// @ts-expect-error join needs a topic
net.join()
// @ts-expect-error options must be an object
network(42)
// @ts-expect-error connect needs a callback
net.connect({ host: 'h', port: 1 })

// Additions: DHT-derived facts, counters, the standalone DHT node.
const punchable: boolean = net.holepunchable()
const nat: 'unknown' | 'open' | 'consistent' | 'random' = net.natType()
const natStat: string | undefined = net.stats()?.natType
const remote: { host: string, port: number } | null = net.remoteAddress()
const asClass: network.Network = new network.Network({ multicast: false })
void punchable; void remote; void asClass
const node = new network.DhtNode({ port: 0, bootstrap: ['127.0.0.1:49737'], ephemeral: false })
const where: { host: string, port: number } = node.address()
const known: number | null = node.nodes()
node.destroy()
void where; void known
// @ts-expect-error DhtNode ports are numbers
new network.DhtNode({ port: '1' })
