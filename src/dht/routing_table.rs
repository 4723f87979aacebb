//! Kademlia routing table: k-buckets over the XOR metric (wire-dht.md §8.2).
//!
//! # Layout
//!
//! The reference uses `k-bucket` 5.1.0: a binary tree whose leaves are
//! buckets of `k` contacts, where only the leaf containing the own id is ever
//! split and the other half of each split is marked non-splittable. After `D`
//! splits the tree has one non-splittable leaf per depth `d < D`, holding
//! exactly the ids whose common prefix length (cpl) with the local id is `d`,
//! plus the own leaf holding every id with cpl `>= D`. A newcomer is refused
//! (and the 3 least-recently-seen contacts of its leaf are offered for a
//! ping) only when it lands in a full non-splittable leaf; landing in the full
//! own leaf splits it again, until the newcomer either fits or its cpl group
//! turns out to already hold `k` contacts. So in both structures a newcomer
//! is refused iff `k` contacts with its exact cpl are already known.
//!
//! We therefore index buckets directly by cpl, as rust-libp2p's `kbucket`
//! does: bucket `i` holds the contacts whose id shares exactly `i` leading
//! bits with ours. That is the same set of accepted contacts as the tree,
//! without the tree. Buckets are allocated lazily and kept in a small sorted
//! vector: a node in an N-node network only populates about `log2(N / K) +
//! a few` of the 256 possible buckets, and an empty 256-slot array alone
//! would cost 6 KiB per node.
//!
//! Time is a logical clock: every `insert` stamps the contact with the next
//! value of an internal counter, which orders contacts by last contact
//! (the reference's second, time-ordered list of all nodes).
//!
//! Not in the reference, against hijacking and eclipses:
//! - A contact's address (and the `to` it reports) changes only through
//!   [`RoutingTable::insert`], which the node calls for a response that came
//!   back from where its request went (a round trip). A request carrying a
//!   known id from another address ([`RoutingTable::insert_unverified`])
//!   changes nothing.
//! - At most [`MAX_PER_SUBNET_BUCKET`] contacts of one /24 per bucket and
//!   [`MAX_PER_SUBNET`] in the table (see `scope::subnet`; every loopback
//!   address:port is its own party).

use std::cmp::Ordering;
use std::net::SocketAddrV4;

use super::scope::subnet;

/// A 256-bit node id (wire-dht.md §8.1).
pub type NodeId = [u8; 32];

/// Contacts per bucket: k-bucket's default `numberOfNodesPerKBucket`, which
/// dht-rpc keeps (wire-dht.md §8.2).
pub const K: usize = 20;

/// How many least-recently-seen contacts of a full bucket are offered for a
/// ping when a newcomer does not fit: k-bucket's `numberOfNodesToPing`
/// (wire-dht.md §8.2).
pub const PING_ON_FULL: usize = 3;

/// Contacts from one /24 in one bucket. Default 2, after BEP 42's spirit
/// (libtorrent allows 1): one party cannot take more than a tenth of any
/// bucket, while two nodes behind one NAT both fit.
pub const MAX_PER_SUBNET_BUCKET: usize = 2;

/// Contacts from one /24 in the whole table. Default 10: a table holds
/// ~20·log2(N/20) contacts (200–300 on a large network), so one /24 stays
/// below 5% of it.
pub const MAX_PER_SUBNET: usize = 10;

/// One known node. 56 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: NodeId,
    pub addr: SocketAddrV4,
    /// our address as this contact last reported it (`to`), spec §7
    pub to: Option<SocketAddrV4>,
    /// Logical time of the last `insert` of this contact (larger = newer).
    pub last_seen: u64,
    /// A response came back from `addr` (a round trip).
    pub verified: bool,
}

/// Outcome of [`RoutingTable::insert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insert {
    /// A new contact was stored.
    Added,
    /// A known contact was refreshed (now the most recently seen).
    Updated,
    /// bucket full: the newcomer is NOT added; these are the (up to) 3
    /// least-recently-seen contacts of that bucket to ping (spec §8.2)
    Full { stale: Vec<Contact> },
    /// own id, ignored
    OwnId,
    /// An unverified request named a known id from another address: the
    /// contact keeps its address.
    Conflict,
    /// The newcomer's /24 already holds its share of the bucket or table.
    SubnetFull,
}

