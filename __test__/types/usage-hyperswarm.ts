// Compiled with `tsc --noEmit` by __test__/types.test.js: hyperswarm.d.ts must
// accept hyperswarm 2.15.3's documented usage and reject misuse.
// Imported by package name, as users do (resolved through "exports").
import hyperswarm = require('hyperswarm-native/hyperswarm')
import { Socket } from 'net'
import { createHash } from 'crypto'

const topic = createHash('sha256').update('my-hyperswarm-topic').digest()

// Every option.
const swarm = hyperswarm({
  bootstrap: ['127.0.0.1:49737', { host: 'localhost', port: 49738 }],
  ephemeral: undefined,
  maxPeers: 24,
  maxServerSockets: Infinity,
  maxClientSockets: -1,
  validatePeer: (peer) => !peer.local,
  queue: {
    requeue: [1000, 5000, 15000],
    forget: { unresponsive: 7500, banned: Infinity },
    multiplex: true
  },
  id: Buffer.alloc(32),
  port: 0,
  preferredPort: 49737,
  announcePort: 0,
  announceLocalAddress: true,
  multicast: false,
  tcp: false
})
const bare: hyperswarm.Swarm = hyperswarm()
const viaClass = new hyperswarm.Swarm({ queue: { forget: { banned: 60000 } } })
void bare; void viaClass

// join / leave / status.
swarm.join(topic, { lookup: true, announce: true })
swarm.join(topic, { announce: true }, (err) => { if (err) throw err })
swarm.join(topic, () => {})
swarm.join(topic)
const status = swarm.status(topic)
if (status) {
  const both: boolean = status.announce && status.lookup
  void both
}
swarm.leave(topic)
swarm.leave(topic, () => {})

// Events.
swarm.on('connection', (socket, info) => {
  socket.write('hi')
  if (socket instanceof Socket) socket.setNoDelay(true)
  else console.log(socket.remoteAddress, socket.remotePort)
  const type: 'tcp' | 'utp' = info.type
  const client: boolean = info.client
  const topics: Buffer[] = info.topics
  const stream: hyperswarm.Connection | null = info.stream
  const flags: number[] = [info.status, info.priority, info.retries]
  const bits: boolean[] = [info.firewalled, info.banned, info.prioritised, info.duplicate]
  void type; void client; void topics; void stream; void flags; void bits
  if (info.peer) {
    const host: string = info.peer.host
    const port: number = info.peer.port
    const local: boolean = info.peer.local
    const key: Buffer = info.peer.topic
    const referrer: hyperswarm.Referrer | null = info.peer.referrer
    void host; void port; void local; void key; void referrer
  }
  info.on('topic', (t) => { const k: Buffer = t; void k })
  info.once('duplicate', () => {})
  const dropped: boolean = info.deduplicate(Buffer.alloc(32), Buffer.alloc(32, 1))
  if (!dropped && info.backoff() === false) info.ban()
  info.ban(true)
  info.reconnect(false)
})
swarm.on('disconnection', (socket: hyperswarm.Connection, info: hyperswarm.PeerInfo) => { void socket; void info })
swarm.on('peer', (peer: hyperswarm.Peer) => {
  swarm.connect(peer, (err, socket, isTCP) => {
    if (err) return console.error(err.message)
    const tcp: boolean | undefined = isTCP
    socket!.end()
    void tcp
  })
})
swarm.on('peer-rejected', (peer) => { console.log(peer.host, peer.port) })
swarm.on('updated', ({ key }) => { const k: Buffer = key; void k })
swarm.on('join', (key, opts) => { void key.length; void opts.announce })
swarm.once('leave', (key: Buffer) => { void key })
swarm.on('listening', () => {})
swarm.on('close', () => {})
swarm.on('error', (err) => { console.error(err.message) })
swarm.on('newListener', (name: string | symbol) => { void name })
swarm.off('error', () => {})

// The rest of the surface.
swarm.connectivity((err, info) => {
  if (err) return
  const flags: boolean[] = [info.bound, info.bootstrapped, info.boostrapped, info.holepunched]
  void flags
})
const punchable: boolean | null = swarm.holepunchable()
const natHs: 'unknown' | 'open' | 'consistent' | 'random' | null = swarm.natType()
const remote: hyperswarm.HostPort | null = swarm.remoteAddress()
const addr: hyperswarm.AddressInfo | null = swarm.address()
void punchable; void remote; void addr
swarm.listen()
swarm.listen(49737, (err) => { void err })
swarm.listen(() => {})
swarm.flush((err) => { void err })
for (const socket of swarm.connections) socket.destroy()
const sockets: Set<hyperswarm.Connection> = swarm.network.sockets
void sockets
swarm.destroy()
swarm.destroy((err) => { void err })

// @ts-expect-error unknown option (typo of maxPeers)
hyperswarm({ maxPeer: 3 })
// @ts-expect-error requeue is an array of delays
hyperswarm({ queue: { requeue: 1000 } })
// @ts-expect-error validatePeer gets a peer object
hyperswarm({ validatePeer: (peer: string) => peer.length > 0 })
// @ts-expect-error topics are Buffers
swarm.join('my-topic')
// @ts-expect-error topics are Buffers, not plain Uint8Arrays
swarm.join(new Uint8Array(32))
// @ts-expect-error unknown join option (typo of announce)
swarm.join(topic, { annouce: true })
// @ts-expect-error leave takes a key
swarm.leave()
// @ts-expect-error onleave gets no error argument
swarm.leave(topic, (err: Error) => { void err })
// @ts-expect-error the third connect argument is isTCP, not an info object
swarm.connect({ host: 'h', port: 1 }, (err: Error | null, socket?: hyperswarm.Connection, info?: { type: string }) => { void err; void socket; void info })
// @ts-expect-error connect needs a callback
swarm.connect({ host: 'h', port: 1 })
// @ts-expect-error connection listeners get (socket, info)
swarm.on('connection', (socket: string) => { void socket })
// @ts-expect-error 'updated' passes { key }, not the key
swarm.on('updated', (key: Buffer) => { void key })
// @ts-expect-error connectivity reports an object
swarm.connectivity((err: Error | null, ok: boolean) => { void err; void ok })
// @ts-expect-error flush needs a callback
swarm.flush()
// @ts-expect-error deduplicate takes Buffers
swarm.on('connection', (socket, info) => info.deduplicate('a', 'b'))
// @ts-expect-error type is read-only
swarm.on('connection', (socket, info) => { info.type = 'tcp' })
