//! `mutable-store`: signed, sequenced records under an ed25519 public key
//! (@hyperswarm/dht 4.0.1; notes `dht4-stores.md` §4).
//!
//! The rules a storing node applies, as pure functions over a
//! [`ValueStore`]: what a QUERY answers, what an UPDATE stores or why it is
//! refused. The node (`node.rs`) turns the [`Outcome`] into a reply.
//!
//! Where the reference node crashes on hostile input (an uncaught throw in
//! its UDP handler), we drop the request without a reply: that is all a JS
//! client could observe of a crashed node, and it costs us nothing.

use std::net::Ipv4Addr;

use ed25519_dalek::{Signature, VerifyingKey};

use super::value_store::{MutableRecord, Outcome, StoreKey, ValueStore};
use crate::wire::dht::Mutable;

/// Largest record value: `VALUE_MAX_SIZE` in @hyperswarm/dht (notes §4.8).
/// The reference asserts it while building the signable, so a larger value
/// crashes a JS node; we drop it.
pub const MAX_VALUE_LEN: usize = 1000;

/// Largest salt: hypersign's `signable` assertion (notes §4.8). Larger
/// crashes a JS node; we drop it.
pub const MAX_SALT_LEN: usize = 64;

/// An ed25519 signature. libsodium asserts at least this many bytes and
/// verifies the first 64 (notes §4.3).
pub const SIGNATURE_LEN: usize = 64;

/// Longest signature field we accept. Not in the reference, which stores
/// whatever follows the first 64 bytes: 64 bytes of slack keep the one
/// known oddity (a valid signature with trailing bytes) working while a
/// record stays small; longer ones get `ERR_INVALID_INPUT`.
pub const MAX_SIGNATURE_LEN: usize = 2 * SIGNATURE_LEN;

/// Largest seq we accept: JS's `Number.MAX_SAFE_INTEGER`. Above it a JS
/// node's varint decoder rounds, so the signable it checks is not the one
/// that was signed (notes §4.9); we answer `ERR_INVALID_INPUT` instead of
/// guessing which rounding it did.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Error text of a bad signature, a hash mismatch or input we refuse
/// (notes §7; `42 11` on the wire).
pub const ERR_INVALID_INPUT: &str = "ERR_INVALID_INPUT";
/// Same seq as the stored record with another value (notes §4.4 step 6).
pub const ERR_INVALID_SEQ: &str = "ERR_INVALID_SEQ";
/// Seq not above the stored record's (notes §4.4 step 6).
pub const ERR_SEQ_MUST_EXCEED_CURRENT: &str = "ERR_SEQ_MUST_EXCEED_CURRENT";

/// The bytes an ed25519 signature covers (notes §4.2): BEP44 bencode
/// fragments. A present salt, even an empty one, adds `4:salt<len>:<salt>`.
pub fn signable(value: &[u8], seq: u64, salt: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + salt.map_or(0, <[u8]>::len) + 40);
    if let Some(salt) = salt {
        out.extend_from_slice(format!("4:salt{}:", salt.len()).as_bytes());
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(format!("3:seqi{seq}e1:v{}:", value.len()).as_bytes());
    out.extend_from_slice(value);
    out
}

/// ed25519 verification as libsodium 1.0.18's `crypto_sign_verify_detached`
/// does it for @hyperswarm/dht: the first 64 bytes of `signature` (shorter
/// is false here; the caller drops such requests before), a 32-byte key.
///
/// `verify_strict` rejects a non-canonical S, a small-order R or A, and
/// compares the encoding of R with the cofactorless equation, as libsodium
/// does. It accepts a public key whose y is not reduced mod p, which
/// libsodium rejects, so that check is added here (libsodium's
/// `ge25519_is_canonical`). Known difference: none found. 137 edge-case
/// vectors judged by the reference's libsodium (small-order R and keys,
/// mixed-order keys, S + L, non-canonical keys, random keys) get the same
/// verdict here (`tests/golden_dht_stores.rs`); plain `verify` would
/// accept a small-order R that libsodium refuses.
pub fn verify(signature: &[u8], msg: &[u8], public_key: &[u8]) -> bool {
    let Some(sig) = signature.get(..SIGNATURE_LEN).and_then(|s| <[u8; 64]>::try_from(s).ok()) else { return false };
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else { return false };
    if !is_canonical_point(&pk) {
        return false;
    }
    let Ok(key) = VerifyingKey::from_bytes(&pk) else { return false };
    key.verify_strict(msg, &Signature::from_bytes(&sig)).is_ok()
}

/// Whether the y coordinate of an encoded point is below p = 2^255 - 19
/// (libsodium's `ge25519_is_canonical`; the sign bit is ignored).
fn is_canonical_point(p: &[u8; 32]) -> bool {
    let top = p[31] & 0x7f == 0x7f;
    let middle = p[1..31].iter().all(|&b| b == 0xff);
    !(top && middle && p[0] >= 0xed)
}

/// Which seq rule an UPDATE breaks against the stored record, if any
/// (the reference's `maybeSeqError`): the same seq with other bytes is
/// `ERR_INVALID_SEQ`; any seq not above the stored one, the identical
/// record included, is `ERR_SEQ_MUST_EXCEED_CURRENT`.
pub fn seq_error(seq: u64, value: &[u8], stored: &MutableRecord) -> Option<&'static str> {
    if seq == stored.seq && value != stored.value.as_slice() {
        Some(ERR_INVALID_SEQ)
    } else if seq <= stored.seq {
        Some(ERR_SEQ_MUST_EXCEED_CURRENT)
    } else {
        None
    }
}

