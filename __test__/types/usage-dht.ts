// Compiled with `tsc --noEmit` by __test__/types.test.js: dht.d.ts must
// accept @hyperswarm/dht 4.0.1's documented usage and reject misuse.
// Imported by package name, as users do (resolved through "exports").
import dht = require('hyperswarm-native/dht')
import { createHash } from 'crypto'

const topic = createHash('sha256').update('my-topic').digest()

// Every option, and the three ways to say "no bootstrap nodes".
const node = dht({
  bootstrap: ['127.0.0.1:49737', { host: 'localhost', port: 49738 }],
  ephemeral: true,
  adaptive: true,
  id: Buffer.alloc(32),
  maxAge: 12 * 60 * 1000,
  maxValues: 5000
})
const first: dht.HyperDHT = dht({ bootstrap: [] })
const second = dht({ bootstrap: false, ephemeral: false })
const third = dht({ bootstrap: null })
const bare = dht()
void first; void second; void third; void bare

// Properties.
const id: Buffer = node.id
const flags: boolean[] = [node.ephemeral, node.bootstrapped, node.destroyed]
const boot: dht.HostPort[] = node.bootstrapNodes
void id; void flags; void boot

// Socket and routing.
node.listen()
node.listen(49737)
node.listen(49737, '127.0.0.1')
node.listen(49737, '127.0.0.1', () => {})
node.listen(49737, () => {})
node.listen(() => {
  const addr: dht.AddressInfo = node.address()
  const port: number = addr.port
  void port
})
node.ready(() => {
  const remote = node.remoteAddress()
  if (remote) console.log(remote.host, remote.port)
  const punchable: boolean = node.holepunchable()
  const nat: 'unknown' | 'open' | 'consistent' | 'random' = node.natType()
  void punchable
})
node.bootstrap()
node.bootstrap((err) => { if (err) console.error(err.message) })
node.persistent()
node.persistent((err?: Error | null) => { void err })
node.ping({ host: '127.0.0.1', port: 49737 }, (err, pong) => {
  if (err) return console.error(err.message)
  const seenAs: string = pong!.host
  void seenAs
})
node.holepunch({ host: '10.0.0.2', port: 1, referrer: { host: '10.0.0.1', port: 49737 } }, (err) => {
  if (err) console.error(err.message)
})
const nodes: dht.NodeInfo[] = node.getNodes()
node.addNodes(nodes)
node.addNodes([{ id: Buffer.alloc(32), host: '127.0.0.1', port: 49737 }])

// Events.
node.on('listening', () => {})
node.once('ready', () => {})
node.on('close', () => {})
node.on('error', (err) => { const code: unknown = (err as NodeJS.ErrnoException).code; void code })
node.on('warning', (err: Error) => { void err })
node.on('announce', (t, peer) => {
  const key: Buffer = t
  const host: string = peer.host
  void key; void host
})
node.on('unannounce', (t: Buffer, peer: dht.HostPort) => { void t; void peer })
node.on('lookup', (t, peer) => { void t; void peer.port })
node.on('holepunch', (from, to) => { console.log(from.host, to.port) })
node.once('persistent', () => {})
node.on('initial-nodes', () => {})
for (const n of node.getNodes()) { const nid: Buffer = n.id; void nid }
node.on('some-other-event', (a: number, b: string) => { void a; void b })
node.off('close', () => {})

// The README's announce / lookup / unannounce flow.
node.announce(topic, { port: 12345 }, (err) => {
  if (err) throw err
  node.lookup(topic)
    .on('data', (data) => {
      const from: string = data.node.host
      const peers: dht.HostPort[] | null = data.peers
      const local: dht.HostPort[] | null = data.localPeers
      const to: dht.HostPort | null | undefined = data.to
      void from; void peers; void local; void to
    })
    .on('end', () => {
      node.unannounce(topic, { port: 12345 }, () => node.destroy())
    })
})
node.announce(topic, { localAddress: { host: '192.168.100.100', port: 20000 } })
node.announce(topic)
node.lookup(topic, (err, replies) => {
  if (err) return
  for (const r of replies!) console.log(r.node.port, (r.peers || []).length)
})
node.lookup(topic, null, () => {})
node.unannounce(topic, () => {})
const stream: dht.QueryStream<dht.PeersReply> = node.lookup(topic, { port: 1, localAddress: { host: '10.0.0.1', port: 2 } })
const counters: number[] = [stream.responses, stream.errors]
void counters
stream.on('warning', (err) => console.error(err.message))
stream.once('end', () => {})
stream.destroy()
async function iterate () {
  for await (const reply of node.lookup(topic)) {
    const r: dht.PeersReply = reply
    void r
  }
}
void iterate

// Immutable values.
const value = Buffer.from('hello')
node.immutable.put(value, (err, key) => {
  if (err) return console.error(err.message)
  const k: Buffer = key!
  node.immutable.get(k, (err, found, info) => {
    if (err) return
    if (found) {
      const bytes: Buffer = found
      const from: Buffer | null = info!.id
      void bytes; void from
    }
  })
  node.immutable.get(k)
    .on('data', ({ id, value }) => { const v: Buffer = value; void id; void v })
    .on('end', () => {})
})

