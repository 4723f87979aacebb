// Type definitions for `hyperswarm-native/dht`: the API of @hyperswarm/dht
// 4.0.1 (a DHT node over dht-rpc 4.9.6 that also stores values signed or
// addressed by hash), without dht-rpc's raw `command`/`query`/`update` calls.
/// <reference types="node" />
import { EventEmitter } from 'events'
import { Readable } from 'stream'

declare namespace dht {
  interface HostPort {
    host: string
    port: number
  }

  /** A DHT bootstrap node, as `'host:port'` or `{ host, port }`. */
  type BootstrapNode = string | HostPort

  /** A node in our routing table. */
  interface NodeInfo {
    /** The node's 32-byte DHT id. */
    id: Buffer
    host: string
    port: number
  }

  interface AddressInfo {
    address: string
    family: string
    port: number
  }

  /** Called with an error, or with nothing / null on success. */
  type ErrorCallback = (err?: Error | null) => void

  interface DhtOptions {
    /**
     * DHT bootstrap nodes. Default (unset): the public hyperdht.org nodes.
     * `[]`, `false` or `null`: none (the first node of a private network).
     */
    bootstrap?: BootstrapNode[] | false | null
    /** Stay out of other nodes' routing tables, so no one announces or stores with us. Default `false`. */
    ephemeral?: boolean
    /**
     * Turn persistent after 20–30 min if hole-punchable (`'persistent'`).
     * Only with `ephemeral: true`; otherwise the constructor throws.
     */
    adaptive?: boolean
    /** 32-byte DHT node id. Default: a random one. */
    id?: Buffer
    /** Accepted for compatibility and ignored: our node keeps announced peers for its own fixed time. */
    maxAge?: number
    /** Accepted for compatibility and ignored: our node keeps at most 5000 values, with per-source quotas. */
    maxValues?: number
  }

  /** Options of `lookup`, `announce` and `unannounce`. */
  interface PeersOptions {
    /** Port to announce, and to leave out of results. Default: our UDP port. */
    port?: number
    /**
     * Our LAN address: announced for peers behind the same public IP, and
     * asks for theirs (`localPeers`).
     */
    localAddress?: HostPort
  }

  /** One DHT node's answer to a lookup or announce. */
  interface PeersReply {
    /** The node that answered. */
    node: HostPort
    /** Our address as that node saw it. */
    to?: HostPort | null
    /** Peers announced under the topic; null when the reply carried only LAN peers. */
    peers: HostPort[] | null
    /** LAN peers behind our public IP; null without `localAddress`, or when the reply carried none. */
    localPeers: HostPort[] | null
  }

  /**
   * Data of a put stream. Ours emits none (the reference emits one item per
   * node that stored the value); the callback is the way to hear the end.
   */
  type UpdateReply = never

  /** A record as a node holds it, sent as proof with a seq error. */
  interface MutableProof {
    value: Buffer | null
    signature: Buffer | null
    seq: number
    salt: Buffer | null
  }

  /**
   * The stream every lookup, announce, put and get returns: an object-mode
   * Readable of `T`, with per-node warnings and counters.
   */
  interface QueryStream<T, Proof = null> extends Readable {
    /** Replies the operation used (one per `'data'`, and per empty reply to a lookup). */
    readonly responses: number
    /** Warnings: error replies and timeouts. */
    readonly errors: number

    read (size?: number): T | null
    [Symbol.asyncIterator] (): NodeJS.AsyncIterator<T>

    on (event: 'data', listener: (data: T) => void): this
    /**
     * A node answered with an error, or a request timed out. `proof` is the
     * record a node sent with a seq error (mutable put).
     */
    on (event: 'warning', listener: (err: Error, proof?: Proof | null) => void): this
    on (event: 'error', listener: (err: Error) => void): this
    on (event: 'end' | 'close' | 'readable', listener: () => void): this
    on<E extends string | symbol> (event: Exclude<E, QueryStreamEventName>, listener: (...args: any[]) => void): this
    once (event: 'data', listener: (data: T) => void): this
    once (event: 'warning', listener: (err: Error, proof?: Proof | null) => void): this
    once (event: 'error', listener: (err: Error) => void): this
    once (event: 'end' | 'close' | 'readable', listener: () => void): this
    once<E extends string | symbol> (event: Exclude<E, QueryStreamEventName>, listener: (...args: any[]) => void): this
  }

  type QueryStreamEventName = 'data' | 'warning' | 'error' | 'end' | 'close' | 'readable'

  /** An ed25519 key pair: a 32-byte public key, a 64-byte secret key (seed ‖ public key). */
  interface Keypair {
    publicKey: Buffer
    secretKey: Buffer
  }

  interface SignableOptions {
    /** Sequence number signed with the value. Default 0. */
    seq?: number
    /** Up to 64 bytes; one key holds one record per salt. Default: none. */
    salt?: Buffer
  }

