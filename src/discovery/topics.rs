//! The topic table: which topics announce and look up, when their next DHT
//! round is due, and how DHT and mDNS results become peers
//! (spec/api-network.md §3).

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dht::ops::{Command, NodeEvent, Operations};
use crate::dht::{Dht, DhtConfig, DhtEvent, DhtStats, FoundPeers, QueryId, RequestId};
use crate::lan::{Lan, LanConfig, LanEvent, LanStats, Link};
use super::peer::{Peer, Referrer, Topic};

/// A topic's next DHT round starts 5–10 min after the last one ended
/// (spec/api-network.md §3.3).
pub const ROUND_MIN: Duration = Duration::from_secs(5 * 60);
pub const ROUND_MAX: Duration = Duration::from_secs(10 * 60);

/// A LAN peer heard again this soon is not reported again (not in the
/// reference, which reports every mDNS answer). Every peer that joins a
/// topic queries the LAN, and every announcer answers each query by
/// multicast, so one announcer's answer reaches a looker once per joining
/// peer within milliseconds. Reported once, LAN peers come out in the order
/// their first answers arrived, as the reference's single event loop hands
/// them out; repeats only pushed later announcers back. One second covers
/// the burst; `update()` asks again and reports everything it hears.
pub const LAN_REPEAT_WINDOW: Duration = Duration::from_secs(1);
/// LAN peers per topic remembered for [`LAN_REPEAT_WINDOW`]; beyond it the
/// oldest is forgotten (and may be reported again). A LAN answer carries
/// few peers and mDNS replies are bounded by the LAN core's queues.
pub const LAN_REPEAT_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// mDNS domain; `None` turns LAN discovery off.
    pub lan_domain: Option<String>,
    /// The DHT node; `None` turns DHT discovery off.
    pub dht: Option<DhtConfig>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// To the mDNS group: out of the interface with address `via`, or out
    /// of every interface when `via` is `None`.
    Multicast { payload: Vec<u8>, via: Option<Ipv4Addr> },
    /// A DHT datagram from the swarm's UDP socket.
    Udp(SocketAddrV4, Vec<u8>),
    /// A DHT datagram from the swarm's UDP socket that must leave with IP
    /// TTL `ttl`: a hole punch's opening packet (`dht::node::OPENING_TTL`).
    UdpTtl { to: SocketAddrV4, bytes: Vec<u8>, ttl: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    Peer(Peer),
    /// A DHT round of `topic` started (`'updating'`).
    Updating { topic: Topic },
    /// The running DHT round of `topic` has heard enough to call back
    /// `flush` before it ends (at most once per round; `Update` flushes too).
    Flushed { topic: Topic },
    /// A DHT round of `topic` ended (`'update'`).
    Update { topic: Topic, error: Option<String> },
    /// A left topic is gone from the DHT: its unannounce ended, or there
    /// was nothing to unannounce (the topic's `'close'`).
    Left { topic: Topic },
    /// A bootstrap ping batch ended: each answering bootstrap node, the
    /// round trip, and our address as it saw us (discovery's `ping`).
    Pinged { batch: u64, pongs: Vec<Pong> },
    /// The first DHT bootstrap ended.
    Ready { error: Option<String> },
    /// A hole punch we asked for ended: `Some(from)` is where the punched
    /// peer answered from (its address as our NAT sees it), `capability`
    /// its record when it runs our code (`dht::capability`).
    Punched { request: RequestId, from: Option<SocketAddrV4>, capability: Option<crate::dht::capability::Capability> },
    /// A peer of ours punched us through `referrer` (`DhtEvent::PunchedBy`).
    PunchedBy { origin: SocketAddrV4, referrer: SocketAddrV4, capability: crate::dht::capability::Capability },
    /// A reply to an operation of the caller's on the DHT node itself
    /// ([`Discovery::dht_command`]: the network entry's `discovery.dht`).
    Dht(NodeEvent),
    /// A node answered side query `query` ([`Discovery::side_lookup`])
    /// with these peers (public records only).
    SidePeers { query: QueryId, peers: Vec<SocketAddrV4> },
    /// Side query `query` ended.
    SideDone { query: QueryId, error: Option<String> },
}

/// One bootstrap node's answer to a ping batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    pub bootstrap: SocketAddrV4,
    pub rtt: Duration,
    pub to: Option<SocketAddrV4>,
}

