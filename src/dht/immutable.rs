//! `immutable-store`: values stored under their own BLAKE2b-256 hash
//! (@hyperswarm/dht 4.0.1; notes `dht4-stores.md` §3).

use std::net::Ipv4Addr;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use super::mutable::{ERR_INVALID_INPUT, MAX_VALUE_LEN};
use super::value_store::{Outcome, StoreKey, ValueStore};

/// The key of an immutable value: libsodium `crypto_generichash` with a
/// 32-byte output (unkeyed BLAKE2b-256, not a truncated BLAKE2b-512).
pub fn key(value: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(value).into()
}

/// QUERY `immutable-store`: the stored bytes, or no value. The request's
/// value is ignored, as in the reference.
pub fn on_query(store: &mut ValueStore, target: &[u8; 32]) -> Outcome {
    Outcome::Answer(store.get_immutable(&StoreKey::immutable(target)).map(<[u8]>::to_vec))
}

/// UPDATE `immutable-store`: stores `value` when it hashes to `target`.
pub fn on_update(store: &mut ValueStore, owner: Ipv4Addr, target: &[u8; 32], value: Option<&[u8]>) -> Outcome {
    // The reference hashes `null` and its handler throws: no reply.
    let Some(value) = value else { return Outcome::Dropped("immutable update without value") };
    // The reference has no size check here and stores anything up to what
    // a datagram carries; its own client never puts more than 1000 bytes,
    // so a larger value is someone else's, and we refuse it like a bad hash
    // rather than let one request pin ~4 KB.
    if value.len() > MAX_VALUE_LEN || key(value) != *target {
        return Outcome::Rejected(ERR_INVALID_INPUT, None);
    }
    store.put(StoreKey::immutable(target), value.to_vec().into(), owner);
    Outcome::Stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_blake2b_256() {
        // notes §3: the empty value's key, as libsodium computes it.
        let k = key(b"");
        let want = "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8";
        assert_eq!(k.iter().map(|b| format!("{b:02x}")).collect::<String>(), want);
    }
}
