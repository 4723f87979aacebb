//! The client side of `immutable-store` and `mutable-store`: what a get
//! or a put sends, which replies count, and how it ends (@hyperswarm/dht
//! 4.0.1; notes `dht4-stores.md` §2-§4). Pure: the node (`node.rs`) runs
//! the walk and asks this module about each reply.
//!
//! - A get is a QUERY walk with the store command; it ends with the first
//!   reply that verifies (in arrival order, not the highest seq: notes §2.3,
//!   §8 item 3), or "not found" when the walk ends.
//! - A put walks with `_find_node`, then sends the store command as UPDATE
//!   to the closest nodes that gave a token; it ends when the update phase
//!   does.
//! - A put fails with a seq error when an error reply carries a proof that
//!   verifies and conflicts with our seq, computed here as the reference
//!   computes it. Unlike the reference, which looks at its first warning
//!   only (so an earlier timeout or `Unsupported command` hides a conflict,
//!   notes §4.5, §8 item 2), every proof is checked.

use std::net::SocketAddrV4;

use super::hypersign::{InputError, Keypair};
use super::mutable::{seq_error, signable, verify, MAX_SALT_LEN, MAX_SEQ, MAX_SIGNATURE_LEN, MAX_VALUE_LEN, SIGNATURE_LEN};
use super::query::QueryKind;
use super::routing_table::NodeId;
use super::value_store::MutableRecord;
use super::immutable;
use crate::wire::dht::{Mutable, CMD_IMMUTABLE_STORE, CMD_MUTABLE_STORE};

/// Local warning text of a request that got no answer: dht-rpc's
/// `Request timed out` (notes §7).
pub const ERR_TIMEOUT: &str = "Request timed out";

/// What a store operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRequest {
    ImmutableGet { key: [u8; 32] },
    ImmutablePut { key: [u8; 32], value: Vec<u8> },
    MutableGet { public_key: [u8; 32], seq: u64, salt: Option<Vec<u8>> },
    MutablePut { public_key: [u8; 32], record: MutableRecord },
}

/// Who signs a mutable put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// Sign here with this keypair.
    Keypair(Keypair),
    /// Signed elsewhere (the reference's `opts.signature` with only a
    /// public key).
    Signature { public_key: [u8; 32], signature: Vec<u8> },
}

/// Options of a mutable put (the reference's `{keypair | signature, seq, salt}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutablePutOptions {
    pub signer: Signer,
    pub seq: u64,
    pub salt: Option<Vec<u8>>,
}

/// A record a get accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    /// Who answered; `None` for a value found in our own store.
    pub from: Option<SocketAddrV4>,
    /// The responder's id (`None` when it is ephemeral).
    pub node_id: Option<NodeId>,
    pub value: Vec<u8>,
    /// Mutable records only.
    pub signature: Option<Vec<u8>>,
    pub seq: Option<u64>,
    /// The salt the caller asked with (the reference reports that one, not
    /// the reply's: notes §2.3).
    pub salt: Option<Vec<u8>>,
}

/// How a store operation ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A get: the first record that verified, or `None` (not found).
    Got(Option<Got>),
    ImmutablePut { key: [u8; 32] },
    MutablePut { public_key: [u8; 32], signature: Vec<u8>, seq: u64, salt: Option<Vec<u8>> },
}

/// How a store operation failed: `No nodes responded`, `No close nodes
/// responded`, or a seq error with the proof that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailure {
    pub error: String,
    pub proof: Option<Mutable>,
    pub from: Option<SocketAddrV4>,
}

