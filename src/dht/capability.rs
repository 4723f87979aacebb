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
//!
//! Bytes after the last candidate are ignored, so a later version can add
//! fields at the end.

use std::net::SocketAddrV4;

use super::nat::NatType;
use crate::wire::dht::{decode_peer, encode_peer, PEER_RECORD_LEN};

/// The record's first bytes: tell ours from a 32-byte key someone put in a
/// `_holepunch` target.
pub const CAPABILITY_MAGIC: [u8; 3] = *b"HSN";

/// The layout above.
pub const CAPABILITY_VERSION: u8 = 1;

/// Candidates carried: 4 keep the record within 32 bytes (6 + 4 × 6 = 30).
pub const MAX_CANDIDATES: usize = 4;

const HEADER: usize = 6;

/// What a peer tells about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub nat: NatType,
    /// Addresses worth punching: the public address DHT nodes agree on,
    /// then LAN addresses. At most [`MAX_CANDIDATES`].
    pub candidates: Vec<SocketAddrV4>,
}

impl Capability {
    /// The record; candidates past [`MAX_CANDIDATES`] are left out.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.candidates.len().min(MAX_CANDIDATES);
        let mut out = Vec::with_capacity(HEADER + n * PEER_RECORD_LEN);
        out.extend_from_slice(&CAPABILITY_MAGIC);
        out.push(CAPABILITY_VERSION);
        out.push(self.nat.code());
        out.push(n as u8);
        for c in &self.candidates[..n] {
            out.extend_from_slice(&encode_peer(*c));
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
        Some(Capability { nat: NatType::from_code(buf[4]), candidates })
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
        let c = Capability { nat: NatType::Random, candidates: vec![a(1, 4000), a(2, 5000)] };
        let bytes = c.encode();
        assert_eq!(&bytes[..6], &[b'H', b'S', b'N', 1, 3, 2]);
        assert_eq!(&bytes[6..12], &[203, 0, 113, 1, 0x0f, 0xa0]);
        assert_eq!(Capability::decode(&bytes), Some(c));
        let full = Capability { nat: NatType::Open, candidates: (0..9).map(|i| a(i, 1)).collect() };
        let bytes = full.encode();
        assert!(bytes.len() <= 32);
        assert_eq!(Capability::decode(&bytes).unwrap().candidates.len(), MAX_CANDIDATES);
    }

    #[test]
    fn anything_else_is_not_a_record() {
        assert_eq!(Capability::decode(&[]), None);
        assert_eq!(Capability::decode(&[0x5a; 32]), None, "a JS peer's 32-byte target");
        assert_eq!(Capability::decode(b"HSN\x02\x02\x00"), None, "another version");
        assert_eq!(Capability::decode(b"HSN\x01\x02\x01\x01\x02"), None, "count past the end");
        assert_eq!(Capability::decode(b"HSN\x01\x02\x05"), None, "more candidates than allowed");
        // Trailing bytes are a later version's additions.
        let mut b = Capability { nat: NatType::Consistent, candidates: vec![] }.encode();
        b.extend_from_slice(&[9, 9, 9]);
        assert_eq!(Capability::decode(&b).map(|c| c.nat), Some(NatType::Consistent));
    }
}
