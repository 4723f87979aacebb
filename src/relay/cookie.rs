//! Stateless address validation: before a relay keeps any state for a
//! join, the joiner proves it receives at its source address by echoing a
//! cookie the relay sent there (the idea of QUIC's Retry token, RFC 9000
//! §8.1.2, and of DTLS's HelloVerifyRequest). A spoofed source never sees
//! the cookie, so it can make the relay send only challenges, each no
//! larger than the join that caused it.
//!
//! A cookie is BLAKE2b over a secret of the relay, the period number, the
//! source address and the token, truncated to 16 bytes. BLAKE2 keyed by a
//! prefix is a MAC (it has no length extension). It is valid in the period
//! it was made and the next ([`COOKIE_PERIOD`]).

use std::net::SocketAddrV4;
use std::time::Instant;

use blake2::digest::consts::U16;
use blake2::{Blake2b, Digest};

use super::config::COOKIE_PERIOD;
use super::message::{Cookie, Token};

pub struct Cookies {
    secret: [u8; 32],
    origin: Instant,
}

// The secret stays out of logs.
impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookies { .. }")
    }
}

impl Cookies {
    /// Periods count from `origin`; `secret` is random in a relay (fixed
    /// in tests).
    pub fn new(secret: [u8; 32], origin: Instant) -> Self {
        Cookies { secret, origin }
    }

    fn period(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_nanos() / COOKIE_PERIOD.as_nanos()) as u64
    }

    fn mac(&self, period: u64, from: SocketAddrV4, token: &Token) -> Cookie {
        let mut h = Blake2b::<U16>::new();
        h.update(self.secret);
        h.update(period.to_be_bytes());
        h.update(from.ip().octets());
        h.update(from.port().to_be_bytes());
        h.update(token);
        h.finalize().into()
    }

    /// The cookie to send `from` for `token`.
    pub fn make(&self, now: Instant, from: SocketAddrV4, token: &Token) -> Cookie {
        self.mac(self.period(now), from, token)
    }

    /// Whether `cookie` is one we made for `from` and `token` in this
    /// period or the one before.
    pub fn verify(&self, now: Instant, from: SocketAddrV4, token: &Token, cookie: &Cookie) -> bool {
        let p = self.period(now);
        // Both compared without short-circuit, so timing tells nothing.
        let a = ct_eq(&self.mac(p, from, token), cookie);
        let b = p > 0 && ct_eq(&self.mac(p - 1, from, token), cookie);
        a | b
    }
}

fn ct_eq(a: &Cookie, b: &Cookie) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_cookie_is_bound_to_address_token_and_time() {
        let t0 = Instant::now();
        let c = Cookies::new([7; 32], t0);
        let a: SocketAddrV4 = "10.0.0.1:4000".parse().unwrap();
        let token = [1; 32];
        let k = c.make(t0, a, &token);
        assert!(c.verify(t0 + Duration::from_secs(1), a, &token, &k));
        assert!(c.verify(t0 + COOKIE_PERIOD + Duration::from_secs(29), a, &token, &k));
        assert!(!c.verify(t0 + COOKIE_PERIOD * 2, a, &token, &k));
        assert!(!c.verify(t0, "10.0.0.1:4001".parse().unwrap(), &token, &k));
        assert!(!c.verify(t0, "10.0.0.2:4000".parse().unwrap(), &token, &k));
        assert!(!c.verify(t0, a, &[2; 32], &k));
        assert!(!Cookies::new([8; 32], t0).verify(t0, a, &token, &k));
    }
}
