//! The mDNS discovery state machine.
//!
//! Like quinn-proto's endpoint it owns no socket and no clock: the driver
//! feeds it datagrams (with the interface they came in on) and the time,
//! and drains datagrams to multicast, peer events and the next deadline.
//! Every output queue is bounded.
//!
//! Hostile input (issue 10): multicast DNS is link-scoped, so only packets
//! whose source is on the receiving interface's link count (RFC 6762 §11);
//! a question repeated inside one packet is answered once; a record is
//! answered at most once a second per interface (RFC 6762 §6), later
//! queries within that second share one deferred answer; and an SRV target
//! that names a host instead of an address is ignored, never resolved.

use std::collections::{HashMap, HashSet, VecDeque};
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
/// A record is multicast at most once per this interval on one interface
/// (RFC 6762 §6: "MUST NOT multicast a record on a given interface until at
/// least one second has elapsed since the last time"). The reference has no
/// such limit: 2.1 KB of repeated questions drew a 64 KB answer. Queries
/// inside the interval are not dropped: they share one answer sent when the
/// second is over, so a second querier still hears us within a second.
pub const ANSWER_INTERVAL: Duration = Duration::from_secs(1);

/// The interface a datagram came in on, as the driver knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Kernel interface index; 0 when the driver could not tell (then
    /// `nets` holds the networks of every interface and answers go out on
    /// all of them).
    pub index: u32,
    /// The interface's IPv4 address: answers leave from it.
    pub addr: Ipv4Addr,
    /// Loopback: only this host's own processes can send on it.
    pub loopback: bool,
    /// The interface's IPv4 networks, as (address, prefix length).
    pub nets: Vec<(Ipv4Addr, u8)>,
}

impl Link {
    /// A link that is the loopback interface: everything on it is local.
    pub fn loopback() -> Self {
        Link { index: 1, addr: Ipv4Addr::LOCALHOST, loopback: true, nets: vec![(Ipv4Addr::LOCALHOST, 8)] }
    }

    /// An ordinary interface with one network.
    pub fn net(index: u32, addr: Ipv4Addr, prefix: u8) -> Self {
        Link { index, addr, loopback: false, nets: vec![(addr, prefix)] }
    }

    /// Whether `ip` is on this link: on one of its networks, IPv4
    /// link-local (RFC 3927), or anything at all on loopback.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        if self.loopback || ip.is_link_local() {
            return true;
        }
        self.nets.iter().any(|(net, prefix)| same_net(*net, ip, *prefix))
    }

    /// Where an answer to a query that came in here goes: this interface
    /// only, or every interface when the driver did not know which.
    fn via(&self) -> Option<Ipv4Addr> {
        (self.index != 0 && !self.addr.is_unspecified()).then_some(self.addr)
    }
}

fn same_net(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let prefix = prefix.min(32) as u32;
    if prefix == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - prefix);
    u32::from(a) & mask == u32::from(b) & mask
}

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
    /// Send out of the interface with this address only; `None`: out of
    /// every interface (queries and unsolicited announcements).
    pub via: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanEvent {
    /// A peer announced `topic` on the LAN. `host` is the answer's source
    /// address, or the SRV target when it is an address other than `0.0.0.0`.
    Peer { topic: [u8; 32], host: Ipv4Addr, port: u16 },
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
    /// Packets whose source is not on the receiving interface's link.
    pub off_link: u64,
    /// SRV answers whose target is a host name (or an address off the
    /// link): ignored, never resolved.
    pub bad_targets: u64,
    /// Questions that repeated one already asked in the same packet.
    pub repeated_questions: u64,
    /// Answers held back because the record went out on that interface
    /// less than [`ANSWER_INTERVAL`] ago (they join one deferred answer).
    pub answers_deferred: u64,
}

struct Topic {
    key: [u8; 32],
    name: String,
    id: InstanceId,
    /// LAN port to answer with; `None` for lookup-only topics.
    announce: Option<u16>,
    next_query: Option<Instant>,
}

/// One interface's answer that waits for [`ANSWER_INTERVAL`] to pass.
struct Deferred {
    via: Option<Ipv4Addr>,
    /// The latest querier, for the `referrer` A record.
    querier: Ipv4Addr,
    topics: HashSet<[u8; 32]>,
    due: Instant,
}

