// Type definitions for `hyperswarm-native/hyperswarm`: the API of hyperswarm
// 2.15.3 (a swarm over @hyperswarm/network 2.x that queues, dials, retries
// and de-duplicates peers), plus the extras marked as such.
/// <reference types="node" />
import { EventEmitter } from 'events'
import network = require('./network')

declare namespace hyperswarm {
  type UtpSocket = network.UtpSocket
  /** A live connection: a `net.Socket` over TCP, a `UtpSocket` over uTP. */
  type Connection = network.Connection
  type HostPort = network.HostPort
  type BootstrapNode = network.BootstrapNode
  type Referrer = network.Referrer
  type Peer = network.Peer
  type PeerAddress = network.PeerAddress
  type AddressInfo = network.AddressInfo
  type ErrorCallback = network.ErrorCallback
  type NetworkResource = network.NetworkResource

  /** When the peer queue forgets a peer it gave up on, in ms. */
  interface ForgetOptions {
    /** A peer that stopped answering. Default 7500. */
    unresponsive?: number
    /** A banned peer. Default `Infinity` (never). */
    banned?: number
  }

  interface QueueOptions {
    /** Wait before each retry of a failing peer, in ms. Default `[1000, 5000, 15000]`. */
    requeue?: number[]
    forget?: ForgetOptions
    /** One queue entry (and connection) per host:port across topics. Default `false`. */
    multiplex?: boolean
  }

  interface SwarmOptions {
    /** Limit on dialling + connected clients + incoming connections. Default 24. */
    maxPeers?: number
    /** Limit on incoming connections. Default `Infinity`; -1 refuses all. */
    maxServerSockets?: number
    /** Limit on outgoing attempts + connections. Default `Infinity`. */
    maxClientSockets?: number
    /** Filter for discovered peers; false rejects the peer (`peer-rejected`). */
    validatePeer?: (peer: Peer) => boolean
    /** Retry and forget timing of the peer queue. */
    queue?: QueueOptions
    /** DHT bootstrap nodes. Default: the public hyperdht.org nodes. */
    bootstrap?: BootstrapNode[]
    /**
     * `false`: a full DHT member. `true`: ephemeral. Unset: ephemeral, turning
     * persistent after a while if reachable.
     */
    ephemeral?: boolean
    /** 32-byte DHT node id. Default: a random one. */
    id?: Buffer | null
    /** Bind exactly this port (TCP and UDP share it). */
    port?: number
    /** First port to try when binding. */
    preferredPort?: number
    /** Port to announce. Default 0: the DHT records our UDP source port. */
    announcePort?: number
    /** Also announce this host's LAN IPv4 address. */
    announceLocalAddress?: boolean
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

  interface JoinOptions {
    /** Be listed as a connectable peer under the topic. Default `false`. */
    announce?: boolean
    /** Look for peers and connect to them. Default `true`; `announce` and `lookup` cannot both be false. */
    lookup?: boolean
  }

  /** How a joined topic is being used. */
  interface JoinStatus {
    announce: boolean
    lookup: boolean
  }

  interface Connectivity {
    /** The sockets are bound. */
    bound: boolean
    /** The bootstrap nodes answered. */
    bootstrapped: boolean
    /** The reference's misspelt duplicate of `bootstrapped`. */
    boostrapped: boolean
    /** Every bootstrap node saw the same public address and port. */
    holepunched: boolean
  }

  /**
   * Describes one peer connection and drives its reconnects (`info` in the
   * `connection` event). The same object is reused when a dialled peer is
   * connected again.
   */
  interface PeerInfo extends EventEmitter {
    /** True if we dialled. */
    readonly client: boolean
    /** The discovered peer we dialled; null for incoming connections. */
    readonly peer: Peer | null
    /**
     * `'tcp'` once a TCP connection was made with this info, else `'utp'`
     * (a later uTP connection keeps `'tcp'`).
     */
    readonly type: 'tcp' | 'utp'
    /** The current connection, or null. */
    readonly stream: Connection | null
    /** Flag bits: 1 proven, 2 reconnect, 4 banned, 8 active, 16 tried, 32 firewalled. */
    status: number
    /** Queue priority: higher is dialled first. */
    priority: number
    /** Failed attempts since the last success. */
    retries: number
    /** Set when de-duplication dropped this connection. */
    duplicate: boolean
    /** Topics this peer was seen under (with `queue.multiplex`). */
    topics: Buffer[]
    /** No TCP connection has been made with this info. */
    readonly firewalled: boolean
    readonly banned: boolean
    /** Priority 2 or more. */
    readonly prioritised: boolean

    /** Stops reconnecting; hard: destroys the stream, soft: ends it. */
    ban (soft?: boolean): void
    /**
     * Counts a failed try and lowers the priority. False when the peer is
     * banned or out of retries; undefined for incoming connections.
     */
    backoff (): boolean | undefined
    /** Allows or forbids reconnecting once the connection ends. */
    reconnect (allow: boolean): void
    /**
     * Drops one of two connections between the same pair of ids (exchanged
     * by the application). True if this connection is the one dropped.
     */
    deduplicate (localId: Buffer, remoteId: Buffer): boolean
    /** Marks the peer as being dialled (or no longer). */
    active (value: boolean): void
    /** Recomputes the priority; false if the peer should not be queued. */
    update (): boolean
    /** Counts a retry; the backoff slot to use, or -1 to give up. */
    requeue (): number
    /** Bans the peer and destroys its stream with `err`. */
    destroy (err?: Error): void
    /** Records a topic the peer was seen under. */
    topic (topic: Buffer): void