struct PingBatch {
    waiting: HashMap<RequestId, (SocketAddrV4, Instant)>,
    pongs: Vec<Pong>,
}

/// Responses that make a round flush early (discovery 2.0.1): this many
/// answers carrying at least the largest peer count seen so far.
const FLUSH_RESPONSES: u32 = 6;
/// Peer counts from this size up no longer raise the bar (discovery 2.0.1).
const FLUSH_BAR_CAP: usize = 16;

/// Counts a round's responses towards its early flush: separately for
/// `peers` and `localPeers`, each against its own largest count so far
/// (the reference compares `localPeers` with the `peers` bar, a slip).
#[derive(Debug, Clone, Copy)]
struct FlushTally {
    bar: usize,
    count: u32,
    local_bar: usize,
    local_count: u32,
    done: bool,
}

impl Default for FlushTally {
    fn default() -> Self {
        FlushTally { bar: 1, count: 0, local_bar: 1, local_count: 0, done: false }
    }
}

impl FlushTally {
    /// One response with `peers` and `local` records; true when this one
    /// completes the flush.
    fn response(&mut self, peers: usize, local: usize) -> bool {
        fn step(n: usize, bar: &mut usize, count: &mut u32) {
            if n > *bar && n < FLUSH_BAR_CAP {
                *bar = n;
                *count = 1;
            } else if n >= *bar {
                *count += 1;
            }
        }
        step(peers, &mut self.bar, &mut self.count);
        step(local, &mut self.local_bar, &mut self.local_count);
        if self.done || (self.count < FLUSH_RESPONSES && self.local_count < FLUSH_RESPONSES) {
            return false;
        }
        self.done = true;
        true
    }
}

/// What a join asks of discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinSpec {
    pub announce: bool,
    pub lookup: bool,
    /// Port in mDNS answers (our TCP port).
    pub lan_port: u16,
    /// Port announced on the DHT; 0: our UDP source port.
    pub dht_port: u16,
    pub local_address: Option<SocketAddrV4>,
    /// The LAN instance id chosen by the caller, who then sends the
    /// unsolicited answer itself (`crate::lan::announcement`); `None`: a
    /// random id, and the LAN core sends it.
    pub lan_id: Option<crate::wire::mdns::InstanceId>,
    /// The first DHT round waits for [`Discovery::start_deferred_round`]:
    /// the caller sends the LAN "here I am" first, on its own thread, and
    /// the DHT announce follows it, as in the reference's one event loop
    /// (where no DHT answer can overtake an mDNS answer sent a tick earlier).
    pub defer_round: bool,
}

struct TopicState {
    /// DHT port to announce; 0 lets the storing node record our UDP
    /// source port (which TCP and uTP share, wire-dht.md gotcha 10).
    dht_port: u16,
    /// Our LAN address, sent with announces and lookups so that DHT nodes
    /// pair us with peers behind the same NAT (`announceLocalAddress`).
    local_address: Option<SocketAddrV4>,
    announce: bool,
    lookup: bool,
    round: Option<QueryId>,
    next_round: Option<Instant>,
    /// How far the running round is from its early flush.
    tally: FlushTally,
    /// LAN peers reported lately, oldest first (see [`LAN_REPEAT_WINDOW`]).
    lan_heard: VecDeque<(Ipv4Addr, u16, Instant)>,
    /// The first round waits for the caller (see [`JoinSpec::defer_round`]).
    round_deferred: bool,
}

impl TopicState {
    /// Whether the LAN peer `host:port` is news: not reported within
    /// [`LAN_REPEAT_WINDOW`]. Remembers it if so.
    fn lan_news(&mut self, now: Instant, host: Ipv4Addr, port: u16) -> bool {
        while self.lan_heard.front().is_some_and(|(_, _, at)| now.duration_since(*at) >= LAN_REPEAT_WINDOW) {
            self.lan_heard.pop_front();
        }
        if self.lan_heard.iter().any(|(h, p, _)| *h == host && *p == port) {
            return false;
        }
        if self.lan_heard.len() >= LAN_REPEAT_MAX {
            self.lan_heard.pop_front();
        }
        self.lan_heard.push_back((host, port, now));
        true
    }
}