impl StoreRequest {
    /// An immutable put of `value`, keyed by its BLAKE2b-256 hash.
    pub fn immutable_put(value: Vec<u8>) -> Result<Self, InputError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(InputError::ValueTooLarge(value.len()));
        }
        Ok(StoreRequest::ImmutablePut { key: immutable::key(&value), value })
    }

    pub fn mutable_get(public_key: [u8; 32], seq: u64, salt: Option<Vec<u8>>) -> Result<Self, InputError> {
        check_seq_and_salt(seq, salt.as_deref())?;
        Ok(StoreRequest::MutableGet { public_key, seq, salt })
    }

    /// A signed record to put. A given signature is checked here: no node
    /// would store a bad one, and a put that every node refuses still ends
    /// without error in the reference (notes §2.2 item 6).
    pub fn mutable_put(value: Vec<u8>, opts: MutablePutOptions) -> Result<Self, InputError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(InputError::ValueTooLarge(value.len()));
        }
        check_seq_and_salt(opts.seq, opts.salt.as_deref())?;
        let (public_key, signature) = match opts.signer {
            Signer::Keypair(k) => {
                if Keypair::from_secret_key(&k.secret_key).as_ref() != Some(&k) {
                    return Err(InputError::BadKey);
                }
                (k.public_key, k.sign(&value, opts.salt.as_deref(), opts.seq)?.to_vec())
            }
            Signer::Signature { public_key, signature } => {
                if !(SIGNATURE_LEN..=MAX_SIGNATURE_LEN).contains(&signature.len()) {
                    return Err(InputError::SignatureLength(signature.len()));
                }
                if !verify(&signature, &signable(&value, opts.seq, opts.salt.as_deref()), &public_key) {
                    return Err(InputError::BadSignature);
                }
                (public_key, signature)
            }
        };
        Ok(StoreRequest::MutablePut { public_key, record: MutableRecord { value, signature, seq: opts.seq, salt: opts.salt } })
    }

    pub fn command(&self) -> &'static str {
        match self {
            StoreRequest::ImmutableGet { .. } | StoreRequest::ImmutablePut { .. } => CMD_IMMUTABLE_STORE,
            _ => CMD_MUTABLE_STORE,
        }
    }

    /// The hash of an immutable value, or the raw public key of a mutable
    /// record (never hashed, salt not included: notes §4.1).
    pub fn target(&self) -> [u8; 32] {
        match self {
            StoreRequest::ImmutableGet { key } | StoreRequest::ImmutablePut { key, .. } => *key,
            StoreRequest::MutableGet { public_key, .. } | StoreRequest::MutablePut { public_key, .. } => *public_key,
        }
    }

    pub fn is_get(&self) -> bool {
        matches!(self, StoreRequest::ImmutableGet { .. } | StoreRequest::MutableGet { .. })
    }

    /// Gets walk with the store command; puts walk with `_find_node` and
    /// then update (notes §2.1).
    pub fn kind(&self) -> QueryKind {
        if self.is_get() {
            QueryKind::Query
        } else {
            QueryKind::Update
        }
    }

    /// `Message.value` of the requests: none for an immutable get (notes
    /// §1.3), `Mutable{seq, salt}` for a mutable one (seq always written,
    /// as JS writes `18 00`), the value or the record for puts.
    pub fn message_value(&self) -> Option<Vec<u8>> {
        match self {
            StoreRequest::ImmutableGet { .. } => None,
            StoreRequest::ImmutablePut { value, .. } => Some(value.clone()),
            StoreRequest::MutableGet { seq, salt, .. } => Some(Mutable { seq: Some(*seq), salt: salt.clone(), ..Default::default() }.encode()),
            StoreRequest::MutablePut { record, .. } => Some(record.to_wire().encode()),
        }
    }

    /// A get's success reply: the record when it verifies (notes §3, §4.7):
    /// an immutable value must hash to the key; a mutable record's
    /// signature must verify over its value and seq with the *caller's*
    /// salt, and its seq must be at least the one asked for.
    pub fn accept(&self, from: SocketAddrV4, node_id: Option<NodeId>, value: Option<&[u8]>) -> Option<Got> {
        let value = value?;
        match self {
            StoreRequest::ImmutableGet { key } => (immutable::key(value) == *key)
                .then(|| Got { from: Some(from), node_id, value: value.to_vec(), signature: None, seq: None, salt: None }),
            StoreRequest::MutableGet { public_key, seq, salt } => {
                let m = Mutable::decode(value).ok()?;
                let (value, signature) = (m.value?, m.signature?);
                let got_seq = m.seq.unwrap_or(0);
                if value.len() > MAX_VALUE_LEN || got_seq < *seq || got_seq > MAX_SEQ {
                    return None;
                }
                verify(&signature, &signable(&value, got_seq, salt.as_deref()), public_key).then(|| Got {
                    from: Some(from),
                    node_id,
                    value,
                    signature: Some(signature),
                    seq: Some(got_seq),
                    salt: salt.clone(),
                })
            }
            _ => None,
        }
    }

    /// The proof an error reply carries, decoded (mutable-store only; an
    /// immutable error has none).
    pub fn proof(&self, value: Option<&[u8]>) -> Option<Mutable> {
        match self {
            StoreRequest::MutableGet { .. } | StoreRequest::MutablePut { .. } => Mutable::decode(value?).ok(),
            _ => None,
        }
    }

    /// The seq error a proof shows against our put, when the proof is a
    /// record the key's owner signed for our slot. The error is computed
    /// here from the proof (the reference's `maybeSeqError`); the node's
    /// error text is not trusted. Stricter than the reference in one way:
    /// a proof from another salt's slot (even with a valid signature)
    /// does not fail the put.
    pub fn seq_conflict(&self, proof: &Mutable) -> Option<&'static str> {
        let StoreRequest::MutablePut { public_key, record } = self else { return None };
        let (Some(value), Some(signature)) = (&proof.value, &proof.signature) else { return None };
        let seq = proof.seq.unwrap_or(0);
        if proof.salt.as_deref().unwrap_or(&[]) != record.salt.as_deref().unwrap_or(&[]) || value.len() > MAX_VALUE_LEN || seq > MAX_SEQ {
            return None;
        }
        if !verify(signature, &signable(value, seq, proof.salt.as_deref()), public_key) {
            return None;
        }
        let stored = MutableRecord { value: value.clone(), signature: signature.clone(), seq, salt: proof.salt.clone() };
        seq_error(record.seq, &record.value, &stored)
    }

    /// What a put reports when its update phase ends well.
    pub fn put_outcome(&self) -> StoreOutcome {
        match self {
            StoreRequest::ImmutablePut { key, .. } => StoreOutcome::ImmutablePut { key: *key },
            StoreRequest::MutablePut { public_key, record } => StoreOutcome::MutablePut {
                public_key: *public_key,
                signature: record.signature.clone(),
                seq: record.seq,
                salt: record.salt.clone(),
            },
            _ => StoreOutcome::Got(None),
        }
    }
}

