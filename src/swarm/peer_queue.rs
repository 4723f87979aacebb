//! The dial queue: which discovered peer to connect to next, and when to try
//! again. Pure state, driven with explicit times, so tests run it on a
//! virtual clock. One implementation serves every entry point, configured
//! by a [`QueuePolicy`]: the seed's engine dials from it itself
//! ([`QueuePolicy::seed`]), and the `./hyperswarm` entry drives one from JS
//! with hyperswarm 2.x's rules ([`QueuePolicy::hyperswarm`]; spec
//! api-network.md §4.3–§4.5), so those rules exist once, here.
//!
//! Each entry is one peer address (and topic, unless the policy
//! multiplexes) with hyperswarm 2.x's status bits, priority and retry
//! count. Failures are retried after the policy's backoff; a peer out of
//! retries, or banned, is forgotten after the policy's delay.
//!
//! Discovery input comes from the network: one DHT reply may name 128 peers
//! that do not exist. Entries not yet proven by a connection are therefore
//! capped per IP, per IPv4 /24 and per referrer IP, so that no one party can
//! fill the queue (and have real peers refused) or put more than a few dozen
//! dead addresses ahead of them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::discovery::{Peer, Topic};

/// Overall connect timeout (spec/api-network.md §2.5: 10 s, fixed).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before retry 1, 2 and 3 (hyperswarm 2.x `queue.requeue`, §4.5).
pub const REQUEUE: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(15)];
/// How long an address that failed every retry is left alone
/// (hyperswarm 2.x `queue.forget.unresponsive`, §4.5).
pub const FORGET_UNRESPONSIVE: Duration = Duration::from_millis(7500);
/// Addresses the seed's engine remembers at once. Discovery input comes from
/// the network, so the table is capped; idle entries are evicted first.
pub const MAX_TRACKED: usize = 4096;
/// Peers the `./hyperswarm` entry remembers at once (ours: the reference
/// grows without bound; 10,000 is far above any swarm's `maxPeers`).
pub const MAX_INFOS: usize = 10_000;
/// Unproven entries (not connected yet) per host IP. Ours: one host runs a
/// few swarms at most, each on its own port; a loopback testnet of a few
/// dozen swarms on 127.0.0.1 stays under it. A fake reply's 128 ports on
/// one IP get 32 entries.
pub const MAX_PER_IP: usize = 32;
/// Unproven entries per IPv4 /24 (other hosts: per host). Ours: twice the
/// per-IP cap, so a LAN or a testnet of several hosts fits, and a party
/// holding a /24 still gets only 64 of the 4096.
pub const MAX_PER_SUBNET: usize = 64;
/// Unproven entries per referrer IP (the DHT node that named the peer; its
/// port does not count, so one host running many nodes is one referrer).
/// Ours: one honest node names the same peers others do; 128 is one full
/// fake reply, so one referrer can never hold more than 1/32 of the table.
pub const MAX_PER_REFERRER: usize = 128;
/// Retries before a peer is given up (hyperswarm 2.x PeerInfo, §4.3).
pub const MAX_RETRIES: u8 = 3;
/// Topics remembered per entry (ours: a peer is only added for topics we
/// joined; this bounds an entry whatever the caller does).
pub const MAX_TOPICS: usize = 256;

/// The status bits of an entry, numbered as hyperswarm 2.x numbers them
/// (users read them as `info.status`, §4.3).
pub mod status {
    /// Connected at least once.
    pub const PROVEN: u8 = 1;
    /// May be dialled again after a failure or a drop.
    pub const RECONNECT: u8 = 2;
    /// Never dialled again.
    pub const BANNED: u8 = 4;
    /// Being dialled, or connected, now.
    pub const ACTIVE: u8 = 8;
    /// Dialled at least once.
    pub const TRIED: u8 = 16;
    /// Not yet reached over TCP.
    pub const FIREWALLED: u8 = 32;
}
use status::*;

/// Highest priority an entry can have (a peer that failed once, §4.3).
const MAX_PRIORITY: usize = 5;

/// How a queue is configured for its entry point.
#[derive(Debug, Clone)]
pub struct QueuePolicy {
    /// Draw at random within a priority (hyperswarm 2.x), or first come
    /// first served (the seed).
    pub random: bool,
    /// Waits before retry 1, 2, … (a retry past the last reuses the last).
    pub requeue: Vec<Duration>,
    /// When a peer out of retries is forgotten; `None`: never.
    pub forget_unresponsive: Option<Duration>,
    /// When a banned peer is forgotten; `None`: never.
    pub forget_banned: Option<Duration>,
    /// One entry per address across topics (else per address and topic).
    pub multiplex: bool,
    /// Entries remembered at once.
    pub max_entries: usize,
    /// Dials [`PeerQueue::next_dial`] keeps in flight at once.
    pub max_dials: usize,
    /// A peer seen behind our own public address is most likely us or
    /// behind our NAT: one attempt only (hyperswarm 2.x).
    pub own_address_once: bool,
    /// A known peer named again is queued if it may be dialled now (else
    /// only new peers are; hyperswarm 2.x with `multiplex`).
    pub requeue_known: bool,
    /// Seeds the draw of [`QueuePolicy::random`] (a sans-IO core has no
    /// entropy of its own).
    pub seed: u64,
}

