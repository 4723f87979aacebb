//! A dht-rpc 4 / @hyperswarm/dht 4 node as a sans-IO state machine.
//!
//! Inputs: [`Dht::handle_datagram`], [`Dht::handle_timeout`] and commands
//! (lookup, announce, ping, holepunch, the stores' gets and puts …).
//! Outputs: [`Dht::poll_transmit`], [`Dht::poll_event`],
//! [`Dht::poll_timeout`]. No socket, clock or runtime:
//! the caller owns those, so a test can run thousands of nodes on a virtual
//! clock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::budget::{Admit, Budget, Limits};
use super::capability::{Capability, CapabilityCache, Check, MAX_CANDIDATES};
use super::peer_store::PeerStore;
use super::query::{Query, QueryKind, Step};
use super::remote_address::{tally, TALLY_SAMPLES};
use super::scope::{allowed_from, is_unicast};
use super::routing_table::{Insert, NodeId, RoutingTable, K};
use super::rpc::{Action, Owner, Rpc};
use super::tokens::{Tokens, ROTATE_INTERVAL};
use super::value_store::{Outcome, StoreKey, ValueStore};
use super::hypersign::InputError;
use super::store_query::{Got, MutablePutOptions, StoreFailure, StoreOutcome, StoreRequest, ERR_TIMEOUT};
use super::{immutable, mutable};
use crate::wire::dht::{
    self as wire, Holepunch, Message, MessageType, NodeRecord, PeersInput, PeersOutput, CMD_FIND_NODE, CMD_HOLEPUNCH,
    CMD_IMMUTABLE_STORE, CMD_MUTABLE_STORE, CMD_PEERS, CMD_PING,
};

/// Requests in flight across all queries of a node (spec §9.3).
pub const CONCURRENCY: usize = 16;
/// Concurrency of a background bootstrap that runs beside other queries (spec §9.3).
pub const BOOTSTRAP_CONCURRENCY: usize = 2;
/// Maintenance clock (spec §8.3).
pub const MAINTENANCE_TICK: Duration = Duration::from_secs(5);
/// Every 8th maintenance tick, ping up to this many of the oldest nodes (spec §8.3).
pub const MAINTENANCE_PINGS: usize = 5;
/// Every 64th maintenance tick, re-bootstrap below this many nodes (spec §8.3).
pub const MIN_NODES: usize = 20;
/// `initial-nodes` fires when the node list first reaches this (spec §8.2).
pub const INITIAL_NODES: usize = 5;
/// A peers reply holds at most this many LAN records (spec §10.2).
pub const MAX_LAN_REPLY: usize = 32;
/// …and at most this many records in all (spec §10.2).
pub const MAX_REPLY: usize = 128;
/// Adaptive ephemerality: first check after 20–30 min (spec §9.5).
pub const ADAPTIVE_MIN: Duration = Duration::from_secs(20 * 60);
pub const ADAPTIVE_MAX: Duration = Duration::from_secs(30 * 60);
/// Far buckets refreshed after each bootstrap: the ones for common-prefix
/// lengths below this, when they hold fewer than [`REFRESH_BELOW`] contacts.
/// Not in dht-rpc, which relies on traffic alone: in a young network a node
/// that only walked towards its own id may know nobody in the other half of
/// the id space, and then cannot route there (seen in simulation).
pub const REFRESH_DEPTH: usize = 3;
pub const REFRESH_BELOW: usize = K / 2;
/// Stale contacts pinged at once to make room for newcomers. A bound the
/// reference lacks: a flood of new ids must not become a flood of pings.
pub const MAX_EVICTION_PINGS: usize = 3;
/// Queries running at once; beyond this new ones fail at once.
pub const MAX_QUERIES: usize = 256;
/// Output queue bound; the oldest events are dropped past it.
pub const MAX_EVENTS: usize = 4096;
/// Verification pings in flight at once (see `budget`): a flood from many
/// sources must not become a flood of pings.
pub const MAX_VERIFY_PINGS: usize = 16;

/// The IP TTL of a hole punch's opening packet ([`Dht::set_opening_ttl`]).
///
/// The packet must cross our own NAT, so that the NAT maps our port towards
/// the peer, and die before the peer's NAT: a router that forwards nothing
/// for an unsolicited datagram (no WAN input firewall) makes it a conntrack
/// entry of its own, and then masquerades the peer's own packets to us from
/// another port (natlab.js, `cone-nofw`; measured in nat-nofw.test.js, where
/// two homes are five hops apart: TTL 2 and 3 connect, 4 reaches the other
/// router and fails).
///
/// 2 is the smallest TTL that leaves a home: the home router is the first
/// hop and forwards it with TTL 1, so the next router drops it. That is
/// short of any other home even when both homes hang off the same access
/// router (r1, access, r2: three hops, which TTL 3 would reach), and nothing
/// learned is needed, which matters because no hop count can be learned
/// about a peer before the first packet. A NAT further out (double NAT, a
/// carrier's NAT) is not crossed, and the peer's answer reaches it first.
/// If that NAT drops unsolicited packets, as home routers and carriers'
/// NATs do, the punch gets through at the full-TTL send that follows
/// [`rpc::PUNCH_DELAY`] later (the peer's NAT expects us by then), half a
/// second late. If it has no WAN firewall either, the answer takes our
/// port there and the punch fails where today's would have worked
/// (nat-nofw.test.js measures this as `ttl1`): the price of the choice.
/// A TTL that is too large costs nothing: the packet is today's first.
///
/// [`rpc::PUNCH_DELAY`]: super::rpc::PUNCH_DELAY
pub const OPENING_TTL: u32 = 2;

/// Peers whose punches carry a check at once ([`Dht::holepunch_checked`]):
/// one birthday punch runs at a time, so a few are plenty; past it the
/// oldest goes (its peer then gets a plain record, and no session).
pub const MAX_PUNCH_CHECKS: usize = 16;

pub type QueryId = u64;
pub type RequestId = u64;

/// A datagram the node wants sent ([`Dht::poll_datagram`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub to: SocketAddrV4,
    pub bytes: Vec<u8>,
    /// The IP TTL it must leave with; `None`: the socket's default.
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct DhtConfig {
    pub id: Option<NodeId>,
    pub ephemeral: bool,
    /// Become persistent when hole-punchable (spec §9.5).
    pub adaptive: bool,
    pub bootstrap: Vec<SocketAddrV4>,
    pub seed: u64,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig { id: None, ephemeral: true, adaptive: false, bootstrap: Vec::new(), seed: rand::random() }
    }
}

/// A peer found by a `peers` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPeers {
    pub query: QueryId,
    pub topic: NodeId,
    /// The node that answered (the peers' referrer).
    pub node: SocketAddrV4,
    pub node_id: Option<NodeId>,
    /// Our address as that node saw it.
    pub to: Option<SocketAddrV4>,
    pub peers: Vec<SocketAddrV4>,
    pub local_peers: Vec<SocketAddrV4>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    /// The first bootstrap walk ended (successfully or not).
    Ready,
    InitialNodes,
    Peers(FoundPeers),
    /// A query ended; `closest` are the nodes that answered with a token,
    /// closest first (where an announce stored us).
    QueryDone { query: QueryId, error: Option<String>, closest: Vec<(NodeId, SocketAddrV4)> },
    Pong { request: RequestId, from: SocketAddrV4, to: Option<SocketAddrV4> },
    PingFailed { request: RequestId },
    /// The punched peer answered from `from`; `capability` is the record
    /// it sent back when it is one of ours (`capability`), `None` for a JS
    /// peer.
    Holepunched { request: RequestId, from: SocketAddrV4, capability: Option<Capability> },
    HolepunchFailed { request: RequestId },
    /// We relayed a hole punch from `from` to `to`.
    Relayed { from: SocketAddrV4, to: SocketAddrV4 },
    /// A peer of ours punched us: `referrer` relayed its punch from
    /// `origin` (its address as the referrer sees it), with its record.
    /// JS peers send no record and cause no such event.
    PunchedBy { origin: SocketAddrV4, referrer: SocketAddrV4, capability: Capability },
    /// Someone stored, removed or asked for a record with us.
    Announced { topic: NodeId, peer: SocketAddrV4 },
    Unannounced { topic: NodeId, peer: SocketAddrV4 },
    /// Someone asked us for the peers of `topic` (the reference's `'lookup'`).
    LookedUp { topic: NodeId, peer: SocketAddrV4 },
    Persistent,
    /// A store operation's request got an error reply or no reply: the
    /// error text and, for `mutable-store`, the proof it carried. In
    /// arrival order (the reference's `'warning'` events, notes §2.2).
    StoreWarning { query: QueryId, from: SocketAddrV4, error: String, proof: Option<wire::Mutable> },
    /// A store operation ended; exactly one per operation, and store
    /// operations end with this instead of `QueryDone`.
    StoreDone { query: QueryId, result: Result<StoreOutcome, StoreFailure> },
}

/// What was dropped, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhtStats {
    pub received: u64,
    pub malformed: u64,
    pub bad_token: u64,
    /// Responses that matched no request in flight to their source address
    /// (late, duplicate or forged).
    pub unmatched_responses: u64,
    pub requests_sent: u64,
    pub timeouts: u64,
    pub store_refused: u64,
    /// Requests dropped by the per-IP request rate.
    pub rate_limited: u64,
    /// Replies (and relayed packets) not sent: the source has not proven
    /// its address and would get more than 3× its bytes.
    pub amplification_dropped: u64,
    /// `_holepunch` relays refused (unknown target, bad address, rate).
    pub relays_refused: u64,
    /// Requests naming a known id from another address (contact kept).
    pub id_conflicts: u64,
    /// Contacts refused by the per-/24 caps of the routing table.
    pub subnet_refused: u64,
    /// Addresses dropped from node and peer lists (scope rules).
    pub addresses_dropped: u64,
    /// Queries that hit [`super::query::MAX_REQUESTS`].
    pub queries_capped: u64,
    /// `immutable-store` / `mutable-store` UPDATEs stored.
    pub values_stored: u64,
    /// Store UPDATEs answered with an error (bad hash or signature, seq
    /// rules, input we refuse).
    pub values_rejected: u64,
    /// Store requests dropped without a reply: the inputs on which a
    /// reference node crashes (missing value, oversized value or salt,
    /// short signature, key not 32 bytes), undecodable values, and
    /// targets that are not 32 bytes.
    pub values_dropped: u64,
    /// Stored values evicted to stay within the store's bounds.
    pub values_evicted: u64,
    /// Capability records learned from punches (relayed asks and answers).
    pub capabilities_learned: u64,
    /// `_holepunch` targets that were not a capability record (ignored).
    pub capabilities_malformed: u64,
    /// Learned records dropped to keep within `capability::CACHE_CAP`.
    pub capabilities_evicted: u64,
}

