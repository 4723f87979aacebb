// Compiled with `tsc --noEmit` by __test__/types.test.js: network.d.ts must
// accept @hyperswarm/network 2.1.0's documented usage and reject misuse.
// Imported by package name, as users do (resolved through "exports").
import network = require('hyperswarm-native/network')
import { Socket } from 'net'

const key = Buffer.alloc(32)

// Every option; the callbacks the reference takes as options.
const nw = network({
  id: Buffer.alloc(32),
  port: 0,
  preferredPort: 49737,
  announcePort: 0,
  announceLocalAddress: true,
  bootstrap: ['127.0.0.1:49737', { host: 'localhost', port: 49738 }],
  ephemeral: false,
  multicast: false,
  tcp: true,
  bind () {},
  close () {},
  socket (socket: network.Connection, isTCP: boolean) {
    if (isTCP && socket instanceof Socket) socket.setNoDelay(true)
    socket.write('hi')
  }
})
const bare: network.NetworkResource = network()
const viaClass = new network.NetworkResource({ ephemeral: true })
void bare; void viaClass

// Properties.
const sockets: Set<network.Connection> = nw.sockets
const ports: number[] = [nw.port, nw.preferredPort, nw.announcePort]
const options: network.NetworkOptions = nw.options
const state: boolean[] = [nw.opening, nw.opened, nw.closing, nw.closed]
const id: Buffer | null = nw.id
const discovery: unknown = nw.discovery
void sockets; void ports; void options; void state; void id; void discovery

// The reference's punch seam, set by the application.
if (nw.discovery) {
  nw.discovery.holepunch = (peer: network.PeerAddress, cb: (err?: Error | null) => void) => { void peer; setImmediate(cb) }
  // @ts-expect-error: the callback takes an error, not a port
  nw.discovery.holepunch = (peer: network.PeerAddress, cb: (port: number) => void) => { void peer; cb(1) }
}
nw.tcp.close(() => nw.tcp.listen(0))

// bind / open / close in every documented form.
nw.bind()
nw.bind(0)
nw.bind(49737, (err) => { if (err) throw err })
nw.bind((err?: Error | null) => { void err })
nw.open(() => {})
const addr: network.AddressInfo | null = nw.address()
if (addr) {
  const port: number = addr.port
  const family: string = addr.family
  void port; void family
}

nw.bind(() => {
  const topic: network.Topic = nw.announce(key, { lookup: true, port: 0 })
  const k: Buffer = topic.key
  const announced: network.TopicAnnounce | null = topic.announce
  const destroyed: boolean = topic.destroyed
  void k; void announced; void destroyed; void topic.lookup
  topic.on('peer', (peer) => {
    const host: string = peer.host
    const local: boolean = peer.local
    const topicKey: Buffer = peer.topic
    const via: Buffer | null | undefined = peer.referrer?.id
    const seenAs: string | undefined = peer.to?.host
    void host; void local; void topicKey; void via; void seenAs
  })
  topic.on('update', (err) => { if (err) console.error(err.message) })
  topic.on('updating', () => {})
  topic.once('close', () => {})
  topic.update()
  topic.flush(() => topic.destroy())

  nw.announce(key)
  const lookup = nw.lookup(key)
  lookup.on('peer', (peer: network.Peer) => {
    nw.connect(peer, (err, socket, isTCP) => {
      if (err) return console.error(err.code === 'ETIMEDOUT' ? 'timed out' : err.message)
      if (socket instanceof Socket) socket.setNoDelay(true)
      else if (socket) console.log(socket.remoteAddress, socket.remotePort, isTCP === false)
      socket!.end()
    })
  })

  nw.lookupOne(key, (err, peer) => {
    if (err) return
    nw.connect(peer!, (err, socket) => {
      if (err) throw err
      socket!.write('Hello World!')
    })
  })

  // connect needs only an address; a referrer enables the uTP path.
  nw.connect({ host: '127.0.0.1', port: 1 }, () => {})
  nw.connect({ host: '10.0.0.2', port: 2, referrer: { host: '10.0.0.1', port: 49737, id: null } }, () => {})
})

nw.close()
nw.close((err) => { void err })

// @ts-expect-error unknown option
network({ maxPeers: 3 })
// @ts-expect-error ports are numbers
network({ port: '49737' })
// @ts-expect-error the socket option gets (socket, isTCP), not an info object
network({ socket: (socket: Socket, info: { type: string }) => { void socket; void info } })
// @ts-expect-error the preferred port is a number
nw.bind('49737', () => {})
// @ts-expect-error keys are Buffers
nw.announce('topic')
// @ts-expect-error keys are Buffers, not plain Uint8Arrays
nw.lookup(new Uint8Array(32))
// @ts-expect-error announce options are { lookup, port }
nw.announce(key, { announce: true })
// @ts-expect-error lookupOne needs a callback
nw.lookupOne(key)
// @ts-expect-error the third connect argument is isTCP, a boolean
nw.connect({ host: 'h', port: 1 }, (err: Error | null, socket?: network.Connection, info?: { type: string }) => { void err; void socket; void info })
// @ts-expect-error a peer needs a port
nw.connect({ host: 'h' }, () => {})
// @ts-expect-error NetworkResource is not an EventEmitter
nw.on('connection', () => {})
// @ts-expect-error topics emit peers, not strings
nw.lookup(key).on('peer', (peer: string) => { void peer })