impl QueuePolicy {
    /// The seed entry's engine: local peers first, first come first served,
    /// `max_dials` at once, a closed connection redialled when discovery
    /// names the peer again.
    pub fn seed(max_dials: usize) -> Self {
        QueuePolicy {
            random: false,
            requeue: REQUEUE.to_vec(),
            forget_unresponsive: Some(FORGET_UNRESPONSIVE),
            forget_banned: Some(FORGET_UNRESPONSIVE),
            multiplex: true,
            max_entries: MAX_TRACKED,
            max_dials: max_dials.max(1),
            own_address_once: false,
            requeue_known: true,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// hyperswarm 2.15.3's queue (its `queue` option can change `requeue`,
    /// the forget delays and `multiplex`, which also clears
    /// `requeue_known`); the caller decides when to dial.
    pub fn hyperswarm(seed: u64) -> Self {
        QueuePolicy {
            random: true,
            requeue: REQUEUE.to_vec(),
            forget_unresponsive: Some(FORGET_UNRESPONSIVE),
            forget_banned: None,
            multiplex: false,
            max_entries: MAX_INFOS,
            max_dials: usize::MAX,
            own_address_once: true,
            requeue_known: true,
            seed,
        }
    }
}

/// An entry of the queue, valid until the entry is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Known, not queued: connected (`conn`), or closed and waiting to be
    /// named again, or given up / banned and not forgotten.
    Idle,
    Queued,
    /// Handed out by `shift`/`next_dial`; `dialing` until it connects.
    Active { dialing: bool },
    /// Failed; queued again at the instant.
    Waiting(Instant),
    /// Given up or banned; forgotten at the instant.
    Forget(Instant),
}

/// Who stands behind an entry, for the caps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Party {
    Ip(String),
    Subnet(String),
    Referrer(String),
}

impl Party {
    fn cap(&self) -> usize {
        match self {
            Party::Ip(_) => MAX_PER_IP,
            Party::Subnet(_) => MAX_PER_SUBNET,
            Party::Referrer(_) => MAX_PER_REFERRER,
        }
    }

    fn of(peer: &Peer) -> Vec<Party> {
        // `host` is unmapped already (discovery::Host::parse).
        let host = peer.host.to_string();
        let subnet = match peer.host.ipv4() {
            Some(ip) => {
                let o = ip.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            None => host.clone(),
        };
        let mut parties = vec![Party::Ip(host), Party::Subnet(subnet)];
        if let Some(r) = &peer.referrer {
            parties.push(Party::Referrer(r.host.to_string()));
        }
        parties
    }
}

#[derive(Debug)]
struct Entry {
    key: String,
    peer: Peer,
    phase: Phase,
    status: u8,
    priority: u8,
    retries: u8,
    /// The connection it made (the seed's engine reports closes by it).
    conn: Option<u64>,
    /// The parties it counts against until it first connects.
    parties: Vec<Party>,
    topics: Vec<Topic>,
}

impl Entry {
    fn initial_priority(peer: &Peer, once: bool) -> u8 {
        if peer.local {
            3
        } else if once {
            1
        } else {
            2
        }
    }

    /// hyperswarm 2.x's order for retries: recent failures of proven peers
    /// first, a peer that never answered last.
    fn retry_priority(&self) -> u8 {
        if self.status & TRIED != 0 && self.status & PROVEN == 0 {
            return 0;
        }
        match self.retries {
            3 => 1,
            2 => 4,
            1 => 5,
            _ if self.peer.local => 3,
            _ => 2,
        }
    }

    /// Recomputes the priority; false if the peer must not be queued now.
    fn update(&mut self) -> bool {
        if self.status & (BANNED | ACTIVE) != 0 || self.retries > MAX_RETRIES {
            return false;
        }
        self.priority = self.retry_priority();
        true
    }
}

/// What [`PeerQueue::add`] did with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The peer's entry; `None` when it was refused (a cap, or a full table).
    pub id: Option<EntryId>,
    /// It waits to be dialled now (it was not before).
    pub queued: bool,
    /// The peer's topic is new to the entry.
    pub new_topic: bool,
}

/// A view of one entry, for the caller's `PeerInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView {
    /// The [`status`] bits.
    pub status: u8,
    /// Its dial priority (0 lowest, 5 highest).
    pub priority: u8,
    /// Failed attempts since it last connected.
    pub retries: u8,
}

/// The dial queue of one swarm.
#[derive(Debug)]
pub struct PeerQueue {
    policy: QueuePolicy,
    entries: HashMap<EntryId, Entry>,
    by_key: HashMap<String, EntryId>,
    levels: [VecDeque<EntryId>; MAX_PRIORITY + 1],
    next_id: u64,
    dialing: usize,
    /// Unproven entries per party.
    unproven: HashMap<Party, usize>,
    refused: u64,
    rng: u64,
    /// Entries forgotten since the caller last asked ([`PeerQueue::take_forgotten`]).
    forgotten: Vec<EntryId>,
}

impl PeerQueue {
    /// The seed's queue with `max_dials` dials at once.
    pub fn new(max_dials: usize) -> Self {
        Self::with_policy(QueuePolicy::seed(max_dials))
    }