pub struct Discovery {
    lan: Option<Lan>,
    dht: Option<Dht>,
    rng: StdRng,
    topics: HashMap<Topic, TopicState>,
    /// Which topic a running DHT query belongs to.
    queries: HashMap<QueryId, (Topic, QueryRole)>,
    bootstrap_query: Option<QueryId>,
    /// The DHT's bootstrap list is not known yet (still resolving): DHT
    /// rounds wait for it rather than run against an empty network.
    awaiting_bootstrap: bool,
    events: VecDeque<DiscoveryEvent>,
    pings: HashMap<u64, PingBatch>,
    ping_of: HashMap<RequestId, u64>,
    next_batch: u64,
    /// The caller's own operations on the DHT node.
    ops: Operations,
    /// The swarm's own queries outside any joined topic (the relay topic):
    /// their answers come as [`DiscoveryEvent::SidePeers`] and `SideDone`,
    /// never as a topic's events.
    side: std::collections::HashSet<QueryId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryRole {
    Round,
    /// The quick second look after an announce (see [`Dht::recheck`]).
    Recheck,
    Unannounce,
}

impl Discovery {
    pub fn new(now: Instant, config: DiscoveryConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let lan = config.lan_domain.map(|domain| Lan::new(LanConfig { domain, seed: rng.random() }));
        let dht = config.dht.map(|c| Dht::new(now, c));
        let awaiting_bootstrap = dht.as_ref().is_some_and(|d| d.bootstrap_nodes().is_empty());
        Discovery {
            lan,
            dht,
            rng,
            topics: HashMap::new(),
            queries: HashMap::new(),
            bootstrap_query: None,
            awaiting_bootstrap,
            events: VecDeque::new(),
            pings: HashMap::new(),
            ping_of: HashMap::new(),
            next_batch: 1,
            ops: Operations::default(),
            side: std::collections::HashSet::new(),
        }
    }

    pub fn dht(&self) -> Option<&Dht> {
        self.dht.as_ref()
    }

    /// The DHT node, to set what its config does not carry (its limits).
    pub fn dht_mut(&mut self) -> Option<&mut Dht> {
        self.dht.as_mut()
    }

    pub fn lan_stats(&self) -> LanStats {
        self.lan.as_ref().map(Lan::stats).unwrap_or_default()
    }

    pub fn dht_stats(&self) -> DhtStats {
        self.dht.as_ref().map(Dht::stats).unwrap_or_default()
    }

    /// Sets the (resolved) bootstrap nodes and starts the bootstrap walk.
    pub fn bootstrap(&mut self, now: Instant, nodes: Vec<SocketAddrV4>) {
        let Some(dht) = self.dht.as_mut() else { return };
        dht.set_bootstrap_nodes(nodes);
        self.bootstrap_query = Some(dht.bootstrap(now));
        if std::mem::take(&mut self.awaiting_bootstrap) {
            let waiting: Vec<Topic> = self.topics.iter().filter(|(_, s)| s.round.is_none() && !s.round_deferred).map(|(t, _)| *t).collect();
            for topic in waiting {
                self.start_round(now, topic);
            }
        }
    }

    /// The bootstrap list could not be had: rounds run against whatever
    /// the routing table holds (nothing, until a node contacts us).
    pub fn bootstrap_failed(&mut self, now: Instant) {
        self.bootstrap(now, Vec::new());
    }

    /// Joins `topic`: announce with `lan_port` as the LAN (TCP) port, look
    /// up, or both. A DHT round starts at once, as in the reference (its
    /// first requests go to the bootstrap nodes while the table is empty).
    pub fn join(&mut self, now: Instant, topic: Topic, announce: bool, lookup: bool, lan_port: u16) {
        self.join_with(now, topic, JoinSpec { announce, lookup, lan_port, dht_port: 0, local_address: None, lan_id: None, defer_round: false });
    }

    /// [`Self::join`] with everything network 2.x can set: the DHT announce
    /// port (`announcePort`; 0 means "the port my datagrams come from") and
    /// the LAN address to send along (`announceLocalAddress`).
    pub fn join_with(&mut self, now: Instant, topic: Topic, spec: JoinSpec) {
        let JoinSpec { announce, lookup, lan_port, dht_port, local_address, lan_id, defer_round } = spec;
        if let Some(old) = self.topics.remove(&topic) {
            self.cancel_round(&old);
        }
        if announce {
            self.cancel_unannounce(&topic);
        }
        if let Some(lan) = self.lan.as_mut() {
            match lan_id {
                Some(id) => lan.join_with_id(now, topic, lookup, announce.then_some(lan_port), id, false),
                None => lan.join(now, topic, lookup, announce.then_some(lan_port)),
            };
        }
        self.topics.insert(topic, TopicState {
            dht_port,
            local_address,
            announce,
            lookup,
            round: None,
            next_round: None,
            tally: FlushTally::default(),
            lan_heard: VecDeque::new(),
            round_deferred: defer_round,
        });
        if !defer_round {
            self.start_round(now, topic);
        }
    }