  interface SignOptions extends SignableOptions {
    keypair: { secretKey: Buffer, publicKey?: Buffer }
  }

  /** `mutable.put` options: sign with the secret key here, or pass a signature made elsewhere. */
  type MutablePutOptions = SignableOptions & (
    | { keypair: Keypair, signature?: undefined }
    | {
      /** The public key only: the secret key must not be given with a signature. */
      keypair: { publicKey: Buffer, secretKey?: undefined }
      /** An ed25519 signature of `signable(value, { seq, salt })`. */
      signature: Buffer
    }
  )

  /** What a successful `mutable.put` stored. */
  interface MutablePutResult {
    /** The public key: the key to `get` the record by. */
    key: Buffer
    signature: Buffer
    seq: number
    salt: Buffer | undefined
  }

  interface MutableGetOptions {
    /** Only records with at least this seq. Default 0. */
    seq?: number
    /** The salt the record was put with. Default: none. */
    salt?: Buffer
  }

  /** A record `mutable.get` found and verified. */
  interface MutableRecord {
    /** The id of the node that answered; null for an ephemeral one. */
    id: Buffer | null
    value: Buffer
    signature: Buffer
    seq: number
    /** The salt given to `get` (not the one in the reply). */
    salt: Buffer | undefined
  }

  /** An immutable value a get found; its key is its hash. */
  interface ImmutableValue {
    /** The id of the node that answered (our own on a local hit); null for an ephemeral one. */
    id: Buffer | null
    value: Buffer
  }

  /** `node.mutable`: values signed by an ed25519 key, looked up by its public key. */
  interface MutableStore {
    /**
     * Stores a value (at most 1000 bytes) under `opts.keypair.publicKey`.
     * Fails with `ERR_INVALID_SEQ` or `ERR_SEQ_MUST_EXCEED_CURRENT` when a
     * node holds a conflicting record. Throws on bad input.
     */
    put (value: Buffer, opts: MutablePutOptions, cb: (err: Error | null, result?: MutablePutResult) => void): QueryStream<UpdateReply, MutableProof>
    /**
     * Calls back with the first verified record with a seq of at least
     * `opts.seq`, or `{ value: null }`. Without a callback the stream gives
     * every verified record.
     */
    get (key: Buffer, cb: (err: Error | null, result?: MutableRecord | { value: null }) => void): QueryStream<MutableRecord>
    get (key: Buffer, opts?: MutableGetOptions, cb?: (err: Error | null, result?: MutableRecord | { value: null }) => void): QueryStream<MutableRecord>
    /** A new random key pair. */
    keypair (): Keypair
    /** Random bytes (default 32, 16 to 64), or a string hashed to that size (BLAKE2b). */
    salt (size?: number): Buffer
    salt (str: string, size?: number): Buffer
    /** The 64-byte signature `put` would make. */
    sign (value: Buffer, opts: SignOptions): Buffer
    /** The bytes `put` signs (bencoded salt, seq and value), for signing elsewhere. */
    signable (value: Buffer, opts?: SignableOptions): Buffer
    /** A detached ed25519 signature of `msg` itself. */
    cryptoSign (msg: Buffer, keypair: { secretKey: Buffer }): Buffer
  }

  /** `node.immutable`: values addressed by their BLAKE2b-256 hash. */
  interface ImmutableStore {
    /** Stores a value (at most 1000 bytes); calls back with its 32-byte key. Throws on bad input. */
    put (value: Buffer, cb: (err: Error | null, key?: Buffer) => void): QueryStream<UpdateReply>
    /**
     * Calls back with the first value that hashes to `key`, or with
     * `(null, null, null)`. Without a callback the stream gives every one.
     */
    get (key: Buffer, cb?: (err: Error | null, value?: Buffer | null, info?: { id: Buffer | null } | null) => void): QueryStream<ImmutableValue>
  }

  /** Listener signatures of the node's events. */
  interface DhtEvents {
    /** The UDP socket is bound. */
    listening: () => void
    /** The first bootstrap walk ended. */
    ready: () => void
    /** The socket is closed. */
    close: () => void
    /** The socket could not bind (`EADDRINUSE`, `EPERM`, `EACCES`). */
    error: (err: Error) => void
    /** Other socket errors; an adaptive node that failed to turn persistent. */
    warning: (err: Error) => void
    /** A peer announced itself under a topic with us. */
    announce: (topic: Buffer, peer: HostPort) => void
    /** A peer withdrew its announcement. */
    unannounce: (topic: Buffer, peer: HostPort) => void
    /** A peer looked a topic up with us. */
    lookup: (topic: Buffer, peer: HostPort) => void
    /** We relayed a hole punch from `from` to `to`. */
    holepunch: (from: HostPort, to: HostPort) => void
    /** An adaptive node became persistent. */
    persistent: () => void
    /** The routing table reached 5 nodes (once). */
    'initial-nodes': () => void
  }