    /// A queue with the given policy.
    pub fn with_policy(policy: QueuePolicy) -> Self {
        let rng = policy.seed | 1;
        PeerQueue {
            policy,
            entries: HashMap::new(),
            by_key: HashMap::new(),
            levels: Default::default(),
            next_id: 0,
            dialing: 0,
            unproven: HashMap::new(),
            refused: 0,
            rng,
            forgotten: Vec::new(),
        }
    }

    /// Entries known (queued, waiting, connected or not yet forgotten).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entry is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries waiting to be dialled now.
    pub fn queued(&self) -> usize {
        self.levels.iter().map(VecDeque::len).sum()
    }

    /// Queued entries of priority 2 and up (what hyperswarm's `flush` waits for).
    pub fn prioritised(&self) -> usize {
        self.levels[2..].iter().map(VecDeque::len).sum()
    }

    /// Peers refused because their IP, /24 or referrer was at its cap.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The entry's status, priority and retries.
    pub fn view(&self, id: EntryId) -> Option<EntryView> {
        self.entries.get(&id).map(|e| EntryView { status: e.status, priority: e.priority, retries: e.retries })
    }

    /// The peer an entry dials.
    pub fn peer(&self, id: EntryId) -> Option<&Peer> {
        self.entries.get(&id).map(|e| &e.peer)
    }

    /// The topics an entry was named under since it last disconnected.
    pub fn topics(&self, id: EntryId) -> &[Topic] {
        self.entries.get(&id).map(|e| e.topics.as_slice()).unwrap_or(&[])
    }

    /// Entries forgotten (at a timeout, by eviction or by `remove`) since the last call.
    pub fn take_forgotten(&mut self) -> Vec<EntryId> {
        std::mem::take(&mut self.forgotten)
    }

    fn key(&self, peer: &Peer) -> String {
        let base = peer.address_key();
        match peer.topic {
            Some(t) if !self.policy.multiplex => {
                let mut k = base;
                k.push('@');
                for b in t {
                    k.push_str(&format!("{b:02x}"));
                }
                k
            }
            _ => base,
        }
    }