/// Contacts sharing exactly `cpl` leading bits with the local id, least
/// recently seen first (k-bucket's order: a refresh moves to the tail).
#[derive(Clone, Debug)]
struct Bucket {
    cpl: u8,
    contacts: Vec<Contact>,
}

/// Kademlia k-buckets keyed by common prefix length with the local id.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    local: NodeId,
    /// Non-empty buckets only, sorted by `cpl`.
    buckets: Vec<Bucket>,
    len: usize,
    clock: u64,
}

/// XOR distance; compare the arrays lexicographically (big-endian).
pub fn distance(a: &NodeId, b: &NodeId) -> [u8; 32] {
    let mut d = [0u8; 32];
    for (i, x) in d.iter_mut().enumerate() {
        *x = a[i] ^ b[i];
    }
    d
}

/// Number of leading bits `a` and `b` share; 256 when equal.
fn cpl(a: &NodeId, b: &NodeId) -> usize {
    for i in 0..32 {
        let x = a[i] ^ b[i];
        if x != 0 {
            return i * 8 + x.leading_zeros() as usize;
        }
    }
    256
}

/// Push with exact growth: buckets hold at most `K` small records, and the
/// default doubling would leave e.g. 12 unused slots (672 bytes) in a bucket
/// of 20. Reallocation happens at most `K` times per bucket lifetime.
fn push_exact<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        v.reserve_exact(1);
    }
    v.push(x);
}

impl RoutingTable {
    pub fn new(local: NodeId) -> Self {
        RoutingTable {
            local,
            buckets: Vec::new(),
            len: 0,
            clock: 0,
        }
    }

    /// Contacts in `addr`'s subnet. A scan, run only when a contact is
    /// added or moves (a count map would cost ~2 KiB a table).
    fn subnet_count(&self, addr: SocketAddrV4) -> usize {
        let key = subnet(addr);
        self.iter().filter(|c| subnet(c.addr) == key).count()
    }

    /// A contact at exactly `addr` that has answered us from there.
    pub fn verified_at(&self, addr: SocketAddrV4) -> bool {
        self.iter().any(|c| c.addr == addr && c.verified)
    }

    /// Adds an unverified contact (a request carried its id) or refreshes a
    /// known one at the same address. A known id at another address is a
    /// [`Insert::Conflict`]: nothing changes.
    pub fn insert_unverified(&mut self, id: NodeId, addr: SocketAddrV4) -> Insert {
        self.insert_with(id, addr, None, false)
    }

