//! The bounded store behind `immutable-store` and `mutable-store` (notes
//! `dht4-stores.md` §5).
//!
//! The reference keeps both kinds in one `hashlru(5000)`: two generations,
//! where inserting a key new to the current generation counts towards
//! 5000, and on reaching it the current generation becomes the old one and
//! the previous old one is dropped whole; a read of an old entry copies it
//! forward and counts as an insert. It holds 5000 to 9999 entries, and
//! anyone who can send 5000 valid puts (trivial for immutable values)
//! flushes everyone's records in two rotations.
//!
//! Here instead:
//!
//! - one recency order (every put and every read restamps), and a hard cap
//!   of [`MAX_VALUES`] entries;
//! - quotas per writer: a source IPv4 holds at most [`MAX_VALUES_PER_IP`]
//!   entries and its /24 at most [`MAX_VALUES_PER_SUBNET`]. Over a quota,
//!   the writer's new entry replaces its own (or its /24's) least recently
//!   used one, so a writer only ever displaces itself;
//! - when the store is full, the entry that goes is the least recently used
//!   one of the /24 that holds the most entries. A party that wants to
//!   evict an honest single record first has to be no bigger than it, from
//!   more /24s than the store has room for.
//!
//! Memory: a full store of the largest records (value 1000, signature 128
//! and salt 64 bytes, each written from its own /24 so that the indexes
//! are at their largest too) takes 9.7 MB of heap, 6.0 MB of it payload;
//! the bound is [`HEAP_BOUND`], 12.5 MB, asserted by
//! `tests/value_store_memory.rs`.
//!
//! The writer of an entry is the source IP of the UPDATE that last changed
//! it (a token-verified address). Re-putting identical bytes refreshes the
//! entry but keeps its writer: otherwise a flooder could re-put other
//! people's (public) immutable values, own them, and evict them with its
//! own churn. Like `peer_store`, nothing expires with time: the reference
//! has no TTL for values either.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use crate::wire::dht::Mutable;

/// Entries in the store: hashlru's `max` as @hyperswarm/dht sets it
/// (`maxValues`, default 5000; notes §5). The reference may hold up to
/// twice this; we hold at most this. An entry carries at most 1,192 bytes
/// of payload (value 1000, signature 128, salt 64) and takes ~1.9 KB of
/// heap with its key and index entries: see [`HEAP_BOUND`].
pub const MAX_VALUES: usize = 5000;

/// Heap a full store may take, in bytes requested from the allocator:
/// 12.5 MB. Measured (`tests/value_store_memory.rs`, which asserts this
/// bound): [`MAX_VALUES`] maximum-size mutable records take 9.7 MB in a
/// bare store and 10.0–10.1 MB above a fresh `Dht` node filled over the
/// wire (its per-source request tables included), so the bound leaves
/// about 25% headroom. malloc's own per-block overhead (~36,000 blocks)
/// adds about 0.6 MB of resident memory on top.
pub const HEAP_BOUND: usize = 12_500_000;

/// Entries one source IPv4 may hold. Not in the reference. 256 is 5% of
/// [`MAX_VALUES`]: a host publishes a handful of records, and a flood from
/// one address only churns its own 256.
pub const MAX_VALUES_PER_IP: usize = 256;

/// Entries one /24 may hold. Not in the reference. 1024 (about a fifth of
/// [`MAX_VALUES`]): four busy hosts of one site, and a single site cannot
/// fill the store.
pub const MAX_VALUES_PER_SUBNET: usize = 1024;

/// Where a value lives: the reference's string keys `'i' + hex(hash)` and
/// `'m' + hex(pk) [+ hex(salt)]`, as bytes (a kind byte, then the raw
/// target and salt).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(Box<[u8]>);

impl StoreKey {
    /// An immutable value's slot.
    pub fn immutable(hash: &[u8; 32]) -> Self {
        StoreKey([&[b'i'][..], hash].concat().into_boxed_slice())
    }

    /// A mutable record's slot; an empty salt is the unsalted slot.
    pub fn mutable(public_key: &[u8; 32], salt: &[u8]) -> Self {
        StoreKey([&[b'm'][..], public_key, salt].concat().into_boxed_slice())
    }
}

/// A stored `mutable-store` record, as it was put (notes §4.4 step 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutableRecord {
    pub value: Vec<u8>,
    /// As received: 64 bytes, or more when the sender added some.
    pub signature: Vec<u8>,
    pub seq: u64,
    /// `None` and `Some(empty)` are kept apart: the proof echoes either.
    pub salt: Option<Vec<u8>>,
}

impl MutableRecord {
    /// The record as a get reply or a proof carries it: seq always written.
    pub fn to_wire(&self) -> Mutable {
        Mutable { value: Some(self.value.clone()), signature: Some(self.signature.clone()), seq: Some(self.seq), salt: self.salt.clone() }
    }
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Immutable(Vec<u8>),
    Mutable(MutableRecord),
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Immutable(v)
    }
}