// Mutable values.
const keypair = node.mutable.keypair()
const pk: Buffer = keypair.publicKey
const sk: Buffer = keypair.secretKey
const salt: Buffer = node.mutable.salt()
const salts: Buffer[] = [node.mutable.salt(16), node.mutable.salt('hello'), node.mutable.salt('hello', 64)]
void pk; void sk; void salts

const put = node.mutable.put(value, { keypair, seq: 0, salt }, (err, result) => {
  if (err) return console.error(err.message)
  const { key, signature, seq } = result!
  const s: Buffer | undefined = result!.salt
  void signature; void seq; void s
  node.mutable.get(key, { seq: 0, salt }, (err, record) => {
    if (err) return
    if (!record || record.value === null) return console.log('not found')
    const r: dht.MutableRecord = record
    console.log(r.value.toString(), r.seq, r.signature.length, r.id)
  })
  node.mutable.get(key, (err, record) => { if (!err) console.log(record?.value) })
  node.mutable.get(key, { salt })
    .on('data', (record) => { const seq: number = record.seq; void seq })
  node.mutable.get(key)
})
put.on('warning', (err, proof) => {
  console.error(err.message)
  if (proof) console.log(proof.seq, proof.value)
})

// Out-of-band signing: a signature and the public key only.
const signable: Buffer = node.mutable.signable(value, { salt, seq: 1 })
const signable0: Buffer = node.mutable.signable(value)
void signable; void signable0
const signature = node.mutable.sign(value, { keypair, seq: 1, salt })
node.mutable.put(value, { keypair: { publicKey: keypair.publicKey }, signature, seq: 1, salt }, () => {})

// Misuse.
// @ts-expect-error a factory: call it without `new`
new dht()
// @ts-expect-error bootstrap entries are 'host:port' or { host, port }
dht({ bootstrap: [49737] })
// @ts-expect-error bootstrap is a list, not one entry
dht({ bootstrap: '127.0.0.1:49737' })
// @ts-expect-error ephemeral is a boolean
dht({ ephemeral: 'yes' })
// @ts-expect-error ids are Buffers
dht({ id: 'abc' })
// @ts-expect-error maxValues is a number
dht({ maxValues: '5000' })
// @ts-expect-error unknown option
dht({ port: 49737 })
// @ts-expect-error topics are Buffers
node.lookup('topic')
// @ts-expect-error topics are Buffers, not plain Uint8Arrays
node.announce(new Uint8Array(32))
// @ts-expect-error the localAddress needs a port
node.announce(topic, { localAddress: { host: '10.0.0.1' } })
// @ts-expect-error keys are Buffers
node.immutable.get('0e5751c0')
// @ts-expect-error keys are Buffers
node.mutable.get(keypair.publicKey.toString('hex'), () => {})
// @ts-expect-error values are Buffers
node.immutable.put('hello', () => {})
// @ts-expect-error immutable.put needs a callback
node.immutable.put(value)
// @ts-expect-error mutable.put needs a callback
node.mutable.put(value, { keypair })
// @ts-expect-error mutable.put needs options with a keypair
node.mutable.put(value, () => {})
// @ts-expect-error a signature goes with the public key only
node.mutable.put(value, { keypair, signature }, () => {})
// @ts-expect-error without a signature the secret key is needed
node.mutable.put(value, { keypair: { publicKey: pk } }, () => {})
// @ts-expect-error seq is a number
node.mutable.put(value, { keypair, seq: '1' }, () => {})
// @ts-expect-error salts are Buffers
node.mutable.get(pk, { salt: 'hello' }, () => {})
// @ts-expect-error salt() takes a string or a size, not a Buffer
node.mutable.salt(Buffer.from('hello'))
// @ts-expect-error sign needs the keypair
node.mutable.sign(value, { seq: 1 })
// @ts-expect-error the result may be missing: check err first
node.immutable.put(value, (err, key) => { void err; key.toString('hex') })
// @ts-expect-error the put callback gets one result object, not (key, signature)
node.mutable.put(value, { keypair }, (err: Error | null, key: Buffer, sig: Buffer) => { void err; void key; void sig })
// @ts-expect-error a found mutable record may be { value: null }
node.mutable.get(pk, (err, record) => { if (!err) void record!.seq })
// @ts-expect-error holepunch needs a referrer
node.holepunch({ host: '10.0.0.2', port: 1 }, () => {})
// @ts-expect-error holepunch needs a callback
node.holepunch({ host: '10.0.0.2', port: 1, referrer: { host: '10.0.0.1', port: 1 } })
// @ts-expect-error ping calls back with the pong
node.ping({ host: '127.0.0.1', port: 1 })
// @ts-expect-error destroy takes no callback
node.destroy(() => {})
// @ts-expect-error announce events carry (topic, peer)
node.on('announce', (peer: dht.HostPort) => { void peer })
// @ts-expect-error holepunch events carry hosts and ports
node.on('holepunch', (from: string) => { void from })
// @ts-expect-error lookup data is a reply object, not a peer list
node.lookup(topic).on('data', (peers: dht.HostPort[]) => { void peers })
// @ts-expect-error the counters are read-only
stream.responses = 0