    /// Starts the first DHT round of a topic joined with
    /// [`JoinSpec::defer_round`] (once; later calls do nothing).
    pub fn start_deferred_round(&mut self, now: Instant, topic: &Topic) {
        let Some(state) = self.topics.get_mut(topic) else { return };
        if !std::mem::take(&mut state.round_deferred) || state.round.is_some() {
            return;
        }
        self.start_round(now, *topic);
    }

    /// Starts a DHT round of `topic` now unless one is running, and asks
    /// the LAN again (a topic's `update()`, spec/api-network.md §3.3).
    pub fn update(&mut self, now: Instant, topic: &Topic) {
        let Some(state) = self.topics.get_mut(topic) else { return };
        let running = state.round.is_some();
        state.round_deferred = false;
        state.lan_heard.clear();
        if let Some(lan) = self.lan.as_mut() {
            lan.update(now, topic);
        }
        if !running {
            self.start_round(now, *topic);
        }
    }

    /// Pings every bootstrap node; [`DiscoveryEvent::Pinged`] with the
    /// returned batch follows once all answered or timed out.
    pub fn ping_bootstrap(&mut self, now: Instant) -> u64 {
        let batch = self.next_batch;
        self.next_batch += 1;
        let mut waiting = HashMap::new();
        if let Some(dht) = self.dht.as_mut() {
            for node in dht.bootstrap_nodes().to_vec() {
                let req = dht.ping(now, node, None);
                waiting.insert(req, (node, now));
                self.ping_of.insert(req, batch);
            }
        }
        if waiting.is_empty() {
            self.events.push_back(DiscoveryEvent::Pinged { batch, pongs: Vec::new() });
        } else {
            self.pings.insert(batch, PingBatch { waiting, pongs: Vec::new() });
        }
        batch
    }

    fn on_ping(&mut self, now: Instant, request: RequestId, to: Option<Option<SocketAddrV4>>) {
        let Some(batch) = self.ping_of.remove(&request) else { return };
        let Some(b) = self.pings.get_mut(&batch) else { return };
        if let (Some((bootstrap, sent)), Some(to)) = (b.waiting.remove(&request), to) {
            b.pongs.push(Pong { bootstrap, rtt: now.saturating_duration_since(sent), to });
        }
        if b.waiting.is_empty() {
            let b = self.pings.remove(&batch).expect("batch present");
            self.events.push_back(DiscoveryEvent::Pinged { batch, pongs: b.pongs });
        }
    }

    /// Leaves `topic`; an announcing topic is unannounced from the DHT.
    pub fn leave(&mut self, now: Instant, topic: &Topic) {
        let Some(state) = self.topics.remove(topic) else {
            // Nothing to undo, but the caller still hears that it is done.
            self.events.push_back(DiscoveryEvent::Left { topic: *topic });
            return;
        };
        self.cancel_round(&state);
        if let Some(lan) = self.lan.as_mut() {
            lan.leave(topic);
        }
        if state.announce {
            if let Some(dht) = self.dht.as_mut() {
                let q = dht.unannounce(now, *topic, state.dht_port, state.local_address);
                self.queries.insert(q, (*topic, QueryRole::Unannounce));
                return;
            }
        }
        self.events.push_back(DiscoveryEvent::Left { topic: *topic });
    }

    /// A leave followed at once by an announcing join (hyperswarm re-joining
    /// a key) would race its unannounce against the new announce, and a node
    /// that saw them in that order would drop us. The new announce wins: the
    /// unannounce stops here and its leave counts as done.
    fn cancel_unannounce(&mut self, topic: &Topic) {
        let pending: Vec<QueryId> =
            self.queries.iter().filter(|(_, (t, role))| t == topic && *role == QueryRole::Unannounce).map(|(q, _)| *q).collect();
        for q in pending {
            self.queries.remove(&q);
            if let Some(dht) = self.dht.as_mut() {
                dht.cancel(q);
            }
            self.events.push_back(DiscoveryEvent::Left { topic: *topic });
        }
    }