    /** A new topic for this peer (with `queue.multiplex`). */
    on (event: 'topic', listener: (topic: Buffer) => void): this
    /** De-duplication dropped this connection. */
    on (event: 'duplicate', listener: () => void): this
    on<E extends string | symbol> (event: Exclude<E, 'topic' | 'duplicate'>, listener: (...args: any[]) => void): this
    once (event: 'topic', listener: (topic: Buffer) => void): this
    once (event: 'duplicate', listener: () => void): this
    once<E extends string | symbol> (event: Exclude<E, 'topic' | 'duplicate'>, listener: (...args: any[]) => void): this
  }

  /** Listener signatures of the swarm's events. */
  interface SwarmEvents {
    /** A new connection, dialled or accepted. */
    connection: (socket: Connection, info: PeerInfo) => void
    /** A connection closed. */
    disconnection: (socket: Connection, info: PeerInfo) => void
    /** A discovered peer passed `validatePeer` and was queued. */
    peer: (peer: Peer) => void
    /** A discovered peer failed `validatePeer`. */
    'peer-rejected': (peer: Peer) => void
    /** A DHT round for a topic ended. */
    updated: (update: { key: Buffer }) => void
    /** A topic was joined (with the options as given). */
    join: (key: Buffer, options: JoinOptions) => void
    /** A topic was left. */
    leave: (key: Buffer) => void
    /** The sockets are bound. */
    listening: () => void
    /** The swarm is fully closed. */
    close: () => void
    /** Binding failed during `join`. */
    error: (err: Error) => void
  }

  type SwarmEventName = keyof SwarmEvents

  /**
   * Joins topics, dials the peers found (up to the limits, with backoff) and
   * reports every connection.
   */
  class Swarm extends EventEmitter {
    constructor (options?: SwarmOptions)
    /** The network the swarm runs on. */
    readonly network: NetworkResource
    /** Live connections, incoming and outgoing (the network's `sockets`). */
    readonly connections: Set<Connection>
    readonly destroyed: boolean
    readonly maxPeers: number
    readonly maxServerSockets: number
    readonly maxClientSockets: number
    /** Peers counted against `maxPeers`: dialling, connected clients, incoming. */
    readonly peers: number
    /** Outgoing attempts + connections. */
    readonly clientSockets: number
    /** Incoming connections. */
    readonly serverSockets: number
    /** Below `maxPeers`: still dialling and accepting. */
    readonly open: boolean
    readonly validatePeer: (peer: Peer) => boolean

    /**
     * Joins a 32-byte topic: binds, then announces and/or looks up. `onjoin`
     * runs once the first DHT round has flushed. Throws on a bad key or if
     * both `announce` and `lookup` are false.
     */
    join (key: Buffer, options?: JoinOptions, onjoin?: ErrorCallback): void
    join (key: Buffer, onjoin: ErrorCallback): void
    /** Leaves a topic; `onleave` runs once it is unannounced. */
    leave (key: Buffer, onleave?: () => void): void
    /** How a topic is joined, or null if it is not. */
    status (key: Buffer): JoinStatus | null
    /** Dials a peer (usually done for you); `isTCP` tells which transport won. */
    connect (peer: PeerAddress, cb: (err: network.ConnectError | null, socket?: Connection, isTCP?: boolean) => void): void
    /** Binds, then pings the bootstrap nodes to see whether we are reachable. */
    connectivity (cb: (err: Error | null, info: Connectivity) => void): void
    /** Whether DHT nodes agree on our public address; null before binding. */
    holepunchable (): boolean | null
    /** Our public address as DHT nodes see it; null if unknown or not bound. */
    remoteAddress (): HostPort | null
    /** Our NAT's class (not in hyperswarm 2): 'open', 'consistent', 'random' or 'unknown'; null before binding. */
    natType (): 'unknown' | 'open' | 'consistent' | 'random' | null
    /** The bound TCP address; null before binding. Throws once destroyed. */
    address (): AddressInfo | null
    /** Binds now (`port` is the preferred port). */
    listen (port?: number, cb?: ErrorCallback): void
    listen (cb: ErrorCallback): void
    /** Calls back once every topic has flushed and queued high-priority peers were tried. */
    flush (cb: ErrorCallback): void
    /** Closes the network and every connection. */
    destroy (cb?: ErrorCallback): void

    on<E extends SwarmEventName> (event: E, listener: SwarmEvents[E]): this
    on<E extends string | symbol> (event: Exclude<E, SwarmEventName>, listener: (...args: any[]) => void): this
    once<E extends SwarmEventName> (event: E, listener: SwarmEvents[E]): this
    once<E extends string | symbol> (event: Exclude<E, SwarmEventName>, listener: (...args: any[]) => void): this
    addListener<E extends SwarmEventName> (event: E, listener: SwarmEvents[E]): this
    addListener<E extends string | symbol> (event: Exclude<E, SwarmEventName>, listener: (...args: any[]) => void): this
    prependListener<E extends SwarmEventName> (event: E, listener: SwarmEvents[E]): this
    prependListener<E extends string | symbol> (event: Exclude<E, SwarmEventName>, listener: (...args: any[]) => void): this
    off<E extends SwarmEventName> (event: E, listener: SwarmEvents[E]): this
    off<E extends string | symbol> (event: Exclude<E, SwarmEventName>, listener: (...args: any[]) => void): this
    removeListener<E extends SwarmEventName> (event: E, listener: SwarmEvents[E]): this
    removeListener<E extends string | symbol> (event: Exclude<E, SwarmEventName>, listener: (...args: any[]) => void): this
  }
}

/** Creates a swarm; it binds on the first `join` or `listen`. */
declare function hyperswarm (options?: hyperswarm.SwarmOptions): hyperswarm.Swarm

export = hyperswarm