fn check_seq_and_salt(seq: u64, salt: Option<&[u8]>) -> Result<(), InputError> {
    if seq > MAX_SEQ {
        return Err(InputError::SeqTooLarge(seq));
    }
    if let Some(s) = salt.filter(|s| s.len() > MAX_SALT_LEN) {
        return Err(InputError::SaltTooLarge(s.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const FROM: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 1);

    fn put(k: &Keypair, value: &[u8], seq: u64, salt: Option<&[u8]>) -> StoreRequest {
        let opts = MutablePutOptions { signer: Signer::Keypair(k.clone()), seq, salt: salt.map(<[u8]>::to_vec) };
        StoreRequest::mutable_put(value.to_vec(), opts).unwrap()
    }

    fn record(r: &StoreRequest) -> Mutable {
        let StoreRequest::MutablePut { record, .. } = r else { panic!() };
        record.to_wire()
    }

    #[test]
    fn inputs_are_checked_with_errors_that_name_them() {
        let k = Keypair::from_seed(&[1; 32]);
        assert_eq!(StoreRequest::immutable_put(vec![0; 1001]), Err(InputError::ValueTooLarge(1001)));
        assert_eq!(StoreRequest::mutable_get([0; 32], MAX_SEQ + 1, None), Err(InputError::SeqTooLarge(MAX_SEQ + 1)));
        assert_eq!(StoreRequest::mutable_get([0; 32], 0, Some(vec![0; 65])), Err(InputError::SaltTooLarge(65)));
        let bad = |signer, seq, salt: Option<Vec<u8>>| StoreRequest::mutable_put(b"v".to_vec(), MutablePutOptions { signer, seq, salt });
        assert_eq!(bad(Signer::Keypair(k.clone()), 0, Some(vec![0; 65])), Err(InputError::SaltTooLarge(65)));
        let sig = k.sign(b"v", None, 1).unwrap().to_vec();
        let by_sig = |signature: Vec<u8>, seq| bad(Signer::Signature { public_key: k.public_key, signature }, seq, None);
        assert!(by_sig(sig.clone(), 1).is_ok());
        assert_eq!(by_sig(sig.clone(), 2), Err(InputError::BadSignature));
        assert_eq!(by_sig(sig[..63].to_vec(), 1), Err(InputError::SignatureLength(63)));
        let mut k2 = k.clone();
        k2.public_key[0] ^= 1;
        assert_eq!(bad(Signer::Keypair(k2), 0, None), Err(InputError::BadKey));
        assert!(InputError::SaltTooLarge(65).to_string().contains("salt size must be no greater than 64 bytes"));
    }

    #[test]
    fn gets_accept_only_records_that_verify_with_the_callers_salt() {
        let k = Keypair::from_seed(&[2; 32]);
        let rec = record(&put(&k, b"hi", 5, Some(b"salt")));
        let get = |seq, salt: Option<&[u8]>| StoreRequest::mutable_get(k.public_key, seq, salt.map(<[u8]>::to_vec)).unwrap();
        let got = get(5, Some(b"salt")).accept(FROM, None, Some(&rec.encode())).unwrap();
        assert_eq!((got.value.as_slice(), got.seq, got.salt.as_deref()), (&b"hi"[..], Some(5), Some(&b"salt"[..])));
        assert!(get(6, Some(b"salt")).accept(FROM, None, Some(&rec.encode())).is_none(), "seq below the asked one");
        assert!(get(0, None).accept(FROM, None, Some(&rec.encode())).is_none(), "signed with a salt");
        // The reply's salt field is not what is checked: a reply claiming
        // another salt is judged with ours.
        let relabeled = Mutable { salt: Some(b"other".to_vec()), ..rec.clone() };
        assert!(get(0, Some(b"salt")).accept(FROM, None, Some(&relabeled.encode())).is_some());
        let forged = Mutable { value: Some(b"ho".to_vec()), ..rec.clone() };
        assert!(get(0, Some(b"salt")).accept(FROM, None, Some(&forged.encode())).is_none());
        assert!(get(0, Some(b"salt")).accept(FROM, None, Some(b"\xff")).is_none());
        let key = immutable::key(b"x");
        let iget = StoreRequest::ImmutableGet { key };
        assert!(iget.accept(FROM, None, Some(b"x")).is_some());
        assert!(iget.accept(FROM, None, Some(b"y")).is_none());
        assert!(iget.accept(FROM, None, None).is_none());
    }

    #[test]
    fn a_proof_fails_a_put_only_when_signed_for_our_slot_and_conflicting() {
        let k = Keypair::from_seed(&[3; 32]);
        let mine = put(&k, b"new", 2, Some(b"s"));
        assert_eq!(mine.seq_conflict(&record(&put(&k, b"old", 2, Some(b"s")))), Some("ERR_INVALID_SEQ"));
        assert_eq!(mine.seq_conflict(&record(&put(&k, b"old", 3, Some(b"s")))), Some("ERR_SEQ_MUST_EXCEED_CURRENT"));
        assert_eq!(mine.seq_conflict(&record(&put(&k, b"new", 2, Some(b"s")))), Some("ERR_SEQ_MUST_EXCEED_CURRENT"));
        assert_eq!(mine.seq_conflict(&record(&put(&k, b"old", 1, Some(b"s")))), None, "older record: no conflict");
        assert_eq!(mine.seq_conflict(&record(&put(&k, b"old", 9, Some(b"t")))), None, "another slot");
        let other = Keypair::from_seed(&[4; 32]);
        assert_eq!(mine.seq_conflict(&record(&put(&other, b"old", 9, Some(b"s")))), None, "another key");
        let mut forged = record(&put(&k, b"old", 9, Some(b"s")));
        forged.seq = Some(10);
        assert_eq!(mine.seq_conflict(&forged), None, "signature does not cover seq 10");
        assert_eq!(mine.seq_conflict(&Mutable { seq: Some(9), ..Default::default() }), None, "no value");
    }
}