    pub fn is_joined(&self, topic: &Topic) -> bool {
        self.topics.contains_key(topic)
    }

    /// Joined with lookup: its peers are wanted for dialling.
    pub fn looks_up(&self, topic: &Topic) -> bool {
        self.topics.get(topic).is_some_and(|t| t.lookup)
    }

    fn cancel_round(&mut self, state: &TopicState) {
        if let (Some(q), Some(dht)) = (state.round, self.dht.as_mut()) {
            dht.cancel(q);
            self.queries.remove(&q);
        }
    }

    fn start_round(&mut self, now: Instant, topic: Topic) {
        if self.awaiting_bootstrap {
            return;
        }
        let Some(dht) = self.dht.as_mut() else { return };
        let Some(state) = self.topics.get_mut(&topic) else { return };
        // Port 0: the storing node records our UDP source port, which TCP
        // and uTP share (wire-dht.md gotcha 10).
        let q = if state.announce {
            dht.announce(now, topic, state.dht_port, state.local_address)
        } else {
            dht.lookup(now, topic, state.local_address)
        };
        state.round = Some(q);
        state.tally = FlushTally::default();
        state.next_round = None;
        self.queries.insert(q, (topic, QueryRole::Round));
        self.events.push_back(DiscoveryEvent::Updating { topic });
    }

    /// An mDNS datagram from `from` that came in on `link`.
    pub fn handle_mdns(&mut self, now: Instant, from: Ipv4Addr, link: &Link, bytes: &[u8]) {
        if let Some(lan) = self.lan.as_mut() {
            lan.handle_datagram(now, from, link, bytes);
        }
        self.collect(now);
    }

