//! The `peers` record store of a storing node (wire-dht.md §10.2, §10.3).
//!
//! Semantics follow `record-cache` as @hyperswarm/dht configures it:
//!
//! - Two generations, fresh and stale. Adding a record makes it fresh
//!   (taking it out of stale). A GC drops stale and demotes fresh to stale.
//! - GC runs on a fixed [`GC_INTERVAL`] schedule, so a record that is not
//!   refreshed lives between one and two intervals (8–16 min).
//! - Unlike the reference, a full store (the fresh generation at
//!   [`MAX_FRESH`]) refuses new records instead of running a GC at once: in
//!   record-cache a flood of announces flushes everyone's records.
//! - A lookup picks uniformly at random, without repetition, among the fresh
//!   and stale records of a key.
//!
//! Generations are not two maps here: each record carries the (wrapping)
//! number of the GC generation in which it was last added. A GC bumps the
//! generation number and sweeps out records two generations old, so every
//! stored record is either fresh (`gen == current`) or stale
//! (`gen == current - 1`), and one list per key serves lookups over both.
//!
//! Not in the reference, so that no single party can crowd others out:
//! [`MAX_RECORDS_PER_IP`], [`MAX_RECORDS_PER_SUBNET`] (/24) and
//! [`MAX_TOPIC_RECORDS_PER_SUBNET`]. Loopback owners are exempt from the
//! /24 caps: their records come from this host (see `scope`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand::Rng;

/// record-cache `maxAge` as @hyperswarm/dht sets it: 12 min (wire-dht.md
/// §10.3).
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60);

/// GC period: `ceil(2/3 · maxAge)` = 8 min (wire-dht.md §10.3). An
/// unrefreshed record lives 8–16 min.
pub const GC_INTERVAL: Duration = Duration::from_secs(MAX_AGE.as_secs() * 2 / 3);

/// record-cache `maxSize`: records (remote and LAN, all topics) allowed in
/// the fresh generation (wire-dht.md §10.3). The reference GCs when it is
/// exceeded; we refuse new records instead.
pub const MAX_FRESH: usize = 65_536;

/// Most LAN records returned by one lookup (wire-dht.md §10.2).
pub const MAX_LAN_PEERS: usize = 32;

/// Most records (remote + LAN) returned by one lookup; remote records fill
/// what the LAN picks leave (wire-dht.md §10.2).
pub const MAX_PEERS: usize = 128;

/// Safety bound, not in the reference: records (remote and LAN together)
/// stored on behalf of one source IPv4. Spam from one address must not fill
/// the store (and force a GC of everyone's records via [`MAX_FRESH`]).
/// Generous: one host legitimately announces one record per topic it joins.
pub const MAX_RECORDS_PER_IP: usize = 1024;

/// Records stored on behalf of one /24 (the owners' IPs). Default 4,096:
/// four full hosts' worth; 16 such parties are needed to fill [`MAX_FRESH`].
pub const MAX_RECORDS_PER_SUBNET: usize = 4096;

/// Remote records one /24 may hold under one topic. Default 16: a lookup
/// answers with at most [`MAX_PEERS`] (128) records picked at random, so one
/// party stays at most 16 of them and honest announcers keep being found;
/// 16 is more hosts of one site on one topic than seen in practice.
pub const MAX_TOPIC_RECORDS_PER_SUBNET: usize = 16;

/// Lists longer than this get a hash index, so adds and removes stay O(1)
/// for popular (or spammed) topics; short lists are scanned.
const INDEX_THRESHOLD: usize = 48;

/// A topic (the `target` of a `peers` request).
pub type Topic = [u8; 32];

/// A stored 6-byte remote record (wire-dht.md §4.1). The IP is the owner.
/// 7 bytes.
#[derive(Clone, Copy, Debug)]
struct RemoteRec {
    addr: [u8; 6],
    gen: u8,
}

/// A stored 4-byte LAN record (wire-dht.md §4.3) plus the public IP that
/// created it, for the per-IP bound. 9 bytes.
#[derive(Clone, Copy, Debug)]
struct LanRec {
    suffix: [u8; 4],
    owner: [u8; 4],
    gen: u8,
}

trait Rec: Copy {
    type Key: Copy + Eq + Hash;
    fn key(&self) -> Self::Key;
    fn gen(&self) -> u8;
    fn set_gen(&mut self, gen: u8);
    fn owner(&self) -> u32;
}