  type DhtEventName = keyof DhtEvents

  /** A DHT node: routing, peer announcements, and the two value stores. */
  interface HyperDHT extends EventEmitter {
    /** Our 32-byte DHT id. */
    readonly id: Buffer
    /** Whether we stay out of other nodes' routing tables. */
    readonly ephemeral: boolean
    /** The first bootstrap walk has ended. */
    readonly bootstrapped: boolean
    readonly destroyed: boolean
    /** The bootstrap nodes, parsed, in the order given. */
    readonly bootstrapNodes: HostPort[]
    readonly mutable: MutableStore
    readonly immutable: ImmutableStore

    /** Binds the UDP socket (default: any port); otherwise the first request binds it. */
    listen (port?: number, address?: string, cb?: () => void): void
    listen (port: number, cb: () => void): void
    listen (cb: () => void): void
    /** The bound socket's address. Throws before it is bound. */
    address (): AddressInfo
    /** Calls back once bootstrapped (at once if already). */
    ready (cb: () => void): void
    /** Walks towards our own id again. Normally done for you. */
    bootstrap (cb?: ErrorCallback): void
    /** Turns an ephemeral node into a full member. */
    persistent (cb?: ErrorCallback): void
    /** Closes the socket; then `'close'`. Takes no callback. */
    destroy (): void
    /** Calls back with our address as `peer` saw it. */
    ping (peer: HostPort, cb: (err: Error | null, pong?: HostPort) => void): void
    /** Asks `peer.referrer` to relay a UDP hole punch to `peer`. */
    holepunch (peer: HostPort & { referrer: HostPort }, cb: (err: Error | null) => void): void
    /** The routing table's nodes. */
    getNodes (): NodeInfo[]
    /** Adds nodes to the routing table. */
    addNodes (nodes: NodeInfo[]): void
    /** Our public address as DHT nodes report it (port 0 if only the host agrees), or null. */
    remoteAddress (): HostPort | null
    /** Whether enough DHT nodes agree on our address and port. */
    holepunchable (): boolean
    /** Our NAT's class from reports of nodes in at least 3 /24s (not in the reference). */
    natType (): 'unknown' | 'open' | 'consistent' | 'random'

    /** Looks up peers announced under a 32-byte topic. */
    lookup (topic: Buffer, cb: (err: Error | null, replies?: PeersReply[]) => void): QueryStream<PeersReply>
    lookup (topic: Buffer, opts?: PeersOptions | null, cb?: (err: Error | null, replies?: PeersReply[]) => void): QueryStream<PeersReply>
    /** Announces us under a 32-byte topic, looking up at the same time. */
    announce (topic: Buffer, cb: (err: Error | null, replies?: PeersReply[]) => void): QueryStream<PeersReply>
    announce (topic: Buffer, opts?: PeersOptions | null, cb?: (err: Error | null, replies?: PeersReply[]) => void): QueryStream<PeersReply>
    /** Withdraws an announcement (same options as `announce`); its stream gives no data. */
    unannounce (topic: Buffer, cb: (err: Error | null, replies?: PeersReply[]) => void): QueryStream<PeersReply>
    unannounce (topic: Buffer, opts?: PeersOptions | null, cb?: (err: Error | null, replies?: PeersReply[]) => void): QueryStream<PeersReply>

    on<E extends DhtEventName> (event: E, listener: DhtEvents[E]): this
    on<E extends string | symbol> (event: Exclude<E, DhtEventName>, listener: (...args: any[]) => void): this
    once<E extends DhtEventName> (event: E, listener: DhtEvents[E]): this
    once<E extends string | symbol> (event: Exclude<E, DhtEventName>, listener: (...args: any[]) => void): this
    addListener<E extends DhtEventName> (event: E, listener: DhtEvents[E]): this
    addListener<E extends string | symbol> (event: Exclude<E, DhtEventName>, listener: (...args: any[]) => void): this
    prependListener<E extends DhtEventName> (event: E, listener: DhtEvents[E]): this
    prependListener<E extends string | symbol> (event: Exclude<E, DhtEventName>, listener: (...args: any[]) => void): this
    off<E extends DhtEventName> (event: E, listener: DhtEvents[E]): this
    off<E extends string | symbol> (event: Exclude<E, DhtEventName>, listener: (...args: any[]) => void): this
    removeListener<E extends DhtEventName> (event: E, listener: DhtEvents[E]): this
    removeListener<E extends string | symbol> (event: Exclude<E, DhtEventName>, listener: (...args: any[]) => void): this
  }
}

/** Creates a DHT node; it bootstraps on the next tick. A factory: not for `new`. */
declare function dht (opts?: dht.DhtOptions): dht.HyperDHT

export = dht