    pub fn handle_udp(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        if let Some(dht) = self.dht.as_mut() {
            dht.handle_datagram(now, from, bytes);
        }
        self.collect(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(lan) = self.lan.as_mut() {
            lan.handle_timeout(now);
        }
        if let Some(dht) = self.dht.as_mut() {
            dht.handle_timeout(now);
        }
        let due: Vec<Topic> =
            self.topics.iter().filter(|(_, s)| s.next_round.is_some_and(|at| at <= now)).map(|(t, _)| *t).collect();
        for topic in due {
            self.start_round(now, topic);
        }
        self.collect(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let rounds = self.topics.values().filter_map(|s| s.next_round).min();
        [self.lan.as_ref().and_then(Lan::poll_timeout), self.dht.as_ref().and_then(Dht::poll_timeout), rounds]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.lan.as_mut().and_then(Lan::poll_transmit) {
            return Some(Transmit::Multicast { payload: t.payload, via: t.via });
        }
        self.dht.as_mut().and_then(Dht::poll_datagram).map(|d| match d.ttl {
            Some(ttl) => Transmit::UdpTtl { to: d.to, bytes: d.bytes, ttl },
            None => Transmit::Udp(d.to, d.bytes),
        })
    }

    pub fn poll_event(&mut self) -> Option<DiscoveryEvent> {
        self.events.pop_front()
    }

    /// Turns what the cores produced into discovery events.
    fn collect(&mut self, now: Instant) {
        while let Some(LanEvent::Peer { topic, host, port }) = self.lan.as_mut().and_then(Lan::poll_event) {
            if self.topics.get_mut(&topic).is_some_and(|t| t.lan_news(now, host, port)) {
                self.events.push_back(DiscoveryEvent::Peer(Peer { host: host.into(), port, local: true, referrer: None, topic: Some(topic), to: None }));
            }
        }
        while let Some(ev) = self.dht.as_mut().and_then(Dht::poll_event) {
            if self.ops.owns(&ev) {
                if let Some(ev) = self.ops.route(ev) {
                    self.events.push_back(DiscoveryEvent::Dht(ev));
                }
                continue;
            }
            match &ev {
                DhtEvent::Peers(found) if self.side.contains(&found.query) => {
                    self.events.push_back(DiscoveryEvent::SidePeers { query: found.query, peers: found.peers.clone() });
                    continue;
                }
                DhtEvent::QueryDone { query, error, .. } if self.side.remove(query) => {
                    self.events.push_back(DiscoveryEvent::SideDone { query: *query, error: error.clone() });
                    continue;
                }
                _ => {}
            }
            match ev {
                DhtEvent::Peers(found) => self.on_found(found),
                DhtEvent::QueryDone { query, error, closest } => self.on_query_done(now, query, error, closest),
                DhtEvent::Holepunched { request, from, capability } => {
                    self.events.push_back(DiscoveryEvent::Punched { request, from: Some(from), capability })
                }
                DhtEvent::HolepunchFailed { request } => {
                    self.events.push_back(DiscoveryEvent::Punched { request, from: None, capability: None })
                }
                DhtEvent::PunchedBy { origin, referrer, capability } => {
                    self.events.push_back(DiscoveryEvent::PunchedBy { origin, referrer, capability })
                }
                DhtEvent::Pong { request, to, .. } => self.on_ping(now, request, Some(to)),
                DhtEvent::PingFailed { request } => self.on_ping(now, request, None),
                _ => {}
            }
        }
    }

    fn on_found(&mut self, found: FoundPeers) {
        let Some(&(topic, role)) = self.queries.get(&found.query) else { return };
        let Some(state) = self.topics.get_mut(&topic) else { return };
        let flushed_now = role == QueryRole::Round && state.tally.response(found.peers.len(), found.local_peers.len());
        let referrer = Referrer { host: (*found.node.ip()).into(), port: found.node.port(), id: found.node_id.map(|i| i.to_vec()) };
        // LAN records first, then the public ones, in the reference's order
        // (discovery's `_ondhtdata`): a peer in both is first reported local.
        for p in &found.local_peers {
            self.events.push_back(DiscoveryEvent::Peer(Peer {
                host: (*p.ip()).into(),
                port: p.port(),
                local: true,
                referrer: None,
                topic: Some(topic),
                to: found.to,
            }));
        }
        for p in &found.peers {
            // Our own record, as the answering node sees us.
            if Some(*p) == found.to {
                continue;
            }
            self.events.push_back(DiscoveryEvent::Peer(Peer {
                host: (*p.ip()).into(),
                port: p.port(),
                local: false,
                referrer: Some(referrer.clone()),
                topic: Some(topic),
                to: found.to,
            }));
        }
        // After this response's peers, as the reference calls back after
        // handling the response that tipped it.
        if flushed_now {
            self.events.push_back(DiscoveryEvent::Flushed { topic });
        }
    }

    fn on_query_done(&mut self, now: Instant, query: QueryId, error: Option<String>, closest: Vec<([u8; 32], SocketAddrV4)>) {
        if self.bootstrap_query == Some(query) {
            self.bootstrap_query = None;
            self.events.push_back(DiscoveryEvent::Ready { error });
            return;
        }
        let Some((topic, role)) = self.queries.remove(&query) else { return };
        match role {
            QueryRole::Round => {
                let span = ROUND_MAX - ROUND_MIN;
                let next = now + ROUND_MIN + span.mul_f64(self.rng.random::<f64>());
                let Some(state) = self.topics.get_mut(&topic) else { return };
                state.round = None;
                state.next_round = Some(next);
                let recheck = state.announce && !closest.is_empty();
                self.events.push_back(DiscoveryEvent::Update { topic, error });
                if recheck {
                    if let Some(dht) = self.dht.as_mut() {
                        let q = dht.recheck(now, topic, closest);
                        self.queries.insert(q, (topic, QueryRole::Recheck));
                    }
                }
            }
            QueryRole::Unannounce => self.events.push_back(DiscoveryEvent::Left { topic }),
            QueryRole::Recheck => {}
        }
    }

    /// Runs an operation of the caller's on the DHT node; its replies come
    /// as [`DiscoveryEvent::Dht`]. `Some` when it could not start.
    pub fn dht_command(&mut self, now: Instant, cmd: Command) -> Option<NodeEvent> {
        match self.dht.as_mut() {
            Some(dht) => self.ops.command(dht, now, cmd),
            // Nodes' reply sender drops here: its caller hears "none".
            None => cmd.request().map(|request| NodeEvent::Refused { request, error: "the DHT is off".into() }),
        }
    }

    /// Looks up `topic` for the swarm itself (not a joined topic: no
    /// `peer` events, no rounds): answers come as [`DiscoveryEvent::SidePeers`],
    /// then one [`DiscoveryEvent::SideDone`]. None without a DHT.
    pub fn side_lookup(&mut self, now: Instant, topic: [u8; 32]) -> Option<QueryId> {
        let q = self.dht.as_mut()?.lookup(now, topic, None);
        self.side.insert(q);
        Some(q)
    }

    /// Announces `port` on `topic` once for the swarm itself (a relay
    /// announcing its relay port); ends with [`DiscoveryEvent::SideDone`].
    pub fn side_announce(&mut self, now: Instant, topic: [u8; 32], port: u16) -> Option<QueryId> {
        let q = self.dht.as_mut()?.announce(now, topic, port, None);
        self.side.insert(q);
        Some(q)
    }

    /// Asks `referrer` to make `peer` open its NAT towards us (wire-dht.md §6).
    pub fn holepunch(&mut self, now: Instant, peer: SocketAddrV4, referrer: SocketAddrV4) -> Option<RequestId> {
        self.dht.as_mut().map(|d| d.holepunch(now, peer, referrer))
    }

    /// [`Self::holepunch`] with a check in our record (`Dht::holepunch_checked`).
    pub fn holepunch_checked(
        &mut self,
        now: Instant,
        peer: SocketAddrV4,
        referrer: SocketAddrV4,
        check: Option<crate::dht::capability::Check>,
    ) -> Option<RequestId> {
        self.dht.as_mut().map(|d| d.holepunch_checked(now, peer, referrer, check))
    }

    /// Our address as the DHT sees it, and whether it is hole-punchable.
    pub fn remote_address(&self) -> Option<SocketAddrV4> {
        self.dht.as_ref().and_then(Dht::remote_address)
    }

    pub fn holepunchable(&self) -> bool {
        self.dht.as_ref().is_some_and(Dht::holepunchable)
    }

    /// Our NAT's class from the DHT's reports (`dht::nat`).
    pub fn nat_type(&self, local: Option<crate::dht::nat::Local<'_>>) -> crate::dht::nat::NatType {
        self.dht.as_ref().map(|d| d.nat_type(local)).unwrap_or_default()
    }

    /// Topics joined, with their announce/lookup flags.
    pub fn topics(&self) -> impl Iterator<Item = (&Topic, bool, bool)> {
        self.topics.iter().map(|(t, s)| (t, s.announce, s.lookup))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(now: Instant) -> Discovery {
        let dht = DhtConfig { bootstrap: vec!["127.0.0.1:9".parse().unwrap()], ..DhtConfig::default() };
        Discovery::new(now, DiscoveryConfig { lan_domain: None, dht: Some(dht), seed: 7 })
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn state() -> TopicState {
        TopicState {
            dht_port: 0,
            local_address: None,
            announce: false,
            lookup: true,
            round: None,
            next_round: None,
            tally: FlushTally::default(),
            lan_heard: VecDeque::new(),
            round_deferred: false,
        }
    }

    #[test]
    fn a_lan_peer_heard_again_within_the_window_is_reported_once() {
        let t0 = Instant::now();
        let mut t = state();
        assert!(t.lan_news(t0, ip("10.0.0.1"), 1000));
        assert!(t.lan_news(t0, ip("10.0.0.2"), 1000), "another peer is news");
        assert!(t.lan_news(t0, ip("10.0.0.1"), 1001), "another port is news");
        assert!(!t.lan_news(t0 + LAN_REPEAT_WINDOW / 2, ip("10.0.0.1"), 1000));
        assert!(t.lan_news(t0 + LAN_REPEAT_WINDOW, ip("10.0.0.1"), 1000), "after the window it is news again");
    }

    #[test]
    fn lan_repeats_remembered_are_bounded() {
        let t0 = Instant::now();
        let mut t = state();
        for i in 0..LAN_REPEAT_MAX + 10 {
            assert!(t.lan_news(t0, ip("10.0.0.1"), i as u16 + 1));
        }
        assert_eq!(t.lan_heard.len(), LAN_REPEAT_MAX);
        // The oldest were forgotten: reported again; the newest were not.
        assert!(t.lan_news(t0, ip("10.0.0.1"), 1));
        assert!(!t.lan_news(t0, ip("10.0.0.1"), (LAN_REPEAT_MAX + 10) as u16));
    }

    fn lefts(d: &mut Discovery) -> usize {
        std::iter::from_fn(|| d.poll_event()).filter(|e| matches!(e, DiscoveryEvent::Left { .. })).count()
    }

    #[test]
    fn leave_reports_left_once_its_unannounce_ends_or_at_once_when_there_is_none() {
        let now = Instant::now();
        let mut d = discovery(now);
        let t = [1u8; 32];
        d.join(now, t, false, true, 1);
        d.leave(now, &t);
        assert_eq!(lefts(&mut d), 1, "a lookup leaves at once");
        d.leave(now, &t);
        assert_eq!(lefts(&mut d), 1, "leaving what is not joined still answers");
        d.join(now, t, true, false, 1);
        d.leave(now, &t);
        assert_eq!(lefts(&mut d), 0, "an announcer waits for its unannounce");
        let mut at = now;
        for _ in 0..200 {
            at += Duration::from_millis(250);
            d.handle_timeout(at);
            if lefts(&mut d) == 1 {
                return;
            }
        }
        panic!("the unannounce never ended");
    }

    #[test]
    fn a_round_flushes_early_after_six_answers_with_the_most_peers_seen() {
        let mut t = FlushTally::default();
        for _ in 0..5 {
            assert!(!t.response(1, 0));
        }
        // A bigger answer raises the bar and starts the count again.
        assert!(!t.response(3, 0));
        for _ in 0..4 {
            assert!(!t.response(3, 0));
        }
        assert!(!t.response(2, 0), "below the bar: not counted");
        assert!(t.response(3, 0), "the sixth answer at the bar");
        assert!(!t.response(3, 0), "once per round");

        // Counts of 16 and more do not raise the bar; they still count.
        let mut t = FlushTally::default();
        for _ in 0..5 {
            assert!(!t.response(20, 0));
        }
        assert!(t.response(1, 0));

        // localPeers have their own tally; empty answers count for nothing.
        let mut t = FlushTally::default();
        for _ in 0..10 {
            assert!(!t.response(0, 0));
        }
        for _ in 0..5 {
            assert!(!t.response(0, 2));
        }
        assert!(t.response(0, 2));
    }

    #[test]
    fn announcing_again_supersedes_a_pending_unannounce() {
        let now = Instant::now();
        let mut d = discovery(now);
        let t = [2u8; 32];
        d.join(now, t, true, false, 1);
        d.leave(now, &t);
        assert_eq!(lefts(&mut d), 0);
        d.join(now, t, true, false, 1);
        assert_eq!(lefts(&mut d), 1, "the leave is done: its unannounce was cancelled");
        let mut at = now;
        for _ in 0..200 {
            at += Duration::from_millis(250);
            d.handle_timeout(at);
            assert_eq!(lefts(&mut d), 0, "no second Left from the cancelled query");
        }
        assert!(d.is_joined(&t));
    }

    #[test]
    fn a_dht_answer_reports_its_lan_records_before_its_public_ones() {
        let now = Instant::now();
        let mut d = discovery(now);
        let t = [3u8; 32];
        d.join(now, t, false, true, 1);
        let query = *d.queries.keys().next().expect("a lookup round started");
        while d.poll_event().is_some() {}
        let node: SocketAddrV4 = "127.0.0.1:9".parse().unwrap();
        let a: SocketAddrV4 = "127.0.0.1:4001".parse().unwrap();
        let b: SocketAddrV4 = "127.0.0.1:4002".parse().unwrap();
        d.on_found(FoundPeers { query, topic: t, node, node_id: None, to: None, peers: vec![a, b], local_peers: vec![a] });
        let got: Vec<(u16, bool)> = std::iter::from_fn(|| d.poll_event())
            .filter_map(|e| match e {
                DiscoveryEvent::Peer(p) => Some((p.port, p.local)),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![(4001, true), (4001, false), (4002, false)]);
    }

    #[test]
    fn a_deferred_round_starts_when_the_caller_says_and_only_once() {
        let now = Instant::now();
        let mut d = discovery(now);
        let t = [4u8; 32];
        let spec = JoinSpec { announce: true, lookup: true, lan_port: 1, dht_port: 0, local_address: None, lan_id: None, defer_round: true };
        d.join_with(now, t, spec);
        assert!(d.queries.is_empty(), "no DHT round before the caller's go");
        d.start_deferred_round(now, &t);
        assert_eq!(d.queries.len(), 1, "the round started");
        d.start_deferred_round(now, &t);
        assert_eq!(d.queries.len(), 1, "a second go starts nothing");
        // Control: an ordinary join starts its round at once.
        d.join(now, [5u8; 32], true, false, 1);
        assert_eq!(d.queries.len(), 2);
    }
}
