//! The dial queue: which discovered peer to connect to next, and when to try
//! again. Pure state, driven with explicit times, so tests run it on a
//! virtual clock.
//!
//! The seed's queue dialled each address once and never again. We keep one
//! entry per address (so repeats from discovery do not pile up dials), retry
//! failures on hyperswarm 2.x's schedule, and allow a redial once a
//! connection has closed.
//!
//! Discovery input comes from the network: one DHT reply may name 128 peers
//! that do not exist. Entries not yet proven by a connection are therefore
//! capped per IP, per IPv4 /24 and per referrer IP, so that no one party can
//! fill the queue (and have real peers refused) or put more than a few dozen
//! dead addresses ahead of them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::discovery::Peer;

/// Overall connect timeout (spec/api-network.md §2.5: 10 s, fixed).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before retry 1, 2 and 3 (hyperswarm 2.x `queue.requeue`, §4.5).
pub const REQUEUE: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(15)];
/// How long an address that failed every retry is left alone
/// (hyperswarm 2.x `queue.forget.unresponsive`, §4.5).
pub const FORGET_UNRESPONSIVE: Duration = Duration::from_millis(7500);
/// Addresses remembered at once. Discovery input comes from the network, so
/// the table is capped; idle entries are evicted first.
pub const MAX_TRACKED: usize = 4096;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Dialing,
    Connected(u64),
    /// Failed `retries` times; dial again at the instant.
    Waiting(Instant),
    /// Out of retries; forget at the instant.
    Exhausted(Instant),
    /// A connection closed; dial again when discovery reports it.
    Idle,
}

impl State {
    /// Counted against the per-party caps: not (yet, or any longer)
    /// backed by a connection we made.
    fn unproven(self) -> bool {
        !matches!(self, State::Connected(_) | State::Idle)
    }
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
    peer: Peer,
    state: State,
    retries: usize,
    parties: Vec<Party>,
}

#[derive(Debug, Default)]
pub struct PeerQueue {
    entries: HashMap<String, Entry>,
    local: VecDeque<String>,
    remote: VecDeque<String>,
    dialing: usize,
    max_dials: usize,
    /// Unproven entries per party.
    unproven: HashMap<Party, usize>,
    refused: u64,
}

impl PeerQueue {
    pub fn new(max_dials: usize) -> Self {
        PeerQueue { max_dials: max_dials.max(1), ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Peers refused because their IP, /24 or referrer was at its cap.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Keeps the per-party counts as an entry moves between states.
    fn count(unproven: &mut HashMap<Party, usize>, parties: &[Party], from: Option<State>, to: Option<State>) {
        let was = from.is_some_and(State::unproven);
        let now = to.is_some_and(State::unproven);
        if was == now {
            return;
        }
        for p in parties {
            if now {
                *unproven.entry(p.clone()).or_default() += 1;
            } else if let Some(n) = unproven.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    unproven.remove(p);
                }
            }
        }
    }

    fn set_state(&mut self, key: &str, state: State) {
        if let Some(e) = self.entries.get_mut(key) {
            Self::count(&mut self.unproven, &e.parties, Some(e.state), Some(state));
            e.state = state;
        }
    }

    /// Discovery reported `peer`. Returns true if it was queued for a dial.
    pub fn discovered(&mut self, now: Instant, peer: Peer) -> bool {
        let key = peer.address_key();
        if let Some(e) = self.entries.get_mut(&key) {
            match e.state {
                State::Idle => {}
                State::Exhausted(until) if now >= until => e.retries = 0,
                _ => return false,
            }
            // Its parties stay those that first named it: a later reply
            // cannot move it into another's quota.
            e.peer = peer;
            self.set_state(&key, State::Queued);
            self.enqueue(key);
            return true;
        }
        let parties = Party::of(&peer);
        if parties.iter().any(|p| self.unproven.get(p).copied().unwrap_or(0) >= p.cap()) {
            self.refused += 1;
            tracing::trace!(peer = %peer, "dial queue: party at its cap, peer refused");
            return false;
        }
        if self.entries.len() >= MAX_TRACKED && !self.evict_one() {
            self.refused += 1;
            return false;
        }
        Self::count(&mut self.unproven, &parties, None, Some(State::Queued));
        self.entries.insert(key.clone(), Entry { peer, state: State::Queued, retries: 0, parties });
        self.enqueue(key);
        true
    }

    fn enqueue(&mut self, key: String) {
        // LAN peers first, as the seed's queue pops them first.
        if self.entries[&key].peer.local {
            self.local.push_back(key)
        } else {
            self.remote.push_back(key)
        }
    }

    fn evict_one(&mut self) -> bool {
        let victim = self
            .entries
            .iter()
            .find(|(_, e)| matches!(e.state, State::Idle | State::Exhausted(_)))
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                if let Some(e) = self.entries.remove(&k) {
                    Self::count(&mut self.unproven, &e.parties, Some(e.state), None);
                }
                true
            }
            None => false,
        }
    }

    /// The next peer to dial now, if any and if under the dial limit.
    pub fn next_dial(&mut self, now: Instant) -> Option<Peer> {
        self.promote_due(now);
        while self.dialing < self.max_dials {
            let key = self.local.pop_front().or_else(|| self.remote.pop_front())?;
            let Some(e) = self.entries.get_mut(&key) else { continue };
            if e.state != State::Queued {
                continue;
            }
            e.state = State::Dialing; // unproven either way
            self.dialing += 1;
            return Some(e.peer.clone());
        }
        None
    }

    fn promote_due(&mut self, now: Instant) {
        let mut due = Vec::new();
        let unproven = &mut self.unproven;
        self.entries.retain(|k, e| match e.state {
            State::Waiting(at) if at <= now => {
                e.state = State::Queued;
                due.push(k.clone());
                true
            }
            State::Exhausted(until) if until <= now => {
                Self::count(unproven, &e.parties, Some(e.state), None);
                false
            }
            _ => true,
        });
        for k in due {
            self.enqueue(k);
        }
    }

    fn finish_dial(&mut self, key: &str) -> Option<&mut Entry> {
        let e = self.entries.get_mut(key)?;
        if e.state == State::Dialing {
            self.dialing -= 1;
        }
        Some(e)
    }

    pub fn dial_succeeded(&mut self, peer: &Peer, conn: u64) {
        let key = peer.address_key();
        if let Some(e) = self.finish_dial(&key) {
            e.retries = 0;
            self.set_state(&key, State::Connected(conn));
        }
    }

    pub fn dial_failed(&mut self, now: Instant, peer: &Peer) {
        if let Some(e) = self.finish_dial(&peer.address_key()) {
            e.state = match REQUEUE.get(e.retries) {
                Some(wait) => State::Waiting(now + *wait),
                None => State::Exhausted(now + FORGET_UNRESPONSIVE),
            };
            e.retries += 1;
        }
    }

    /// The owner closed connection `conn`; its address may be dialled again.
    pub fn closed(&mut self, conn: u64) {
        for e in self.entries.values_mut() {
            if e.state == State::Connected(conn) {
                Self::count(&mut self.unproven, &e.parties, Some(e.state), Some(State::Idle));
                e.state = State::Idle;
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e.state {
                State::Waiting(at) | State::Exhausted(at) => Some(at),
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
}
