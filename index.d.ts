// Type definitions for hyperswarm-native's main entry: the API of
// @hyperswarm/network 0.0.4 (the seed), plus a few additions marked as such.
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

  interface BootstrapNode {
    host: string
    port: number
  }

  interface NetworkOptions {
    /** DHT bootstrap nodes, as `'host:port'` strings or `{ host, port }`. */
    bootstrap?: Array<string | BootstrapNode>
    /** `false` for a long-running, publicly reachable node. Default: ephemeral. */
    ephemeral?: boolean
    /**
     * LAN discovery over multicast DNS. Default `true`. `false` sends no
     * multicast at all. (The reference takes a multicast-dns instance here;
     * passing an object also turns our own LAN discovery off.)
     */
    multicast?: boolean | object
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
    /**
     * Not in the reference. Offer a relay of last resort, for a public peer:
     * two peers of ours whose NATs are both random meet there. It runs on a
     * UDP port of its own (`port`, default any) and is announced on the
     * DHT; `maxPairs` (default 32) and `rate` (bytes a second per pair,
     * default 262144) cap it. A relay sees the bytes it carries. Default off.
     */
    relay?: boolean | { port?: number, maxPairs?: number, rate?: number }
    /** mDNS domain. Default `'hyperswarm.local'`. */
    domain?: string
    /** Bind exactly this port (TCP and UDP share it). */
    port?: number
    /** First port to try; the next two follow, then any free port. */
    preferredPort?: number
    /** Accepted for compatibility and ignored: the engine owns its UDP socket. */
    socket?: unknown
  }

  interface JoinOptions {
    /** Look for peers and connect to them. Implied when `announce` is false. */
    lookup?: boolean
    /** Be listed as a connectable peer under the topic. */
    announce?: boolean
  }

  interface Referrer {
    host: string
    port: number
    id: Buffer | null
  }

  interface Peer {
    port: number
    host: string
    /** Found on the LAN. */
    local: boolean
    /** Our own address as the DHT node that answered saw it (DHT peers only). */
    to?: { host: string, port: number }
    /** The DHT node that told us about the peer; null for LAN peers. */
    referrer: Referrer | null
    topic: Buffer | null
  }

  /**
   * A failed `connect`: the seed's message ('Timed out trying to connect to
   * peer' or 'Could not connect to peer') and (not in the seed) a stable
   * `code` to test instead, with the engine's own reason as `cause`.
   */
  interface ConnectError extends Error {
    code: 'ETIMEDOUT' | 'EHOLEPUNCH' | 'ENOPATH' | 'ECONNFAILED' | 'EDESTROYED'
    cause?: Error
  }

  interface ConnectionDetails {
    /** 'relay': uTP through a relay of last resort (both NATs random; not in the reference). */
    type: 'tcp' | 'utp' | 'relay'
    /** True if this side dialled. */
    client: boolean
    /** The peer dialled; null for incoming connections. */
    peer: Peer | null
    /**
     * uTP connections we dialled only: the peer's NAT class, when the hole
     * punch told us the peer runs hyperswarm-native (not in the reference;
     * absent otherwise).
     */
    peerNatType?: NatType
    /** Relayed connections only: the relay's `host:port`. A relay sees the bytes it carries. */
    relay?: string
  }

  interface AddressInfo {
    address: string
    family: string
    port: number
  }

  /** Engine counters (not in the reference). */
  type NatType = 'unknown' | 'open' | 'consistent' | 'random'

  interface Stats {
    /** As `natType()`. */
    natType: NatType
    mdnsReceived: number
    mdnsMalformed: number
    mdnsOwnAnswers: number
    mdnsQueriesAnswered: number
    multicastSent: number
    dhtNodes: number
    dhtReceived: number
    dhtMalformed: number
    dhtBadToken: number
    dhtUnmatchedResponses: number
    dhtTimeouts: number
    /** DHT requests dropped by the per-IP request rate. */
    dhtRateLimited: number
    /** DHT replies not sent: the source has not proven its address and would get more than 3× its bytes. */
    dhtAmplificationDropped: number
    /** `_holepunch` relays refused (target not a known peer, bad address, rate). */
    dhtRelaysRefused: number
    /** DHT requests naming a known node id from another address (the contact is kept). */
    dhtIdConflicts: number
    /** Contacts refused by the routing table's per-/24 caps. */
    dhtSubnetRefused: number
    /** Addresses dropped from node and peer lists by the scope rules. */
    dhtAddressesDropped: number
    /** DHT walks that reached their request cap. */
    dhtQueriesCapped: number
    /** Stored values (`mutable-store` / `immutable-store` updates) taken. */
    dhtValuesStored: number
    /** Store updates answered with an error (bad signature or hash, seq rules). */
    dhtValuesRejected: number
    /** Store requests dropped unanswered (inputs that crash a reference node). */
    dhtValuesDropped: number
    /** Stored values evicted to stay within the store's bounds. */
    dhtValuesEvicted: number
    utpReceived: number
    utpMalformed: number
    utpUnknown: number
    utpInvalid: number
    /** uTP SYNs refused: not accepting, over a limit (incl. per IP). */
    utpSynsRefused: number
    utpRefusedPerIp: number
    /** SYNs that opened half-open state; half-open entries evicted for newer ones; held now. */
    utpHalfOpened: number
    utpHalfOpenEvicted: number
    utpHalfOpen: number
    /** SYNs on an established connection's key: ignored, never a replacement. */
    utpSynCollisions: number
    connectionsAccepted: number
    /** Incoming TCP connections closed at once for the per-IP cap. */
    tcpRefusedPerIp: number
    /** Failed accept() calls (EMFILE …), each followed by a pause. */
    acceptErrors: number
    connectionsDialled: number
    dialsFailed: number
    /** mDNS packets from outside the receiving interface's link, dropped. */
    mdnsOffLink: number
    /** mDNS answers naming a host (or an address off the link), ignored. */
    mdnsBadTargets: number
    /** mDNS questions repeated within one query, answered once. */
    mdnsRepeatedQuestions: number
    /** mDNS answers held back by the once-a-second-per-interface limit. */
    mdnsAnswersDeferred: number
    /** Events waiting for JS. */
    eventsPending: number
    /** `peer` events merged into an identical one still waiting for JS. */
    peersMerged: number
    /** `peer` events dropped because 1024 events were waiting for JS. */
    peersDropped: number
    /** Discovered peers the dial queue refused (their IP, /24 or referrer at its cap). */
    dialQueueRefused: number
    /** Dials the engine started ahead of the `./hyperswarm` entry (always 0 for this entry). */
    dialsAhead: number
    /** Hole punches answered by a peer running hyperswarm-native (its answer carried a capability record). */
    peersOursSeen: number
    /** Capability records learned from hole punches. */
    dhtCapabilitiesLearned: number
    /** `_holepunch` targets that were not a capability record (ignored). */
    dhtCapabilitiesMalformed: number
    /** Birthday punches (one side's NAT random, the other's consistent; ours on both sides) started, won, timed out, and refused (one running, or the same IP within a minute). */
    birthdayStarted: number
    birthdayWon: number
    birthdayTimedOut: number
    birthdayRefused: number
    /** Extra UDP sockets opened and probes sent by birthday punches, over all of them. */
    birthdaySocketsOpened: number
    birthdayProbesSent: number
    /** Extra UDP sockets open now (a running punch's, and those carrying a connection). */
    birthdaySocketsOpen: number
    /** Connections a birthday punch made on the random side: over its winning socket, or (birthdayViaMain) on the main socket, whose mapping a probe opened for the ordinary punch's retry. */
    birthdayConnections: number
    birthdayViaMain: number
    /** The last birthday punch: extra sockets opened, probes sent, milliseconds it ran. */
    birthdayLastSocketsOpened: number
    birthdayLastProbesSent: number
    birthdayLastMs: number
    /** Challenges sent through the referrer to a punching peer whose address was not proved yet, and echoes of them that came back (only a proved address gets a birthday punch's datagrams). */
    birthdayChallengesSent: number
    birthdayChallengesEchoed: number
    /** Relay sessions (both NATs random, ours on both sides) started, paired at a relay, and failed (no relay found, refused, out of time). */
    relaySessionsStarted: number
    relaySessionsPaired: number
    relaySessionsFailed: number
    /** Lookups of the relay topic on the DHT, and the relays the last one found. */
    relayLookups: number
    relayRelaysKnown: number
    /** Connections made through a relay; relay datagrams dropped (not from a relay we joined); milliseconds the last relayed connection took from its session's start. */
    relayConnections: number
    relayDropped: number
    relayLastMs: number
    /** Relay sessions started because a peer of ours punched us and never connected within 11 s (every punch failed). */
    relayFallbacks: number
  }

  class Network extends EventEmitter {
    constructor (options?: NetworkOptions)
    /** Live connections: accepted ones and those we dialled. */
    readonly sockets: Set<Connection>
    readonly destroyed: boolean
    join (topic: Buffer | Uint8Array, options?: JoinOptions): void
    leave (topic: Buffer | Uint8Array): void
    connect (peer: { host: string, port: number, local?: boolean, referrer?: Referrer | null, topic?: Buffer | null },
      cb: (err: ConnectError | null, socket?: Connection, details?: ConnectionDetails) => void): void
    /** The bound TCP address; null before the first join and after destroy. */
    address (): AddressInfo | null
    /** Engine counters (not in the reference); null after destroy. */
    stats (): Stats | null
    /** True when enough DHT nodes agree on our public address and port. */
    holepunchable (): boolean
    /** Our public address as DHT nodes report it, or null. */
    remoteAddress (): { host: string, port: number } | null
    /**
     * Our NAT's class, from the addresses DHT nodes in at least 3 /24s
     * report (not in the reference): `open` (no NAT), `consistent` (one
     * mapping for every destination), `random` (a mapping per destination)
     * or `unknown`. Connecting never waits for it.
     */
    natType (): NatType
    /** Closes every connection and socket; `cb` runs when all are closed. */
    destroy (cb?: (err: Error | null) => void): void
    close (cb?: (err: Error | null) => void): void

    on (event: 'connection', listener: (socket: Connection, details: ConnectionDetails) => void): this
    on (event: 'peer', listener: (peer: Peer) => void): this
    on (event: 'update', listener: () => void): this
    on (event: 'listening', listener: () => void): this
    on (event: 'close', listener: () => void): this
    on (event: 'warning' | 'error', listener: (err: Error) => void): this
    on (event: string | symbol, listener: (...args: any[]) => void): this
    once (event: 'connection', listener: (socket: Connection, details: ConnectionDetails) => void): this
    once (event: 'peer', listener: (peer: Peer) => void): this
    once (event: string | symbol, listener: (...args: any[]) => void): this
  }

  interface DhtNodeOptions {
    /** Address to bind. Default `'127.0.0.1'`. */
    host?: string
    /** UDP port; 0 (default) picks a free one. */
    port?: number
    /** Other nodes to join, as `'host:port'` or `{ host, port }`. Default: none. */
    bootstrap?: Array<string | BootstrapNode>
    /** Default `false`: a full, persistent DHT member. */
    ephemeral?: boolean
    /** Multiplies the per-source limits, for a testnet with many nodes behind one address. Default 1. */
    limitScale?: number
  }

  /**
   * Not in the reference: a standalone DHT node on its own UDP socket, for a
   * private network's bootstrap node or a local testnet.
   */
  class DhtNode {
    constructor (options?: DhtNodeOptions)
    readonly host: string
    readonly port: number
    address (): { host: string, port: number }
    /** Nodes in its routing table; null once destroyed. */
    nodes (): number | null
    destroy (): void
  }
}

declare function network (options?: network.NetworkOptions): network.Network

export = network
