// Type definitions for `hyperswarm-native/network`: the API of
// @hyperswarm/network 2.1.0 (a nanoresource with callbacks, not an
// EventEmitter), plus the extras marked as such.
/// <reference types="node" />
import { EventEmitter } from 'events'
import { Socket } from 'net'
import { Duplex } from 'stream'

declare namespace network {
  /** A uTP connection: a Duplex stream that also names its remote end. */
  interface UtpSocket extends Duplex {
    remoteAddress: string
    remotePort: number
  }

  /** A live connection: a `net.Socket` over TCP, a `UtpSocket` over uTP. */
  type Connection = Socket | UtpSocket

  /**
   * A failed dial: the reference's message ('Timeout', 'Request timed out' or
   * 'All sockets failed'), and (not in the reference) a stable `code` to test
   * instead of the message, with the engine's own reason as `cause`.
   */
  interface ConnectError extends Error {
    code: 'ETIMEDOUT' | 'EHOLEPUNCH' | 'ENOPATH' | 'ECONNFAILED' | 'EDESTROYED'
    cause?: Error
  }

  interface HostPort {
    host: string
    port: number
  }

  /** A DHT bootstrap node, as `'host:port'` or `{ host, port }`. */
  type BootstrapNode = string | HostPort

  /** The DHT node that told us about a peer. */
  interface Referrer {
    host: string
    port: number
    /** The node's DHT id, when it sent one. */
    id: Buffer | null
  }

  /** A peer as discovery reports it (DHT or LAN). */
  interface Peer {
    host: string
    port: number
    /** Found on the LAN (mDNS) or listed by a DHT node as sharing our network. */
    local: boolean
    /** The DHT node that listed the peer; null for local peers. */
    referrer: Referrer | null
    /** The 32-byte key the peer was found under. */
    topic: Buffer
    /** Our own address as the answering DHT node saw it; absent for mDNS peers. */
    to?: HostPort
    /** Set once a hole punch through this peer's referrer succeeded. */
    fastHolepunch?: boolean
  }

  /** What `connect` needs: an address, and a referrer to try the uTP path too. */
  interface PeerAddress {
    host: string
    port: number
    local?: boolean
    /** Without one only TCP is dialled. */
    referrer?: Referrer | null
    topic?: Buffer | null
    to?: HostPort
  }

  interface AddressInfo {
    address: string
    family: string
    port: number
  }

  /** Called with an error, or with nothing / null on success. */
  type ErrorCallback = (err?: Error | null) => void

  interface NetworkOptions {
    /** 32-byte DHT node id. Default: a random one. */
    id?: Buffer | null
    /** Bind exactly this port (TCP and UDP share it); one attempt, no fallback. */
    port?: number
    /** First port to try; the next two follow, then OS-chosen ports. */
    preferredPort?: number
    /** Port to announce. Default 0: the DHT records our UDP source port. */
    announcePort?: number
    /** Also announce this host's first non-internal IPv4 address for LAN peers. */
    announceLocalAddress?: boolean
    /** DHT bootstrap nodes. Default: the public hyperdht.org nodes. */
    bootstrap?: BootstrapNode[]
    /**
     * `false`: a full DHT member. `true`: ephemeral. Unset: ephemeral, turning
     * persistent after a while if reachable.
     */
    ephemeral?: boolean
    /** Called once the network is bound. */
    bind?: () => void
    /** Called once the network is fully closed (not when it never bound). */
    close?: () => void
    /** Called for every incoming connection. */
    socket?: (socket: Connection, isTCP: boolean) => void
    /** Not in the reference. `false` turns LAN (mDNS) discovery off. Default `true`. */
    multicast?: boolean
    /**
     * Not in the reference. `false`: dial peers over hole-punched uTP only
     * (peers without a referrer cannot be dialled then). Default `true`.
     */
    tcp?: boolean
    /**
     * Not in the reference. Incoming connections from one IP at most, per
     * transport (TCP; uTP half-open plus established); more are closed at
     * once. 0: no cap. Default 128.
     */
    maxIncomingPerIp?: number
    /** Not in the reference. Multiplies the DHT's per-source limits (request rate, unverified allowance, relays), for a testnet with many nodes behind one address. Default 1: no address is exempt. */
    dhtLimitScale?: number
  }

