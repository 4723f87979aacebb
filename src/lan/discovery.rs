//! The mDNS discovery state machine.
//!
//! Like quinn-proto's endpoint it owns no socket and no clock: the driver
//! feeds it datagrams and the time, and drains datagrams to multicast, peer
//! events and the next deadline. Every output queue is bounded.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::wire::mdns::{self, Answer, InstanceId, Message};

/// Shortest pause between two queries of a lookup topic (wire-mdns.md §3).
pub const QUERY_INTERVAL_MIN: Duration = Duration::from_secs(30);
/// Longest pause between two queries of a lookup topic (wire-mdns.md §3).
pub const QUERY_INTERVAL_MAX: Duration = Duration::from_secs(60);
/// Cap on queued datagrams and events. A flood of queries from the LAN must
/// not grow memory; beyond this the oldest output is dropped and counted.
pub const MAX_QUEUE: usize = 256;
/// Cap on joined topics per instance; the reference has none, but a bound
/// keeps a buggy caller from growing the answer packets without limit.
pub const MAX_TOPICS: usize = 4096;

#[derive(Debug, Clone)]
pub struct LanConfig {
    /// mDNS domain (`@hyperswarm/discovery`'s undocumented `domain` option).
    pub domain: String,
    /// Seed for instance ids and query jitter; fixed in tests.
    pub seed: u64,
}

impl Default for LanConfig {
    fn default() -> Self {
        LanConfig { domain: mdns::DEFAULT_DOMAIN.to_string(), seed: rand::random() }
    }
}

/// A datagram for the mDNS group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanEvent {
    /// A peer announced `topic` on the LAN. `host` is the answer's source
    /// address, or the SRV target when it is not `0.0.0.0`.
    Peer { topic: [u8; 32], host: String, port: u16 },
}

/// Counters for what came in and what was thrown away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LanStats {
    pub received: u64,
    pub malformed: u64,
    pub own_answers: u64,
    pub queries_answered: u64,
    pub sent: u64,
    pub dropped_output: u64,
}

struct Topic {
    key: [u8; 32],
    name: String,
    id: InstanceId,
    /// LAN port to answer with; `None` for lookup-only topics.
    announce: Option<u16>,
    next_query: Option<Instant>,
}

pub struct Lan {
    config: LanConfig,
    rng: StdRng,
    topics: HashMap<[u8; 32], Topic>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LanEvent>,
    stats: LanStats,
}

impl Lan {
    pub fn new(config: LanConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Lan {
            config,
            rng,
            topics: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: LanStats::default(),
        }
    }

    pub fn stats(&self) -> LanStats {
        self.stats
    }

    /// Starts (or restarts) LAN discovery for a topic. A topic that announces
    /// multicasts its answer at once, unasked, so listeners learn of it without
    /// waiting for their next query; a topic that looks up queries at once.
    /// Returns false when the topic table is full.
    pub fn join(&mut self, now: Instant, key: [u8; 32], lookup: bool, announce: Option<u16>) -> bool {
        if !self.topics.contains_key(&key) && self.topics.len() >= MAX_TOPICS {
            return false;
        }
        let topic = Topic {
            key,
            name: mdns::topic_name(&key, &self.config.domain),
            id: mdns::instance_id(self.rng.random()),
            announce,
            next_query: lookup.then_some(now),
        };
        if let Some(port) = announce {
            if let Ok(payload) = mdns::encode_response(&[Answer { name: &topic.name, port, id: &topic.id }], None) {
                self.push_transmit(payload);
            }
        }
        self.topics.insert(key, topic);
        self.handle_timeout(now);
        true
    }

    pub fn leave(&mut self, key: &[u8; 32]) {
        self.topics.remove(key);
    }

    /// Queries for a topic now and restarts its query timer, even for an
    /// announce-only topic (the reference's `topic.update()`).
    pub fn update(&mut self, now: Instant, key: &[u8; 32]) {
        if let Some(t) = self.topics.get_mut(key) {
            t.next_query = Some(now);
        }
        self.handle_timeout(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        for t in self.topics.values_mut() {
            if t.next_query.is_some_and(|at| at <= now) {
                due.push(t.name.clone());
                let span = QUERY_INTERVAL_MAX - QUERY_INTERVAL_MIN;
                let jitter = span.mul_f64(self.rng.random::<f64>());
                t.next_query = Some(now + QUERY_INTERVAL_MIN + jitter);
            }
        }
        // One packet per topic, as the reference sends them.
        for name in due {
            if let Ok(payload) = mdns::encode_query(&[&name]) {
                self.push_transmit(payload);
            }
        }
    }

    pub fn handle_datagram(&mut self, _now: Instant, from: Ipv4Addr, bytes: &[u8]) {
        self.stats.received += 1;
        match mdns::decode(bytes) {
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(%from, "dropping mDNS datagram: {e}");
            }
            Ok(Message::Query { names, known_ids }) => self.on_query(from, &names, &known_ids),
            Ok(Message::Response { answers }) => {
                for a in answers {
                    let host = a.target.clone().unwrap_or_else(|| from.to_string());
                    for t in self.topics.values().filter(|t| t.name == a.name) {
                        if a.id.as_deref() == Some(&t.id[..]) {
                            self.stats.own_answers += 1;
                            continue;
                        }
                        let ev = LanEvent::Peer { topic: t.key, host: host.clone(), port: a.port };
                        if self.events.len() >= MAX_QUEUE {
                            self.events.pop_front();
                            self.stats.dropped_output += 1;
                        }
                        self.events.push_back(ev);
                    }
                }
            }
        }
    }