    fn count(unproven: &mut HashMap<Party, usize>, parties: &[Party], add: bool) {
        for p in parties {
            if add {
                *unproven.entry(p.clone()).or_default() += 1;
            } else if let Some(n) = unproven.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    unproven.remove(p);
                }
            }
        }
    }

    /// The entry connected: it no longer counts against its parties.
    fn prove(&mut self, id: EntryId) {
        if let Some(e) = self.entries.get_mut(&id) {
            let parties = std::mem::take(&mut e.parties);
            Self::count(&mut self.unproven, &parties, false);
        }
    }

    /// Discovery named `peer`. Returns true if it was queued for a dial.
    pub fn discovered(&mut self, now: Instant, peer: Peer) -> bool {
        self.add(now, peer).queued
    }

    /// A discovered peer: queued unless already known and waiting or busy.
    pub fn add(&mut self, now: Instant, peer: Peer) -> Added {
        let key = self.key(&peer);
        if let Some(&id) = self.by_key.get(&key) {
            let e = self.entries.get_mut(&id).expect("indexed entry");
            let mut new_topic = false;
            if let Some(t) = peer.topic {
                if !e.topics.contains(&t) && e.topics.len() < MAX_TOPICS {
                    e.topics.push(t);
                    new_topic = true;
                }
            }
            // Given up: named again after its forget delay, it starts over.
            if let Phase::Forget(until) = e.phase {
                if now >= until && e.status & BANNED == 0 {
                    e.retries = 0;
                    e.status &= !ACTIVE;
                }
            }
            // While dialled, connected or backing off it is ACTIVE, and
            // `update` keeps it out (as hyperswarm 2.x's PeerInfo does).
            if !self.policy.requeue_known || e.phase == Phase::Queued || !e.update() {
                return Added { id: Some(id), queued: false, new_topic };
            }
            // Its parties stay those that first named it: a later reply
            // cannot move it into another's quota.
            e.peer = peer;
            self.enqueue(id);
            return Added { id: Some(id), queued: true, new_topic };
        }
        let parties = Party::of(&peer);
        if parties.iter().any(|p| self.unproven.get(p).copied().unwrap_or(0) >= p.cap()) {
            self.refused += 1;
            tracing::trace!(peer = %peer, "dial queue: party at its cap, peer refused");
            return Added { id: None, queued: false, new_topic: false };
        }
        if self.entries.len() >= self.policy.max_entries && !self.evict_one() {
            self.refused += 1;
            return Added { id: None, queued: false, new_topic: false };
        }
        let once = self.policy.own_address_once && peer.to.is_some_and(|to| peer.host.ipv4() == Some(*to.ip()));
        let id = EntryId(self.next_id);
        self.next_id += 1;
        Self::count(&mut self.unproven, &parties, true);
        let topics = peer.topic.into_iter().collect::<Vec<_>>();
        let new_topic = !topics.is_empty();
        let mut e = Entry {
            key: key.clone(),
            priority: Entry::initial_priority(&peer, once),
            // One attempt only: as if it had used its retries.
            retries: if once { MAX_RETRIES } else { 0 },
            peer,
            phase: Phase::Idle,
            status: RECONNECT | FIREWALLED,
            conn: None,
            parties,
            topics,
        };
        let queued = e.update();
        self.entries.insert(id, e);
        self.by_key.insert(key, id);
        if queued {
            self.enqueue(id);
        }
        Added { id: Some(id), queued, new_topic }
    }

    fn enqueue(&mut self, id: EntryId) {
        let e = self.entries.get_mut(&id).expect("entry");
        e.phase = Phase::Queued;
        self.levels[e.priority as usize].push_back(id);
    }

    fn dequeue(&mut self, id: EntryId) {
        for level in &mut self.levels {
            if let Some(i) = level.iter().position(|&x| x == id) {
                level.remove(i);
                return;
            }
        }
    }

    fn evict_one(&mut self) -> bool {
        let victim = self
            .entries
            .iter()
            .find(|(_, e)| e.status & BANNED == 0 && matches!(e.phase, Phase::Forget(_) | Phase::Idle) && e.conn.is_none())
            .map(|(&id, _)| id);
        match victim {
            Some(id) => {
                self.forget(id);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, id: EntryId) {
        self.dequeue(id);
        if let Some(e) = self.entries.remove(&id) {
            Self::count(&mut self.unproven, &e.parties, false);
            self.by_key.remove(&e.key);
            if e.phase == (Phase::Active { dialing: true }) {
                self.dialing -= 1;
            }
            self.forgotten.push(id);
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: enough to spread draws; the seed comes from the policy.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The next entry to dial, marked active, whatever the dial limit;
    /// `None` when none is queued. The caller dials it and reports
    /// [`PeerQueue::connected`] or [`PeerQueue::requeue`].
    pub fn shift(&mut self, now: Instant) -> Option<EntryId> {
        self.handle_timeout(now);
        let p = (0..=MAX_PRIORITY).rev().find(|&p| !self.levels[p].is_empty())?;
        let id = if self.policy.random {
            let i = (self.next_random() % self.levels[p].len() as u64) as usize;
            self.levels[p].swap_remove_back(i)?
        } else {
            self.levels[p].pop_front()?
        };
        let e = self.entries.get_mut(&id).expect("queued entry");
        e.phase = Phase::Active { dialing: true };
        e.status |= ACTIVE | TRIED;
        self.dialing += 1;
        Some(id)
    }

    /// The next peer the seed's engine dials now, if any and if under the dial limit.
    pub fn next_dial(&mut self, now: Instant) -> Option<Peer> {
        if self.dialing >= self.policy.max_dials {
            self.handle_timeout(now);
            return None;
        }
        let id = self.shift(now)?;
        self.entries.get(&id).map(|e| e.peer.clone())
    }

    /// The entry's dial connected (over TCP or not): proven, retries reset.
    /// A banned entry's connection is the caller's to end.
    pub fn connected(&mut self, id: EntryId, conn: Option<u64>, tcp: bool) {
        self.leave_phase(id);
        let Some(e) = self.entries.get_mut(&id) else { return };
        if tcp {
            e.status &= !FIREWALLED;
        }
        e.status |= PROVEN;
        e.retries = 0;
        e.conn = conn;
        e.phase = Phase::Active { dialing: false };
        self.prove(id);
    }

    /// The entry's connection ended: its topics are cleared, and it stays
    /// known (the caller requeues it or not).
    pub fn disconnected(&mut self, id: EntryId) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.topics.clear();
            e.conn = None;
        }
    }

    /// Undoes what the entry's phase holds (its dial slot, its place in the
    /// queue) before the caller moves it on; whatever order the caller
    /// reports things in, an entry is never queued twice or counted dialling
    /// when it is not.
    fn leave_phase(&mut self, id: EntryId) {
        match self.entries.get(&id).map(|e| e.phase) {
            Some(Phase::Active { dialing: true }) => self.dialing -= 1,
            Some(Phase::Queued) => self.dequeue(id),
            _ => return,
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.phase = Phase::Idle;
        }
    }

    /// After a failed dial or a dropped connection: back off, or give up
    /// (then forgotten after the policy's delay). False if given up.
    pub fn requeue(&mut self, now: Instant, id: EntryId) -> bool {
        self.leave_phase(id);
        let Some(e) = self.entries.get_mut(&id) else { return false };
        e.phase = Phase::Idle;
        e.conn = None;
        let give_up = e.status & BANNED != 0 || e.status & RECONNECT == 0 || {
            let step = e.retries;
            e.retries = e.retries.saturating_add(1);
            step >= MAX_RETRIES
        };
        if give_up {
            self.give_up(now, id);
            return false;
        }
        let step = (e.retries - 1) as usize;
        let wait = self.policy.requeue.get(step).or(self.policy.requeue.last()).copied().unwrap_or_default();
        // A wait past what the clock can hold (JS `Infinity`): never.
        e.phase = now.checked_add(wait).map_or(Phase::Idle, Phase::Waiting);
        true
    }

    fn give_up(&mut self, now: Instant, id: EntryId) {
        self.dequeue(id);
        let Some(e) = self.entries.get_mut(&id) else { return };
        let delay = if e.status & BANNED != 0 { self.policy.forget_banned } else { self.policy.forget_unresponsive };
        e.phase = match delay.and_then(|d| now.checked_add(d)) {
            Some(at) => Phase::Forget(at),
            None => Phase::Idle,
        };
    }

    /// A failed attempt the caller counts without dialling (hyperswarm's
    /// `info.backoff()`); false once the peer is given up.
    pub fn backoff(&mut self, now: Instant, id: EntryId) -> bool {
        let Some(e) = self.entries.get_mut(&id) else { return false };
        if e.status & BANNED != 0 || e.status & RECONNECT == 0 {
            return false;
        }
        e.retries = e.retries.saturating_add(1);
        if e.retries > MAX_RETRIES {
            self.give_up(now, id);
            return false;
        }
        e.priority = e.retry_priority();
        true
    }

    /// Allows or stops redials of the entry.
    pub fn reconnect(&mut self, id: EntryId, allowed: bool) {
        if let Some(e) = self.entries.get_mut(&id) {
            if allowed {
                e.status |= RECONNECT;
            } else {
                e.status &= !RECONNECT;
            }
        }
    }

    /// Never dials the entry again; it is forgotten after the policy's
    /// banned delay (hyperswarm 2.x: never).
    pub fn ban(&mut self, now: Instant, id: EntryId) {
        let Some(e) = self.entries.get_mut(&id) else { return };
        e.status |= BANNED;
        if e.phase == (Phase::Active { dialing: true }) {
            // Its dial's outcome reports it again (requeue gives it up).
            return;
        }
        if !matches!(e.phase, Phase::Active { .. }) {
            self.give_up(now, id);
        }
    }

    /// Forgets the entry of `peer` now.
    pub fn remove(&mut self, peer: &Peer) -> Option<EntryId> {
        let id = *self.by_key.get(&self.key(peer))?;
        self.forget(id);
        Some(id)
    }

    fn find_conn(&self, conn: u64) -> Option<EntryId> {
        self.entries.iter().find(|(_, e)| e.conn == Some(conn)).map(|(&id, _)| id)
    }

    fn find_peer(&self, peer: &Peer) -> Option<EntryId> {
        self.by_key.get(&self.key(peer)).copied()
    }

    /// The seed's engine: the dial of `peer` connected as `conn`.
    pub fn dial_succeeded(&mut self, peer: &Peer, conn: u64) {
        if let Some(id) = self.find_peer(peer) {
            self.connected(id, Some(conn), true);
        }
    }

    /// The seed's engine: the dial of `peer` failed.
    pub fn dial_failed(&mut self, now: Instant, peer: &Peer) {
        if let Some(id) = self.find_peer(peer) {
            self.requeue(now, id);
        }
    }

    /// The seed's engine: connection `conn` closed; its address is dialled
    /// again when discovery names it.
    pub fn closed(&mut self, conn: u64) {
        if let Some(id) = self.find_conn(conn) {
            self.disconnected(id);
            if let Some(e) = self.entries.get_mut(&id) {
                e.status &= !ACTIVE;
                e.phase = Phase::Idle;
            }
        }
    }

    /// Queues entries whose backoff ended, forgets those whose forget delay
    /// ended. Returns true if the queue went from empty to non-empty.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let was_empty = self.queued() == 0;
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for (&id, e) in &self.entries {
            match e.phase {
                Phase::Waiting(at) if at <= now => due.push(id),
                Phase::Forget(at) if at <= now => gone.push(id),
                _ => {}
            }
        }
        due.sort();
        gone.sort();
        for id in gone {
            self.forget(id);
        }
        for id in due {
            let e = self.entries.get_mut(&id).expect("entry");
            e.status &= !ACTIVE;
            e.phase = Phase::Idle;
            if e.update() {
                self.enqueue(id);
            } else {
                self.give_up(now, id);
            }
        }
        was_empty && self.queued() > 0
    }

    /// When [`PeerQueue::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e.phase {
                Phase::Waiting(at) | Phase::Forget(at) => Some(at),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(host: &str, local: bool) -> Peer {
        Peer { host: crate::discovery::Host::parse(host), port: 9, local, referrer: None, topic: Some([0; 32]), to: None }
    }

    #[test]
    fn repeats_do_not_pile_up_dials() {
        let t = Instant::now();
        let mut q = PeerQueue::new(8);
        assert!(q.discovered(t, peer("10.0.0.1", true)));
        assert!(!q.discovered(t, peer("10.0.0.1", true)));
        assert!(!q.discovered(t, peer("::ffff:10.0.0.1", true)));
        assert!(q.next_dial(t).is_some());
        assert!(q.next_dial(t).is_none());
        assert!(!q.discovered(t, peer("10.0.0.1", true)));
    }

    #[test]
    fn local_peers_first() {
        let t = Instant::now();
        let mut q = PeerQueue::new(8);
        q.discovered(t, peer("1.1.1.1", false));
        q.discovered(t, peer("10.0.0.2", true));
        assert_eq!(q.next_dial(t).unwrap().host.to_string(), "10.0.0.2");
        assert_eq!(q.next_dial(t).unwrap().host.to_string(), "1.1.1.1");
    }

    #[test]
    fn failures_back_off_then_forget() {
        let t0 = Instant::now();
        let mut q = PeerQueue::new(8);
        let p = peer("10.0.0.3", true);
        q.discovered(t0, p.clone());
        let mut now = t0;
        for wait in REQUEUE {
            q.next_dial(now).unwrap();
            q.dial_failed(now, &p);
            assert!(q.next_dial(now + wait - Duration::from_millis(1)).is_none());
            now += wait;
            assert_eq!(q.poll_timeout(), Some(now));
        }
        q.next_dial(now).unwrap();
        q.dial_failed(now, &p);
        assert!(q.next_dial(now + Duration::from_secs(60)).is_none());
        assert!(q.is_empty(), "exhausted address is forgotten");
        assert!(q.discovered(now + Duration::from_secs(60), p));
    }

    #[test]
    fn closed_connection_allows_redial_on_rediscovery() {
        let t = Instant::now();
        let mut q = PeerQueue::new(8);
        let p = peer("10.0.0.4", true);
        q.discovered(t, p.clone());
        q.next_dial(t).unwrap();
        q.dial_succeeded(&p, 7);
        assert!(!q.discovered(t, p.clone()));
        q.closed(7);
        assert!(q.discovered(t, p));
        assert!(q.next_dial(t).is_some());
    }

    #[test]
    fn dial_limit_holds() {
        let t = Instant::now();
        let mut q = PeerQueue::new(2);
        for i in 0..5 {
            q.discovered(t, peer(&format!("10.0.1.{i}"), false));
        }
        assert!(q.next_dial(t).is_some());
        assert!(q.next_dial(t).is_some());
        assert!(q.next_dial(t).is_none());
    }

    #[test]
    fn table_is_bounded() {
        let t = Instant::now();
        let mut q = PeerQueue::new(1);
        for i in 0..(MAX_TRACKED + 100) {
            q.discovered(t, Peer { host: crate::discovery::Host::parse(&format!("h{i}")), port: 1, local: false, referrer: None, topic: None, to: None });
        }
        assert!(q.len() <= MAX_TRACKED);
    }

    fn fake(host: String, port: u16, referrer: &str) -> Peer {
        let referrer = Some(crate::discovery::Referrer { host: crate::discovery::Host::parse(referrer), port: 49737, id: None });
        Peer { host: crate::discovery::Host::parse(&host), port, local: false, referrer, topic: Some([0; 32]), to: None }
    }

    /// Dials like the engine would, with every fake address timing out
    /// (10 s) and honest ones connecting; returns the virtual time at which
    /// each honest peer was connected.
    fn run_dials(q: &mut PeerQueue, t0: Instant, honest: &[Peer]) -> Vec<Option<Duration>> {
        let mut connected = vec![None; honest.len()];
        let mut now = t0;
        let mut conn = 0;
        for _ in 0..100 {
            let mut started = Vec::new();
            while let Some(p) = q.next_dial(now) {
                started.push(p);
            }
            now += CONNECT_TIMEOUT;
            for p in started {
                match honest.iter().position(|h| h.address_key() == p.address_key()) {
                    Some(i) => {
                        conn += 1;
                        q.dial_succeeded(&p, conn);
                        connected[i].get_or_insert(now - t0);
                    }
                    None => q.dial_failed(now, &p),
                }
            }
            if connected.iter().all(Option::is_some) {
                break;
            }
        }
        connected
    }

    fn honest_peers() -> Vec<Peer> {
        (1..=5).map(|i| fake(format!("198.51.{i}.7"), 4000 + i, &format!("203.0.113.{i}"))).collect()
    }

    #[test]
    fn poisoning_from_one_ip_leaves_honest_peers_dialled() {
        let t0 = Instant::now();
        let mut q = PeerQueue::new(16);
        // Eight fake replies of 128 peers, all on one IP, one referrer each.
        let mut queued = 0;
        for reply in 0..8u16 {
            for i in 0..128u16 {
                queued += q.discovered(t0, fake("6.6.6.6".into(), 1 + reply * 128 + i, &format!("7.7.{reply}.1"))) as usize;
            }
        }
        assert_eq!(queued, MAX_PER_IP);
        assert_eq!(q.refused(), 1024 - MAX_PER_IP as u64);
        let honest = honest_peers();
        for p in &honest {
            assert!(q.discovered(t0, p.clone()), "honest {p} refused");
        }
        let at = run_dials(&mut q, t0, &honest);
        // The 32 fakes ahead take two rounds of 16 dials at most.
        assert!(at.iter().all(|t| t.is_some_and(|t| t <= CONNECT_TIMEOUT * 3)), "{at:?}");
    }

    #[test]
    fn poisoning_from_one_subnet_leaves_honest_peers_dialled() {
        let t0 = Instant::now();
        let mut q = PeerQueue::new(16);
        let mut queued = 0;
        for host in 1..=250u16 {
            for port in 0..4 {
                queued += q.discovered(t0, fake(format!("6.6.6.{host}"), 1000 + port, "7.7.7.7")) as usize;
            }
        }
        assert_eq!(queued, MAX_PER_SUBNET);
        let honest = honest_peers();
        for p in &honest {
            assert!(q.discovered(t0, p.clone()), "honest {p} refused");
        }
        let at = run_dials(&mut q, t0, &honest);
        assert!(at.iter().all(|t| t.is_some_and(|t| t <= CONNECT_TIMEOUT * 5)), "{at:?}");
    }

    #[test]
    fn poisoning_from_one_referrer_is_capped() {
        let t0 = Instant::now();
        let mut q = PeerQueue::new(16);
        // One referrer host (any port) naming peers all over the map.
        let mut queued = 0;
        for i in 0..2000u32 {
            let ip = std::net::Ipv4Addr::from(0x0b00_0000 + (i << 8) + 1);
            let mut p = fake(ip.to_string(), 1, "9.9.9.9");
            p.referrer.as_mut().unwrap().port = i as u16;
            queued += q.discovered(t0, p) as usize;
        }
        assert_eq!(queued, MAX_PER_REFERRER);
        let honest = honest_peers();
        for p in &honest {
            assert!(q.discovered(t0, p.clone()));
        }
        assert!(run_dials(&mut q, t0, &honest).iter().all(Option::is_some));
    }

    #[test]
    fn connected_peers_do_not_count_against_the_caps() {
        // A loopback testnet: many real peers on 127.0.0.1.
        let t = Instant::now();
        let mut q = PeerQueue::new(64);
        for round in 0..3u16 {
            for i in 0..MAX_PER_IP as u16 {
                let p = fake("127.0.0.1".into(), 10_000 + round * 100 + i, "127.0.0.1");
                assert!(q.discovered(t, p.clone()));
                q.next_dial(t).unwrap();
                q.dial_succeeded(&p, (round * 100 + i) as u64);
            }
        }
        assert_eq!(q.refused(), 0);
        // Unproven ones are capped; a closed connection's entry is proven.
        for i in 0..MAX_PER_IP as u16 {
            assert!(q.discovered(t, fake("127.0.0.1".into(), 20_000 + i, "127.0.0.1")));
        }
        assert!(!q.discovered(t, fake("127.0.0.1".into(), 30_000, "127.0.0.1")));
        q.closed(5);
        assert!(q.discovered(t, fake("127.0.0.1".into(), 10_005, "127.0.0.1")));
    }

    #[test]
    fn forgotten_entries_free_their_quota() {
        let t0 = Instant::now();
        let mut q = PeerQueue::new(64);
        for i in 0..MAX_PER_IP as u16 {
            q.discovered(t0, fake("6.6.6.6".into(), i + 1, "7.7.7.7"));
        }
        assert!(!q.discovered(t0, fake("6.6.6.6".into(), 999, "7.7.7.7")));
        // Every one fails all its retries and is forgotten.
        let mut now = t0;
        for _ in 0..=REQUEUE.len() {
            while let Some(p) = q.next_dial(now) {
                q.dial_failed(now, &p);
            }
            now += Duration::from_secs(20);
        }
        now += FORGET_UNRESPONSIVE;
        assert!(q.next_dial(now).is_none());
        assert!(q.is_empty());
        assert!(q.discovered(now, fake("6.6.6.6".into(), 999, "7.7.7.7")));
    }

    fn hs_peer(host: &str, port: u16, local: bool) -> Peer {
        Peer { host: host.into(), port, local, referrer: None, topic: Some([1; 32]), to: None }
    }

    #[test]
    fn hyperswarm_priorities_draw_local_first_and_own_address_last_once() {
        let t = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(7));
        let mut behind_us = hs_peer("203.0.113.5", 1, false);
        behind_us.to = Some("203.0.113.5:9".parse().unwrap());
        let ids: Vec<_> = [behind_us, hs_peer("198.51.100.7", 1, false), hs_peer("10.0.0.2", 1, true)]
            .into_iter()
            .map(|p| q.add(t, p).id.unwrap())
            .collect();
        let order: Vec<_> = (0..3).map(|_| q.shift(t).unwrap()).collect();
        assert_eq!(order, vec![ids[2], ids[1], ids[0]]);
        let views: Vec<_> = order.iter().map(|&id| q.view(id).unwrap()).collect();
        assert_eq!(views.iter().map(|v| (v.priority, v.retries)).collect::<Vec<_>>(), vec![(3, 0), (2, 0), (1, 3)]);
        assert!(views.iter().all(|v| v.status == RECONNECT | FIREWALLED | ACTIVE | TRIED));
        // The one behind our own address had its only attempt.
        assert!(!q.requeue(t, ids[0]));
    }

    #[test]
    fn hyperswarm_draws_at_random_within_a_priority() {
        let t = Instant::now();
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..32 {
            let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(seed));
            for i in 0..8u16 {
                q.add(t, hs_peer(&format!("10.0.{i}.1"), 1, false));
            }
            firsts.insert(q.shift(t).unwrap());
        }
        assert!(firsts.len() > 3, "{firsts:?}");
    }

    #[test]
    fn hyperswarm_retries_then_forgets_and_a_rediscovered_peer_starts_over() {
        let t0 = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(1));
        let p = hs_peer("10.0.0.1", 1, false);
        let id = q.add(t0, p.clone()).id.unwrap();
        let mut now = t0;
        for wait in REQUEUE {
            assert_eq!(q.shift(now), Some(id));
            assert!(q.requeue(now, id));
            // Named again while backing off: not queued early (still active).
            assert!(!q.add(now, p.clone()).queued);
            assert!(!q.handle_timeout(now + wait - Duration::from_millis(1)));
            now += wait;
            assert!(q.handle_timeout(now), "released after {wait:?}");
            // A failed, never-proven peer is retried last.
            assert_eq!(q.view(id).unwrap().priority, 0);
        }
        assert_eq!(q.shift(now), Some(id));
        assert_eq!(q.view(id).unwrap().retries, 3);
        assert!(!q.requeue(now, id), "the fourth failure gives up");
        assert_eq!(q.poll_timeout(), Some(now + FORGET_UNRESPONSIVE));
        q.handle_timeout(now + FORGET_UNRESPONSIVE);
        assert_eq!(q.take_forgotten(), vec![id]);
        let again = q.add(now + FORGET_UNRESPONSIVE, p).id.unwrap();
        assert_ne!(again, id);
    }

    #[test]
    fn hyperswarm_ban_is_remembered_and_never_queued() {
        let t = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(1));
        let p = hs_peer("10.0.0.3", 1, false);
        let id = q.add(t, p.clone()).id.unwrap();
        q.shift(t);
        q.ban(t, id);
        assert!(!q.requeue(t, id));
        assert!(!q.add(t, p.clone()).queued);
        assert_eq!(q.poll_timeout(), None, "banned peers are never forgotten by default");
        assert!(q.view(id).unwrap().status & BANNED != 0);
        // A queued peer banned before its dial leaves the queue.
        let other = q.add(t, hs_peer("10.0.0.4", 1, false)).id.unwrap();
        q.ban(t, other);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn hyperswarm_connection_proves_and_a_drop_retries_first() {
        let t = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(1));
        let id = q.add(t, hs_peer("10.0.0.5", 1, false)).id.unwrap();
        q.shift(t);
        q.connected(id, None, true);
        assert_eq!(q.view(id).unwrap().status, PROVEN | RECONNECT | ACTIVE | TRIED);
        q.disconnected(id);
        assert!(q.requeue(t, id));
        q.handle_timeout(t + REQUEUE[0]);
        // A proven peer's first retry has the highest priority.
        assert_eq!(q.view(id).unwrap().priority, 5);
        // Not to be redialled: given up at the drop.
        q.shift(t + REQUEUE[0]);
        q.reconnect(id, false);
        assert!(!q.requeue(t + REQUEUE[0], id));
    }

    #[test]
    fn hyperswarm_topics_per_entry_and_multiplex() {
        let t = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(1));
        let mut a = hs_peer("10.0.0.6", 1, false);
        let first = q.add(t, a.clone());
        a.topic = Some([2; 32]);
        let second = q.add(t, a.clone());
        assert_ne!(first.id, second.id, "one entry per address and topic");
        let mut policy = QueuePolicy::hyperswarm(1);
        policy.multiplex = true;
        policy.requeue_known = false;
        let mut m = PeerQueue::with_policy(policy);
        a.topic = Some([1; 32]);
        let one = m.add(t, a.clone());
        a.topic = Some([2; 32]);
        let two = m.add(t, a.clone());
        assert_eq!(one.id, two.id);
        assert!(two.new_topic && !two.queued);
        assert_eq!(m.topics(one.id.unwrap()).len(), 2);
        assert!(!m.add(t, a).new_topic);
    }

    #[test]
    fn hyperswarm_table_is_bounded() {
        let t = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(1));
        for i in 0..(MAX_INFOS + 500) {
            q.add(t, hs_peer(&format!("10.{}.{}.1", (i >> 8) & 255, i & 255), 1, false));
        }
        assert_eq!(q.len(), MAX_INFOS);
        assert_eq!(q.refused(), 500);
    }

    #[test]
    fn infinite_waits_never_fire() {
        let t = Instant::now();
        let mut policy = QueuePolicy::hyperswarm(1);
        policy.requeue = vec![Duration::MAX];
        policy.forget_unresponsive = None;
        let mut q = PeerQueue::with_policy(policy);
        let id = q.add(t, hs_peer("10.0.0.8", 1, false)).id.unwrap();
        q.shift(t);
        assert!(q.requeue(t, id));
        assert_eq!(q.poll_timeout(), None);
    }


    #[test]
    fn outcomes_reported_for_a_queued_entry_take_it_off_the_queue() {
        let t = Instant::now();
        let mut q = PeerQueue::with_policy(QueuePolicy::hyperswarm(1));
        let a = q.add(t, hs_peer("10.0.0.9", 1, false)).id.unwrap();
        let b = q.add(t, hs_peer("10.0.1.9", 1, false)).id.unwrap();
        // Reported without a shift first: neither stays queued behind it.
        assert!(q.requeue(t, a));
        q.connected(b, None, true);
        assert_eq!(q.queued(), 0);
        assert_eq!(q.shift(t), None);
        q.handle_timeout(t + REQUEUE[0]);
        assert_eq!(q.shift(t + REQUEUE[0]), Some(a), "queued once, after its backoff");
        assert_eq!(q.shift(t + REQUEUE[0]), None);
    }

}