struct QueryState {
    query: Query,
    command: &'static str,
    value: Option<Vec<u8>>,
    /// `peers` queries remember the local address they sent, to rebuild
    /// LAN records.
    local_address: Option<SocketAddrV4>,
    bootstrap: bool,
    /// Set for `immutable-store` / `mutable-store` gets and puts.
    store: Option<StoreRequest>,
}

pub struct Dht {
    id: NodeId,
    ephemeral: bool,
    adaptive_at: Option<Instant>,
    rng: StdRng,
    table: RoutingTable,
    tokens: Tokens,
    next_rotation: Instant,
    store: PeerStore,
    values: ValueStore,
    rpc: Rpc,
    queries: HashMap<QueryId, QueryState>,
    next_query: QueryId,
    next_request: RequestId,
    bootstrap_nodes: Vec<SocketAddrV4>,
    bootstrapped: bool,
    bootstrap_query: Option<QueryId>,
    initial_nodes_sent: bool,
    maintenance_at: Instant,
    maintenance_ticks: u64,
    /// Highest routing-table `last_seen` stamp when the current 5 s tick
    /// began: contacts stamped above it were heard from in this tick.
    tick_mark: u64,
    evictions: usize,
    transmits: VecDeque<Datagram>,
    events: VecDeque<DhtEvent>,
    stats: DhtStats,
    budget: Budget,
    verify_pings: usize,
    /// The address our socket is bound to, when the driver tells us.
    local_addr: Option<SocketAddrV4>,
    /// Set by [`Dht::advertise_capability`]: our bound port and interface
    /// addresses, and that our punches carry a capability record.
    advertise: Option<(u16, Vec<std::net::Ipv4Addr>)>,
    /// Records other peers of ours sent us, by their address.
    capabilities: CapabilityCache,
    /// Set by [`Dht::set_opening_ttl`].
    opening_ttl: Option<u32>,
    /// The check our latest punch of each peer carries ([`Dht::holepunch_checked`]).
    punch_checks: Vec<(SocketAddrV4, Check)>,
    /// Answers to punches from peers that just connected over TCP ([`Dht::tcp_accepted`]).
    punch_hold: super::punch_hold::PunchHold,
}

impl Dht {
    pub fn new(now: Instant, config: DhtConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let id = config.id.unwrap_or_else(|| rng.random());
        let tokens = Tokens::new(rng.random(), rng.random());
        let rpc_seed = rng.random();
        let adaptive_at = (config.adaptive && config.ephemeral).then(|| now + adaptive_delay(&mut rng));
        Dht {
            id,
            ephemeral: config.ephemeral,
            adaptive_at,
            rng,
            table: RoutingTable::new(id),
            tokens,
            next_rotation: now + ROTATE_INTERVAL,
            store: PeerStore::new(now),
            values: ValueStore::new(),
            rpc: Rpc::new(rpc_seed),
            queries: HashMap::new(),
            next_query: 1,
            next_request: 1,
            bootstrap_nodes: config.bootstrap,
            bootstrapped: false,
            bootstrap_query: None,
            initial_nodes_sent: false,
            maintenance_at: now + MAINTENANCE_TICK,
            maintenance_ticks: 0,
            tick_mark: 0,
            evictions: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: DhtStats::default(),
            budget: Budget::new(Limits::default()),
            verify_pings: 0,
            local_addr: None,
            advertise: None,
            capabilities: CapabilityCache::default(),
            opening_ttl: None,
            punch_checks: Vec::new(),
            punch_hold: Default::default(),
        }
    }

    /// The swarm accepted a TCP connection from `ip`: our answer to a punch
    /// from that IP in the next moments waits a little
    /// ([`super::punch_hold`]), so that the dialler handles its TCP
    /// connection before it hears the punch succeed.
    pub fn tcp_accepted(&mut self, now: Instant, ip: std::net::Ipv4Addr) {
        self.punch_hold.tcp_accepted(now, ip);
    }

    /// Our hole punches (`holepunch`) send their first datagram to the peer
    /// with IP TTL `ttl` (usually [`OPENING_TTL`]): it opens our NAT
    /// towards the peer without reaching the peer's router, and the peer's
    /// answer to the punch relayed by the referrer then finds our NAT open
    /// (natlab.js, `cone-nofw`). The same bytes go again at full TTL when
    /// the punch through the referrer is repeated. Off by default, and the
    /// bytes are dht-rpc's either way: only the TTL of one datagram and the
    /// time of its full-TTL copy change.
    pub fn set_opening_ttl(&mut self, ttl: Option<u32>) {
        self.opening_ttl = ttl;
    }

    /// The address our socket is bound to: never a relay target.
    pub fn set_local_addr(&mut self, addr: SocketAddrV4) {
        self.local_addr = Some(addr);
    }

    /// Our punches (`holepunch`) carry a capability record from now on,
    /// and our answers to punches that carry one carry ours: `port` is the
    /// bound UDP port and `ips` our interfaces' addresses (the record's
    /// LAN candidates, and what tells an open host from a NAT). Off by
    /// default: a plain DHT node sends exactly what dht-rpc sends.
    pub fn advertise_capability(&mut self, port: u16, ips: Vec<std::net::Ipv4Addr>) {
        self.advertise = Some((port, ips));
    }

    /// The record we send, when [`Self::advertise_capability`] is on: our
    /// NAT class, the public address DHT nodes agree on (exactly, port
    /// included), then our unicast interface addresses with the bound
    /// port; at most `capability::MAX_CANDIDATES`.
    pub fn own_capability(&self) -> Option<Capability> {
        let (port, ips) = self.advertise.as_ref()?;
        let nat = self.nat_type(Some(super::nat::Local { port: *port, ips }));
        let mut candidates: Vec<SocketAddrV4> = tally(&self.table.recent_to_diverse(TALLY_SAMPLES)).exact.into_iter().collect();
        for ip in ips {
            let a = SocketAddrV4::new(*ip, *port);
            if candidates.len() < MAX_CANDIDATES && is_unicast(*ip) && !ip.is_loopback() && !candidates.contains(&a) {
                candidates.push(a);
            }
        }
        Some(Capability { nat, candidates, check: None })
    }

    /// The record `peer` sent us in a punch within the last
    /// `capability::CACHE_TTL`: it runs our code, with that NAT class.
    pub fn peer_capability(&self, now: Instant, peer: SocketAddrV4) -> Option<&Capability> {
        self.capabilities.get(now, peer)
    }

    /// Per-source budgets (see `budget`); a testnet with many nodes on one
    /// address raises them with `Limits::scaled`.
    pub fn set_limits(&mut self, limits: Limits) {
        self.budget.set_limits(limits);
    }

