//! How two peers of ours meet at the same relay: where relays announce
//! themselves, how the session token follows from the nonce that crossed
//! the referrer, and which of the relays found both pick.

use std::net::SocketAddrV4;
use std::time::Duration;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

use super::message::Token;

/// Bytes of the nonce a token is derived from. Ours: 128 random bits
/// cannot be guessed, and leave room for a candidate in a capability
/// record (`dht::capability`, which carries it).
pub const NONCE_LEN: usize = 16;

/// What is hashed into [`relay_topic`]. Ours: any fixed string works, as
/// long as every relay and every swarm of ours uses the same one.
pub const RELAY_TOPIC_NAME: &[u8] = b"hyperswarm-native relay v1";

/// The DHT topic relays announce their relay port on: BLAKE2b-256 of
/// [`RELAY_TOPIC_NAME`]. A JS node stores and answers it like any topic.
pub fn relay_topic() -> [u8; 32] {
    Blake2b::<U32>::digest(RELAY_TOPIC_NAME).into()
}

/// When a relay announces itself after its start: the routing table fills
/// over the first seconds, and an announce stores the record on the nodes
/// closest to the topic among those it knows then. Ours.
pub const EARLY_ANNOUNCES: [Duration; 3] = [Duration::from_millis(500), Duration::from_secs(3), Duration::from_secs(15)];

/// Then every 4 min: DHT nodes keep a record 8–16 min (wire-dht.md, maxAge
/// 12 min with an 8-min GC), so this refreshes it well before.
pub const REANNOUNCE: Duration = Duration::from_secs(240);

/// How long after its start (or its previous announce, from the fourth
/// on) a relay announces for the `n`th time, counting from 0.
pub fn announce_delay(n: u32) -> Duration {
    EARLY_ANNOUNCES.get(n as usize).copied().unwrap_or(REANNOUNCE)
}

/// The relay session's token: BLAKE2b-256 of the nonce one peer drew and
/// sent through the referrer. Random, and known only to the two peers and
/// the referrer; the relay sees the token, never the nonce.
pub fn token_from_nonce(nonce: &[u8; NONCE_LEN]) -> Token {
    let mut h = Blake2b::<U32>::new();
    h.update(b"hyperswarm-native relay token");
    h.update(nonce);
    h.finalize().into()
}

/// The relay two peers with the same `token` both pick from what their
/// lookups found: the one with the highest BLAKE2b of (token, address)
/// (rendezvous hashing). Two peers that found the same relays pick the
/// same one whatever the order they heard them in; one that found a relay
/// the other did not still agrees whenever that relay does not score
/// highest. None when nothing was found.
pub fn pick(token: &Token, relays: &[SocketAddrV4]) -> Option<SocketAddrV4> {
    relays.iter().copied().max_by_key(|r| {
        let mut h = Blake2b::<U32>::new();
        h.update(token);
        h.update(r.ip().octets());
        h.update(r.port().to_be_bytes());
        let d: [u8; 32] = h.finalize().into();
        (d, *r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_topic_and_tokens_are_fixed_functions() {
        assert_eq!(relay_topic(), relay_topic());
        assert_ne!(token_from_nonce(&[1; 16]), token_from_nonce(&[2; 16]));
        assert_eq!(token_from_nonce(&[1; 16]), token_from_nonce(&[1; 16]));
        // The token is not the nonce padded: the relay cannot learn it.
        assert_ne!(&token_from_nonce(&[0; 16])[..16], &[0; 16]);
    }

    #[test]
    fn both_sides_pick_the_same_relay_in_any_order_and_spread_over_relays() {
        let relays: Vec<SocketAddrV4> = (1..=8).map(|i| SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, i), 49738)).collect();
        let mut reversed = relays.clone();
        reversed.reverse();
        let mut chosen = std::collections::HashSet::new();
        for n in 0..64u8 {
            let token = token_from_nonce(&[n; 16]);
            let a = pick(&token, &relays).unwrap();
            assert_eq!(pick(&token, &reversed), Some(a));
            chosen.insert(a);
        }
        assert!(chosen.len() >= 4, "tokens spread over the relays: {chosen:?}");
        assert_eq!(pick(&[0; 32], &[]), None);
    }
}