pub struct Lan {
    config: LanConfig,
    rng: StdRng,
    topics: HashMap<[u8; 32], Topic>,
    /// When each topic's record last went out on each interface (by index).
    answered: HashMap<([u8; 32], u32), Instant>,
    deferred: HashMap<u32, Deferred>,
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
            answered: HashMap::new(),
            deferred: HashMap::new(),
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
        let id = mdns::instance_id(self.rng.random());
        self.join_with_id(now, key, lookup, announce, id, true)
    }

    /// [`Self::join`] with the topic's instance id chosen by the caller, and
    /// the unsolicited answer left to it when `unsolicited` is false: the
    /// caller sends [`announcement`] itself, in its own order (the binding
    /// sends it from the JS thread, so that swarms of one process announce
    /// in the order the application called them, as the reference's do).
    pub fn join_with_id(&mut self, now: Instant, key: [u8; 32], lookup: bool, announce: Option<u16>, id: InstanceId, unsolicited: bool) -> bool {
        if !self.topics.contains_key(&key) && self.topics.len() >= MAX_TOPICS {
            return false;
        }
        let topic = Topic { key, name: mdns::topic_name(&key, &self.config.domain), id, announce, next_query: lookup.then_some(now) };
        if let (Some(port), true) = (announce, unsolicited) {
            if let Some(payload) = announcement(&self.config.domain, &key, port, &topic.id) {
                self.push_transmit(payload, None);
            }
        }
        self.topics.insert(key, topic);
        self.handle_timeout(now);
        true
    }

    pub fn leave(&mut self, key: &[u8; 32]) {
        self.topics.remove(key);
        self.answered.retain(|(k, _), _| k != key);
        for d in self.deferred.values_mut() {
            d.topics.remove(key);
        }
        self.deferred.retain(|_, d| !d.topics.is_empty());
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
                self.push_transmit(payload, None);
            }
        }
        let ready: Vec<u32> = self.deferred.iter().filter(|(_, d)| d.due <= now).map(|(i, _)| *i).collect();
        for index in ready {
            if let Some(d) = self.deferred.remove(&index) {
                let keys: Vec<[u8; 32]> = d.topics.into_iter().collect();
                self.answer(now, index, d.via, d.querier, &keys);
            }
        }
        // Entries older than the interval no longer hold anything back.
        self.answered.retain(|_, at| now.saturating_duration_since(*at) < ANSWER_INTERVAL);
    }

    pub fn handle_datagram(&mut self, now: Instant, from: Ipv4Addr, link: &Link, bytes: &[u8]) {
        self.stats.received += 1;
        if !link.holds(from) {
            self.stats.off_link += 1;
            tracing::debug!(%from, "dropping mDNS datagram from off the link");
            return;
        }
        match mdns::decode(bytes) {
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(%from, "dropping mDNS datagram: {e}");
            }
            Ok(Message::Query { names, known_ids }) => self.on_query(now, from, link, &names, &known_ids),
            Ok(Message::Response { answers }) => {
                for a in answers {
                    if !self.topics.values().any(|t| t.name == a.name) {
                        continue;
                    }
                    let host = match a.target.as_deref() {
                        None => from,
                        // Names from the wire are never resolved, and an
                        // address must be one a peer on this link can have.
                        Some(target) => match target.parse::<Ipv4Addr>() {
                            Ok(ip) if usable_target(ip) && link.holds(ip) => ip,
                            _ => {
                                self.stats.bad_targets += 1;
                                tracing::debug!(%from, target, "ignoring mDNS answer naming a host");
                                continue;
                            }
                        },
                    };
                    for t in self.topics.values().filter(|t| t.name == a.name) {
                        if a.id.as_deref() == Some(&t.id[..]) {
                            self.stats.own_answers += 1;
                            continue;
                        }
                        let ev = LanEvent::Peer { topic: t.key, host, port: a.port };
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

    fn on_query(&mut self, now: Instant, from: Ipv4Addr, link: &Link, names: &[String], known_ids: &[(String, Vec<u8>)]) {
        let mut asked = HashSet::new();
        let mut keys = Vec::new();
        for name in names {
            if !asked.insert(name.as_str()) {
                self.stats.repeated_questions += 1;
                continue;
            }
            let known = known_ids.iter().find(|(n, _)| n == name).map(|(_, id)| id.as_slice());
            for t in self.topics.values().filter(|t| &t.name == name) {
                match t.announce {
                    Some(port) if port != 0 && known != Some(&t.id[..]) => keys.push(t.key),
                    _ => {}
                }
            }
        }
        if keys.is_empty() {
            return;
        }
        // Records that went out here within the interval wait for it to end.
        let mut now_keys = Vec::new();
        for key in keys {
            match self.answered.get(&(key, link.index)) {
                Some(at) if now.saturating_duration_since(*at) < ANSWER_INTERVAL => {
                    self.stats.answers_deferred += 1;
                    let due = *at + ANSWER_INTERVAL;
                    let d = self.deferred.entry(link.index).or_insert_with(|| Deferred {
                        via: link.via(),
                        querier: from,
                        topics: HashSet::new(),
                        due,
                    });
                    d.querier = from;
                    d.due = d.due.max(due);
                    d.topics.insert(key);
                }
                _ => now_keys.push(key),
            }
        }
        if !now_keys.is_empty() {
            self.answer(now, link.index, link.via(), from, &now_keys);
        }
    }

    /// Multicasts the SRV + TXT pair of each topic in `keys` (those still
    /// joined), with the `referrer` A record naming `querier`.
    fn answer(&mut self, now: Instant, index: u32, via: Option<Ipv4Addr>, querier: Ipv4Addr, keys: &[[u8; 32]]) {
        let answers: Vec<Answer<'_>> = keys
            .iter()
            .filter_map(|k| self.topics.get(k))
            .filter_map(|t| t.announce.filter(|p| *p != 0).map(|port| Answer { name: &t.name, port, id: &t.id }))
            .collect();
        if answers.is_empty() {
            return;
        }
        let encoded = mdns::encode_response(&answers, Some((querier, &self.config.domain)));
        if let Ok(payload) = encoded {
            self.stats.queries_answered += 1;
            for k in keys {
                self.answered.insert((*k, index), now);
            }
            self.push_transmit(payload, via);
        }
    }

    fn push_transmit(&mut self, payload: Vec<u8>, via: Option<Ipv4Addr>) {
        if self.transmits.len() >= MAX_QUEUE {
            self.transmits.pop_front();
            self.stats.dropped_output += 1;
        }
        self.transmits.push_back(Transmit { payload, via });
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
        let queries = self.topics.values().filter_map(|t| t.next_query);
        queries.chain(self.deferred.values().map(|d| d.due)).min()
    }
}

/// The unsolicited answer a topic announcing on `port` multicasts when it
/// joins ("here I am", the reference's `_fireAnnounce`): its SRV and TXT
/// records, no `referrer`. `None` if it cannot be encoded.
pub fn announcement(domain: &str, key: &[u8; 32], port: u16, id: &InstanceId) -> Option<Vec<u8>> {
    let name = mdns::topic_name(key, domain);
    mdns::encode_response(&[Answer { name: &name, port, id }], None).ok()
}

/// An SRV target address a peer could really listen on.
fn usable_target(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast())
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

    fn link() -> Link {
        Link::net(2, Ipv4Addr::new(10, 0, 0, 9), 24)
    }
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn announcer_and_looker_find_each_other() {
        let now = Instant::now();
        let key = [9u8; 32];
        let (mut a, mut b) = (lan(1), lan(2));
        a.join(now, key, false, Some(4000));
        // A's unsolicited answer reaches B, which is not yet looking: nothing.
        for p in drain(&mut a) {
            b.handle_datagram(now, A, &link(), &p);
        }
        assert_eq!(b.poll_event(), None);
        b.join(now, key, true, None);
        let queries = drain(&mut b);
        assert_eq!(queries.len(), 1);
        a.handle_datagram(now, B, &link(), &queries[0]);
        let answers = drain(&mut a);
        assert_eq!(answers.len(), 1);
        b.handle_datagram(now, A, &link(), &answers[0]);
        assert_eq!(b.poll_event(), Some(LanEvent::Peer { topic: key, host: Ipv4Addr::new(10, 0, 0, 1), port: 4000 }));
        assert_eq!(a.stats().queries_answered, 1);
    }

    #[test]
    fn own_answers_are_filtered() {
        let now = Instant::now();
        let mut a = lan(3);
        a.join(now, [1; 32], true, Some(5000));
        for p in drain(&mut a) {
            a.handle_datagram(now, A, &link(), &p);
        }
        for p in drain(&mut a) {
            a.handle_datagram(now, A, &link(), &p);
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
        a.handle_datagram(Instant::now(), A, &link(), b"\x00\x01garbage");
        assert_eq!(a.stats().malformed, 1);
    }

    #[test]
    fn query_flood_is_answered_once_a_second() {
        let now = Instant::now();
        let mut a = lan(6);
        a.join(now, [3; 32], false, Some(1));
        drain(&mut a);
        let q = mdns::encode_query(&[&mdns::topic_name(&[3; 32], mdns::DEFAULT_DOMAIN)]).unwrap();
        for _ in 0..10 * MAX_QUEUE {
            a.handle_datagram(now, B, &link(), &q);
        }
        // One answer now; the rest share one deferred answer a second later.
        assert_eq!(drain(&mut a).len(), 1);
        assert_eq!(a.poll_timeout(), Some(now + ANSWER_INTERVAL));
        a.handle_timeout(now + ANSWER_INTERVAL);
        assert_eq!(drain(&mut a).len(), 1);
        a.handle_timeout(now + 3 * ANSWER_INTERVAL);
        assert!(drain(&mut a).is_empty());
        assert_eq!(a.stats().answers_deferred, 10 * MAX_QUEUE as u64 - 1);
    }

    #[test]
    fn output_queue_is_bounded() {
        let now = Instant::now();
        let mut a = lan(8);
        // Each interface has its own budget: a query per interface index.
        a.join(now, [3; 32], false, Some(1));
        drain(&mut a);
        let q = mdns::encode_query(&[&mdns::topic_name(&[3; 32], mdns::DEFAULT_DOMAIN)]).unwrap();
        for i in 0..(2 * MAX_QUEUE) as u32 {
            a.handle_datagram(now, B, &Link::net(10 + i, Ipv4Addr::new(10, 0, 0, 9), 24), &q);
        }
        assert_eq!(drain(&mut a).len(), MAX_QUEUE);
        assert!(a.stats().dropped_output > 0);
    }

    #[test]
    fn answers_go_out_of_the_interface_the_query_came_in_on() {
        let now = Instant::now();
        let mut a = lan(9);
        a.join(now, [3; 32], false, Some(1));
        assert_eq!(a.poll_transmit().unwrap().via, None, "unsolicited announce goes everywhere");
        let q = mdns::encode_query(&[&mdns::topic_name(&[3; 32], mdns::DEFAULT_DOMAIN)]).unwrap();
        a.handle_datagram(now, B, &link(), &q);
        assert_eq!(a.poll_transmit().unwrap().via, Some(Ipv4Addr::new(10, 0, 0, 9)));
        // Unknown interface (no packet info): every interface, as before.
        let unknown = Link { index: 0, addr: Ipv4Addr::UNSPECIFIED, loopback: false, nets: vec![(A, 24)] };
        a.handle_datagram(now, B, &unknown, &q);
        assert_eq!(a.poll_transmit().unwrap().via, None);
    }

    #[test]
    fn caller_sent_announcement_is_the_one_the_engine_would_send() {
        let now = Instant::now();
        let id = mdns::instance_id([7; 32]);
        let mut engine = lan(10);
        engine.join_with_id(now, [5; 32], false, Some(4000), id, true);
        let sent = drain(&mut engine);
        assert_eq!(sent, vec![announcement(mdns::DEFAULT_DOMAIN, &[5; 32], 4000, &id).unwrap()]);
        // Left to the caller: nothing from the core, and the caller's
        // packet carries the topic's id, so it is filtered as our own.
        let mut quiet = lan(11);
        quiet.join_with_id(now, [5; 32], true, Some(4000), id, false);
        let queries = drain(&mut quiet);
        assert_eq!(queries.len(), 1, "the lookup's query only");
        quiet.handle_datagram(now, A, &link(), &sent[0]);
        assert_eq!(quiet.poll_event(), None);
        assert_eq!(quiet.stats().own_answers, 1);
    }

    #[test]
    fn link_membership() {
        let l = link();
        assert!(l.holds(B));
        assert!(l.holds(Ipv4Addr::new(169, 254, 3, 4)));
        assert!(!l.holds(Ipv4Addr::new(10, 0, 1, 2)));
        assert!(!l.holds(Ipv4Addr::new(8, 8, 8, 8)));
        assert!(Link::loopback().holds(Ipv4Addr::new(10, 9, 9, 9)));
        assert!(Link::net(3, A, 0).holds(Ipv4Addr::new(8, 8, 8, 8)));
        assert!(Link::net(3, A, 32).holds(A));
    }

    #[test]
    fn leave_stops_answers_and_queries() {
        let now = Instant::now();
        let mut a = lan(7);
        a.join(now, [4; 32], true, Some(1));
        drain(&mut a);
        a.leave(&[4; 32]);
        let q = mdns::encode_query(&[&mdns::topic_name(&[4; 32], mdns::DEFAULT_DOMAIN)]).unwrap();
        a.handle_datagram(now, B, &link(), &q);
        assert!(drain(&mut a).is_empty());
        assert_eq!(a.poll_timeout(), None);
    }
}