    pub fn local(&self) -> &NodeId {
        &self.local
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index in `buckets` of the bucket for `cpl`, or where it would go.
    fn find_bucket(&self, cpl: usize) -> Result<usize, usize> {
        self.buckets
            .binary_search_by(|b| (b.cpl as usize).cmp(&cpl))
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Adds or refreshes (moves to most-recently-seen; updates addr and `to`
    /// (keep old `to` if the new one is None)); uses an internal
    /// monotonically increasing counter for last_seen.
    ///
    /// For a contact verified by a round trip: the node calls it for
    /// responses only.
    pub fn insert(&mut self, id: NodeId, addr: SocketAddrV4, to: Option<SocketAddrV4>) -> Insert {
        self.insert_with(id, addr, to, true)
    }

    fn insert_with(&mut self, id: NodeId, addr: SocketAddrV4, to: Option<SocketAddrV4>, verified: bool) -> Insert {
        let c = cpl(&self.local, &id);
        if c == 256 {
            return Insert::OwnId;
        }
        let key = subnet(addr);
        match self.find_bucket(c) {
            Ok(bi) => {
                let bucket = &self.buckets[bi].contacts;
                if let Some(pos) = bucket.iter().position(|x| x.id == id) {
                    let old = bucket[pos].addr;
                    if old != addr {
                        if !verified {
                            return Insert::Conflict;
                        }
                        let moved_in = bucket.iter().filter(|x| subnet(x.addr) == key).count();
                        if subnet(old) != key
                            && (moved_in >= MAX_PER_SUBNET_BUCKET || self.subnet_count(addr) >= MAX_PER_SUBNET)
                        {
                            return Insert::SubnetFull;
                        }
                    }
                    let now = self.tick();
                    let bucket = &mut self.buckets[bi].contacts;
                    // Refresh: rotate to the tail (most recently seen) in place.
                    bucket[pos..].rotate_left(1);
                    let last = bucket.last_mut().expect("non-empty");
                    last.addr = addr;
                    if to.is_some() {
                        last.to = to;
                    }
                    last.verified |= verified;
                    last.last_seen = now;
                    Insert::Updated
                } else if bucket.len() >= K {
                    Insert::Full {
                        stale: bucket[..PING_ON_FULL.min(bucket.len())].to_vec(),
                    }
                } else if bucket.iter().filter(|x| subnet(x.addr) == key).count() >= MAX_PER_SUBNET_BUCKET
                    || self.subnet_count(addr) >= MAX_PER_SUBNET
                {
                    Insert::SubnetFull
                } else {
                    let now = self.tick();
                    push_exact(
                        &mut self.buckets[bi].contacts,
                        Contact {
                            id,
                            addr,
                            to,
                            last_seen: now,
                            verified,
                        },
                    );
                    self.len += 1;
                    Insert::Added
                }
            }
            Err(bi) => {
                if self.subnet_count(addr) >= MAX_PER_SUBNET {
                    return Insert::SubnetFull;
                }
                let now = self.tick();
                let contacts = vec![Contact {
                    id,
                    addr,
                    to,
                    last_seen: now,
                    verified,
                }];
                if self.buckets.len() == self.buckets.capacity() {
                    // Grow the outer list by a few slots, not by doubling.
                    self.buckets.reserve_exact(4);
                }
                self.buckets.insert(
                    bi,
                    Bucket {
                        cpl: c as u8,
                        contacts,
                    },
                );
                self.len += 1;
                Insert::Added
            }
        }
    }

    /// Replace `stale` by a newcomer after the stale one failed its ping
    /// (eviction).
    ///
    /// Removes `stale` if present, then inserts the newcomer. Returns true
    /// when the newcomer is in the table afterwards (added or refreshed);
    /// false when its bucket is still full (e.g. `stale` had already gone and
    /// someone else took the slot) or it is the own id.
    pub fn replace(
        &mut self,
        stale: &NodeId,
        id: NodeId,
        addr: SocketAddrV4,
        to: Option<SocketAddrV4>,
    ) -> bool {
        self.remove(stale);
        matches!(self.insert(id, addr, to), Insert::Added | Insert::Updated)
    }

    pub fn remove(&mut self, id: &NodeId) -> Option<Contact> {
        let c = cpl(&self.local, id);
        if c == 256 {
            return None;
        }
        let bi = self.find_bucket(c).ok()?;
        let bucket = &mut self.buckets[bi].contacts;
        let pos = bucket.iter().position(|x| x.id == *id)?;
        // `remove`, not `swap_remove`: the order is the staleness order.
        let gone = bucket.remove(pos);
        self.len -= 1;

        if bucket.is_empty() {
            self.buckets.remove(bi);
        }
        Some(gone)
    }

    pub fn get(&self, id: &NodeId) -> Option<&Contact> {
        let bi = self.find_bucket(cpl(&self.local, id)).ok()?;
        self.buckets[bi].contacts.iter().find(|x| x.id == *id)
    }

    /// Up to n contacts closest to target by XOR distance, closest first.
    ///
    /// Walks the buckets in XOR order instead of sorting the whole table.
    /// With `j = cpl(local, target)`, every contact of bucket `j` agrees with
    /// the target on its first `j + 1` bits, so it is closer than any
    /// contact of the buckets `i > j` (which differ from the target at bit
    /// `j`), which are in turn closer than those of bucket `j - 1`, then
    /// `j - 2`, ... (which differ at bit `i < j`). Only within one of those
    /// groups do we sort, and we stop as soon as `n` are collected.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<Contact> {
        let n = n.min(self.len);
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return out;
        }
        let j = cpl(&self.local, target);
        let split = match self.find_bucket(j) {
            Ok(i) | Err(i) => i,
        };
        let mut group: Vec<&Contact> = Vec::with_capacity(K);
        let take = |group: &mut Vec<&Contact>, out: &mut Vec<Contact>| {
            let need = n - out.len();
            let by_dist = |a: &&Contact, b: &&Contact| -> Ordering {
                distance(&a.id, target).cmp(&distance(&b.id, target))
            };
            if group.len() > need {
                group.select_nth_unstable_by(need, by_dist);
                group.truncate(need);
            }
            group.sort_unstable_by(by_dist);
            out.extend(group.drain(..).cloned());
        };
        // Group 1: bucket j itself (when j < 256, i.e. target != local).
        let mut tail_start = split;
        if let Some(b) = self.buckets.get(split) {
            if b.cpl as usize == j {
                group.extend(b.contacts.iter());
                take(&mut group, &mut out);
                tail_start = split + 1;
            }
        }
        // Group 2: all buckets deeper than j, as one group.
        if out.len() < n && tail_start < self.buckets.len() {
            group.extend(
                self.buckets[tail_start..]
                    .iter()
                    .flat_map(|b| b.contacts.iter()),
            );
            take(&mut group, &mut out);
        }
        // Group 3: shallower buckets, deepest first.
        for b in self.buckets[..split].iter().rev() {
            if out.len() >= n {
                break;
            }
            group.extend(b.contacts.iter());
            take(&mut group, &mut out);
        }
        out
    }

    /// Up to n least-recently-seen contacts overall (maintenance pings,
    /// spec §8.3), oldest first.
    pub fn oldest(&self, n: usize) -> Vec<Contact> {
        let mut all: Vec<&Contact> = self.iter().collect();
        select_sorted(&mut all, n, |a, b| a.last_seen.cmp(&b.last_seen));
        all.into_iter().cloned().collect()
    }

    /// The `to` values of the n most-recently-seen contacts that have one,
    /// most recent first (spec §7 tally).
    pub fn recent_to(&self, n: usize) -> Vec<SocketAddrV4> {
        let mut with_to: Vec<&Contact> = self.iter().filter(|c| c.to.is_some()).collect();
        select_sorted(&mut with_to, n, |a, b| b.last_seen.cmp(&a.last_seen));
        with_to.into_iter().filter_map(|c| c.to).collect()
    }

    /// Like [`Self::recent_to`], but one report per /24 of the reporting
    /// contacts (the most recent one): one party's many nodes count once.
    pub fn recent_to_diverse(&self, n: usize) -> Vec<SocketAddrV4> {
        let mut with_to: Vec<&Contact> = self.iter().filter(|c| c.to.is_some()).collect();
        with_to.sort_unstable_by_key(|c| std::cmp::Reverse(c.last_seen));
        let mut seen = std::collections::HashSet::new();
        with_to.into_iter().filter(|c| seen.insert(subnet(c.addr))).take(n).filter_map(|c| c.to).collect()
    }

    /// All contacts, by bucket (shallowest cpl first), least recently seen
    /// first within a bucket.
    pub fn iter(&self) -> impl Iterator<Item = &Contact> {
        self.buckets.iter().flat_map(|b| b.contacts.iter())
    }

    /// Number of allocated (non-empty) buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes this table occupies: the struct plus its heap allocations,
    /// computed from capacities (allocator overhead not included).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.buckets.capacity() * std::mem::size_of::<Bucket>()

            + self
                .buckets
                .iter()
                .map(|b| b.contacts.capacity() * std::mem::size_of::<Contact>())
                .sum::<usize>()
    }
}

