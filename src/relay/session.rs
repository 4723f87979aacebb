//! The relay's sessions and their indexes: by token (joins), by id (data),
//! per source IP (the per-IP cap), and by deadline (expiry). Every index
//! holds at most one entry per session or party, except the deadline heap,
//! which is rebuilt when stale entries outnumber live ones.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::bucket::Bucket;
use super::message::Token;

/// One side of a session: where it joined from, and the id it sends under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    pub addr: SocketAddrV4,
    pub id: u64,
}

#[derive(Debug)]
pub struct Session {
    pub token: Token,
    pub first: Party,
    /// The partner, once it has joined.
    pub second: Option<Party>,
    pub created: Instant,
    pub paired_at: Option<Instant>,
    /// The last datagram either side sent (for the idle timeout).
    pub last_seen: Instant,
    /// The pair's rate; set when it pairs.
    pub bucket: Option<Bucket>,
}

/// The lifetimes a session's deadline comes from.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub wait: Duration,
    pub pair: Duration,
    pub idle: Duration,
}

impl Session {
    /// When it ends unless something changes: a waiting session at its
    /// wait lifetime, a pair at its lifetime or when idle, whichever first.
    pub fn deadline(&self, l: Lifetimes) -> Instant {
        match self.paired_at {
            None => self.created + l.wait,
            Some(at) => (at + l.pair).min(self.last_seen + l.idle),
        }
    }

    /// When it ends however busy: the wait lifetime, or the pair lifetime
    /// (what the peers are told; the idle timeout moves with traffic).
    pub fn hard_end(&self, l: Lifetimes) -> Instant {
        match self.paired_at {
            None => self.created + l.wait,
            Some(at) => at + l.pair,
        }
    }

    /// The party that joined from `addr`, and the other one.
    pub fn sides(&self, addr: SocketAddrV4) -> Option<(Party, Option<Party>)> {
        if self.first.addr == addr {
            Some((self.first, self.second))
        } else {
            match self.second {
                Some(s) if s.addr == addr => Some((s, Some(self.first))),
                _ => None,
            }
        }
    }

    pub fn parties(&self) -> impl Iterator<Item = Party> {
        std::iter::once(self.first).chain(self.second)
    }
}

fn subnet(ip: Ipv4Addr) -> [u8; 3] {
    let [a, b, c, _] = ip.octets();
    [a, b, c]
}

#[derive(Debug, Default)]
pub struct Sessions {
    slots: HashMap<u64, Session>,
    by_token: HashMap<Token, u64>,
    by_id: HashMap<u64, u64>,
    per_ip: HashMap<Ipv4Addr, usize>,
    /// By /24, keyed by its first three octets.
    per_subnet: HashMap<[u8; 3], usize>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Keys are never reused, so a stale deadline never hits a new session.
    next_key: u64,
    waiting: usize,
    pairs: usize,
}

impl Sessions {
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    pub fn pairs(&self) -> usize {
        self.pairs
    }

    pub fn by_token(&self, token: &Token) -> Option<u64> {
        self.by_token.get(token).copied()
    }

    pub fn by_id(&self, id: u64) -> Option<u64> {
        self.by_id.get(&id).copied()
    }

    pub fn id_taken(&self, id: u64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Sessions `ip` is a party to.
    pub fn on_ip(&self, ip: Ipv4Addr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub fn get(&self, key: u64) -> Option<&Session> {
        self.slots.get(&key)
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut Session> {
        self.slots.get_mut(&key)
    }

    /// Sessions addresses of `ip`'s /24 are parties to.
    pub fn on_subnet(&self, ip: Ipv4Addr) -> usize {
        self.per_subnet.get(&subnet(ip)).copied().unwrap_or(0)
    }

    fn count_ip(&mut self, ip: Ipv4Addr) {
        *self.per_ip.entry(ip).or_default() += 1;
        *self.per_subnet.entry(subnet(ip)).or_default() += 1;
    }

    fn uncount_ip(&mut self, ip: Ipv4Addr) {
        fn down<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, k: K) {
            if let Some(n) = map.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&k);
                }
            }
        }
        down(&mut self.per_ip, ip);
        down(&mut self.per_subnet, subnet(ip));
    }

    /// A new waiting session; the caller has checked the caps and that
    /// the token and the id are free.
    pub fn insert(&mut self, now: Instant, token: Token, first: Party, l: Lifetimes) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        let s = Session { token, first, second: None, created: now, paired_at: None, last_seen: now, bucket: None };
        self.deadlines.push(Reverse((s.deadline(l), key)));
        self.slots.insert(key, s);
        self.by_token.insert(token, key);
        self.by_id.insert(first.id, key);
        self.count_ip(*first.addr.ip());
        self.waiting += 1;
        key
    }

    /// The partner of waiting session `key` joined. Its deadline only
    /// moves later, so the heap entry it has stays valid (it fires early
    /// and is pushed again).
    pub fn pair(&mut self, key: u64, now: Instant, second: Party, bucket: Bucket) {
        let Some(s) = self.slots.get_mut(&key) else { return };
        debug_assert!(s.second.is_none());
        s.second = Some(second);
        s.paired_at = Some(now);
        s.last_seen = now;
        s.bucket = Some(bucket);
        self.by_id.insert(second.id, key);
        self.count_ip(*second.addr.ip());
        self.waiting -= 1;
        self.pairs += 1;
    }

    /// Removes session `key` from every index.
    pub fn remove(&mut self, key: u64) -> Option<Session> {
        let s = self.slots.remove(&key)?;
        self.by_token.remove(&s.token);
        for p in s.parties() {
            self.by_id.remove(&p.id);
            self.uncount_ip(*p.addr.ip());
        }
        if s.second.is_some() {
            self.pairs -= 1;
        } else {
            self.waiting -= 1;
        }
        // Removed sessions leave their heap entry behind; past twice the
        // live ones (plus slack), rebuild it from the live sessions.
        if self.deadlines.len() > 2 * self.slots.len() + 64 {
            self.deadlines.retain(|Reverse((_, k))| self.slots.contains_key(k));
        }
        Some(s)
    }

    /// The key of a session whose deadline has passed, if any. Heap
    /// entries that fired early (the session was extended) are pushed
    /// again at the session's real deadline; stale ones are discarded.
    pub fn pop_due(&mut self, now: Instant, l: Lifetimes) -> Option<u64> {
        while let Some(Reverse((at, key))) = self.deadlines.peek().copied() {
            if at > now {
                return None;
            }
            self.deadlines.pop();
            let Some(s) = self.slots.get(&key) else { continue };
            let real = s.deadline(l);
            if real <= now {
                return Some(key);
            }
            self.deadlines.push(Reverse((real, key)));
        }
        None
    }

    /// The earliest heap entry: a session's deadline, or earlier (a wake-up
    /// that finds nothing due is harmless).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Heap entries (for tests of the bound).
    pub fn deadline_entries(&self) -> usize {
        self.deadlines.len()
    }
}