    fn on_query(&mut self, from: Ipv4Addr, names: &[String], known_ids: &[(String, Vec<u8>)]) {
        let mut answers = Vec::new();
        for name in names {
            let known = known_ids.iter().find(|(n, _)| n == name).map(|(_, id)| id.as_slice());
            for t in self.topics.values().filter(|t| &t.name == name) {
                match t.announce {
                    Some(port) if port != 0 && known != Some(&t.id[..]) => {
                        answers.push(Answer { name: &t.name, port, id: &t.id })
                    }
                    _ => {}
                }
            }
        }
        if answers.is_empty() {
            return;
        }
        let encoded = mdns::encode_response(&answers, Some((from, &self.config.domain)));
        if let Ok(payload) = encoded {
            self.stats.queries_answered += 1;
            self.push_transmit(payload);
        }
    }

    fn push_transmit(&mut self, payload: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUE {
            self.transmits.pop_front();
            self.stats.dropped_output += 1;
        }
        self.transmits.push_back(Transmit { payload });
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_some() {
            self.stats.sent += 1;
        }
        t
    }

    pub fn poll_event(&mut self) -> Option<LanEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.topics.values().filter_map(|t| t.next_query).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan(seed: u64) -> Lan {
        Lan::new(LanConfig { domain: mdns::DEFAULT_DOMAIN.into(), seed })
    }

    fn drain(l: &mut Lan) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| l.poll_transmit().map(|t| t.payload)).collect()
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn announcer_and_looker_find_each_other() {
        let now = Instant::now();
        let key = [9u8; 32];
        let (mut a, mut b) = (lan(1), lan(2));
        a.join(now, key, false, Some(4000));
        // A's unsolicited answer reaches B, which is not yet looking: nothing.
        for p in drain(&mut a) {
            b.handle_datagram(now, A, &p);
        }
        assert_eq!(b.poll_event(), None);
        b.join(now, key, true, None);
        let queries = drain(&mut b);
        assert_eq!(queries.len(), 1);
        a.handle_datagram(now, B, &queries[0]);
        let answers = drain(&mut a);
        assert_eq!(answers.len(), 1);
        b.handle_datagram(now, A, &answers[0]);
        assert_eq!(b.poll_event(), Some(LanEvent::Peer { topic: key, host: "10.0.0.1".into(), port: 4000 }));
        assert_eq!(a.stats().queries_answered, 1);
    }

    #[test]
    fn own_answers_are_filtered() {
        let now = Instant::now();
        let mut a = lan(3);
        a.join(now, [1; 32], true, Some(5000));
        for p in drain(&mut a) {
            a.handle_datagram(now, A, &p);
        }
        for p in drain(&mut a) {
            a.handle_datagram(now, A, &p);
        }
        assert_eq!(a.poll_event(), None);
        assert!(a.stats().own_answers >= 1);
    }

    #[test]
    fn queries_repeat_every_30_to_60_seconds() {
        let t0 = Instant::now();
        let mut a = lan(4);
        a.join(t0, [2; 32], true, None);
        assert_eq!(drain(&mut a).len(), 1);
        let next = a.poll_timeout().unwrap();
        assert!(next >= t0 + QUERY_INTERVAL_MIN && next <= t0 + QUERY_INTERVAL_MAX);
        a.handle_timeout(next - Duration::from_millis(1));
        assert!(drain(&mut a).is_empty());
        a.handle_timeout(next);
        assert_eq!(drain(&mut a).len(), 1);
    }

    #[test]
    fn malformed_datagrams_are_counted() {
        let mut a = lan(5);
        a.handle_datagram(Instant::now(), A, b"\x00\x01garbage");
        assert_eq!(a.stats().malformed, 1);
    }

    #[test]
    fn query_flood_keeps_queues_bounded() {
        let now = Instant::now();
        let mut a = lan(6);
        a.join(now, [3; 32], false, Some(1));
        let q = mdns::encode_query(&[&mdns::topic_name(&[3; 32], mdns::DEFAULT_DOMAIN)]).unwrap();
        for _ in 0..10 * MAX_QUEUE {
            a.handle_datagram(now, B, &q);
        }
        assert_eq!(drain(&mut a).len(), MAX_QUEUE);
        assert!(a.stats().dropped_output > 0);
    }

    #[test]
    fn leave_stops_answers_and_queries() {
        let now = Instant::now();
        let mut a = lan(7);
        a.join(now, [4; 32], true, Some(1));
        drain(&mut a);
        a.leave(&[4; 32]);
        let q = mdns::encode_query(&[&mdns::topic_name(&[4; 32], mdns::DEFAULT_DOMAIN)]).unwrap();
        a.handle_datagram(now, B, &q);
        assert!(drain(&mut a).is_empty());
        assert_eq!(a.poll_timeout(), None);
    }
}