  interface AnnounceOptions {
    /** Also look for peers under the key. Default `false`. */
    lookup?: boolean
    /** Port to announce. Default: the network's `announcePort`. */
    port?: number
  }

  /** What an announcing topic publishes. */
  interface TopicAnnounce {
    port: number
    localAddress: HostPort | null
  }

  /** The lookup settings of a topic. */
  interface TopicLookup {
    localAddress: HostPort | null
  }

  /**
   * An announce or lookup under one key, over the DHT and the LAN. A DHT
   * round runs at once and then every 5 to 10 minutes.
   */
  interface Topic extends EventEmitter {
    /** The 32-byte key. */
    readonly key: Buffer
    /** What is announced; null for a lookup-only topic. */
    readonly announce: TopicAnnounce | null
    /** Lookup settings; `true` for an announce that also looks up; null for none. */
    readonly lookup: TopicLookup | boolean | null
    readonly destroyed: boolean
    /** Start a DHT round now if one is waiting, and query the LAN again. */
    update (): void
    /** Calls back once the current DHT round has (early-)flushed. */
    flush (cb: ErrorCallback): void
    /** Stops; an announcing topic unannounces first, then emits `close`. */
    destroy (): void

    on (event: 'peer', listener: (peer: Peer) => void): this
    /** A DHT round ended (with its error, if it failed). */
    on (event: 'update', listener: (err?: Error | null) => void): this
    /** `updating`: a DHT round started. `close`: the topic stopped. */
    on (event: 'updating' | 'close', listener: () => void): this
    on<E extends string | symbol> (event: Exclude<E, TopicEventName>, listener: (...args: any[]) => void): this
    once (event: 'peer', listener: (peer: Peer) => void): this
    once (event: 'update', listener: (err?: Error | null) => void): this
    once (event: 'updating' | 'close', listener: () => void): this
    once<E extends string | symbol> (event: Exclude<E, TopicEventName>, listener: (...args: any[]) => void): this
  }

  type TopicEventName = 'peer' | 'update' | 'updating' | 'close'

  /** `nw.discovery`: topics and bootstrap checks (@hyperswarm/discovery 2.0.1). */
  interface Discovery {
    readonly destroyed: boolean
    /**
     * The swarm's own DHT node with @hyperswarm/dht 4.0.1's API (see
     * `hyperswarm-native/dht`): lookups, announces, stores, pings and
     * punches go over the swarm's socket. It has no socket of its own, so
     * `listen()` throws; `destroy()` destroys this discovery.
     */
    readonly dht: import('./dht').HyperDHT
    announce (key: Buffer, options?: { port?: number, localPort?: number, localAddress?: { host: string, port: number }, lookup?: boolean }): Topic
    lookup (key: Buffer, options?: { localAddress?: { host: string, port: number } }): Topic
    lookupOne (key: Buffer, cb: (err: Error | null, peer?: Peer) => void): void
    ping (cb: (err: Error | null, pongs?: Array<{ bootstrap: { host: string, port: number }, rtt: number, pong: { host: string, port: number } | null }>) => void): void
    holepunchable (cb: (err: Error | null, holepunchable?: boolean) => void): void
    flush (cb: (err: null) => void): void
    /**
     * Not set by ours (the engine punches inside). The reference's seam:
     * set it, and `connect` to a peer with a referrer punches through it
     * (after TCP's 30 ms head start), dialling uTP once `cb` is called
     * without an error.
     */
    holepunch?: (peer: PeerAddress, cb: (err?: Error | null) => void) => void
    topics (): Topic[]
    destroy (cb?: () => void): void
  }