impl Rec for RemoteRec {
    type Key = [u8; 6];
    fn key(&self) -> [u8; 6] {
        self.addr
    }
    fn gen(&self) -> u8 {
        self.gen
    }
    fn set_gen(&mut self, gen: u8) {
        self.gen = gen;
    }
    fn owner(&self) -> u32 {
        u32::from_be_bytes([self.addr[0], self.addr[1], self.addr[2], self.addr[3]])
    }
}

impl Rec for LanRec {
    type Key = [u8; 4];
    fn key(&self) -> [u8; 4] {
        self.suffix
    }
    fn gen(&self) -> u8 {
        self.gen
    }
    fn set_gen(&mut self, gen: u8) {
        self.gen = gen;
    }
    fn owner(&self) -> u32 {
        u32::from_be_bytes(self.owner)
    }
}

/// The records under one key: a vector to pick from at random, with a hash
/// index by record once it is long.
#[derive(Debug)]
struct RecordList<R: Rec> {
    items: Vec<R>,
    /// Boxed: 8 bytes instead of 48 in every list, and most lists have none.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<R::Key, u32>>>,
}

impl<R: Rec> RecordList<R> {
    fn new() -> Self {
        RecordList {
            items: Vec::new(),
            index: None,
        }
    }

    fn find(&self, key: &R::Key) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(key).map(|&i| i as usize),
            None => self.items.iter().position(|r| r.key() == *key),
        }
    }

    fn push(&mut self, r: R) {
        self.items.push(r);
        match &mut self.index {
            Some(ix) => {
                ix.insert(r.key(), (self.items.len() - 1) as u32);
            }
            None if self.items.len() > INDEX_THRESHOLD => self.reindex(),
            None => {}
        }
    }

    fn swap_remove(&mut self, i: usize) -> R {
        let r = self.items.swap_remove(i);
        if let Some(ix) = &mut self.index {
            ix.remove(&r.key());
            if let Some(moved) = self.items.get(i) {
                ix.insert(moved.key(), i as u32);
            }
        }
        r
    }

    /// Keeps the records `keep` accepts, then right-sizes the allocations.
    fn retain(&mut self, keep: impl FnMut(&R) -> bool) {
        self.items.retain(keep);
        if self.items.capacity() > 2 * self.items.len() + 4 {
            self.items.shrink_to_fit();
        }
        self.reindex();
    }

    fn reindex(&mut self) {
        if self.items.len() > INDEX_THRESHOLD {
            let ix = self
                .items
                .iter()
                .enumerate()
                .map(|(i, r)| (r.key(), i as u32))
                .collect();
            self.index = Some(Box::new(ix));
        } else {
            self.index = None;
        }
    }

    fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<R>()
            + self.index.as_ref().map_or(0, |ix| {
                std::mem::size_of::<HashMap<R::Key, u32>>()
                    + ix.capacity() * (std::mem::size_of::<(R::Key, u32)>() + 1)
            })
    }
}

/// Where an add lands: already fresh, moved from stale, or new.
enum Added {
    AlreadyFresh,
    Refreshed,
    New,
}

/// The `peers` store: remote records by topic, LAN records by topic and the
/// first two octets of the announcer's LAN address.
#[derive(Debug)]
pub struct PeerStore {
    remote: HashMap<Topic, RecordList<RemoteRec>>,
    lan: HashMap<(Topic, [u8; 2]), RecordList<LanRec>>,
    /// Records stored per owner IP (big-endian u32), fresh and stale.
    per_ip: HashMap<u32, u32>,
    /// Records per owner /24 (non-loopback owners).
    per_subnet: HashMap<u32, u32>,
    /// Remote records per (topic prefix, owner /24) (non-loopback owners).
    per_topic_subnet: HashMap<(u64, u32), u16>,
    /// Remote records per address, all topics (who may be a relay target).
    by_addr: HashMap<[u8; 6], u16>,
    gen: u8,
    fresh: usize,
    stale: usize,
    next_gc: Instant,
    refused: u64,
}

impl PeerStore {
    /// An empty store whose GC schedule starts at `now`.
    pub fn new(now: Instant) -> Self {
        PeerStore {
            remote: HashMap::new(),
            lan: HashMap::new(),
            per_ip: HashMap::new(),
            per_subnet: HashMap::new(),
            per_topic_subnet: HashMap::new(),
            by_addr: HashMap::new(),
            gen: 0,
            fresh: 0,
            stale: 0,
            next_gc: now + GC_INTERVAL,
            refused: 0,
        }
    }

