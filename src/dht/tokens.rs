//! Round-trip tokens (wire-dht.md §5).
//!
//! A success RESPONSE hands the requester a token bound to its IP; an UPDATE
//! is only accepted when it echoes such a token. This proves the requester
//! can receive at the IP it claims, so UPDATEs (announces) cannot be sent
//! from spoofed source addresses.
//!
//! Same scheme as dht-rpc, so our tokens are byte-identical to what a JS
//! node with the same secret would issue: BLAKE2b-256 (libsodium
//! `crypto_generichash`, unkeyed, 32-byte output) over
//! `secret || ASCII dotted IPv4`. The port is not hashed: every host behind
//! one IP gets the same token.

use std::net::Ipv4Addr;
use std::time::Duration;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use rand::Rng;

/// How often `current` becomes `previous` and a fresh secret is drawn
/// (wire-dht.md §5). A token is thus accepted for 5 to 10 minutes.
pub const ROTATE_INTERVAL: Duration = Duration::from_secs(300);

/// Token length in bytes (wire-dht.md §5).
pub const TOKEN_LEN: usize = 32;

/// The two secrets of wire-dht.md §5.
#[derive(Clone)]
pub struct Tokens {
    current: [u8; 32],
    previous: [u8; 32],
}

// Secrets stay out of logs.
impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    /// From the two secrets: both random in the reference (see
    /// [`Tokens::random`]); fixed ones make golden vectors.
    pub fn new(current: [u8; 32], previous: [u8; 32]) -> Self {
        Tokens { current, previous }
    }

    /// Both secrets drawn from `rng`, as the reference starts.
    pub fn random(rng: &mut impl Rng) -> Self {
        Tokens::new(rng.random(), rng.random())
    }

    /// The token to put in a success RESPONSE to `ip`.
    pub fn token(&self, ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
        hash(&self.current, ip)
    }

    /// Whether an UPDATE from `ip` carries a token we issued under the
    /// current or the previous secret. Any other length is rejected.
    pub fn verify(&self, ip: Ipv4Addr, token: &[u8]) -> bool {
        if token.len() != TOKEN_LEN {
            return false;
        }
        // Evaluate both without short-circuit: timing does not reveal which
        // secret matched (or how many leading bytes did).
        let a = ct_eq(&hash(&self.current, ip), token);
        let b = ct_eq(&hash(&self.previous, ip), token);
        a | b
    }

    /// `previous := current; current := fresh` (every [`ROTATE_INTERVAL`]).
    pub fn rotate(&mut self, fresh: [u8; 32]) {
        self.previous = self.current;
        self.current = fresh;
    }
}

fn hash(secret: &[u8; 32], ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
    let (buf, len) = dotted(ip);
    let mut h = Blake2b::<U32>::new();
    h.update(secret);
    h.update(&buf[..len]);
    h.finalize().into()
}

/// `a.b.c.d` in ASCII without allocating, exactly as Node prints a host
/// (decimal, no leading zeros).
fn dotted(ip: Ipv4Addr) -> ([u8; 15], usize) {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + (o / 10) % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    (buf, n)
}

fn ct_eq(a: &[u8; TOKEN_LEN], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn counting() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn blake2b_256_matches_libsodium_generichash() {
        // Vectors computed with the reference's sodium-native:
        //   const out = Buffer.alloc(32)
        //   sodium.crypto_generichash(out, Buffer.concat([secret, Buffer.from(ip)]))
        // secret = 00 01 02 .. 1f, ip = "127.0.0.1"
        let t = Tokens::new(counting(), [0; 32]);
        assert_eq!(
            hex(&t.token(Ipv4Addr::new(127, 0, 0, 1))),
            "fc52a7594e6deb3bda6740814cfa316f4430167f68d533d20ea470520146b041"
        );
        // secret = ab × 32, ip = "192.168.1.20"
        let t = Tokens::new([0xab; 32], [0; 32]);
        assert_eq!(
            hex(&t.token(Ipv4Addr::new(192, 168, 1, 20))),
            "0ad49d20ca89f073c14ca738df9eb974e8c9824ae032aa151a72259827b2b6d2"
        );
        // crypto_generichash of the empty input (32-byte output).
        let empty: [u8; 32] = Blake2b::<U32>::new().finalize().into();
        assert_eq!(
            hex(&empty),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }

    #[test]
    fn dotted_formatting() {
        for ip in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(255, 255, 255, 255),
            Ipv4Addr::new(10, 0, 100, 9),
            Ipv4Addr::new(1, 20, 199, 250),
        ] {
            let (b, n) = dotted(ip);
            assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn token_depends_on_ip_not_port() {
        let t = Tokens::random(&mut StdRng::seed_from_u64(1));
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        assert_ne!(t.token(a), t.token(b));
        assert!(t.verify(a, &t.token(a)));
        assert!(!t.verify(b, &t.token(a)));
    }

    #[test]
    fn verify_across_rotations() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut t = Tokens::random(&mut rng);
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        let tok = t.token(ip);
        assert!(t.verify(ip, &tok), "current");
        t.rotate(rng.random());
        assert_ne!(t.token(ip), tok);
        assert!(t.verify(ip, &tok), "previous");
        t.rotate(rng.random());
        assert!(!t.verify(ip, &tok), "expired after two rotations");
    }

    #[test]
    fn rejects_wrong_length_and_garbage() {
        let t = Tokens::new(counting(), [9; 32]);
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        let tok = t.token(ip);
        assert!(!t.verify(ip, &[]));
        assert!(!t.verify(ip, &tok[..31]));
        let mut long = tok.to_vec();
        long.push(0);
        assert!(!t.verify(ip, &long));
        let mut flipped = tok;
        flipped[31] ^= 1;
        assert!(!t.verify(ip, &flipped));
    }

    #[test]
    fn debug_hides_secrets() {
        let t = Tokens::new([0xab; 32], [0xcd; 32]);
        assert_eq!(format!("{t:?}"), "Tokens { .. }");
    }
}
