//! The capability record: how two of our peers learn, through a referrer,
//! that the other is ours, its NAT class and its candidate addresses (not in
//! the 2019 stack; JS nodes never look at it).
//!
//! It rides in the `target` field of `_holepunch` messages. A dht-rpc 4
//! relay decodes the whole message, replaces `version`, `id`, `to` and
//! `value`, and encodes it again (dht-rpc 4.9.6 `index.js` `_onholepunch`):
//! unknown protobuf fields are lost on the way, `target` is carried byte for
//! byte and is never checked for `_holepunch`. A JS peer that receives the
//! relayed punch answers it as always and ignores `target`.
//!
//! Layout (at most 32 bytes, the size of a usual target):
//!
//! | bytes | meaning |
//! |---|---|
//! | 3 | magic `"HSN"` |
//! | 1 | version, [`CAPABILITY_VERSION`] |
//! | 1 | NAT class code (`NatType::code`) |
//! | 1 | candidate count n, at most [`MAX_CANDIDATES`] |
//! | 6 × n | candidate addresses, 6-byte peer records (wire-dht.md §4.1) |
//! | 0, 5 or 17 | a [`Check`]: kind (1 challenge, 2 echo), then a 4-byte nonce, big-endian; or kind 3 (relay), then a 16-byte relay nonce |
//!
//! Other bytes after the last candidate are ignored, so a later version can
//! add fields at the end.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::nat::NatType;
use crate::wire::dht::{decode_peer, encode_peer, MAX_RELAYED_TARGET, PEER_RECORD_LEN};

/// The record's first bytes: tell ours from a 32-byte key someone put in a
/// `_holepunch` target.
pub const CAPABILITY_MAGIC: [u8; 3] = *b"HSN";

/// The layout above.
pub const CAPABILITY_VERSION: u8 = 1;

/// Candidates carried: 4 keep the record within 32 bytes (6 + 4 × 6 = 30).
pub const MAX_CANDIDATES: usize = 4;

const HEADER: usize = 6;

/// A [`Check`] on the wire: its kind byte and nonce.
const CHECK_LEN: usize = 5;

/// A relay nonce: 16 random bytes; both peers take the relay session's
/// token from it (`relay::rendezvous::token_from_nonce`).
pub const RELAY_NONCE_LEN: usize = 16;

/// [`Check::Relay`] on the wire: its kind byte and nonce.
const RELAY_LEN: usize = 1 + RELAY_NONCE_LEN;

/// A round trip through the referrer that proves a peer's address before
/// anything costly is sent there (birthday punching, `swarm::birthday_io`).
///
/// A relayed punch's origin is only what the referrer saw, and a UDP source
/// is easy to forge. A peer that gets a punch it cannot trust yet answers
/// through the same referrer with a `Challenge`; only the holder of that
/// address sees it, and its next punch carries the nonce back as an `Echo`.
///
/// The same slot carries [`Check::Relay`]: when both NATs are random, the
/// punched peer draws a nonce and punches back with it, and both join a
/// relay session whose token is derived from it (`swarm::relay_io`). The
/// nonce travels only through the referrer, so only the two peers and the
/// referrer know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Challenge(u32),
    Echo(u32),
    Relay([u8; RELAY_NONCE_LEN]),
}

impl Check {
    fn wire_len(&self) -> usize {
        match self {
            Check::Relay(_) => RELAY_LEN,
            _ => CHECK_LEN,
        }
    }
}

// A relay of ours carries a target of at most this many bytes.
const _: () = assert!(HEADER + MAX_CANDIDATES * PEER_RECORD_LEN <= MAX_RELAYED_TARGET);

/// What a peer tells about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub nat: NatType,
    /// Addresses worth punching: the public address DHT nodes agree on,
    /// then LAN addresses. At most [`MAX_CANDIDATES`].
    pub candidates: Vec<SocketAddrV4>,
    /// A challenge or its echo; with one, at most 3 candidates fit.
    pub check: Option<Check>,
}