    /// Records stored, fresh and stale.
    pub fn len(&self) -> usize {
        self.fresh + self.stale
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn fresh_len(&self) -> usize {
        self.fresh
    }

    pub fn stale_len(&self) -> usize {
        self.stale
    }

    /// How many `add`s were refused by [`MAX_RECORDS_PER_IP`].
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether a remote record of `addr` is stored under any topic.
    pub fn has_peer(&self, addr: SocketAddrV4) -> bool {
        self.by_addr.contains_key(&peer_bytes(addr))
    }

    /// Records currently held on behalf of `ip`.
    pub fn records_of(&self, ip: Ipv4Addr) -> usize {
        self.per_ip.get(&u32::from(ip)).map_or(0, |&n| n as usize)
    }

    /// Stores (or refreshes) an announcement (UPDATE `peers`, unannounce
    /// false): the remote record `remote` under `topic` and, when the
    /// announcer gave its LAN address `local`, the LAN record `c.d:port`
    /// under (`topic`, `a.b`).
    ///
    /// `remote` is `source IP : (value.port || source port)`; the caller
    /// has checked the port is 1..65535. Runs due scheduled GCs first.
    /// Returns false, storing and refreshing nothing, when the new records
    /// would exceed [`MAX_RECORDS_PER_IP`] for `remote`'s IP.
    pub fn add(
        &mut self,
        now: Instant,
        topic: Topic,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
    ) -> bool {
        self.gc(now);
        let owner = u32::from(*remote.ip());
        let rrec = RemoteRec {
            addr: peer_bytes(remote),
            gen: self.gen,
        };
        let lan = local.map(|l| {
            let b = peer_bytes(l);
            (
                (topic, [b[0], b[1]]),
                LanRec {
                    suffix: [b[2], b[3], b[4], b[5]],
                    owner: owner.to_be_bytes(),
                    gen: self.gen,
                },
            )
        });

        let mut needed = 0;
        if self
            .remote
            .get(&topic)
            .and_then(|l| l.find(&rrec.addr))
            .is_none()
        {
            needed += 1;
        }
        if let Some((key, rec)) = &lan {
            if self
                .lan
                .get(key)
                .and_then(|l| l.find(&rec.suffix))
                .is_none()
            {
                needed += 1;
            }
        }
        let have = self.per_ip.get(&owner).copied().unwrap_or(0) as usize;
        let net = subnet_of(owner);
        let have_net = net.and_then(|n| self.per_subnet.get(&n)).copied().unwrap_or(0) as usize;
        let topic_net = net.map(|n| (topic_key(&topic), n));
        let have_topic_net = topic_net.and_then(|k| self.per_topic_subnet.get(&k)).copied().unwrap_or(0) as usize;
        let new_remote = self.remote.get(&topic).and_then(|l| l.find(&rrec.addr)).is_none();
        let refuse = needed > 0
            && (have + needed > MAX_RECORDS_PER_IP
                || have_net + needed > MAX_RECORDS_PER_SUBNET
                || (new_remote && have_topic_net >= MAX_TOPIC_RECORDS_PER_SUBNET)
                || self.fresh + needed > MAX_FRESH);
        if refuse {
            self.refused += 1;
            return false;
        }

        let list = self.remote.entry(topic).or_insert_with(RecordList::new);
        let r = add_to(list, rrec, self.gen);
        if matches!(r, Added::New) {
            *self.by_addr.entry(rrec.addr).or_insert(0) += 1;
            if let Some(k) = topic_net {
                *self.per_topic_subnet.entry(k).or_insert(0) += 1;
            }
        }
        self.account(r, owner);
        if let Some((key, rec)) = lan {
            // A size-triggered GC may have bumped the generation meanwhile;
            // the LAN record goes into the (new) fresh generation, as with
            // two separate `cache.add` calls in the reference.
            let rec = LanRec {
                gen: self.gen,
                ..rec
            };
            let list = self.lan.entry(key).or_insert_with(RecordList::new);
            let r = add_to(list, rec, self.gen);
            self.account(r, owner);
        }
        true
    }

    fn account(&mut self, r: Added, owner: u32) {
        match r {
            Added::AlreadyFresh => return,
            Added::Refreshed => self.stale -= 1,
            Added::New => {
                *self.per_ip.entry(owner).or_insert(0) += 1;
                if let Some(n) = subnet_of(owner) {
                    *self.per_subnet.entry(n).or_insert(0) += 1;
                }
            }
        }
        self.fresh += 1;
    }

    /// Removes an announcement (UPDATE `peers`, unannounce true): both the
    /// remote and the LAN record, whoever stored the latter. Returns how
    /// many records were removed.
    pub fn remove(
        &mut self,
        topic: &Topic,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
    ) -> usize {
        let mut removed = 0;
        if let Some(list) = self.remote.get_mut(topic) {
            if let Some(i) = list.find(&peer_bytes(remote)) {
                let r = list.swap_remove(i);
                if list.items.is_empty() {
                    self.remote.remove(topic);
                }
                forget_remote(&mut self.by_addr, &mut self.per_topic_subnet, topic, &r);
                self.forget(r);
                removed += 1;
            }
        }
        if let Some(l) = local {
            let b = peer_bytes(l);
            let key = (*topic, [b[0], b[1]]);
            if let Some(list) = self.lan.get_mut(&key) {
                if let Some(i) = list.find(&[b[2], b[3], b[4], b[5]]) {
                    let r = list.swap_remove(i);
                    if list.items.is_empty() {
                        self.lan.remove(&key);
                    }
                    self.forget(r);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Bookkeeping for one record leaving the store.
    fn forget<R: Rec>(&mut self, r: R) {
        if r.gen() == self.gen {
            self.fresh -= 1;
        } else {
            self.stale -= 1;
        }
        dec_owner(&mut self.per_ip, r.owner());
        if let Some(n) = subnet_of(r.owner()) {
            dec_owner(&mut self.per_subnet, n);
        }
    }

    /// Answers a `peers` QUERY: up to [`MAX_LAN_PEERS`] LAN records picked
    /// at random under the asker's /16 (only when it sent its LAN address),
    /// then up to [`MAX_PEERS`] minus that many remote records. The asker's
    /// own records are dropped *after* picking, as in the reference, so a
    /// reply can hold one fewer than the bound.
    ///
    /// `asker_remote` is the asker's own remote record
    /// (`source IP : (value.port || source port)`).
    pub fn lookup(
        &self,
        topic: &Topic,
        asker_remote: SocketAddrV4,
        asker_local: Option<SocketAddrV4>,
        rng: &mut impl Rng,
    ) -> (Vec<SocketAddrV4>, Vec<[u8; 4]>) {
        let mut lan_out = Vec::new();
        if let Some(l) = asker_local {
            let b = peer_bytes(l);
            let own = [b[2], b[3], b[4], b[5]];
            if let Some(list) = self.lan.get(&(*topic, [b[0], b[1]])) {
                lan_out = pick(&list.items, MAX_LAN_PEERS, rng)
                    .map(|r| r.suffix)
                    .filter(|s| *s != own)
                    .collect();
            }
        }
        let mut remote_out = Vec::new();
        if let Some(list) = self.remote.get(topic) {
            let own = peer_bytes(asker_remote);
            remote_out = pick(&list.items, MAX_PEERS - lan_out.len(), rng)
                .filter(|r| r.addr != own)
                .map(|r| from_bytes(r.addr))
                .collect();
        }
        (remote_out, lan_out)
    }

    /// When the next scheduled GC is due; `None` while the store is empty
    /// (nothing to collect: `add` catches up on missed ticks itself, so the
    /// schedule keeps its phase).
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_empty()).then_some(self.next_gc)
    }

    /// Runs the scheduled GCs due at `now` (every [`GC_INTERVAL`] since
    /// `new`).
    pub fn gc(&mut self, now: Instant) {
        let mut ticks = 0;
        while now >= self.next_gc {
            if ticks >= 3 {
                // Two swaps already emptied the store; skip the remaining
                // ticks arithmetically instead of looping through them.
                let behind = now.duration_since(self.next_gc).as_nanos() / GC_INTERVAL.as_nanos();
                self.next_gc += GC_INTERVAL * (behind as u32 + 1);
                break;
            }
            self.swap();
            self.next_gc += GC_INTERVAL;
            ticks += 1;
        }
    }

    /// Drops stale, demotes fresh to stale.
    fn swap(&mut self) {
        let old = self.gen;
        self.gen = self.gen.wrapping_add(1);
        if self.stale > 0 {
            let (per_ip, per_subnet) = (&mut self.per_ip, &mut self.per_subnet);
            let mut sweep = |gen: u8, owner: u32| {
                if gen == old {
                    true
                } else {
                    dec_owner(per_ip, owner);
                    if let Some(n) = subnet_of(owner) {
                        dec_owner(per_subnet, n);
                    }
                    false
                }
            };
            let (by_addr, per_topic) = (&mut self.by_addr, &mut self.per_topic_subnet);
            self.remote.retain(|topic, list| {
                list.retain(|r| {
                    let keep = sweep(r.gen(), r.owner());
                    if !keep {
                        forget_remote(by_addr, per_topic, topic, r);
                    }
                    keep
                });
                !list.items.is_empty()
            });
            self.lan.retain(|_, list| {
                list.retain(|r| sweep(r.gen(), r.owner()));
                !list.items.is_empty()
            });
            shrink_map(&mut self.remote);
            shrink_map(&mut self.lan);
            shrink_map(&mut self.per_ip);
            shrink_map(&mut self.per_subnet);
            shrink_map(&mut self.per_topic_subnet);
            shrink_map(&mut self.by_addr);
        }
        self.stale = self.fresh;
        self.fresh = 0;
    }

    /// Approximate bytes held: the struct plus heap allocations computed from
    /// capacities (hash tables: entries plus one control byte per slot;
    /// allocator overhead not included).
    pub fn memory_bytes(&self) -> usize {
        fn table<K, V>(m: &HashMap<K, V>) -> usize {
            m.capacity() * (std::mem::size_of::<(K, V)>() + 1)
        }
        std::mem::size_of::<Self>()
            + table(&self.remote)
            + table(&self.lan)
            + table(&self.per_ip)
            + table(&self.per_subnet)
            + table(&self.per_topic_subnet)
            + table(&self.by_addr)
            + self
                .remote
                .values()
                .map(RecordList::heap_bytes)
                .sum::<usize>()
            + self.lan.values().map(RecordList::heap_bytes).sum::<usize>()
    }
}

fn add_to<R: Rec>(list: &mut RecordList<R>, rec: R, gen: u8) -> Added {
    match list.find(&rec.key()) {
        Some(i) if list.items[i].gen() == gen => Added::AlreadyFresh,
        Some(i) => {
            list.items[i].set_gen(gen);
            Added::Refreshed
        }
        None => {
            list.push(rec);
            Added::New
        }
    }
}

/// The /24 of a non-loopback owner (loopback owners are exempt, see `scope`).
fn subnet_of(owner: u32) -> Option<u32> {
    (owner >> 24 != 127).then_some(owner >> 8)
}

/// Topics are hashes: their first 8 bytes key the per-topic counts.
fn topic_key(topic: &Topic) -> u64 {
    u64::from_be_bytes(topic[..8].try_into().expect("8 bytes"))
}

fn forget_remote(by_addr: &mut HashMap<[u8; 6], u16>, per_topic: &mut HashMap<(u64, u32), u16>, topic: &Topic, r: &RemoteRec) {
    if let Some(n) = by_addr.get_mut(&r.addr) {
        *n -= 1;
        if *n == 0 {
            by_addr.remove(&r.addr);
        }
    }
    if let Some(net) = subnet_of(r.owner()) {
        let k = (topic_key(topic), net);
        if let Some(n) = per_topic.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                per_topic.remove(&k);
            }
        }
    }
}

fn dec_owner(per_ip: &mut HashMap<u32, u32>, owner: u32) {
    if let Some(n) = per_ip.get_mut(&owner) {
        *n -= 1;
        if *n == 0 {
            per_ip.remove(&owner);
        }
    }
}

fn shrink_map<K: Eq + Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 2 * m.len() + 16 {
        m.shrink_to_fit();
    }
}

