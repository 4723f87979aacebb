//! The dial queue: which discovered peer to connect to next, and when to try
//! again. Pure state, driven with explicit times, so tests run it on a
//! virtual clock.
//!
//! The seed's queue dialled each address once and never again. We keep one
//! entry per address (so repeats from discovery do not pile up dials), retry
//! failures on hyperswarm 2.x's schedule, and allow a redial once a
//! connection has closed.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::peer::Peer;

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

#[derive(Debug)]
struct Entry {
    peer: Peer,
    state: State,
    retries: usize,
}

#[derive(Debug, Default)]
pub struct PeerQueue {
    entries: HashMap<String, Entry>,
    local: VecDeque<String>,
    remote: VecDeque<String>,
    dialing: usize,
    max_dials: usize,
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

    /// Discovery reported `peer`. Returns true if it was queued for a dial.
    pub fn discovered(&mut self, now: Instant, peer: Peer) -> bool {
        let key = peer.address_key();
        if let Some(e) = self.entries.get_mut(&key) {
            match e.state {
                State::Idle => {}
                State::Exhausted(until) if now >= until => e.retries = 0,
                _ => return false,
            }
            e.peer = peer;
            e.state = State::Queued;
            self.enqueue(key);
            return true;
        }
        if self.entries.len() >= MAX_TRACKED && !self.evict_one() {
            return false;
        }
        self.entries.insert(key.clone(), Entry { peer, state: State::Queued, retries: 0 });
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
                self.entries.remove(&k);
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
            e.state = State::Dialing;
            self.dialing += 1;
            return Some(e.peer.clone());
        }
        None
    }

    fn promote_due(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.entries.retain(|k, e| match e.state {
            State::Waiting(at) if at <= now => {
                e.state = State::Queued;
                due.push(k.clone());
                true
            }
            State::Exhausted(until) => until > now,
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
        if let Some(e) = self.finish_dial(&peer.address_key()) {
            e.state = State::Connected(conn);
            e.retries = 0;
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
        Peer { host: host.into(), port: 9, local, referrer: None, topic: Some([0; 32]), to: None }
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
        assert_eq!(q.next_dial(t).unwrap().host, "10.0.0.2");
        assert_eq!(q.next_dial(t).unwrap().host, "1.1.1.1");
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
            q.discovered(t, Peer { host: format!("h{i}"), port: 1, local: false, referrer: None, topic: None, to: None });
        }
        assert!(q.len() <= MAX_TRACKED);
    }
}