/// Keeps the `n` smallest elements of `v` under `cmp`, sorted.
fn select_sorted<T>(v: &mut Vec<T>, n: usize, cmp: impl Fn(&T, &T) -> Ordering) {
    if n == 0 {
        v.clear();
        return;
    }
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, &cmp);
        v.truncate(n);
    }
    v.sort_unstable_by(&cmp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::net::Ipv4Addr;

    /// Every test contact in a /24 of its own (the subnet caps have their
    /// own tests).
    fn addr(i: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i << 8)), 1000 + (i % 60000) as u16)
    }

    /// An id sharing exactly `cpl` leading bits with `local`, the rest taken
    /// from `salt`.
    fn id_with_cpl(local: &NodeId, cpl: usize, salt: u32) -> NodeId {
        let mut id = *local;
        let s = salt.to_be_bytes();
        // Scramble the bytes after the differing bit so ids are distinct.
        for i in 0..4 {
            id[28 + i] ^= s[i];
        }
        let byte = cpl / 8;
        let bit = 7 - (cpl % 8);
        id[byte] ^= 1 << bit;
        // Keep the prefix (bits before `cpl`) equal: only bits at or after
        // `cpl` were touched, provided cpl < 224.
        assert!(cpl < 224);
        id
    }

    fn random_id(rng: &mut impl Rng) -> NodeId {
        let mut id = [0u8; 32];
        rng.fill(&mut id);
        id
    }

    #[test]
    fn contact_is_compact() {
        assert_eq!(std::mem::size_of::<Contact>(), 56);
    }

    #[test]
    fn distance_and_cpl() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        b[0] = 0x80;
        assert_eq!(cpl(&a, &b), 0);
        b[0] = 0x01;
        assert_eq!(cpl(&a, &b), 7);
        b[0] = 0;
        b[31] = 1;
        assert_eq!(cpl(&a, &b), 255);
        assert_eq!(cpl(&a, &a), 256);
        assert_eq!(distance(&a, &b)[31], 1);
        assert_eq!(distance(&b, &b), [0u8; 32]);
    }

    #[test]
    fn own_id_is_ignored() {
        let local = [7u8; 32];
        let mut t = RoutingTable::new(local);
        assert_eq!(t.insert(local, addr(1), None), Insert::OwnId);
        assert!(t.is_empty());
        assert!(t.remove(&local).is_none());
    }

    #[test]
    fn add_update_moves_to_tail_and_keeps_to() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local);
        let a = id_with_cpl(&local, 3, 1);
        let b = id_with_cpl(&local, 3, 2);
        let to = Some(addr(99));
        assert_eq!(t.insert(a, addr(1), to), Insert::Added);
        assert_eq!(t.insert(b, addr(2), None), Insert::Added);
        assert_eq!(t.len(), 2);
        // a refreshed without `to`: keeps its old `to`, takes the new addr,
        // becomes most recently seen.
        assert_eq!(t.insert(a, addr(3), None), Insert::Updated);
        assert_eq!(t.len(), 2);
        let c = t.get(&a).unwrap();
        assert_eq!(c.addr, addr(3));
        assert_eq!(c.to, to);
        let order: Vec<NodeId> = t.iter().map(|c| c.id).collect();
        assert_eq!(order, vec![b, a]);
        assert_eq!(t.oldest(1)[0].id, b);
        // A new `to` replaces the old one.
        t.insert(a, addr(3), Some(addr(100)));
        assert_eq!(t.get(&a).unwrap().to, Some(addr(100)));
    }

    #[test]
    fn buckets_fill_by_cpl_and_full_bucket_offers_three_stale() {
        let local = [0x55u8; 32];
        let mut t = RoutingTable::new(local);
        // Fill cpl 0 with K contacts.
        for i in 0..K as u32 {
            assert_eq!(
                t.insert(id_with_cpl(&local, 0, i), addr(i), None),
                Insert::Added
            );
        }
        assert_eq!(t.bucket_count(), 1);
        // Other cpls still accept: the "own" side keeps splitting.
        for c in 1..40 {
            assert_eq!(
                t.insert(id_with_cpl(&local, c, 0), addr(1000 + c as u32), None),
                Insert::Added
            );
        }
        assert_eq!(t.bucket_count(), 40);
        assert_eq!(t.len(), K + 39);
        // Refresh contact 1 so that the least recently seen become 0, 2, 3.
        t.insert(id_with_cpl(&local, 0, 1), addr(1), None);
        let newcomer = id_with_cpl(&local, 0, 777);
        match t.insert(newcomer, addr(777), None) {
            Insert::Full { stale } => {
                let ids: Vec<NodeId> = stale.iter().map(|c| c.id).collect();
                assert_eq!(
                    ids,
                    vec![
                        id_with_cpl(&local, 0, 0),
                        id_with_cpl(&local, 0, 2),
                        id_with_cpl(&local, 0, 3)
                    ]
                );
            }
            other => panic!("expected Full, got {other:?}"),
        }
        assert!(t.get(&newcomer).is_none());
        assert_eq!(t.len(), K + 39);
        // Eviction: the stale one failed its ping.
        assert!(t.replace(&id_with_cpl(&local, 0, 0), newcomer, addr(777), None));
        assert!(t.get(&newcomer).is_some());
        assert!(t.get(&id_with_cpl(&local, 0, 0)).is_none());
        assert_eq!(t.len(), K + 39);
        // Replacing a contact that is already gone with the bucket full again
        // fails and adds nothing.
        let other = id_with_cpl(&local, 0, 888);
        assert!(!t.replace(&id_with_cpl(&local, 0, 0), other, addr(888), None));
        assert!(t.get(&other).is_none());
    }

    #[test]
    fn same_acceptance_as_split_only_own_bucket_tree() {
        // k-bucket 5.1.0 refuses a newcomer iff K contacts of its exact cpl
        // are known (see module doc). Check with random ids against that
        // rule computed by brute force.
        let mut rng = StdRng::seed_from_u64(7);
        let local = random_id(&mut rng);
        let mut t = RoutingTable::new(local);
        let mut per_cpl = [0usize; 257];
        for i in 0..5000u32 {
            let mut id = random_id(&mut rng);
            // Bias towards deep cpls so several deep buckets fill up too.
            let keep = rng.random_range(0..24usize);
            for b in 0..keep {
                let mask = 0x80u8 >> (b % 8);
                id[b / 8] = (id[b / 8] & !mask) | (local[b / 8] & mask);
            }
            let c = cpl(&local, &id);
            let r = t.insert(id, addr(i), None);
            if per_cpl[c] < K {
                assert_eq!(r, Insert::Added);
                per_cpl[c] += 1;
            } else {
                assert!(matches!(r, Insert::Full { ref stale } if stale.len() == PING_ON_FULL));
            }
        }
        assert_eq!(t.len(), per_cpl.iter().sum::<usize>());
        assert!(t.iter().all(|c| t.get(&c.id).is_some()));
    }

    #[test]
    fn remove_frees_empty_buckets() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local);
        let a = id_with_cpl(&local, 9, 1);
        t.insert(a, addr(1), None);
        assert_eq!(t.bucket_count(), 1);
        assert_eq!(t.remove(&a).unwrap().id, a);
        assert_eq!(t.bucket_count(), 0);
        assert!(t.is_empty());
        assert!(t.remove(&a).is_none());
    }

    #[test]
    fn closest_matches_brute_force() {
        let mut rng = StdRng::seed_from_u64(42);
        for round in 0..40 {
            let local = random_id(&mut rng);
            let mut t = RoutingTable::new(local);
            let count = rng.random_range(0..3000);
            for i in 0..count {
                let mut id = random_id(&mut rng);
                if round % 2 == 0 {
                    // Crowd the region near local so deep buckets exist.
                    let keep = rng.random_range(0..16usize);
                    id[..keep / 8].copy_from_slice(&local[..keep / 8]);
                }
                t.insert(id, addr(i), None);
            }
            let all: Vec<Contact> = t.iter().cloned().collect();
            for q in 0..20 {
                let target = match q {
                    0 => local,
                    1 => all.first().map(|c| c.id).unwrap_or(local),
                    _ => {
                        let mut x = random_id(&mut rng);
                        let keep = rng.random_range(0..20usize);
                        x[..keep / 8].copy_from_slice(&local[..keep / 8]);
                        x
                    }
                };
                let n = [0, 1, 3, 20, 50, 5000][q % 6];
                let mut brute = all.clone();
                brute.sort_by_key(|c| distance(&c.id, &target));
                brute.truncate(n);
                assert_eq!(t.closest(&target, n), brute, "round {round} q {q} n {n}");
            }
        }
    }

    #[test]
    fn oldest_and_recent_to() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local);
        // One contact per bucket so none is refused.
        let ids: Vec<NodeId> = (0..50).map(|i| id_with_cpl(&local, i, i as u32)).collect();
        for (i, id) in ids.iter().enumerate() {
            let to = if i % 3 == 0 {
                None
            } else {
                Some(addr(i as u32))
            };
            assert_eq!(t.insert(*id, addr(i as u32), to), Insert::Added);
        }
        let old: Vec<NodeId> = t.oldest(5).iter().map(|c| c.id).collect();
        assert_eq!(old, ids[..5].to_vec());
        // Refresh the oldest one: it becomes the newest.
        t.insert(ids[0], addr(0), Some(addr(1234)));
        assert_eq!(t.oldest(1)[0].id, ids[1]);
        let recent = t.recent_to(4);
        assert_eq!(recent, vec![addr(1234), addr(49), addr(47), addr(46)]);
        assert_eq!(t.recent_to(1000).len(), 50 - 16);
        assert!(t.oldest(0).is_empty());
        assert_eq!(t.oldest(1000).len(), 50);
    }

    #[test]
    fn a_contact_moves_only_after_a_round_trip() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local);
        let id = id_with_cpl(&local, 3, 1);
        assert_eq!(t.insert_unverified(id, addr(1)), Insert::Added);
        assert!(!t.verified_at(addr(1)));
        // A request from elsewhere with the same id changes nothing.
        assert_eq!(t.insert_unverified(id, addr(2)), Insert::Conflict);
        assert_eq!(t.get(&id).unwrap().addr, addr(1));
        // From the same address it refreshes, without `to`.
        assert_eq!(t.insert_unverified(id, addr(1)), Insert::Updated);
        assert_eq!(t.get(&id).unwrap().to, None);
        // A response (round trip) verifies, and may move it.
        assert_eq!(t.insert(id, addr(1), Some(addr(9))), Insert::Updated);
        assert!(t.verified_at(addr(1)));
        assert_eq!(t.insert(id, addr(2), None), Insert::Updated);
        assert_eq!(t.get(&id).unwrap().addr, addr(2));
    }

    #[test]
    fn one_subnet_gets_two_places_a_bucket_and_ten_a_table() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local);
        let same_net = |i: u32| SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, i as u8), 1000 + i as u16);
        // Three ids in one bucket from one /24: the third is refused.
        assert_eq!(t.insert(id_with_cpl(&local, 5, 1), same_net(1), None), Insert::Added);
        assert_eq!(t.insert(id_with_cpl(&local, 5, 2), same_net(2), None), Insert::Added);
        assert_eq!(t.insert(id_with_cpl(&local, 5, 3), same_net(3), None), Insert::SubnetFull);
        // Other buckets: up to 10 in the table.
        let mut added = 2;
        for cpl in 6..40 {
            if t.insert(id_with_cpl(&local, cpl, cpl as u32), same_net(cpl as u32), None) == Insert::Added {
                added += 1;
            }
        }
        assert_eq!(added, MAX_PER_SUBNET);
        // Another /24 is unaffected; loopback addresses are each their own.
        assert_eq!(t.insert(id_with_cpl(&local, 5, 4), addr(4), None), Insert::Added);
        let lo = |p: u16| SocketAddrV4::new(Ipv4Addr::LOCALHOST, p);
        for p in 0..5u16 {
            assert_eq!(t.insert(id_with_cpl(&local, 50, 100 + p as u32), lo(2000 + p), None), Insert::Added);
        }
        // Moving into a full /24 is refused too.
        let id = id_with_cpl(&local, 60, 7);
        t.insert(id, addr(60), None);
        assert_eq!(t.insert(id, same_net(60), None), Insert::SubnetFull);
        assert_eq!(t.get(&id).unwrap().addr, addr(60));
    }

    #[test]
    fn recent_to_counts_one_report_per_subnet() {
        let local = [0u8; 32];
        let mut t = RoutingTable::new(local);
        let me = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5000);
        // Five reporters in one /24 (two fit per bucket; spread over buckets).
        for i in 0..5u32 {
            let a = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, i as u8), 1000);
            t.insert(id_with_cpl(&local, 10 + i as usize, i), a, Some(me));
        }
        assert_eq!(t.recent_to(10).len(), 5);
        assert_eq!(t.recent_to_diverse(10), vec![me], "one vote for the /24");
        for i in 0..2u32 {
            t.insert(id_with_cpl(&local, 20 + i as usize, i), addr(i), Some(me));
        }
        assert_eq!(t.recent_to_diverse(10).len(), 3);
    }

    #[test]
    fn memory_of_200_contacts() {
        // 200 random contacts in a table whose buckets are otherwise full,
        // as in a large network: report the footprint from capacities.
        let mut rng = StdRng::seed_from_u64(9);
        let local = random_id(&mut rng);
        let mut t = RoutingTable::new(local);
        let mut i = 0;
        while t.len() < 200 {
            let mut id = random_id(&mut rng);
            let keep = rng.random_range(0..16usize);
            for b in 0..keep {
                let mask = 0x80u8 >> (b % 8);
                id[b / 8] = (id[b / 8] & !mask) | (local[b / 8] & mask);
            }
            t.insert(id, addr(i), Some(addr(i)));
            i += 1;
        }
        let bytes = t.memory_bytes();
        println!(
            "RoutingTable with {} contacts in {} buckets: {} bytes",
            t.len(),
            t.bucket_count(),
            bytes
        );
        // 200 * 56 bytes of contacts plus bucket headers.
        assert!(bytes <= 200 * 56 + 64 * 32 + 64, "{bytes}");
    }
}
