//! The signing helpers a `mutable-store` client needs: an ed25519 keypair
//! in libsodium's layout, signatures over the BEP44 signable, and salts
//! (@hyperswarm/hypersign 2.1.1 as @hyperswarm/dht 4.0.1 uses it; notes
//! `dht4-stores.md` §4.2-§4.3).

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use ed25519_dalek::{Signer, SigningKey};

use super::mutable::{signable, MAX_SALT_LEN, MAX_SEQ, MAX_VALUE_LEN};

/// Smallest salt `salt()` makes: hypersign's assertion (notes §4.3). Only
/// `salt()` enforces it; puts and gets take any salt up to 64 bytes.
pub const MIN_SALT_SIZE: usize = 16;

/// `salt()`'s default size in hypersign (notes §4.3).
pub const DEFAULT_SALT_SIZE: usize = 32;

/// An ed25519 keypair. `secret_key` is libsodium's 64 bytes, seed ‖ public
/// key, so it can be handed to or taken from JS (`crypto_sign_seed_keypair`).
#[derive(Clone, PartialEq, Eq)]
pub struct Keypair {
    pub public_key: [u8; 32],
    pub secret_key: [u8; 64],
}

impl std::fmt::Debug for Keypair {
    // The secret key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair").field("public_key", &self.public_key).finish_non_exhaustive()
    }
}

impl Keypair {
    /// The keypair of a 32-byte seed, as libsodium derives it.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let public_key = SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let mut secret_key = [0u8; 64];
        secret_key[..32].copy_from_slice(seed);
        secret_key[32..].copy_from_slice(&public_key);
        Keypair { public_key, secret_key }
    }

    /// A keypair from a libsodium secret key; `None` when its second half
    /// is not the public key of its first (a corrupted or foreign key).
    pub fn from_secret_key(secret_key: &[u8; 64]) -> Option<Self> {
        let seed: [u8; 32] = secret_key[..32].try_into().ok()?;
        let k = Self::from_seed(&seed);
        (k.secret_key == *secret_key).then_some(k)
    }

    /// A fresh random keypair (hypersign's `keypair()`).
    pub fn random() -> Self {
        Self::from_seed(&rand::random())
    }

    /// The 64-byte signature of `value` at `seq` under `salt` (hypersign's
    /// `sign(value, {keypair, seq, salt})`), checked as the reference
    /// checks its arguments, plus the seq bound of our nodes.
    pub fn sign(&self, value: &[u8], salt: Option<&[u8]>, seq: u64) -> Result<[u8; 64], InputError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(InputError::ValueTooLarge(value.len()));
        }
        if let Some(s) = salt.filter(|s| s.len() > MAX_SALT_LEN) {
            return Err(InputError::SaltTooLarge(s.len()));
        }
        if seq > MAX_SEQ {
            return Err(InputError::SeqTooLarge(seq));
        }
        let seed: [u8; 32] = self.secret_key[..32].try_into().map_err(|_| InputError::BadKey)?;
        Ok(SigningKey::from_bytes(&seed).sign(&signable(value, seq, salt)).to_bytes())
    }
}

impl Keypair {
    /// A detached ed25519 signature over `message` as is (hypersign's
    /// `cryptoSign`).
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&self.secret_key[..32]);
        SigningKey::from_bytes(&seed).sign(message).to_bytes()
    }
}

/// Why a value cannot be signed, put or asked for. Each names the problem;
/// none is a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    ValueTooLarge(usize),
    SaltTooLarge(usize),
    SeqTooLarge(u64),
    SaltSize(usize),
    BadKey,
    /// A given signature is not 64..=128 bytes.
    SignatureLength(usize),
    /// A given signature does not verify over the record.
    BadSignature,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::ValueTooLarge(n) => write!(f, "value is {n} bytes; value size must be <= {MAX_VALUE_LEN}"),
            InputError::SaltTooLarge(n) => write!(f, "salt is {n} bytes; salt size must be no greater than {MAX_SALT_LEN} bytes"),
            InputError::SeqTooLarge(s) => write!(f, "seq {s} is above 2^53 - 1, which JS nodes cannot check"),
            InputError::SaltSize(n) => write!(f, "salt size {n}: salt size must be between {MIN_SALT_SIZE} and {MAX_SALT_LEN} bytes (inclusive)"),
            InputError::BadKey => write!(f, "secret key is not seed || public key"),
            InputError::SignatureLength(n) => write!(f, "signature is {n} bytes; it must be 64 (up to 128 are carried)"),
            InputError::BadSignature => write!(f, "signature does not verify over value, seq and salt with this public key"),
        }
    }
}

impl std::error::Error for InputError {}

/// A salt derived from a string (hypersign's `salt(str, size)`): BLAKE2b
/// with the digest length set to `size`, which is not a truncated
/// BLAKE2b-512. `size` must be 16..=64.
pub fn salt(s: &str, size: usize) -> Result<Vec<u8>, InputError> {
    if !(MIN_SALT_SIZE..=MAX_SALT_LEN).contains(&size) {
        return Err(InputError::SaltSize(size));
    }
    let mut h = Blake2bVar::new(size).map_err(|_| InputError::SaltSize(size))?;
    h.update(s.as_bytes());
    let mut out = vec![0u8; size];
    h.finalize_variable(&mut out).map_err(|_| InputError::SaltSize(size))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::mutable::verify;

    #[test]
    fn keypair_has_libsodiums_layout_and_signs_the_signable() {
        let k = Keypair::from_seed(&[1; 32]);
        assert_eq!(k.secret_key[..32], [1; 32]);
        assert_eq!(k.secret_key[32..], k.public_key);
        assert_eq!(Keypair::from_secret_key(&k.secret_key), Some(k.clone()));
        let mut bad = k.secret_key;
        bad[40] ^= 1;
        assert_eq!(Keypair::from_secret_key(&bad), None);
        let sig = k.sign(b"test", Some(b"s"), 3).unwrap();
        assert!(verify(&sig, &signable(b"test", 3, Some(b"s")), &k.public_key));
        assert!(!verify(&sig, &signable(b"test", 3, None), &k.public_key), "the salt is signed");
        assert_eq!(k.sign(&[0; 1001], None, 0), Err(InputError::ValueTooLarge(1001)));
        assert_eq!(k.sign(b"", Some(&[0; 65]), 0), Err(InputError::SaltTooLarge(65)));
        assert_eq!(k.sign(b"", None, MAX_SEQ + 1), Err(InputError::SeqTooLarge(MAX_SEQ + 1)));
        assert!(k.sign(&[0; 1000], Some(&[0; 64]), MAX_SEQ).is_ok());
    }

    #[test]
    fn salt_is_blake2b_with_the_asked_length() {
        // BLAKE2b-256("hello"), as libsodium's crypto_generichash(32) gives it.
        let s = salt("hello", 32).unwrap();
        let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf");
        assert_eq!(salt("hello", 16).unwrap().len(), 16);
        assert_ne!(salt("hello", 16).unwrap()[..], s[..16], "not a truncation");
        assert_eq!(salt("x", 15), Err(InputError::SaltSize(15)));
        assert_eq!(salt("x", 65), Err(InputError::SaltSize(65)));
    }
}