/// Up to `n` distinct items of `items`, uniformly at random.
fn pick<'a, R>(items: &'a [R], n: usize, rng: &mut impl Rng) -> impl Iterator<Item = &'a R> {
    let n = n.min(items.len());
    rand::seq::index::sample(rng, items.len(), n)
        .into_iter()
        .map(move |i| &items[i])
}

fn peer_bytes(a: SocketAddrV4) -> [u8; 6] {
    let o = a.ip().octets();
    let p = a.port().to_be_bytes();
    [o[0], o[1], o[2], o[3], p[0], p[1]]
}

fn from_bytes(b: [u8; 6]) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        u16::from_be_bytes([b[4], b[5]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    const T: Topic = [0x2c; 32];
    const MIN: Duration = Duration::from_secs(60);

    /// Host `host`, each in a /24 of its own (the /24 caps have their own
    /// tests, with [`net_addr`]).
    fn pub_addr(host: u32, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0b00_0000 + (host << 8)), port)
    }

    /// Host `host` of /24 number `net`.
    fn net_addr(net: u32, host: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0c00_0000 + (net << 8) + host as u32), port)
    }

    fn topic_n(n: u32) -> Topic {
        let mut t = [0u8; 32];
        t[..4].copy_from_slice(&n.to_be_bytes());
        t
    }

    fn lan(c: u8, d: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 168, c, d), port)
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(5)
    }

    #[test]
    fn constants() {
        assert_eq!(GC_INTERVAL, 8 * MIN);
        assert_eq!(MAX_FRESH, 65536);
        assert_eq!(std::mem::size_of::<RemoteRec>(), 7);
        assert_eq!(std::mem::size_of::<LanRec>(), 9);
    }

    #[test]
    fn add_and_lookup_with_lan_prefix() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let a = pub_addr(1, 12345);
        assert!(s.add(t0, T, a, Some(lan(1, 20, 12345))));
        assert_eq!(s.len(), 2);
        // Same /16: sees the LAN record (spec 12.4).
        let b = pub_addr(2, 4000);
        let (r, l) = s.lookup(&T, b, Some(lan(7, 9, 4000)), &mut rng());
        assert_eq!(r, vec![a]);
        assert_eq!(l, vec![[1, 20, 0x30, 0x39]]);
        // Other /16, or no LAN address: no LAN records.
        let other = SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 20), 4000);
        let (r, l) = s.lookup(&T, b, Some(other), &mut rng());
        assert_eq!((r.len(), l.len()), (1, 0));
        let (r, l) = s.lookup(&T, b, None, &mut rng());
        assert_eq!((r.len(), l.len()), (1, 0));
        // Unknown topic.
        let (r, l) = s.lookup(&[0; 32], b, Some(lan(7, 9, 1)), &mut rng());
        assert!(r.is_empty() && l.is_empty());
        // Re-adding is idempotent.
        assert!(s.add(t0, T, a, Some(lan(1, 20, 12345))));
        assert_eq!(s.len(), 2);
        assert_eq!(s.records_of(*a.ip()), 2);
    }

    #[test]
    fn own_records_are_excluded() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let me = pub_addr(1, 1000);
        let my_lan = lan(1, 5, 1000);
        s.add(t0, T, me, Some(my_lan));
        s.add(t0, T, pub_addr(2, 2000), Some(lan(1, 6, 2000)));
        let (r, l) = s.lookup(&T, me, Some(my_lan), &mut rng());
        assert_eq!(r, vec![pub_addr(2, 2000)]);
        assert_eq!(l, vec![[1, 6, 0x07, 0xd0]]);
        // Same IP, other port: a different record, not excluded.
        let (r, _) = s.lookup(&T, pub_addr(1, 1001), None, &mut rng());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn pick_bounds_and_exclusion_after_pick() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        // 300 remote records, 40 LAN records under 192.168.
        for i in 0..300u32 {
            let local = (i < 40).then(|| lan(0, i as u8, 5000));
            assert!(s.add(t0, T, pub_addr(i, 5000), local));
        }
        let mut r = rng();
        let asker = pub_addr(9999, 1);
        let (rem, l) = s.lookup(&T, asker, Some(lan(3, 3, 1)), &mut r);
        assert_eq!(l.len(), MAX_LAN_PEERS);
        assert_eq!(rem.len(), MAX_PEERS - MAX_LAN_PEERS);
        assert_eq!(
            rem.iter().collect::<HashSet<_>>().len(),
            rem.len(),
            "distinct"
        );
        assert_eq!(l.iter().collect::<HashSet<_>>().len(), l.len(), "distinct");
        let (rem, l) = s.lookup(&T, asker, None, &mut r);
        assert_eq!((rem.len(), l.len()), (MAX_PEERS, 0));

        // Exactly 32 LAN records, one of them the asker's: all 32 are
        // picked, the own one dropped, and remote fills 128 - 31.
        let mut s = PeerStore::new(t0);
        for i in 0..200u32 {
            let local = (i < 32).then(|| lan(0, i as u8, 5000));
            s.add(t0, T, pub_addr(i, 5000), local);
        }
        let me = pub_addr(0, 5000);
        let (rem, l) = s.lookup(&T, me, Some(lan(0, 0, 5000)), &mut r);
        assert_eq!(l.len(), 31);
        assert!(!l.contains(&[0, 0, 0x13, 0x88]));
        // 97 picked of 200; the own remote record may be among them.
        assert!(rem.len() == 97 || rem.len() == 96, "{}", rem.len());
        assert!(!rem.contains(&me));
    }

    #[test]
    fn picks_are_random_and_cover_everything() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        for i in 0..500u32 {
            s.add(t0, T, pub_addr(i, 80), None);
        }
        let mut r = rng();
        let mut seen = HashSet::new();
        let first = s.lookup(&T, pub_addr(9999, 1), None, &mut r).0;
        let mut differs = false;
        for _ in 0..100 {
            let got = s.lookup(&T, pub_addr(9999, 1), None, &mut r).0;
            differs |= got != first;
            seen.extend(got);
        }
        assert!(differs);
        assert_eq!(seen.len(), 500);
    }

    #[test]
    fn gc_lifetime_is_8_to_16_minutes() {
        let t0 = Instant::now();
        for added_after in [
            Duration::ZERO,
            MIN,
            4 * MIN,
            8 * MIN - Duration::from_millis(1),
        ] {
            let mut s = PeerStore::new(t0);
            let a = pub_addr(1, 1);
            let t_add = t0 + added_after;
            s.gc(t_add);
            s.add(t_add, T, a, None);
            let mut t = t_add;
            let step = Duration::from_secs(1);
            while !s.is_empty() {
                t += step;
                if t >= s.poll_timeout().unwrap() {
                    s.gc(t);
                }
            }
            let lived = t - t_add;
            assert!(
                lived > 8 * MIN && lived <= 16 * MIN + step,
                "{added_after:?}: {lived:?}"
            );
            assert_eq!(s.records_of(*a.ip()), 0);
            assert_eq!(s.lookup(&T, pub_addr(2, 2), None, &mut rng()).0.len(), 0);
        }
    }

    #[test]
    fn refresh_moves_stale_to_fresh() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let a = pub_addr(1, 1);
        s.add(t0, T, a, Some(lan(1, 1, 1)));
        s.gc(t0 + 8 * MIN);
        assert_eq!((s.fresh_len(), s.stale_len()), (0, 2));
        s.add(t0 + 9 * MIN, T, a, Some(lan(1, 1, 1)));
        assert_eq!((s.fresh_len(), s.stale_len()), (2, 0));
        s.gc(t0 + 16 * MIN);
        assert_eq!(s.len(), 2);
        s.gc(t0 + 24 * MIN);
        assert_eq!(s.len(), 0);
        assert!(s.remote.is_empty() && s.lan.is_empty() && s.per_ip.is_empty());
    }

    #[test]
    fn add_runs_due_gc_and_long_gaps_are_cheap() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        s.add(t0, T, pub_addr(1, 1), None);
        // A whole day later: the old record is gone, schedule stays aligned.
        let later = t0 + Duration::from_secs(24 * 3600) + MIN;
        s.add(later, T, pub_addr(2, 2), None);
        assert_eq!(s.len(), 1);
        assert_eq!(s.poll_timeout(), Some(t0 + GC_INTERVAL * (24 * 60 / 8 + 1)));
    }

    #[test]
    fn remove_both_records() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let a = pub_addr(1, 1);
        s.add(t0, T, a, Some(lan(1, 1, 1)));
        s.gc(t0 + 8 * MIN); // one of them stale, to cover that path
        s.add(t0 + 8 * MIN, T, a, None);
        assert_eq!(s.remove(&T, a, Some(lan(1, 1, 1))), 2);
        assert!(s.is_empty());
        assert_eq!((s.fresh_len(), s.stale_len()), (0, 0));
        assert_eq!(s.records_of(*a.ip()), 0);
        assert_eq!(s.remove(&T, a, Some(lan(1, 1, 1))), 0);
        // Someone else's unannounce with the same LAN address removes the
        // LAN record (as in the reference) and credits its owner.
        s.add(t0 + 8 * MIN, T, a, Some(lan(1, 1, 1)));
        let b = pub_addr(2, 2);
        assert_eq!(s.remove(&T, b, Some(lan(1, 1, 1))), 1);
        assert_eq!(s.records_of(*a.ip()), 1);
    }

    #[test]
    fn per_ip_cap() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let ip = |port| pub_addr(7, port);
        let t = |p: u16| topic_n(p as u32);
        for p in 1..=(MAX_RECORDS_PER_IP as u16) {
            assert!(s.add(t0, t(p), ip(p), None));
        }
        assert_eq!(s.records_of(*ip(1).ip()), MAX_RECORDS_PER_IP);
        assert!(!s.add(t0, T, ip(5000), None));
        assert!(!s.add(t0, [1; 32], ip(1), None));
        assert_eq!(s.refused(), 2);
        // Refreshing what is stored is still allowed.
        assert!(s.add(t0, t(1), ip(1), None));
        // A refresh that would add a new LAN record is refused as a whole.
        assert!(!s.add(t0, t(1), ip(1), Some(lan(1, 1, 1))));
        assert_eq!(s.refused(), 3);
        // Another IP is unaffected.
        assert!(s.add(t0, T, pub_addr(8, 1), None));
        // Removal frees room.
        s.remove(&t(2), ip(2), None);
        assert!(s.add(t0, T, ip(5000), None));
        // Expiry frees room too.
        s.gc(t0 + 16 * MIN);
        assert_eq!(s.records_of(*ip(1).ip()), 0);
        assert!(s.add(t0 + 16 * MIN, T, ip(5001), None));
    }

    #[test]
    fn a_full_store_refuses_and_flushes_nobody() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let t1 = t0 + MIN;
        // MAX_FRESH records under many topics (one /24 each: 16 records of
        // 16 hosts), then the store is full.
        let mut n = 0u32;
        while s.fresh_len() < MAX_FRESH {
            let net = n / 16;
            assert!(s.add(t1, topic_n(net), net_addr(net, (n % 16) as u8, 1000), None), "record {n}");
            n += 1;
        }
        assert_eq!(s.refused(), 0);
        assert!(!s.add(t1, T, pub_addr(0xffff, 1), None), "full: refused");
        assert_eq!(s.len(), MAX_FRESH, "nobody flushed");
        // Refreshing a stored record is still fine.
        assert!(s.add(t1, topic_n(0), net_addr(0, 0, 1000), None));
        // The scheduled GC ages them as usual, and the store empties.
        s.gc(t0 + 8 * MIN);
        assert_eq!((s.fresh_len(), s.stale_len()), (0, MAX_FRESH));
        assert!(s.add(t0 + 8 * MIN, T, pub_addr(0xffff, 1), None), "room again in fresh");
        s.gc(t0 + 24 * MIN);
        assert!(s.is_empty());
        assert_eq!(s.poll_timeout(), None);
        assert!(s.memory_bytes() < 1024, "{}", s.memory_bytes());
    }

    #[test]
    fn poisoning_from_one_ip_or_one_subnet_leaves_honest_records() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        // 50 honest announcers, each in a /24 of its own, on topic T.
        let honest: Vec<SocketAddrV4> = (0..50u32).map(|i| pub_addr(1000 + i, 4000)).collect();
        for a in &honest {
            assert!(s.add(t0, T, *a, None));
        }
        // One IP, then a whole /24, announce 100,000 records on T and on
        // random topics.
        let mut r = StdRng::seed_from_u64(3);
        let mut stored = 0;
        for i in 0..100_000u32 {
            let host = if i < 50_000 { 1 } else { r.random_range(0..=255u8) };
            let topic = if i % 2 == 0 { T } else { r.random() };
            stored += s.add(t0, topic, net_addr(7, host, 1 + (i % 60000) as u16), None) as usize;
        }
        assert!(stored <= MAX_RECORDS_PER_SUBNET, "{stored}");
        for a in &honest {
            assert!(s.has_peer(*a), "honest record {a} kept");
        }
        // Lookups of T still return every honest announcer.
        let (peers, _) = s.lookup(&T, pub_addr(99, 1), None, &mut rng());
        let found = honest.iter().filter(|a| peers.contains(a)).count();
        assert_eq!(found, honest.len());
        println!("poisoning: {stored} of 100000 attacker records stored; {found}/50 honest found");
    }

    #[test]
    fn index_consistent_under_churn() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        let mut r = StdRng::seed_from_u64(11);
        let mut model: HashSet<SocketAddrV4> = HashSet::new();
        for _ in 0..20_000 {
            let a = pub_addr(r.random_range(0..40), r.random_range(1..10));
            if r.random_bool(0.6) {
                s.add(t0, T, a, None);
                model.insert(a);
            } else {
                assert_eq!(s.remove(&T, a, None), model.remove(&a) as usize);
            }
            assert_eq!(s.len(), model.len());
        }
        let list = &s.remote[&T];
        for (i, rec) in list.items.iter().enumerate() {
            assert_eq!(list.find(&rec.addr), Some(i));
        }
    }

    #[test]
    fn memory_per_record_is_small() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(t0);
        // 100 topics × 20 announcers, half with a LAN address.
        for t in 0..100u8 {
            for i in 0..20u32 {
                let local = (i % 2 == 0).then(|| lan(t, i as u8, 1));
                s.add(t0, [t; 32], pub_addr(i, 1 + t as u16), local);
            }
        }
        let per = s.memory_bytes() / s.len();
        println!(
            "{} records, {} bytes, {per} bytes/record",
            s.len(),
            s.memory_bytes()
        );
        assert!(per < 64, "{per}");
    }
}