    pub fn limits(&self) -> Limits {
        self.budget.limits()
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    pub fn stats(&self) -> DhtStats {
        DhtStats { values_evicted: self.values.evicted(), capabilities_evicted: self.capabilities.evicted(), ..self.stats }
    }

    /// Values held for `immutable-store` and `mutable-store`.
    pub fn values(&self) -> &ValueStore {
        &self.values
    }

    /// Replaces the round-trip token secrets (current, previous). The
    /// reference draws both at random; fixed ones let a test compare our
    /// replies with a capture byte for byte.
    #[doc(hidden)]
    pub fn set_token_secrets(&mut self, current: [u8; 32], previous: [u8; 32]) {
        self.tokens = Tokens::new(current, previous);
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    pub fn bootstrap_nodes(&self) -> &[SocketAddrV4] {
        &self.bootstrap_nodes
    }

    pub fn set_bootstrap_nodes(&mut self, nodes: Vec<SocketAddrV4>) {
        self.bootstrap_nodes = nodes;
    }

    /// Learned contacts, for seeding another node (the reference's `getNodes`).
    pub fn nodes(&self) -> Vec<(NodeId, SocketAddrV4)> {
        self.table.iter().map(|c| (c.id, c.addr)).collect()
    }

    pub fn add_node(&mut self, id: NodeId, addr: SocketAddrV4) {
        self.table.insert(id, addr, None);
    }

    /// Our public address as most recent DHT nodes agree (spec §7). Unlike
    /// the reference, only answers to our own requests count (a request's
    /// `to` is unverified), and one vote per /24 of the reporting nodes, so
    /// agreement means several parties.
    pub fn remote_address(&self) -> Option<SocketAddrV4> {
        let t = tally(&self.table.recent_to_diverse(TALLY_SAMPLES));
        t.exact.or(t.ip_only)
    }

    /// Enough recent nodes (from distinct /24s) agree on our address and
    /// port (spec §7).
    pub fn holepunchable(&self) -> bool {
        tally(&self.table.recent_to_diverse(TALLY_SAMPLES)).exact.is_some()
    }

    /// What our NAT does to the socket's mapping, from the same one-per-/24
    /// reports (see `nat`); `local` tells an open host from a NAT.
    pub fn nat_type(&self, local: Option<super::nat::Local<'_>>) -> super::nat::NatType {
        super::nat::classify(&self.table.recent_to_diverse(super::nat::NAT_SAMPLES), local)
    }

    /// Becomes a full member: our id goes on the wire (spec §8.1).
    pub fn persistent(&mut self, now: Instant) {
        if !self.ephemeral {
            return;
        }
        self.ephemeral = false;
        self.adaptive_at = None;
        self.push_event(DhtEvent::Persistent);
        self.bootstrap(now);
    }

    // ----- commands ---------------------------------------------------------

    /// Walks towards our own id to fill the routing table (spec §9.4).
    pub fn bootstrap(&mut self, now: Instant) -> QueryId {
        let id = self.id;
        let q = self.start_query(now, id, QueryKind::Query, CMD_FIND_NODE, None, None, true);
        self.bootstrap_query = Some(q);
        q
    }

    /// The walk that [`Self::bootstrap`] (or [`Self::persistent`]) started
    /// last, while it runs.
    pub fn bootstrap_query(&self) -> Option<QueryId> {
        self.bootstrap_query.filter(|q| self.queries.contains_key(q))
    }

    /// `peers` lookup (spec §10.4).
    pub fn lookup(&mut self, now: Instant, topic: NodeId, local_address: Option<SocketAddrV4>) -> QueryId {
        self.lookup_except(now, topic, None, local_address)
    }

    /// A lookup whose answers leave out the record of our address with
    /// `port` (@hyperswarm/dht's `lookup(topic, { port })`).
    pub fn lookup_except(&mut self, now: Instant, topic: NodeId, port: Option<u16>, local_address: Option<SocketAddrV4>) -> QueryId {
        let value = PeersInput { port: port.map(u64::from), local_address: local_address.map(|a| wire::encode_peer(a).to_vec()), unannounce: None };
        self.start_query(now, topic, QueryKind::Query, CMD_PEERS, Some(value.encode()), local_address, false)
    }

    /// Announce: walks with `peers` QUERYs (collecting peers), then stores us
    /// with the closest nodes. `port` 0 means "my UDP source port".
    pub fn announce(&mut self, now: Instant, topic: NodeId, port: u16, local_address: Option<SocketAddrV4>) -> QueryId {
        let value = PeersInput { port: Some(port as u64), local_address: local_address.map(|a| wire::encode_peer(a).to_vec()), unannounce: None };
        self.start_query(now, topic, QueryKind::QueryAndUpdate, CMD_PEERS, Some(value.encode()), local_address, false)
    }

    pub fn unannounce(&mut self, now: Instant, topic: NodeId, port: u16, local_address: Option<SocketAddrV4>) -> QueryId {
        let value = PeersInput { port: Some(port as u64), local_address: local_address.map(|a| wire::encode_peer(a).to_vec()), unannounce: Some(true) };
        self.start_query(now, topic, QueryKind::Update, CMD_PEERS, Some(value.encode()), local_address, false)
    }

    /// A follow-up `peers` QUERY straight to the closest nodes a finished
    /// query found, without walking again. Two peers that announce at the
    /// same moment each miss the other's record in the walk (it is stored at
    /// the walk's end); asking again once both are stored finds it.
    pub fn recheck(&mut self, now: Instant, topic: NodeId, nodes: Vec<(NodeId, SocketAddrV4)>) -> QueryId {
        let value = PeersInput::default().encode();
        let query = Query::new(self.id, topic, QueryKind::Query, nodes, &[]);
        self.add_query(now, query, CMD_PEERS, Some(value), None, false)
    }

    /// Puts `value` under its BLAKE2b-256 hash on the closest nodes, and
    /// keeps a copy in our own store as the reference does (notes §3), so
    /// a later get here needs no network. Ends with [`DhtEvent::StoreDone`].
    pub fn immutable_put(&mut self, now: Instant, value: Vec<u8>) -> Result<(QueryId, [u8; 32]), InputError> {
        let req = StoreRequest::immutable_put(value)?;
        let key = req.target();
        if let StoreRequest::ImmutablePut { value, .. } = &req {
            // Owner 0.0.0.0: no datagram comes from there, so our own
            // copies get a quota of their own.
            self.values.put(StoreKey::immutable(&key), value.clone().into(), std::net::Ipv4Addr::UNSPECIFIED);
        }
        Ok((self.start_store(now, req), key))
    }

    /// Looks up the value whose BLAKE2b-256 hash is `key`: ours at once if
    /// we hold it, else the first reply that hashes to `key`.
    pub fn immutable_get(&mut self, now: Instant, key: [u8; 32]) -> QueryId {
        if let Some(value) = self.values.get_immutable(&StoreKey::immutable(&key)).map(<[u8]>::to_vec) {
            let query = self.next_query;
            self.next_query += 1;
            let got = Got { from: None, node_id: Some(self.id), value, signature: None, seq: None, salt: None };
            self.push_event(DhtEvent::StoreDone { query, result: Ok(StoreOutcome::Got(Some(got))) });
            return query;
        }
        self.start_store(now, StoreRequest::ImmutableGet { key })
    }

    /// Signs (or takes the signature of) `value` at `opts.seq` under
    /// `opts.salt` and puts it under the public key.
    pub fn mutable_put(&mut self, now: Instant, value: Vec<u8>, opts: MutablePutOptions) -> Result<QueryId, InputError> {
        let req = StoreRequest::mutable_put(value, opts)?;
        Ok(self.start_store(now, req))
    }

    /// Looks up the record of `public_key` (and `salt`) with a seq of at
    /// least `seq`: the first reply that verifies.
    pub fn mutable_get(&mut self, now: Instant, public_key: [u8; 32], seq: u64, salt: Option<Vec<u8>>) -> Result<QueryId, InputError> {
        let req = StoreRequest::mutable_get(public_key, seq, salt)?;
        Ok(self.start_store(now, req))
    }

    fn start_store(&mut self, now: Instant, req: StoreRequest) -> QueryId {
        let target = req.target();
        let seeds = self.table.closest(&target, K).into_iter().map(|c| (c.id, c.addr)).collect();
        let query = Query::new(self.id, target, req.kind(), seeds, &self.bootstrap_nodes);
        let (command, value) = (req.command(), req.message_value());
        self.add_query_with(now, query, command, value, None, false, Some(req))
    }

    /// Ends a store operation now (a get found its value, a put hit a seq
    /// conflict): its other requests are cancelled.
    fn end_store(&mut self, qid: QueryId, result: Result<StoreOutcome, StoreFailure>) {
        self.cancel(qid);
        self.push_event(DhtEvent::StoreDone { query: qid, result });
    }

    pub fn cancel(&mut self, query: QueryId) {
        if self.queries.remove(&query).is_some() {
            self.rpc.cancel(Owner::Query(query));
        }
    }

    /// `_ping` a node; `expect` is the id we think it has.
    pub fn ping(&mut self, now: Instant, to: SocketAddrV4, expect: Option<NodeId>) -> RequestId {
        let request = self.request_id();
        let rid = self.rpc.next_rid();
        let mut m = self.request_message(MessageType::Query, rid, to, CMD_PING);
        m.value = expect.map(|id| id.to_vec());
        self.send_request(now, rid, to, m, Owner::Ping(request), expect, None, true);
        request
    }

    /// Asks `referrer` to make `peer` send us a packet, and sends one to
    /// `peer` ourselves (spec §6.1 steps 1 and 2, one rid).
    ///
    /// As in dht-rpc, the request is addressed to `peer`, which is who
    /// answers (step 4), so only an answer from `peer` completes it; the
    /// message to `referrer` carries the same rid, now and with each retry.
    ///
    /// With [`Self::set_opening_ttl`] the datagram to `peer` leaves first
    /// with that TTL, before the message to `referrer`.
    pub fn holepunch(&mut self, now: Instant, peer: SocketAddrV4, referrer: SocketAddrV4) -> RequestId {
        self.holepunch_checked(now, peer, referrer, None)
    }

    /// [`Self::holepunch`] whose record (and its retries') carries `check`
    /// (`capability::Check`): a challenge to the peer, or its echo.
    pub fn holepunch_checked(&mut self, now: Instant, peer: SocketAddrV4, referrer: SocketAddrV4, check: Option<Check>) -> RequestId {
        self.punch_checks.retain(|(to, _)| *to != peer);
        if let Some(check) = check {
            if self.punch_checks.len() >= MAX_PUNCH_CHECKS {
                self.punch_checks.remove(0);
            }
            self.punch_checks.push((peer, check));
        }
        let request = self.request_id();
        let rid = self.rpc.next_rid();
        let direct = self.request_message(MessageType::Query, rid, peer, CMD_HOLEPUNCH);
        match self.opening_ttl {
            None => self.send_request(now, rid, peer, direct, Owner::Holepunch(request), None, Some(referrer), true),
            Some(ttl) => {
                self.stats.requests_sent += 1;
                let owner = Owner::Holepunch(request);
                match self.rpc.start(now, rid, peer, direct.encode(), owner, None, Some(referrer), true) {
                    Some(Action::Send { to, bytes }) => {
                        tracing::debug!(%peer, %referrer, ttl, "hole punch: opening packet");
                        self.rpc.set_opened(rid);
                        self.push_transmit(Datagram { to, bytes, ttl: Some(ttl) });
                    }
                    other => self.run_actions(now, other.into_iter().collect()),
                }
            }
        }
        self.send_punch(referrer, peer, Some(rid));
        request
    }

    fn send_punch(&mut self, referrer: SocketAddrV4, target: SocketAddrV4, rid: Option<u16>) {
        let punched = rid.is_some();
        let rid = rid.unwrap_or_else(|| self.rpc.next_rid());
        let mut m = self.request_message(MessageType::Query, rid, referrer, CMD_HOLEPUNCH);
        m.value = Some(Holepunch { from: None, to: Some(wire::encode_peer(target).to_vec()) }.encode());
        // Only a punch of our own (`holepunch`, whose rid the target answers)
        // carries our record; the automatic punches of DHT requests get
        // answers nobody waits for.
        if punched {
            let check = self.punch_checks.iter().find(|(to, _)| *to == target).map(|(_, c)| *c);
            m.target = self.own_capability().map(|c| Capability { check, ..c }.encode());
        }
        self.transmit(referrer, m.encode());
    }

    // ----- the state machine ------------------------------------------------

    /// The next datagram, without its TTL: for a driver that never turns
    /// [`Self::set_opening_ttl`] on (an opening packet would go at full TTL).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.transmits.pop_front().map(|d| (d.to, d.bytes))
    }

    /// The next datagram, with the TTL it must leave with.
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [Some(self.maintenance_at), Some(self.next_rotation), self.rpc.poll_timeout(), self.store.poll_timeout(), self.adaptive_at, self.punch_hold.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for h in self.punch_hold.due(now) {
            self.reply_for(now, h.source, h.to, h.bytes);
        }
        let mut actions = Vec::new();
        self.rpc.handle_timeout(now, &mut actions);
        self.run_actions(now, actions);
        if now >= self.next_rotation {
            self.tokens.rotate(self.rng.random());
            self.next_rotation = now + ROTATE_INTERVAL;
        }
        self.store.gc(now);
        if now >= self.maintenance_at {
            self.maintenance_at = now + MAINTENANCE_TICK;
            self.maintenance(now);
        }
        if self.adaptive_at.is_some_and(|at| now >= at) {
            if self.holepunchable() {
                self.persistent(now);
            } else {
                self.adaptive_at = Some(now + adaptive_delay(&mut self.rng));
            }
        }
        self.drive_queries(now);
    }

    fn maintenance(&mut self, now: Instant) {
        self.maintenance_ticks += 1;
        self.tick_mark = self.table.iter().map(|c| c.last_seen).max().unwrap_or(0);
        // Buffers grown by a burst (bootstrap) give their memory back.
        self.rpc.shrink();
        if self.queries.is_empty() {
            self.queries.shrink_to_fit();
        }
        self.transmits.shrink_to(64);
        self.events.shrink_to(64);
        self.budget.maintain(now);
        if self.maintenance_ticks % 8 == 0 {
            if self.table.is_empty() {
                if self.bootstrap_query.is_none() && !self.bootstrap_nodes.is_empty() {
                    self.bootstrap(now);
                }
            } else {
                let n = if self.queries.len() > 2 { 3 } else { MAINTENANCE_PINGS };
                for c in self.table.oldest(n) {
                    self.ping_owned(now, c.addr, Some(c.id), Owner::Check);
                }
            }
        }
        if self.maintenance_ticks % 64 == 0 && self.table.len() < MIN_NODES && self.bootstrap_query.is_none() {
            self.bootstrap(now);
        }
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.stats.received += 1;
        if from.port() == 0 {
            self.stats.malformed += 1;
            return;
        }
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::trace!(%from, "dropping DHT datagram: {e}");
                return;
            }
        };
        let sender = msg.sender_id().copied();
        match msg.kind {
            MessageType::Response => self.on_response(now, from, sender, msg),
            MessageType::Query | MessageType::Update => {
                if self.budget.on_request(now, *from.ip(), bytes.len()) == Admit::RateLimited {
                    self.stats.rate_limited += 1;
                    return;
                }
                if msg.kind == MessageType::Update {
                    let ok = msg.roundtrip_token.as_deref().is_some_and(|t| self.tokens.verify(*from.ip(), t));
                    if !ok {
                        self.stats.bad_token += 1;
                        return;
                    }
                    // The token went to this IP: a round trip.
                    self.budget.verify(now, *from.ip());
                }
                if let Some(id) = sender {
                    self.learn(now, id, from, None, false);
                }
                self.on_request(now, from, msg);
                self.maybe_verify(now, from);
            }
        }
        self.drive_queries(now);
    }

    /// An unverified source that has drawn half its reply allowance gets a
    /// `_ping`: an honest one answers and is verified before the 3× rule
    /// bites. The ping is paid from the same allowance.
    fn maybe_verify(&mut self, now: Instant, from: SocketAddrV4) {
        if self.verify_pings >= MAX_VERIFY_PINGS || !self.budget.wants_ping(now, *from.ip()) {
            return;
        }
        let rid = self.rpc.next_rid();
        let m = self.request_message(MessageType::Query, rid, from, CMD_PING);
        let bytes = m.encode();
        if !self.budget.spend(now, *from.ip(), bytes.len()) {
            return;
        }
        self.verify_pings += 1;
        self.send_request(now, rid, from, m, Owner::Verify, None, None, true);
    }

    /// A node id heard from `addr`: in a response to our request
    /// (`verified`, may move a contact and report `to`) or in a request.
    fn learn(&mut self, now: Instant, id: NodeId, addr: SocketAddrV4, to: Option<SocketAddrV4>, verified: bool) {
        let result = if verified { self.table.insert(id, addr, to) } else { self.table.insert_unverified(id, addr) };
        match result {
            Insert::Full { stale } if self.bootstrapped && self.evictions < MAX_EVICTION_PINGS => {
                // Contacts heard from in this tick are fresh: no ping. Without
                // this, every node a lookup touches pings a stale contact, whose
                // answer carries an id that fills another bucket: a cascade
                // that cost 4-5x the lookup's own traffic in simulation.
                let tick_mark = self.tick_mark;
                if let Some(old) = stale.into_iter().find(|c| c.last_seen <= tick_mark) {
                    self.evictions += 1;
                    self.ping_owned(now, old.addr, Some(old.id), Owner::Evict { stale: old.id, newcomer: id, addr, verified });
                }
            }
            Insert::Added if !self.initial_nodes_sent && self.table.len() >= INITIAL_NODES => {
                self.initial_nodes_sent = true;
                self.push_event(DhtEvent::InitialNodes);
            }
            Insert::Conflict => self.stats.id_conflicts += 1,
            Insert::SubnetFull => self.stats.subnet_refused += 1,
            _ => {}
        }
    }

    fn on_response(&mut self, now: Instant, from: SocketAddrV4, sender: Option<NodeId>, msg: Message) {
        let mut actions = Vec::new();
        let Some(req) = self.rpc.complete(now, msg.rid as u16, from, &mut actions) else {
            self.stats.unmatched_responses += 1;
            return;
        };
        self.budget.verify(now, *from.ip());
        self.run_actions(now, actions);
        let to = msg.to_addr();
        if let Some(id) = sender {
            self.learn(now, id, from, to, true);
        }
        if let Some(expected) = req.expect {
            if sender != Some(expected) {
                // Whoever answers at that address is not who we knew (spec §3.1).
                self.table.remove(&expected);
            }
        }
        match req.owner {
            Owner::Query(qid) => self.on_query_response(now, qid, from, sender, &msg, &req.bytes),
            Owner::Ping(request) => self.push_event(DhtEvent::Pong { request, from, to: msg.value.as_deref().and_then(|v| wire::decode_peer(v).ok()).or(to) }),
            Owner::Holepunch(request) => {
                let capability = self.learn_capability(now, from, msg.target.as_deref());
                self.push_event(DhtEvent::Holepunched { request, from, capability });
            }
            Owner::Evict { .. } => self.evictions = self.evictions.saturating_sub(1),
            Owner::Verify => self.verify_pings = self.verify_pings.saturating_sub(1),
            Owner::Check => {}
        }
    }

    fn on_query_response(&mut self, _now: Instant, qid: QueryId, from: SocketAddrV4, sender: Option<NodeId>, msg: &Message, sent: &[u8]) {
        let Some(state) = self.queries.get_mut(&qid) else { return };
        // Was the request an UPDATE? Its type byte says so (version, then type).
        let update = sent.get(3) == Some(&(MessageType::Update as u8));
        let nodes = msg.closer_nodes.as_deref().and_then(|b| wire::decode_nodes(b).ok()).unwrap_or_default();
        let total = nodes.len();
        let closer: Vec<(NodeId, SocketAddrV4)> =
            nodes.into_iter().filter(|n| allowed_from(n.addr, *from.ip())).map(|n: NodeRecord| (n.id, n.addr)).collect();
        let mut dropped = (total - closer.len()) as u64;
        if let Some(error) = msg.error_text() {
            // As in dht-rpc, an error reply's closer nodes still feed the
            // walk (notes §2.2 item 2): a node without the command routes.
            state.query.on_error(update, closer);
            self.stats.addresses_dropped += dropped;
            let Some(req) = &state.store else { return };
            let proof = req.proof(msg.value.as_deref());
            let conflict = proof.as_ref().and_then(|p| req.seq_conflict(p));
            self.push_event(DhtEvent::StoreWarning { query: qid, from, error: error.to_string(), proof: proof.clone() });
            if let Some(error) = conflict {
                tracing::debug!(%from, error, "put refused with a proof that verifies");
                self.end_store(qid, Err(StoreFailure { error: error.to_string(), proof, from: Some(from) }));
            }
            return;
        }
        state.query.on_response(from, sender, msg.roundtrip_token.as_deref(), closer, update);
        if let Some(req) = state.store.as_ref().filter(|r| r.is_get() && !update) {
            if let Some(got) = req.accept(from, sender, msg.value.as_deref()) {
                self.stats.addresses_dropped += dropped;
                self.end_store(qid, Ok(StoreOutcome::Got(Some(got))));
                return;
            }
        }
        if state.command == CMD_PEERS && !update {
            let (found, d) = decode_found(qid, state.query.target, from, sender, msg, state.local_address);
            dropped += d;
            if let Some(found) = found {
                self.push_event(DhtEvent::Peers(found));
            }
        }
        self.stats.addresses_dropped += dropped;
    }

    fn on_request(&mut self, now: Instant, from: SocketAddrV4, msg: Message) {
        match msg.command_str() {
            CMD_PING => {
                if msg.kind != MessageType::Query {
                    return;
                }
                if msg.value.as_deref().is_some_and(|v| v != self.id) {
                    return;
                }
                let mut r = self.response(&msg, from);
                r.value = Some(wire::encode_peer(from).to_vec());
                self.reply(now, from, r.encode());
            }
            CMD_FIND_NODE => {
                let Some(target) = msg.target.as_deref().and_then(|t| <[u8; 32]>::try_from(t).ok()) else { return };
                let mut r = self.response(&msg, from);
                r.closer_nodes = Some(self.closer_nodes(&target));
                self.reply(now, from, r.encode());
            }
            CMD_HOLEPUNCH => self.on_holepunch(now, from, msg),
            CMD_PEERS => self.on_peers(now, from, msg),
            CMD_IMMUTABLE_STORE | CMD_MUTABLE_STORE => self.on_store(now, from, msg),
            _ => {
                // dht-rpc adds closer nodes to this error (and to any target
                // length); we do not: an error reply is the cheapest thing a
                // forged 7-byte request could buy, and it stays small.
                if !msg.target.as_deref().is_some_and(|t| !t.is_empty()) {
                    return;
                }
                let r = self.error_response(&msg, from, "Unsupported command");
                self.reply(now, from, r.encode());
            }
        }
    }

    /// Sends a reply to (or a packet caused by) the requester at `source`,
    /// within its budget.
    fn reply(&mut self, now: Instant, to: SocketAddrV4, bytes: Vec<u8>) {
        self.reply_for(now, *to.ip(), to, bytes);
    }

    fn reply_for(&mut self, now: Instant, source: std::net::Ipv4Addr, to: SocketAddrV4, bytes: Vec<u8>) -> bool {
        if !self.budget.spend(now, source, bytes.len()) {
            self.stats.amplification_dropped += 1;
            return false;
        }
        self.transmit(to, bytes);
        true
    }

    /// `_holepunch` (spec §6.1). As a relay (step 3) we forward only to a
    /// node that has answered us from that address or a peer announced
    /// through us, never to an unspecified, multicast, broadcast or own
    /// address or out of the asker's scope, at a bounded rate per asker,
    /// and only the fields the target needs. As the target (step 4) we
    /// answer the asker, within the relay's budget.
    fn on_holepunch(&mut self, now: Instant, from: SocketAddrV4, msg: Message) {
        let Some(value) = msg.value.as_deref() else { return };
        let Ok(hp) = Holepunch::decode(value) else { return };
        if let Some(to) = hp.to.as_deref() {
            let Ok(to) = wire::decode_peer(to) else { return };
            if !self.may_relay(now, from, to, &msg) {
                self.stats.relays_refused += 1;
                return;
            }
            let relayed = msg.relay_holepunch(self.own_id(), from, to);
            if self.reply_for(now, *from.ip(), to, relayed.encode()) {
                self.push_event(DhtEvent::Relayed { from, to });
            }
        } else if let Some(origin) = hp.from.as_deref() {
            let Ok(origin) = wire::decode_peer(origin) else { return };
            if origin == from || !allowed_from(origin, *from.ip()) {
                return;
            }
            let theirs = self.learn_capability(now, origin, msg.target.as_deref());
            let mut r = self.response(&msg, origin);
            if theirs.is_some() {
                self.attach_capability(&mut r, msg.encoded_len());
            }
            if let Some(bytes) = self.punch_hold.hold(now, *from.ip(), origin, r.encode()) {
                self.reply_for(now, *from.ip(), origin, bytes);
            }
            if let Some(capability) = theirs {
                self.push_event(DhtEvent::PunchedBy { origin, referrer: from, capability });
            }
        }
    }

    /// A punch's `target` from `peer`: a record of ours is remembered and
    /// returned; anything else is counted and ignored.
    fn learn_capability(&mut self, now: Instant, peer: SocketAddrV4, target: Option<&[u8]>) -> Option<Capability> {
        let target = target?;
        match Capability::decode(target) {
            Some(c) => {
                self.stats.capabilities_learned += 1;
                self.capabilities.insert(now, peer, c.clone());
                Some(c)
            }
            None => {
                self.stats.capabilities_malformed += 1;
                None
            }
        }
    }

    /// Our record in the answer to a punch that carried one, with as many
    /// candidates as keep the answer no larger than the relayed punch that
    /// caused it (or than today's answer, when that is larger already): a
    /// forged record never makes us send more than what it cost to send.
    fn attach_capability(&self, r: &mut Message, request_len: usize) {
        let Some(mut mine) = self.own_capability() else { return };
        let base = r.encoded_len();
        let limit = request_len.max(base);
        loop {
            let bytes = mine.encode();
            // Field tag and length byte, then the record.
            if base + 2 + bytes.len() <= limit {
                r.target = Some(bytes);
                return;
            }
            if mine.candidates.pop().is_none() {
                return;
            }
        }
    }

    /// Cheapest checks first: a flood of punch requests for unknown targets
    /// costs a table scan each, and does not use up the asker's relay rate.
    fn may_relay(&mut self, now: Instant, from: SocketAddrV4, to: SocketAddrV4, msg: &Message) -> bool {
        if to == from || !allowed_from(to, *from.ip()) || msg.to_addr() == Some(to) {
            return false;
        }
        if !(self.store.has_peer(to) || self.table.verified_at(to)) {
            return false;
        }
        // Our own address as the DHT sees us (an announce may name it), or
        // as we are bound.
        let bound = self.local_addr.is_some_and(|l| l.port() == to.port() && (l.ip() == to.ip() || l.ip().is_unspecified()));
        if bound || self.remote_address() == Some(to) {
            return false;
        }
        self.budget.relay(now, *from.ip())
    }

    fn on_peers(&mut self, now: Instant, from: SocketAddrV4, msg: Message) {
        let Some(target) = msg.target.as_deref().and_then(|t| <[u8; 32]>::try_from(t).ok()) else { return };
        let input = match msg.value.as_deref().map(PeersInput::decode) {
            Some(Ok(i)) => i,
            None => PeersInput::default(),
            Some(Err(_)) => return,
        };
        let port = match input.port.filter(|p| *p != 0) {
            None => from.port() as u64,
            Some(p) => p,
        };
        if port == 0 || port > 65535 {
            let r = self.error_response(&msg, from, "Invalid port");
            self.reply(now, from, r.encode());
            return;
        }
        let closer = self.closer_nodes(&target);
        let remote = SocketAddrV4::new(*from.ip(), port as u16);
        let local = input.local_address.as_deref().and_then(|b| wire::decode_peer(b).ok());
        let mut r = self.response(&msg, from);
        r.closer_nodes = Some(closer);
        if msg.kind == MessageType::Update {
            if input.unannounce == Some(true) {
                self.store.remove(&target, remote, local);
                self.push_event(DhtEvent::Unannounced { topic: target, peer: remote });
            } else if self.store.add(now, target, remote, local.filter(|l| is_unicast(*l.ip()))) {
                self.push_event(DhtEvent::Announced { topic: target, peer: remote });
            } else {
                self.stats.store_refused += 1;
            }
        } else {
            let (peers, lan) = self.store.lookup(&target, remote, local, &mut self.rng);
            self.push_event(DhtEvent::LookedUp { topic: target, peer: remote });
            let out = PeersOutput {
                peers: (!peers.is_empty()).then(|| wire::encode_peers(&peers)),
                local_peers: (!lan.is_empty()).then(|| lan.concat()),
            };
            r.value = Some(out.encode());
        }
        self.reply(now, from, r.encode());
    }

    /// `immutable-store` and `mutable-store` (notes dht4-stores.md §3, §4).
    /// Replies carry closer nodes to the target, success or error, as
    /// dht-rpc's replies to custom commands do; error replies carry no
    /// token. UPDATEs reaching here have a valid token.
    fn on_store(&mut self, now: Instant, from: SocketAddrV4, msg: Message) {
        // The reference takes any target length; a non-32-byte one can only
        // miss (immutable) or come from a hand-made request (mutable), so it
        // gets nothing rather than a reply computed over odd ids.
        let Some(target) = msg.target.as_deref().and_then(|t| <[u8; 32]>::try_from(t).ok()) else {
            self.stats.values_dropped += 1;
            return;
        };
        let update = msg.kind == MessageType::Update;
        let value = msg.value.as_deref();
        let outcome = match (msg.command_str(), update) {
            (CMD_IMMUTABLE_STORE, false) => immutable::on_query(&mut self.values, &target),
            (CMD_IMMUTABLE_STORE, true) => immutable::on_update(&mut self.values, *from.ip(), &target, value),
            (_, false) => mutable::on_query(&mut self.values, &target, value),
            (_, true) => mutable::on_update(&mut self.values, *from.ip(), &target, value),
        };
        let mut r = match outcome {
            Outcome::Dropped(why) => {
                self.stats.values_dropped += 1;
                tracing::debug!(%from, command = msg.command_str(), "dropping store request: {why}");
                return;
            }
            Outcome::Stored => {
                self.stats.values_stored += 1;
                self.response(&msg, from)
            }
            Outcome::Answer(value) => {
                let mut r = self.response(&msg, from);
                r.value = value;
                r
            }
            Outcome::Rejected(error, proof) => {
                self.stats.values_rejected += 1;
                let mut r = self.error_response(&msg, from, error);
                r.value = proof;
                r
            }
        };
        r.closer_nodes = Some(self.closer_nodes(&target));
        self.reply(now, from, r.encode());
    }

    // ----- helpers ----------------------------------------------------------

    fn closer_nodes(&self, target: &NodeId) -> Vec<u8> {
        let nodes: Vec<NodeRecord> =
            self.table.closest(target, K).into_iter().map(|c| NodeRecord { id: c.id, addr: c.addr }).collect();
        wire::encode_nodes(&nodes)
    }

    fn own_id(&self) -> Option<[u8; 32]> {
        (!self.ephemeral).then_some(self.id)
    }

    fn request_message(&self, kind: MessageType, rid: u16, to: SocketAddrV4, command: &str) -> Message {
        let mut m = Message::new(kind, rid as u64);
        m.to = Some(wire::encode_peer(to).to_vec());
        m.id = self.own_id();
        m.command = Some(command.to_string());
        m
    }

    fn response(&self, req: &Message, to: SocketAddrV4) -> Message {
        let mut m = Message::new(MessageType::Response, req.rid);
        m.to = Some(wire::encode_peer(to).to_vec());
        m.id = self.own_id();
        m.roundtrip_token = Some(self.tokens.token(*to.ip()).to_vec());
        m
    }

    fn error_response(&self, req: &Message, to: SocketAddrV4, error: &str) -> Message {
        let mut m = Message::new(MessageType::Response, req.rid);
        m.to = Some(wire::encode_peer(to).to_vec());
        m.id = self.own_id();
        m.error = Some(error.to_string());
        m
    }

    fn transmit(&mut self, to: SocketAddrV4, bytes: Vec<u8>) {
        self.push_transmit(Datagram { to, bytes, ttl: None });
    }

    fn push_transmit(&mut self, d: Datagram) {
        if self.transmits.len() >= MAX_EVENTS {
            self.transmits.pop_front();
        }
        self.transmits.push_back(d);
    }

    fn push_event(&mut self, ev: DhtEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    fn request_id(&mut self) -> RequestId {
        let r = self.next_request;
        self.next_request += 1;
        r
    }

    fn ping_owned(&mut self, now: Instant, to: SocketAddrV4, expect: Option<NodeId>, owner: Owner) {
        let rid = self.rpc.next_rid();
        let mut m = self.request_message(MessageType::Query, rid, to, CMD_PING);
        m.value = expect.map(|id| id.to_vec());
        self.send_request(now, rid, to, m, owner, expect, None, true);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_request(
        &mut self,
        now: Instant,
        rid: u16,
        to: SocketAddrV4,
        msg: Message,
        owner: Owner,
        expect: Option<NodeId>,
        referrer: Option<SocketAddrV4>,
        urgent: bool,
    ) {
        self.stats.requests_sent += 1;
        let action = self.rpc.start(now, rid, to, msg.encode(), owner, expect, referrer, urgent);
        if let Some(a) = action {
            self.run_actions(now, vec![a]);
        }
    }

    fn run_actions(&mut self, now: Instant, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, bytes } => self.transmit(to, bytes),
                Action::Punch { referrer, target, rid } => self.send_punch(referrer, target, rid),
                Action::Failed(req) => self.on_request_failed(now, req),
            }
        }
    }

    fn on_request_failed(&mut self, now: Instant, req: super::rpc::Request) {
        self.stats.timeouts += 1;
        match req.owner {
            Owner::Query(qid) => {
                if let Some(id) = req.expect {
                    self.table.remove(&id);
                }
                if let Some(q) = self.queries.get_mut(&qid) {
                    q.query.on_timeout();
                    if q.store.is_some() {
                        self.push_event(DhtEvent::StoreWarning { query: qid, from: req.to, error: ERR_TIMEOUT.into(), proof: None });
                    }
                }
            }
            Owner::Ping(request) => self.push_event(DhtEvent::PingFailed { request }),
            Owner::Holepunch(request) => self.push_event(DhtEvent::HolepunchFailed { request }),
            Owner::Evict { stale, newcomer, addr, verified } => {
                self.evictions = self.evictions.saturating_sub(1);
                if verified {
                    self.table.replace(&stale, newcomer, addr, None);
                } else {
                    self.table.remove(&stale);
                    self.table.insert_unverified(newcomer, addr);
                }
            }
            Owner::Verify => self.verify_pings = self.verify_pings.saturating_sub(1),
            Owner::Check => {
                if let Some(id) = req.expect {
                    self.table.remove(&id);
                }
            }
        }
        let _ = now;
    }

    #[allow(clippy::too_many_arguments)]
    fn start_query(
        &mut self,
        now: Instant,
        target: NodeId,
        kind: QueryKind,
        command: &'static str,
        value: Option<Vec<u8>>,
        local_address: Option<SocketAddrV4>,
        bootstrap: bool,
    ) -> QueryId {
        let seeds = self.table.closest(&target, K).into_iter().map(|c| (c.id, c.addr)).collect();
        let query = Query::new(self.id, target, kind, seeds, &self.bootstrap_nodes);
        self.add_query(now, query, command, value, local_address, bootstrap)
    }

    fn add_query(
        &mut self,
        now: Instant,
        query: Query,
        command: &'static str,
        value: Option<Vec<u8>>,
        local_address: Option<SocketAddrV4>,
        bootstrap: bool,
    ) -> QueryId {
        self.add_query_with(now, query, command, value, local_address, bootstrap, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_query_with(
        &mut self,
        now: Instant,
        query: Query,
        command: &'static str,
        value: Option<Vec<u8>>,
        local_address: Option<SocketAddrV4>,
        bootstrap: bool,
        store: Option<StoreRequest>,
    ) -> QueryId {
        let qid = self.next_query;
        self.next_query += 1;
        if self.queries.len() >= MAX_QUERIES {
            let error = "Too many queries".to_string();
            self.push_event(match store {
                Some(_) => DhtEvent::StoreDone { query: qid, result: Err(StoreFailure { error, proof: None, from: None }) },
                None => DhtEvent::QueryDone { query: qid, error: Some(error), closest: Vec::new() },
            });
            return qid;
        }
        self.queries.insert(qid, QueryState { query, command, value, local_address, bootstrap, store });
        self.drive_queries(now);
        qid
    }

    /// Lets every query send what the concurrency limit allows, and finishes
    /// the ones that are done.
    fn drive_queries(&mut self, now: Instant) {
        if self.queries.is_empty() {
            return;
        }
        let mut ids: Vec<QueryId> = self.queries.keys().copied().collect();
        ids.sort_unstable();
        let only = ids.len() == 1;
        for qid in ids {
            loop {
                let inflight = self.query_inflight();
                let Some(state) = self.queries.get_mut(&qid) else { break };
                let limit = if state.bootstrap && !only { BOOTSTRAP_CONCURRENCY } else { CONCURRENCY };
                let slots = if state.bootstrap && !only {
                    limit.saturating_sub(state.query.inflight())
                } else {
                    limit.saturating_sub(inflight)
                };
                let Some(step) = state.query.next(slots) else { break };
                let (command, value) = (state.command, state.value.clone());
                self.send_step(now, qid, step, command, value);
            }
            let Some(state) = self.queries.get_mut(&qid) else { continue };
            if let Some(outcome) = state.query.advance() {
                // Nothing more to send in this phase: try the next one at once.
                if state.query.phase() != super::query::Phase::Done {
                    continue;
                }
                let bootstrap = state.bootstrap;
                self.finish_query(now, qid, outcome.err().map(str::to_string), bootstrap);
            } else if state.query.phase() == super::query::Phase::Updating && state.query.inflight() == 0 {
                // Just entered the update phase: send the updates.
                self.drive_one(now, qid);
            }
        }
    }

    fn drive_one(&mut self, now: Instant, qid: QueryId) {
        loop {
            let inflight = self.query_inflight();
            let Some(state) = self.queries.get_mut(&qid) else { return };
            let Some(step) = state.query.next(CONCURRENCY.saturating_sub(inflight)) else { break };
            let (command, value) = (state.command, state.value.clone());
            self.send_step(now, qid, step, command, value);
        }
        if let Some(state) = self.queries.get_mut(&qid) {
            if let Some(outcome) = state.query.advance() {
                let bootstrap = state.bootstrap;
                self.finish_query(now, qid, outcome.err().map(str::to_string), bootstrap);
            }
        }
    }

    /// Requests in flight that count against [`CONCURRENCY`]: verification
    /// pings do not, or a few spoofed sources that never answer would slow
    /// every lookup to one request at a time.
    fn query_inflight(&self) -> usize {
        self.rpc.inflight().saturating_sub(self.verify_pings)
    }

    /// Walks towards a random id in each sparse far bucket.
    fn refresh_far_buckets(&mut self, now: Instant) {
        let mut counts = [0usize; REFRESH_DEPTH];
        for c in self.table.iter() {
            let d = super::routing_table::distance(&c.id, &self.id);
            let cpl = d.iter().position(|b| *b != 0).map(|i| i * 8 + d[i].leading_zeros() as usize).unwrap_or(256);
            if cpl < REFRESH_DEPTH {
                counts[cpl] += 1;
            }
        }
        for (cpl, &n) in counts.iter().enumerate() {
            if n >= REFRESH_BELOW {
                continue;
            }
            // Same first `cpl` bits as us, the next one flipped, the rest random.
            let mut target: NodeId = self.rng.random();
            for bit in 0..=cpl {
                let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
                let ours = self.id[byte] & mask;
                let want = if bit == cpl { ours ^ mask } else { ours };
                target[byte] = (target[byte] & !mask) | want;
            }
            self.start_query(now, target, QueryKind::Query, CMD_FIND_NODE, None, None, true);
        }
    }

    fn finish_query(&mut self, now: Instant, qid: QueryId, error: Option<String>, bootstrap: bool) {
        let state = self.queries.remove(&qid);
        if state.as_ref().is_some_and(|s| s.query.capped()) {
            self.stats.queries_capped += 1;
        }
        if let Some(req) = state.as_ref().and_then(|s| s.store.as_ref()) {
            let result = match error {
                Some(error) => Err(StoreFailure { error, proof: None, from: None }),
                None if req.is_get() => Ok(StoreOutcome::Got(None)),
                None => Ok(req.put_outcome()),
            };
            self.push_event(DhtEvent::StoreDone { query: qid, result });
            return;
        }
        let closest = state.map(|s| s.query.closest().map(|(id, a, _)| (*id, *a)).collect()).unwrap_or_default();
        if bootstrap && self.bootstrap_query == Some(qid) {
            self.bootstrap_query = None;
            self.refresh_far_buckets(now);
            if !self.bootstrapped {
                self.bootstrapped = true;
                self.push_event(DhtEvent::Ready);
            }
        }
        self.push_event(DhtEvent::QueryDone { query: qid, error, closest });
    }

    fn send_step(&mut self, now: Instant, qid: QueryId, step: Step, command: &'static str, value: Option<Vec<u8>>) {
        let rid = self.rpc.next_rid();
        let kind = if step.update.is_some() { MessageType::Update } else { MessageType::Query };
        let cmd = if step.find_node { CMD_FIND_NODE } else { command };
        let mut m = self.request_message(kind, rid, step.addr, cmd);
        m.target = Some(self.queries[&qid].query.target.to_vec());
        m.roundtrip_token = step.update;
        if !step.find_node {
            m.value = value;
        }
        self.send_request(now, rid, step.addr, m, Owner::Query(qid), step.id, step.referrer, false);
    }
}

fn adaptive_delay(rng: &mut StdRng) -> Duration {
    ADAPTIVE_MIN + (ADAPTIVE_MAX - ADAPTIVE_MIN).mul_f64(rng.random::<f64>())
}

/// The peers in a `peers` reply, without addresses out of the replier's
/// scope (`scope::allowed_from`); also returns how many were dropped.
/// LAN records are rebuilt under our own /16, so only their unicast-ness
/// is checked.
fn decode_found(
    query: QueryId,
    topic: NodeId,
    from: SocketAddrV4,
    sender: Option<NodeId>,
    msg: &Message,
    local_address: Option<SocketAddrV4>,
) -> (Option<FoundPeers>, u64) {
    let Some(out) = msg.value.as_deref().and_then(|v| PeersOutput::decode(v).ok()) else { return (None, 0) };
    let all = out.peers.as_deref().and_then(|b| wire::decode_peers(b).ok()).unwrap_or_default();
    let n = all.len();
    let peers = all.into_iter().filter(|p| allowed_from(*p, *from.ip())).collect::<Vec<_>>();
    let local_all = match (local_address, out.local_peers.as_deref()) {
        (Some(me), Some(b)) => {
            let o = me.ip().octets();
            wire::decode_lan_peers([o[0], o[1]], b).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let m = local_all.len();
    let local_peers = local_all.into_iter().filter(|p| p.port() != 0 && is_unicast(*p.ip())).collect::<Vec<_>>();
    let dropped = (n - peers.len() + m - local_peers.len()) as u64;
    if peers.is_empty() && local_peers.is_empty() {
        return (None, dropped);
    }
    (Some(FoundPeers { query, topic, node: from, node_id: sender, to: msg.to_addr(), peers, local_peers }), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), port)
    }

    fn node(ephemeral: bool) -> (Dht, Instant) {
        let now = Instant::now();
        (Dht::new(now, DhtConfig { id: Some([7; 32]), ephemeral, adaptive: false, bootstrap: vec![], seed: 1 }), now)
    }

    fn drain(d: &mut Dht) -> Vec<(SocketAddrV4, Message)> {
        std::iter::from_fn(|| d.poll_transmit()).map(|(a, b)| (a, Message::decode(&b).unwrap())).collect()
    }

    fn query(rid: u64, command: &str, id: Option<[u8; 32]>) -> Message {
        let mut m = Message::new(MessageType::Query, rid);
        m.command = Some(command.into());
        m.id = id;
        m
    }

    #[test]
    fn ping_is_answered_with_the_asker_address_and_a_token() {
        let (mut d, now) = node(false);
        d.handle_datagram(now, addr(1, 1000), &query(5, CMD_PING, None).encode());
        let out = drain(&mut d);
        assert_eq!(out.len(), 1);
        let (to, r) = &out[0];
        assert_eq!(*to, addr(1, 1000));
        assert_eq!(r.kind, MessageType::Response);
        assert_eq!(r.rid, 5);
        assert_eq!(r.id, Some([7; 32]));
        assert_eq!(r.value.as_deref(), Some(&wire::encode_peer(addr(1, 1000))[..]));
        assert_eq!(r.roundtrip_token.as_ref().map(Vec::len), Some(32));
    }

    #[test]
    fn ping_for_someone_else_is_not_answered() {
        let (mut d, now) = node(false);
        let mut q = query(5, CMD_PING, None);
        q.value = Some(vec![9; 32]);
        d.handle_datagram(now, addr(1, 1000), &q.encode());
        assert!(drain(&mut d).is_empty());
    }

    #[test]
    fn ephemeral_nodes_never_send_their_id() {
        let (mut d, now) = node(true);
        d.handle_datagram(now, addr(1, 1000), &query(5, CMD_PING, None).encode());
        assert_eq!(drain(&mut d)[0].1.id, None);
    }

    #[test]
    fn responses_with_unknown_rids_are_ignored_and_counted() {
        let (mut d, now) = node(false);
        let mut r = Message::new(MessageType::Response, 4242);
        r.id = Some([1; 32]);
        d.handle_datagram(now, addr(2, 2000), &r.encode());
        assert_eq!(d.stats().unmatched_responses, 1);
        assert_eq!(d.table().len(), 0, "a spoofed response adds nobody");
    }

    #[test]
    fn update_with_a_wrong_token_gets_no_reply_and_stores_nothing() {
        let (mut d, now) = node(false);
        let mut u = Message::new(MessageType::Update, 1);
        u.command = Some(CMD_PEERS.into());
        u.target = Some(vec![3; 32]);
        u.value = Some(PeersInput::default().encode());
        u.roundtrip_token = Some(vec![0; 32]);
        d.handle_datagram(now, addr(3, 3000), &u.encode());
        assert!(drain(&mut d).is_empty());
        assert_eq!(d.stats().bad_token, 1);
        // With the token the node handed out, the same update is stored.
        d.handle_datagram(now, addr(3, 3000), &query(2, CMD_PING, None).encode());
        let token = drain(&mut d)[0].1.roundtrip_token.clone();
        u.roundtrip_token = token;
        d.handle_datagram(now, addr(3, 3000), &u.encode());
        assert_eq!(drain(&mut d).len(), 1);
        let mut lookup = query(3, CMD_PEERS, None);
        lookup.target = Some(vec![3; 32]);
        lookup.value = Some(Vec::new());
        d.handle_datagram(now, addr(4, 4000), &lookup.encode());
        let reply = drain(&mut d).pop().unwrap().1;
        let out = PeersOutput::decode(reply.value.as_deref().unwrap()).unwrap();
        assert_eq!(wire::decode_peers(out.peers.as_deref().unwrap()).unwrap(), vec![addr(3, 3000)]);
    }

    #[test]
    fn spam_from_one_address_stays_bounded() {
        let (mut d, now) = node(false);
        let spammer = addr(9, 9000);
        d.handle_datagram(now, spammer, &query(1, CMD_PING, None).encode());
        let token = drain(&mut d)[0].1.roundtrip_token.clone();
        for i in 0..5000u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[4] = 1;
            d.handle_datagram(now, spammer, &query(i as u64, CMD_PING, Some(id)).encode());
            let _ = drain(&mut d);
        }
        // k-buckets hold at most K per prefix length, and one /24 at most
        // 2 per bucket and 10 in all: 5000 ids from one address take 2 (they
        // share a bucket).
        assert_eq!(d.table().len(), super::super::routing_table::MAX_PER_SUBNET_BUCKET);
        assert!(d.stats().subnet_refused > 1900, "{:?}", d.stats());
        assert!(d.stats().rate_limited > 0, "5000 requests at once exceed the burst");
        // Announce spam: the store caps records per source address.
        let now = now + Duration::from_secs(10);
        for i in 0..5000u32 {
            let mut u = Message::new(MessageType::Update, i as u64);
            u.command = Some(CMD_PEERS.into());
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_be_bytes());
            u.target = Some(t.to_vec());
            u.value = Some(PeersInput { port: Some(1 + i as u64), local_address: None, unannounce: None }.encode());
            u.roundtrip_token = token.clone();
            d.handle_datagram(now, spammer, &u.encode());
            let _ = drain(&mut d);
        }
        assert!(d.stats().store_refused > 0);
    }

    fn punch_request(rid: u64, to: SocketAddrV4) -> Message {
        let mut q = query(rid, CMD_HOLEPUNCH, None);
        q.value = Some(Holepunch { from: None, to: Some(wire::encode_peer(to).to_vec()) }.encode());
        q
    }

    /// `peer` announces `topic` through `d` (ping for a token, then UPDATE).
    /// Makes `peer` announced through `d`, so `d` relays punches to it
    /// (also used by capability_tests).
    pub(super) fn announce_through(d: &mut Dht, now: Instant, peer: SocketAddrV4) {
        d.handle_datagram(now, peer, &query(1, CMD_PING, None).encode());
        let token = drain(d)[0].1.roundtrip_token.clone();
        let mut u = Message::new(MessageType::Update, 2);
        u.command = Some(CMD_PEERS.into());
        u.target = Some(vec![3; 32]);
        u.value = Some(PeersInput::default().encode());
        u.roundtrip_token = token;
        d.handle_datagram(now, peer, &u.encode());
        drain(d);
        while d.poll_event().is_some() {}
    }

    #[test]
    fn holepunch_is_relayed_only_to_a_peer_announced_through_us() {
        let (mut d, now) = node(false);
        let (asker, target) = (addr(6, 6000), addr(5, 5000));
        // Unknown target: nothing is sent.
        d.handle_datagram(now, asker, &punch_request(77, target).encode());
        assert!(drain(&mut d).is_empty());
        assert_eq!(d.stats().relays_refused, 1);
        // Once the target announced through us, it is relayed.
        announce_through(&mut d, now, target);
        let mut q = punch_request(78, target);
        // Fields the target does not need are not forwarded.
        q.target = Some(vec![0xee; 200]);
        q.closer_nodes = Some(vec![0xdd; 380]);
        d.handle_datagram(now, asker, &q.encode());
        let out = drain(&mut d);
        assert_eq!(out.len(), 1);
        let (to, m) = &out[0];
        assert_eq!(*to, target);
        assert_eq!(m.rid, 78);
        assert_eq!(m.kind, MessageType::Query);
        assert_eq!((m.target.as_ref(), m.closer_nodes.as_ref()), (None, None));
        let hp = Holepunch::decode(m.value.as_deref().unwrap()).unwrap();
        assert_eq!(hp.from.as_deref(), Some(&wire::encode_peer(asker)[..]));
        assert_eq!(d.poll_event(), Some(DhtEvent::Relayed { from: asker, to: target }));
    }

    #[test]
    fn holepunch_relay_never_to_special_or_own_addresses_and_rate_limited() {
        let (mut d, now) = node(false);
        let asker = addr(6, 6000);
        for bad in ["0.0.0.0:53", "224.0.0.251:5353", "255.255.255.255:53", "127.0.0.1:53"] {
            let bad: SocketAddrV4 = bad.parse().unwrap();
            announce_through(&mut d, now, bad);
            d.handle_datagram(now, asker, &punch_request(1, bad).encode());
            assert!(drain(&mut d).is_empty(), "{bad}");
        }
        // Our own address as the asker sees us.
        let me = addr(1, 49737);
        announce_through(&mut d, now, me);
        let mut q = punch_request(2, me);
        q.to = Some(wire::encode_peer(me).to_vec());
        d.handle_datagram(now, asker, &q.encode());
        assert!(drain(&mut d).is_empty(), "own address");
        let bound = addr(1, 7000);
        d.set_local_addr(bound);
        announce_through(&mut d, now, bound);
        d.handle_datagram(now, asker, &punch_request(3, bound).encode());
        assert!(drain(&mut d).is_empty(), "bound address");
        // The rate: a burst of 20, then 5 a second.
        let target = addr(5, 5000);
        announce_through(&mut d, now, target);
        let mut relayed = 0;
        for i in 0..100 {
            d.handle_datagram(now, asker, &punch_request(10 + i, target).encode());
            relayed += drain(&mut d).len();
        }
        assert_eq!(relayed, 20);
    }

    #[test]
    fn a_punch_from_a_peer_that_just_connected_over_tcp_is_answered_after_the_hold() {
        let (mut d, now) = node(false);
        let (asker, referrer) = (addr(6, 6000), addr(5, 5000));
        let relayed = |rid| punch_request(rid, addr(1, 49737)).relay_holepunch(Some([9; 32]), asker, addr(1, 49737));
        // Nobody connected: answered at once, to the asker.
        d.handle_datagram(now, referrer, &relayed(1).encode());
        let out = drain(&mut d);
        assert_eq!(out.iter().map(|(to, m)| (*to, m.rid)).collect::<Vec<_>>(), vec![(asker, 1)]);
        // The asker's IP reached us over TCP: the answer waits for the hold.
        d.tcp_accepted(now, *asker.ip());
        let later = now + Duration::from_millis(4);
        d.handle_datagram(later, referrer, &relayed(2).encode());
        assert!(drain(&mut d).is_empty());
        let at = now + super::super::punch_hold::PUNCH_HOLD;
        assert_eq!(d.poll_timeout(), Some(at));
        d.handle_timeout(at - Duration::from_millis(1));
        assert!(drain(&mut d).is_empty());
        d.handle_timeout(at);
        let out = drain(&mut d);
        assert_eq!(out.iter().map(|(to, m)| (*to, m.rid, m.kind)).collect::<Vec<_>>(), vec![(asker, 2, MessageType::Response)]);
    }

    #[test]
    fn a_holepunch_completes_only_with_the_punched_peers_answer() {
        let (mut d, now) = node(false);
        let (peer, referrer) = (addr(5, 5000), addr(6, 6000));
        let req = d.holepunch(now, peer, referrer);
        let out = drain(&mut d);
        assert_eq!(out.iter().map(|(a, _)| *a).collect::<Vec<_>>(), vec![peer, referrer]);
        let rid = out[0].1.rid;
        assert_eq!(out[1].1.rid, rid, "one rid for both");
        let mut answer = Message::new(MessageType::Response, rid);
        answer.command = Some(CMD_HOLEPUNCH.into());
        // The referrer (or anyone else) answering does not count...
        d.handle_datagram(now, referrer, &answer.encode());
        assert_eq!(d.poll_event(), None);
        // ...the punched peer does, also from another port of its IP (its
        // NAT's mapping towards us).
        let mapped = addr(5, 5999);
        d.handle_datagram(now, mapped, &answer.encode());
        assert_eq!(d.poll_event(), Some(DhtEvent::Holepunched { request: req, from: mapped, capability: None }));
    }

    #[test]
    fn an_opening_ttl_sends_the_punchs_first_datagram_short_lived_then_again_in_full_at_the_punch_delay() {
        let (mut plain, now) = node(false);
        let (mut d, _) = node(false);
        d.set_opening_ttl(Some(OPENING_TTL));
        let (peer, referrer) = (addr(5, 5000), addr(6, 6000));
        plain.holepunch(now, peer, referrer);
        d.holepunch(now, peer, referrer);
        let out: Vec<Datagram> = std::iter::from_fn(|| d.poll_datagram()).collect();
        let today: Vec<(SocketAddrV4, Vec<u8>)> = std::iter::from_fn(|| plain.poll_transmit()).collect();
        // The same datagrams in the same order (the peer's first), only the
        // peer's with a TTL.
        assert_eq!(out.iter().map(|o| (o.to, o.ttl)).collect::<Vec<_>>(), vec![(peer, Some(OPENING_TTL)), (referrer, None)]);
        let direct = Message::decode(&out[0].bytes).unwrap();
        let expected = Message::decode(&today[0].1).unwrap();
        assert_eq!((direct.command.as_deref(), direct.to_addr()), (expected.command.as_deref(), expected.to_addr()));
        // Half a second on, unanswered: the referrer is asked again, and the
        // peer gets the same request at full TTL.
        d.handle_timeout(now + super::super::rpc::PUNCH_DELAY);
        let again: Vec<Datagram> = std::iter::from_fn(|| d.poll_datagram()).collect();
        assert_eq!(again.iter().map(|o| (o.to, o.ttl)).collect::<Vec<_>>(), vec![(peer, None), (referrer, None)]);
        assert_eq!(again[0].bytes, out[0].bytes);
        plain.handle_timeout(now + super::super::rpc::PUNCH_DELAY);
        let plain_again: Vec<SocketAddrV4> = std::iter::from_fn(|| plain.poll_transmit()).map(|(a, _)| a).collect();
        assert_eq!(plain_again, vec![referrer], "without an opening TTL only the referrer is asked again, as dht-rpc does");
        // Answered before that: nothing more goes to the peer.
        let (mut e, _) = node(false);
        e.set_opening_ttl(Some(OPENING_TTL));
        let req = e.holepunch(now, peer, referrer);
        let rid = Message::decode(&e.poll_datagram().unwrap().bytes).unwrap().rid;
        let mut answer = Message::new(MessageType::Response, rid);
        answer.command = Some(CMD_HOLEPUNCH.into());
        e.handle_datagram(now, peer, &answer.encode());
        assert!(matches!(e.poll_event(), Some(DhtEvent::Holepunched { request, .. }) if request == req));
        while e.poll_datagram().is_some() {}
        e.handle_timeout(now + super::super::rpc::PUNCH_DELAY);
        assert!(std::iter::from_fn(|| e.poll_datagram()).all(|o| o.to != peer));
    }

    /// Answers the first request `d` sent to `to` with `reply`.
    fn answer(d: &mut Dht, now: Instant, out: &[(SocketAddrV4, Message)], to: SocketAddrV4, mut reply: Message) {
        let req = out.iter().find(|(a, _)| *a == to).expect("a request to it").1.rid;
        reply.rid = req;
        d.handle_datagram(now, to, &reply.encode());
    }

    #[test]
    fn node_and_peer_lists_keep_the_scope_of_their_source() {
        let (mut d, now) = node(false);
        let public = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 49737);
        d.set_bootstrap_nodes(vec![public]);
        d.lookup(now, [3; 32], None);
        let out = drain(&mut d);
        let mut r = Message::new(MessageType::Response, 0);
        r.id = Some([9; 32]);
        r.roundtrip_token = Some(vec![1; 32]);
        let named = ["127.0.0.1:53", "192.168.1.1:80", "0.0.0.0:1", "224.0.0.251:5353", "198.51.100.9:4000"];
        let named: Vec<SocketAddrV4> = named.iter().map(|s| s.parse().unwrap()).collect();
        r.closer_nodes = Some(wire::encode_nodes(
            &named.iter().enumerate().map(|(i, a)| NodeRecord { id: [i as u8 + 20; 32], addr: *a }).collect::<Vec<_>>(),
        ));
        // (The codec drops a whole peer list that names 0.0.0.0.)
        let peer_list: Vec<SocketAddrV4> = named.iter().copied().filter(|a| !a.ip().is_unspecified()).collect();
        r.value = Some(PeersOutput { peers: Some(wire::encode_peers(&peer_list)), local_peers: None }.encode());
        answer(&mut d, now, &out, public, r);
        let asked: Vec<SocketAddrV4> = drain(&mut d).into_iter().map(|(a, _)| a).collect();
        assert_eq!(asked, vec![named[4]], "only the public node is asked");
        let found: Vec<SocketAddrV4> = std::iter::from_fn(|| d.poll_event())
            .filter_map(|e| if let DhtEvent::Peers(f) = e { Some(f.peers) } else { None })
            .flatten()
            .collect();
        assert_eq!(found, vec![named[4]]);
        assert_eq!(d.stats().addresses_dropped, 4 + 3);
        // From a loopback source, loopback and private names are fine.
        let (mut d, now) = node(false);
        let lo = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 49737);
        d.set_bootstrap_nodes(vec![lo]);
        d.lookup(now, [3; 32], None);
        let out = drain(&mut d);
        let mut r = Message::new(MessageType::Response, 0);
        r.closer_nodes = Some(wire::encode_nodes(&[
            NodeRecord { id: [20; 32], addr: "127.0.0.1:4000".parse().unwrap() },
            NodeRecord { id: [21; 32], addr: "10.0.0.1:4000".parse().unwrap() },
        ]));
        answer(&mut d, now, &out, lo, r);
        assert_eq!(drain(&mut d).len(), 2);
    }

    #[test]
    fn our_address_needs_agreement_from_three_subnets() {
        let (mut d, now) = node(false);
        let me = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5000);
        let report = |d: &mut Dht, from: SocketAddrV4, id: u8| {
            d.ping(now, from, None);
            let out = drain(d);
            let mut r = Message::new(MessageType::Response, 0);
            r.id = Some([id; 32]);
            r.to = Some(wire::encode_peer(me).to_vec());
            answer(d, now, &out, from, r);
        };
        // Five nodes of one /24 agree: one vote.
        for i in 0..5u8 {
            report(&mut d, SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, i), 1000), 0x80 | i);
        }
        assert!(!d.holepunchable());
        assert_eq!(d.remote_address(), None);
        report(&mut d, SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 1000), 0x40);
        assert!(!d.holepunchable());
        report(&mut d, SocketAddrV4::new(Ipv4Addr::new(100, 1, 2, 3), 1000), 0x20);
        assert!(d.holepunchable(), "three /24s agree");
        assert_eq!(d.remote_address(), Some(me));
    }

    #[test]
    fn verification_pings_are_bounded() {
        let (mut d, now) = node(false);
        let mut find = query(1, CMD_FIND_NODE, None);
        find.target = Some(vec![1; 32]);
        for i in 0..64u8 {
            d.add_node([i.wrapping_add(100); 32], SocketAddrV4::new(Ipv4Addr::new(203, 0, i, 1), 1000));
        }
        let mut pings = 0;
        for src in 0..100u8 {
            let from = SocketAddrV4::new(Ipv4Addr::new(198, 51, src, 1), 1000);
            for _ in 0..10 {
                d.handle_datagram(now, from, &find.encode());
                pings += drain(&mut d).iter().filter(|(_, m)| m.kind == MessageType::Query).count();
            }
        }
        assert_eq!(pings, MAX_VERIFY_PINGS, "at most {MAX_VERIFY_PINGS} in flight");
        // They leave a lookup its full concurrency.
        d.lookup(now, [1; 32], None);
        assert_eq!(drain(&mut d).len(), CONCURRENCY);
    }

    #[test]
    fn garbage_never_panics_and_is_counted() {
        let (mut d, now) = node(false);
        let mut seed = 0x1234_5678u64;
        for n in 0..2000 {
            let len = n % 300;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            d.handle_datagram(now, addr(8, 8000), &bytes);
        }
        assert!(d.stats().malformed > 1900);
    }
}

#[cfg(test)]
mod capability_tests;