/// The slot of a record: the key and the salt when it is non-empty. An
/// empty salt shares the unsalted slot but signs differently, as in the
/// reference (notes §4.1, §8 item 6).
fn slot(target: &[u8; 32], salt: Option<&[u8]>) -> StoreKey {
    StoreKey::mutable(target, salt.unwrap_or(&[]))
}

/// QUERY `mutable-store` (notes §4.6): the stored record when its seq is at
/// least the one asked for. `value` is the request's `Message.value`.
pub fn on_query(store: &mut ValueStore, target: &[u8; 32], value: Option<&[u8]>) -> Outcome {
    // The reference destructures a missing value and crashes.
    let Some(value) = value else { return Outcome::Dropped("mutable query without value") };
    let Ok(ask) = Mutable::decode(value) else { return Outcome::Dropped("undecodable mutable query") };
    let seq = ask.seq.unwrap_or(0);
    let found = store.get_mutable(&slot(target, ask.salt.as_deref())).filter(|r| r.seq >= seq).map(|r| r.to_wire().encode());
    Outcome::Answer(found)
}

/// UPDATE `mutable-store` (notes §4.4), in the reference's order, except
/// that a seq error is answered once, with the stored record as proof, and
/// does not overwrite it (the reference overwrites and then sends a second,
/// success reply: notes §8 item 1).
pub fn on_update(store: &mut ValueStore, owner: Ipv4Addr, target: &[u8], value: Option<&[u8]>) -> Outcome {
    let Some(value) = value else { return Outcome::Dropped("mutable update without value") };
    let Ok(m) = Mutable::decode(value) else { return Outcome::Dropped("undecodable mutable update") };
    // A record without value or signature: the reference answers success
    // and stores nothing (its tests rely on the answer).
    let (Some(value), Some(signature)) = (m.value, m.signature) else { return Outcome::Answer(None) };
    // Each of these throws inside the reference's handler (notes §4.4
    // steps 4 and 5): the JS node dies without answering.
    if value.len() > MAX_VALUE_LEN {
        return Outcome::Dropped("mutable value over 1000 bytes");
    }
    if m.salt.as_ref().is_some_and(|s| s.len() > MAX_SALT_LEN) {
        return Outcome::Dropped("salt over 64 bytes");
    }
    if signature.len() < SIGNATURE_LEN {
        return Outcome::Dropped("signature under 64 bytes");
    }
    let Ok(target) = <[u8; 32]>::try_from(target) else { return Outcome::Dropped("public key not 32 bytes") };
    let seq = m.seq.unwrap_or(0);
    if seq > MAX_SEQ || signature.len() > MAX_SIGNATURE_LEN {
        return Outcome::Rejected(ERR_INVALID_INPUT, None);
    }
    if !verify(&signature, &signable(&value, seq, m.salt.as_deref()), &target) {
        return Outcome::Rejected(ERR_INVALID_INPUT, None);
    }
    let key = slot(&target, m.salt.as_deref());
    if let Some(stored) = store.get_mutable(&key) {
        if let Some(err) = seq_error(seq, &value, stored) {
            return Outcome::Rejected(err, Some(stored.to_wire().encode()));
        }
    }
    store.put(key, MutableRecord { value, signature, seq, salt: m.salt }.into(), owner);
    Outcome::Stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn signable_matches_the_reference_vectors() {
        // D/test/put-get.test.js: signable("test") and with seq 1.
        assert_eq!(signable(b"test", 0, None), b"3:seqi0e1:v4:test");
        assert_eq!(signable(b"test", 1, None), b"3:seqi1e1:v4:test");
        assert_eq!(signable(b"v", 12, Some(b"ab")), b"4:salt2:ab3:seqi12e1:v1:v");
        assert_eq!(signable(b"", 0, Some(b"")), b"4:salt0:3:seqi0e1:v0:");
    }

    #[test]
    fn verify_checks_first_64_bytes_and_key_canonicity() {
        let sk = SigningKey::from_bytes(&[1; 32]);
        let pk = sk.verifying_key().to_bytes();
        let msg = signable(b"hi", 3, None);
        let sig = sk.sign(&msg).to_bytes();
        assert!(verify(&sig, &msg, &pk));
        let mut long = sig.to_vec();
        long.push(0);
        assert!(verify(&long, &msg, &pk), "trailing bytes are ignored, as libsodium does");
        assert!(!verify(&sig[..63], &msg, &pk));
        assert!(!verify(&sig, b"other", &pk));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify(&bad, &msg, &pk));
        assert!(!verify(&sig, &msg, &pk[..31]));
        // Non-reduced y (p itself, and p + 1 which would reduce to 1).
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!is_canonical_point(&p));
        p[0] = 0xee;
        assert!(!is_canonical_point(&p));
        p[0] = 0xec;
        assert!(is_canonical_point(&p));
        // A non-canonical S (S + L) is rejected.
        let mut s_plus_l = sig;
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = s_plus_l[32 + i] as u16 + l[i] as u16 + carry;
            s_plus_l[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!verify(&s_plus_l, &msg, &pk));
        // The identity as public key (small order) is rejected.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!verify(&sig, &msg, &identity));
    }

    #[test]
    fn seq_rules() {
        let stored = MutableRecord { value: b"a".to_vec(), signature: vec![0; 64], seq: 5, salt: None };
        assert_eq!(seq_error(5, b"b", &stored), Some(ERR_INVALID_SEQ));
        assert_eq!(seq_error(5, b"a", &stored), Some(ERR_SEQ_MUST_EXCEED_CURRENT));
        assert_eq!(seq_error(4, b"b", &stored), Some(ERR_SEQ_MUST_EXCEED_CURRENT));
        assert_eq!(seq_error(6, b"a", &stored), None);
    }
}