impl Capability {
    /// The record; candidates past [`MAX_CANDIDATES`] are left out.
    pub fn encode(&self) -> Vec<u8> {
        let room = match &self.check {
            Some(c) => (MAX_RELAYED_TARGET - HEADER - c.wire_len()) / PEER_RECORD_LEN,
            None => MAX_CANDIDATES,
        };
        let n = self.candidates.len().min(MAX_CANDIDATES).min(room);
        let mut out = Vec::with_capacity(HEADER + n * PEER_RECORD_LEN + CHECK_LEN);
        out.extend_from_slice(&CAPABILITY_MAGIC);
        out.push(CAPABILITY_VERSION);
        out.push(self.nat.code());
        out.push(n as u8);
        for c in &self.candidates[..n] {
            out.extend_from_slice(&encode_peer(*c));
        }
        match self.check {
            Some(Check::Challenge(n)) => {
                out.push(1);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Some(Check::Echo(n)) => {
                out.push(2);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Some(Check::Relay(nonce)) => {
                out.push(3);
                out.extend_from_slice(&nonce);
            }
            None => {}
        }
        out
    }

    /// A record from a `target`, or None when it is not one of ours (a JS
    /// peer's target, an older or newer magic, a short or lying count).
    pub fn decode(buf: &[u8]) -> Option<Capability> {
        if buf.len() < HEADER || buf[..3] != CAPABILITY_MAGIC || buf[3] != CAPABILITY_VERSION {
            return None;
        }
        let n = buf[5] as usize;
        if n > MAX_CANDIDATES || buf.len() < HEADER + n * PEER_RECORD_LEN {
            return None;
        }
        let candidates = buf[HEADER..HEADER + n * PEER_RECORD_LEN]
            .chunks_exact(PEER_RECORD_LEN)
            .map(decode_peer)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let rest = &buf[HEADER + n * PEER_RECORD_LEN..];
        let check = match rest {
            [3, nonce @ ..] if nonce.len() >= RELAY_NONCE_LEN => {
                let mut n = [0u8; RELAY_NONCE_LEN];
                n.copy_from_slice(&nonce[..RELAY_NONCE_LEN]);
                Some(Check::Relay(n))
            }
            [kind, a, b, c, d, ..] => {
                let nonce = u32::from_be_bytes([*a, *b, *c, *d]);
                match kind {
                    1 => Some(Check::Challenge(nonce)),
                    2 => Some(Check::Echo(nonce)),
                    _ => None,
                }
            }
            _ => None,
        };
        Some(Capability { nat: NatType::from_code(buf[4]), candidates, check })
    }
}

/// Peers whose records we keep at once: a bound, since anyone who can get
/// a punch relayed to us can make us learn a record.
pub const CACHE_CAP: usize = 256;

/// How long a learned record holds: NAT mappings and classes change.
pub const CACHE_TTL: Duration = Duration::from_secs(10 * 60);

/// Records learned from punches, by the peer's address (the `from` of a
/// relayed `_holepunch`, or the source of a punch answer). Bounded to
/// [`CACHE_CAP`]; past it the oldest record goes. A record is only a label
/// on an address: nothing we send depends on it, so a forged one costs a
/// wrong label at worst, and flushing the map only loses labels.
#[derive(Debug, Default)]
pub struct CapabilityCache {
    map: HashMap<SocketAddrV4, (Capability, Instant)>,
    evicted: u64,
}

impl CapabilityCache {
    pub fn insert(&mut self, now: Instant, addr: SocketAddrV4, cap: Capability) {
        if !self.map.contains_key(&addr) && self.map.len() >= CACHE_CAP {
            self.map.retain(|_, (_, at)| now.saturating_duration_since(*at) < CACHE_TTL);
            if self.map.len() >= CACHE_CAP {
                if let Some(oldest) = self.map.iter().min_by_key(|(_, (_, at))| *at).map(|(a, _)| *a) {
                    self.map.remove(&oldest);
                    self.evicted += 1;
                }
            }
        }
        self.map.insert(addr, (cap, now));
    }

    /// The record `addr` sent us within [`CACHE_TTL`].
    pub fn get(&self, now: Instant, addr: SocketAddrV4) -> Option<&Capability> {
        self.map.get(&addr).filter(|(_, at)| now.saturating_duration_since(*at) < CACHE_TTL).map(|(c, _)| c)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records dropped to stay within [`CACHE_CAP`].
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(h: u8, p: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, h), p)
    }

    #[test]
    fn round_trips_and_fits_a_target() {
        let c = Capability { nat: NatType::Random, candidates: vec![a(1, 4000), a(2, 5000)], check: None };
        let bytes = c.encode();
        assert_eq!(&bytes[..6], &[b'H', b'S', b'N', 1, 3, 2]);
        assert_eq!(&bytes[6..12], &[203, 0, 113, 1, 0x0f, 0xa0]);
        assert_eq!(Capability::decode(&bytes), Some(c));
        let full = Capability { nat: NatType::Open, candidates: (0..9).map(|i| a(i, 1)).collect(), check: None };
        let bytes = full.encode();
        assert!(bytes.len() <= MAX_RELAYED_TARGET, "a relay of ours carries it whole");
        assert_eq!(Capability::decode(&bytes).unwrap().candidates.len(), MAX_CANDIDATES);
    }

    #[test]
    fn a_check_rides_after_the_candidates_and_still_fits_a_target() {
        for check in [Check::Challenge(0xdead_beef), Check::Echo(7)] {
            let c = Capability { nat: NatType::Consistent, candidates: (0..9).map(|i| a(i, 1)).collect(), check: Some(check) };
            let bytes = c.encode();
            assert!(bytes.len() <= MAX_RELAYED_TARGET, "{} bytes", bytes.len());
            let back = Capability::decode(&bytes).unwrap();
            assert_eq!((back.check, back.candidates.len()), (Some(check), 3));
        }
        let bytes = Capability { nat: NatType::Random, candidates: vec![], check: Some(Check::Challenge(0x0102_0304)) }.encode();
        assert_eq!(bytes, b"HSN\x01\x03\x00\x01\x01\x02\x03\x04");
        // An unknown kind, or too few bytes for one, is no check.
        assert_eq!(Capability::decode(b"HSN\x01\x03\x00\x09\x01\x02\x03\x04").unwrap().check, None);
        assert_eq!(Capability::decode(b"HSN\x01\x03\x00\x02\x01\x02").unwrap().check, None);
    }

    #[test]
    fn a_relay_nonce_takes_the_check_slot_with_one_candidate() {
        let nonce = *b"0123456789abcdef";
        let c = Capability { nat: NatType::Random, candidates: (0..9).map(|i| a(i, 1)).collect(), check: Some(Check::Relay(nonce)) };
        let bytes = c.encode();
        assert_eq!(bytes.len(), 6 + 6 + 17);
        assert!(bytes.len() <= MAX_RELAYED_TARGET);
        let back = Capability::decode(&bytes).unwrap();
        assert_eq!((back.check, back.candidates.len()), (Some(Check::Relay(nonce)), 1));
        let bare = Capability { nat: NatType::Random, candidates: vec![], check: Some(Check::Relay(nonce)) }.encode();
        assert_eq!(bare, b"HSN\x01\x03\x00\x030123456789abcdef");
        // A nonce cut short is no check at all.
        assert_eq!(Capability::decode(&bare[..bare.len() - 1]).unwrap().check, None);
    }

    #[test]
    fn anything_else_is_not_a_record() {
        assert_eq!(Capability::decode(&[]), None);
        assert_eq!(Capability::decode(&[0x5a; 32]), None, "a JS peer's 32-byte target");
        assert_eq!(Capability::decode(b"HSN\x02\x02\x00"), None, "another version");
        assert_eq!(Capability::decode(b"HSN\x01\x02\x01\x01\x02"), None, "count past the end");
        assert_eq!(Capability::decode(b"HSN\x01\x02\x05"), None, "more candidates than allowed");
        // Trailing bytes are a later version's additions.
        let mut b = Capability { nat: NatType::Consistent, candidates: vec![], check: None }.encode();
        b.extend_from_slice(&[9, 9, 9]);
        assert_eq!(Capability::decode(&b).map(|c| c.nat), Some(NatType::Consistent));
    }

    #[test]
    fn the_cache_is_bounded_and_forgets() {
        let t0 = Instant::now();
        let mut c = CapabilityCache::default();
        let cap = |n| Capability { nat: NatType::from_code(n), candidates: vec![], check: None };
        for i in 0..(CACHE_CAP as u32 + 100) {
            let addr = SocketAddrV4::new(std::net::Ipv4Addr::from(0x0a00_0000 + i), 1);
            c.insert(t0 + Duration::from_millis(i as u64), addr, cap(2));
        }
        assert_eq!(c.len(), CACHE_CAP);
        assert_eq!(c.evicted(), 100);
        // The oldest went first.
        let first = SocketAddrV4::new(std::net::Ipv4Addr::from(0x0a00_0000), 1);
        let last = SocketAddrV4::new(std::net::Ipv4Addr::from(0x0a00_0000 + CACHE_CAP as u32 + 99), 1);
        let now = t0 + Duration::from_secs(1);
        assert!(c.get(now, first).is_none());
        assert_eq!(c.get(now, last).map(|c| c.nat), Some(NatType::Consistent));
        // A newer record for a known address replaces it without evicting.
        c.insert(now, last, cap(3));
        assert_eq!((c.len(), c.evicted()), (CACHE_CAP, 100));
        assert_eq!(c.get(now, last).map(|c| c.nat), Some(NatType::Random));
        assert!(c.get(now + CACHE_TTL, last).is_none(), "past the TTL");
        // Expired records make room before anything fresh is evicted.
        let later = now + CACHE_TTL + Duration::from_secs(1);
        c.insert(later, a(1, 1), cap(1));
        assert_eq!(c.len(), 1);
        assert_eq!(c.evicted(), 100);
    }
}