  /**
   * `nw.tcp` / `nw.utp`: the listening servers' observable surface. `bind`
   * listens through them; both sit on the one engine.
   */
  interface Listener extends EventEmitter {
    readonly transport: 'tcp' | 'utp'
    readonly listening: boolean
    maxConnections: number | undefined
    /** Binds; then 'listening' or 'error'. */
    listen (port?: number, cb?: () => void): this
    /** The bound address; null when not listening. */
    address (): AddressInfo | null
    /**
     * Stops listening, at once (TCP: dialers are refused from when this
     * returns; the UDP socket uTP shares stays until the resource closes);
     * then 'close'. `listen` again takes the same port back.
     */
    close (cb?: () => void): this
    ref (): this
    unref (): this
  }

  /**
   * The network: one TCP server and one UDP socket (DHT and uTP) on the same
   * port, opened by `bind` and shut by `close`.
   */
  class NetworkResource {
    constructor (options?: NetworkOptions)
    /** The DHT id given in the options, or null. */
    readonly id: Buffer | null
    /** The fixed port from the options; 0 when none. */
    readonly port: number
    /** The first port `bind` tries. */
    preferredPort: number
    /** The port announced by default. */
    announcePort: number
    /** The options object as given (unknown keys are kept). */
    readonly options: NetworkOptions
    /** Live connections: every incoming one and every outgoing one that won its race. */
    readonly sockets: Set<Connection>
    /** The discovery instance once bound; null before that and after close. */
    readonly discovery: Discovery | null
    /** The TCP server as the reference hands it out (see `Listener`). */
    tcp: Listener
    /** The uTP server as the reference hands it out (see `Listener`). */
    utp: Listener
    readonly opening: boolean
    readonly opened: boolean
    readonly closing: boolean
    readonly closed: boolean

    /** Binds (at most once); later calls call back when bound. Sets `preferredPort` first. */
    bind (preferredPort?: number, cb?: ErrorCallback): void
    bind (cb: ErrorCallback): void
    /** Same as `bind(cb)`. */
    open (cb?: ErrorCallback): void
    /** Unannounces, closes every connection and both sockets. Safe to call again. */
    close (cb?: ErrorCallback): void
    /** The bound TCP address; null before binding. */
    address (): AddressInfo | null
    /**
     * Dials TCP and, with a referrer, hole-punches and dials uTP; the first to
     * connect wins. Fails after 10 s or when every path failed.
     */
    connect (peer: PeerAddress, cb: (err: ConnectError | null, socket?: Connection, isTCP?: boolean) => void): void
    /** Announces (and optionally looks up) the 32-byte key. Throws unless bound. */
    announce (key: Buffer, options?: AnnounceOptions): Topic
    /** Looks up the 32-byte key. Throws unless bound. */
    lookup (key: Buffer): Topic
    /** Calls back with the first peer found, then stops looking. Throws unless bound. */
    lookupOne (key: Buffer, cb: (err: Error | null, peer?: Peer) => void): void
    /**
     * hyperswarm-native only (the reference sets `maxConnections` on its two
     * servers instead): whether new incoming connections are taken at all.
     * Default true.
     */
    setAccepting (accepting: boolean): void
    /**
     * hyperswarm-native only: whether the kernel listens on TCP while `tcp`
     * is listening. Off, TCP dialers are refused and can reach us over uTP.
     * Default true; a failure to listen again is a process warning.
     */
    setTcpListening (on: boolean): void
    /**
     * hyperswarm-native only: whether the caller would `connect()` to the
     * next new peer of a looked-up topic at once. On, the engine starts that
     * dial as it finds the peer, and `connect()` with that peer object takes
     * it (a dial nobody takes is closed after the connect timeout). The
     * `./hyperswarm` entry sets it. Default false.
     */
    setSpeculation (on: boolean): void
  }
}

/** Creates a network (unbound until `bind`). */
declare function network (options?: network.NetworkOptions): network.NetworkResource

export = network