impl From<MutableRecord> for Value {
    fn from(r: MutableRecord) -> Self {
        Value::Mutable(r)
    }
}

/// What a store command's handler decided; the node turns it into a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An UPDATE was stored: success reply, no value.
    Stored,
    /// Success reply with this value (or none).
    Answer(Option<Vec<u8>>),
    /// Error reply: the error text and, for seq errors, the stored record
    /// (encoded) as proof. No token.
    Rejected(&'static str, Option<Vec<u8>>),
    /// Input on which the reference node crashes: no reply at all.
    Dropped(&'static str),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    owner: u32,
    stamp: u64,
}

/// The store. See the module docs for its bounds.
#[derive(Debug, Default)]
pub struct ValueStore {
    entries: HashMap<StoreKey, Entry>,
    /// Recency: stamp → key, oldest first.
    order: BTreeMap<u64, StoreKey>,
    /// Stamps of the entries each writer IP holds.
    per_ip: HashMap<u32, BTreeSet<u64>>,
    /// Stamps of the entries each writer /24 holds.
    per_subnet: HashMap<u32, BTreeSet<u64>>,
    next_stamp: u64,
    evicted: u64,
}

fn subnet(ip: u32) -> u32 {
    ip & 0xffff_ff00
}

impl ValueStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries removed to make room, over the life of the store.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Entries currently written by `ip`.
    pub fn values_of(&self, ip: Ipv4Addr) -> usize {
        self.per_ip.get(&u32::from(ip)).map_or(0, BTreeSet::len)
    }

    /// Whether `key` is stored, without touching its recency.
    pub fn contains(&self, key: &StoreKey) -> bool {
        self.entries.contains_key(key)
    }

    /// A read: returns the value and makes it the most recently used, as a
    /// hashlru `get` does.
    pub fn get(&mut self, key: &StoreKey) -> Option<&Value> {
        let old = self.entries.get(key)?.stamp;
        let stamp = self.stamp();
        let entry = self.entries.get_mut(key)?;
        entry.stamp = stamp;
        let owner = entry.owner;
        if let Some(k) = self.order.remove(&old) {
            self.order.insert(stamp, k);
        }
        for set in [self.per_ip.get_mut(&owner), self.per_subnet.get_mut(&subnet(owner))].into_iter().flatten() {
            set.remove(&old);
            set.insert(stamp);
        }
        self.entries.get(key).map(|e| &e.value)
    }

    pub fn get_immutable(&mut self, key: &StoreKey) -> Option<&[u8]> {
        match self.get(key)? {
            Value::Immutable(v) => Some(v),
            Value::Mutable(_) => None,
        }
    }

    pub fn get_mutable(&mut self, key: &StoreKey) -> Option<&MutableRecord> {
        match self.get(key)? {
            Value::Mutable(r) => Some(r),
            Value::Immutable(_) => None,
        }
    }

    /// Stores `value` at `key` for the writer `owner`, replacing what was
    /// there, evicting as the module docs say to stay within every bound.
    pub fn put(&mut self, key: StoreKey, value: Value, owner: Ipv4Addr) {
        let owner = u32::from(owner);
        // The same bytes again (anyone can re-put a public immutable value):
        // a refresh, not a new writer. Else a flooder could re-put other
        // people's values and then churn them out within its own quota.
        if self.entries.get(&key).is_some_and(|e| e.value == value) {
            self.get(&key);
            return;
        }
        if let Some(old) = self.entries.get(&key).map(|e| e.stamp) {
            self.remove_stamp(old);
        }
        let victim = if self.per_ip.get(&owner).is_some_and(|s| s.len() >= MAX_VALUES_PER_IP) {
            self.per_ip.get(&owner).and_then(|s| s.first().copied())
        } else if self.per_subnet.get(&subnet(owner)).is_some_and(|s| s.len() >= MAX_VALUES_PER_SUBNET) {
            self.per_subnet.get(&subnet(owner)).and_then(|s| s.first().copied())
        } else if self.entries.len() >= MAX_VALUES {
            // The largest /24 pays; among equals, the one whose oldest entry
            // is oldest.
            self.per_subnet.values().filter_map(|s| Some((s.len(), std::cmp::Reverse(*s.first()?)))).max().map(|(_, r)| r.0)
        } else {
            None
        };
        if let Some(stamp) = victim {
            self.remove_stamp(stamp);
            self.evicted += 1;
        }
        let stamp = self.stamp();
        self.order.insert(stamp, key.clone());
        self.per_ip.entry(owner).or_default().insert(stamp);
        self.per_subnet.entry(subnet(owner)).or_default().insert(stamp);
        self.entries.insert(key, Entry { value, owner, stamp });
    }

    fn remove_stamp(&mut self, stamp: u64) {
        let Some(key) = self.order.remove(&stamp) else { return };
        let Some(entry) = self.entries.remove(&key) else { return };
        for (map, k) in [(&mut self.per_ip, entry.owner), (&mut self.per_subnet, subnet(entry.owner))] {
            if let Some(set) = map.get_mut(&k) {
                set.remove(&stamp);
                if set.is_empty() {
                    map.remove(&k);
                }
            }
        }
    }

    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> StoreKey {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&n.to_be_bytes());
        StoreKey::immutable(&h)
    }

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    /// Internal indexes agree with the entries.
    fn check(s: &ValueStore) {
        assert_eq!(s.order.len(), s.entries.len());
        assert_eq!(s.per_ip.values().map(BTreeSet::len).sum::<usize>(), s.entries.len());
        assert_eq!(s.per_subnet.values().map(BTreeSet::len).sum::<usize>(), s.entries.len());
        assert!(s.entries.len() <= MAX_VALUES);
    }

    #[test]
    fn per_ip_quota_evicts_only_the_writers_own_oldest() {
        let mut s = ValueStore::new();
        s.put(key(0), vec![0].into(), ip(10, 0, 0, 1));
        for n in 1..=(MAX_VALUES_PER_IP as u32 + 10) {
            s.put(key(n), vec![1].into(), ip(10, 0, 0, 2));
        }
        check(&s);
        assert_eq!(s.values_of(ip(10, 0, 0, 2)), MAX_VALUES_PER_IP);
        assert!(s.contains(&key(0)), "another writer's entry survives");
        assert!(!s.contains(&key(1)), "the flooder's oldest went");
        assert!(s.contains(&key(MAX_VALUES_PER_IP as u32 + 10)));
        assert_eq!(s.evicted(), 10);
    }

    #[test]
    fn per_subnet_quota_evicts_only_that_subnet() {
        let mut s = ValueStore::new();
        s.put(key(0), vec![0].into(), ip(10, 0, 1, 1));
        let mut n = 1;
        for host in 1..=6u8 {
            for _ in 0..MAX_VALUES_PER_IP {
                s.put(key(n), vec![1].into(), ip(10, 0, 0, host));
                n += 1;
            }
        }
        check(&s);
        let in_subnet: usize = (1..=6u8).map(|h| s.values_of(ip(10, 0, 0, h))).sum();
        assert_eq!(in_subnet, MAX_VALUES_PER_SUBNET);
        assert!(s.contains(&key(0)), "the neighbouring /24 is untouched");
        assert_eq!(s.evicted() as usize, 6 * MAX_VALUES_PER_IP - MAX_VALUES_PER_SUBNET);
    }

    #[test]
    fn full_store_evicts_from_the_largest_subnet_first() {
        let mut s = ValueStore::new();
        // An honest single record, then a flood from many /24s.
        s.put(key(0), vec![0].into(), ip(192, 0, 2, 1));
        let mut n = 1;
        'fill: for net in 0..=255u8 {
            for host in 1..=4u8 {
                for _ in 0..MAX_VALUES_PER_IP {
                    if n > MAX_VALUES as u32 + 500 {
                        break 'fill;
                    }
                    s.put(key(n), vec![1].into(), ip(10, 1, net, host));
                    n += 1;
                }
            }
        }
        check(&s);
        assert_eq!(s.len(), MAX_VALUES);
        assert!(s.contains(&key(0)), "a party with one entry is evicted last");
        assert!(s.evicted() >= 500);
    }

    #[test]
    fn an_identical_re_put_keeps_the_writer() {
        let mut s = ValueStore::new();
        s.put(key(0), vec![0].into(), ip(192, 0, 2, 1));
        let flooder = ip(10, 0, 0, 2);
        s.put(key(0), vec![0].into(), flooder);
        assert_eq!((s.values_of(ip(192, 0, 2, 1)), s.values_of(flooder)), (1, 0));
        for n in 1..=(MAX_VALUES_PER_IP as u32 + 10) {
            s.put(key(n), vec![1].into(), flooder);
        }
        assert!(s.contains(&key(0)), "the flooder's churn does not reach it");
        // Other bytes under the key do change the writer.
        s.put(key(0), vec![2].into(), flooder);
        assert_eq!(s.values_of(ip(192, 0, 2, 1)), 0);
        check(&s);
    }

    #[test]
    fn reads_refresh_and_overwrites_do_not_count_twice() {
        let mut s = ValueStore::new();
        let w = ip(10, 0, 0, 9);
        for n in 0..MAX_VALUES_PER_IP as u32 {
            s.put(key(n), vec![1].into(), w);
        }
        // Read the oldest: now the newest; re-put another: replaces in place.
        assert!(s.get(&key(0)).is_some());
        s.put(key(5), vec![2].into(), w);
        assert_eq!(s.values_of(w), MAX_VALUES_PER_IP);
        assert_eq!(s.evicted(), 0);
        s.put(key(9999), vec![3].into(), w);
        assert!(s.contains(&key(0)), "read entry was refreshed");
        assert!(!s.contains(&key(1)), "the least recently used went");
        assert_eq!(s.get_immutable(&key(5)), Some(&[2u8][..]));
        check(&s);
    }
}
