//! `immutable-store` and `mutable-store` on one sans-IO node: the rules of
//! notes/dht4-stores.md §3-§5, the reference's crash inputs (dropped and
//! counted here), and the store's bounds pushed past. Nothing opens a
//! socket; every assertion is on the bytes the node sends back.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use hyperswarm_native::dht::immutable;
use hyperswarm_native::dht::mutable::{self, signable};
use hyperswarm_native::dht::tokens::Tokens;
use hyperswarm_native::dht::value_store::{MAX_VALUES, MAX_VALUES_PER_IP, MAX_VALUES_PER_SUBNET};
use hyperswarm_native::dht::{Dht, DhtConfig};
use hyperswarm_native::wire::dht::{encode_peer, Message, MessageType, Mutable, CMD_IMMUTABLE_STORE, CMD_MUTABLE_STORE};

const ME: [u8; 32] = [0x42; 32];
const SECRET: [u8; 32] = [0x11; 32];

struct Net {
    node: Dht,
    now: Instant,
    rid: u64,
}

fn net() -> Net {
    let now = Instant::now();
    let mut node = Dht::new(now, DhtConfig { id: Some(ME), ephemeral: false, adaptive: false, bootstrap: vec![], seed: 7 });
    node.set_token_secrets(SECRET, SECRET);
    Net { node, now, rid: 1 }
}

fn addr(a: u8, b: u8, c: u8, d: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), 40000)
}

const ALICE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40000);
const BOB: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 40001);

impl Net {
    /// Sends a request and returns every reply to it (responses with its rid).
    fn send(&mut self, from: SocketAddrV4, kind: MessageType, command: &str, target: &[u8], value: Option<Vec<u8>>) -> Vec<Message> {
        self.rid += 1;
        let mut m = Message::new(kind, self.rid);
        m.to = Some(encode_peer(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 49737)).to_vec());
        m.target = Some(target.to_vec());
        m.command = Some(command.into());
        m.value = value;
        if kind == MessageType::Update {
            m.roundtrip_token = Some(Tokens::new(SECRET, SECRET).token(*from.ip()).to_vec());
        }
        self.node.handle_datagram(self.now, from, &m.encode());
        let rid = self.rid;
        std::iter::from_fn(|| self.node.poll_transmit())
            .filter(|(to, _)| *to == from)
            .filter_map(|(_, b)| Message::decode(&b).ok())
            .filter(|r| r.kind == MessageType::Response && r.rid == rid)
            .collect()
    }

    fn one(&mut self, from: SocketAddrV4, kind: MessageType, command: &str, target: &[u8], value: Option<Vec<u8>>) -> Message {
        let mut r = self.send(from, kind, command, target, value);
        assert_eq!(r.len(), 1, "exactly one reply: {r:?}");
        r.remove(0)
    }

    fn put_immutable(&mut self, from: SocketAddrV4, value: &[u8]) -> Message {
        self.one(from, MessageType::Update, CMD_IMMUTABLE_STORE, &immutable::key(value), Some(value.to_vec()))
    }

    fn get_immutable(&mut self, from: SocketAddrV4, key: &[u8]) -> Option<Vec<u8>> {
        let r = self.one(from, MessageType::Query, CMD_IMMUTABLE_STORE, key, None);
        assert_ok(&r);
        r.value
    }

    fn put_mutable(&mut self, from: SocketAddrV4, pk: &[u8], record: Mutable) -> Message {
        self.one(from, MessageType::Update, CMD_MUTABLE_STORE, pk, Some(record.encode()))
    }

    fn get_mutable(&mut self, from: SocketAddrV4, pk: &[u8], seq: u64, salt: Option<&[u8]>) -> Option<Mutable> {
        let ask = Mutable { value: None, signature: None, seq: Some(seq), salt: salt.map(<[u8]>::to_vec) };
        let r = self.one(from, MessageType::Query, CMD_MUTABLE_STORE, pk, Some(ask.encode()));
        assert_ok(&r);
        r.value.map(|v| Mutable::decode(&v).expect("record decodes"))
    }
}

/// A success reply: token, no error, closer nodes written (even empty).
fn assert_ok(r: &Message) {
    assert!(r.error_text().is_none(), "unexpected error {:?}", r.error);
    assert_eq!(r.roundtrip_token.as_ref().map(Vec::len), Some(32), "success carries a token");
    assert!(r.closer_nodes.is_some(), "closerNodes written");
    assert_eq!(r.id, Some(ME));
}

/// An error reply: this text, no token, closer nodes written.
fn assert_err(r: &Message, text: &str) {
    assert_eq!(r.error.as_deref(), Some(text));
    assert!(r.roundtrip_token.is_none(), "error replies carry no token");
    assert!(r.closer_nodes.is_some());
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn record(k: &SigningKey, value: &[u8], seq: u64, salt: Option<&[u8]>) -> Mutable {
    let sig = k.sign(&signable(value, seq, salt)).to_bytes().to_vec();
    Mutable { value: Some(value.to_vec()), signature: Some(sig), seq: Some(seq), salt: salt.map(<[u8]>::to_vec) }
}

#[test]
fn immutable_put_then_get() {
    let mut n = net();
    let r = n.put_immutable(ALICE, b"hello");
    assert_ok(&r);
    assert_eq!(r.value, None, "a put's reply has no value");
    assert_eq!(n.get_immutable(BOB, &immutable::key(b"hello")), Some(b"hello".to_vec()));
    assert_eq!(n.get_immutable(BOB, &immutable::key(b"other")), None);
    // The empty value is a value: its reply carries `4a 00`.
    assert_ok(&n.put_immutable(ALICE, b""));
    assert_eq!(n.get_immutable(BOB, &immutable::key(b"")), Some(Vec::new()));
    assert_eq!(n.node.stats().values_stored, 2);
}

#[test]
fn immutable_bad_hash_and_oversized_values_are_invalid_input() {
    let mut n = net();
    let r = n.one(ALICE, MessageType::Update, CMD_IMMUTABLE_STORE, &[9; 32], Some(b"test".to_vec()));
    assert_err(&r, mutable::ERR_INVALID_INPUT);
    assert_eq!(r.value, None);
    // The reference stores any size; we refuse over 1000 even when the hash matches.
    let big = vec![0x61; 1001];
    assert_err(&n.put_immutable(ALICE, &big), mutable::ERR_INVALID_INPUT);
    assert_eq!(n.get_immutable(BOB, &immutable::key(&big)), None);
    assert_ok(&n.put_immutable(ALICE, &big[..1000]));
    assert_eq!(n.node.stats().values_rejected, 2);
    assert_eq!(n.node.stats().values_stored, 1);
}

#[test]
fn mutable_put_then_get_with_and_without_salt() {
    let mut n = net();
    let k = key(1);
    let pk = k.verifying_key().to_bytes();
    assert_ok(&n.put_mutable(ALICE, &pk, record(&k, b"plain", 0, None)));
    assert_ok(&n.put_mutable(ALICE, &pk, record(&k, b"salted", 4, Some(b"0123456789abcdef"))));
    let got = n.get_mutable(BOB, &pk, 0, None).expect("unsalted record");
    assert_eq!(got, record(&k, b"plain", 0, None), "value, signature, seq 0 written, no salt");
    assert_eq!(got.encode()[got.encode().len() - 2..], [0x18, 0x00]);
    let got = n.get_mutable(BOB, &pk, 0, Some(b"0123456789abcdef")).expect("salted record");
    assert_eq!(got, record(&k, b"salted", 4, Some(b"0123456789abcdef")));
    // Asking for a higher seq than stored gets no value.
    assert_eq!(n.get_mutable(BOB, &pk, 5, Some(b"0123456789abcdef")), None);
    assert_eq!(n.get_mutable(BOB, &pk, 4, Some(b"0123456789abcdef")).map(|r| r.seq), Some(Some(4)));
    // Another salt is another slot.
    assert_eq!(n.get_mutable(BOB, &pk, 0, Some(b"fedcba9876543210")), None);
}

#[test]
fn empty_salt_shares_the_unsalted_slot_and_is_echoed() {
    let mut n = net();
    let k = key(2);
    let pk = k.verifying_key().to_bytes();
    assert_ok(&n.put_mutable(ALICE, &pk, record(&k, b"e", 1, Some(b""))));
    let got = n.get_mutable(BOB, &pk, 0, None).expect("same slot");
    assert_eq!(got.salt, Some(Vec::new()), "22 00 kept");
    assert!(got.encode().ends_with(&[0x22, 0x00]));
    // An unsalted put to that slot now competes on seq.
    let r = n.put_mutable(ALICE, &pk, record(&k, b"f", 1, None));
    assert_err(&r, mutable::ERR_INVALID_SEQ);
}

#[test]
fn seq_rules_reply_once_with_proof_and_do_not_overwrite() {
    let mut n = net();
    let k = key(3);
    let pk = k.verifying_key().to_bytes();
    let a = record(&k, b"a", 2, None);
    assert_ok(&n.put_mutable(ALICE, &pk, a.clone()));
    // Same seq, other value.
    let r = n.put_mutable(BOB, &pk, record(&k, b"b", 2, None));
    assert_err(&r, mutable::ERR_INVALID_SEQ);
    assert_eq!(r.value, Some(a.encode()), "proof = the stored record");
    // Lower seq.
    let r = n.put_mutable(BOB, &pk, record(&k, b"c", 1, None));
    assert_err(&r, mutable::ERR_SEQ_MUST_EXCEED_CURRENT);
    assert_eq!(r.value, Some(a.encode()));
    // The identical record again.
    let r = n.put_mutable(ALICE, &pk, a.clone());
    assert_err(&r, mutable::ERR_SEQ_MUST_EXCEED_CURRENT);
    // Nothing was overwritten.
    assert_eq!(n.get_mutable(BOB, &pk, 0, None), Some(a));
    // A higher seq wins.
    let d = record(&k, b"d", 3, None);
    assert_ok(&n.put_mutable(BOB, &pk, d.clone()));
    assert_eq!(n.get_mutable(ALICE, &pk, 0, None), Some(d));
    assert_eq!(n.node.stats().values_rejected, 3);
}

#[test]
fn forged_signatures_are_invalid_input() {
    let mut n = net();
    let k = key(4);
    let pk = k.verifying_key().to_bytes();
    let mut forged = record(&k, b"x", 1, None);
    forged.signature.as_mut().unwrap()[7] ^= 1;
    assert_err(&n.put_mutable(ALICE, &pk, forged), mutable::ERR_INVALID_INPUT);
    // Signed by another key.
    assert_err(&n.put_mutable(ALICE, &pk, record(&key(5), b"x", 1, None)), mutable::ERR_INVALID_INPUT);
    // Signed without salt, sent with one; signed for seq 1, sent as seq 2.
    let mut salted = record(&k, b"x", 1, None);
    salted.salt = Some(b"0123456789abcdef".to_vec());
    assert_err(&n.put_mutable(ALICE, &pk, salted), mutable::ERR_INVALID_INPUT);
    let mut reseq = record(&k, b"x", 1, None);
    reseq.seq = Some(2);
    assert_err(&n.put_mutable(ALICE, &pk, reseq), mutable::ERR_INVALID_INPUT);
    // Seq beyond JS's safe integers, even correctly signed.
    assert_err(&n.put_mutable(ALICE, &pk, record(&k, b"x", 1 << 53, None)), mutable::ERR_INVALID_INPUT);
    assert_eq!(n.get_mutable(BOB, &pk, 0, None), None);
    assert_eq!(n.node.stats().values_stored, 0);
    assert_eq!(n.node.stats().values_rejected, 5);
}

#[test]
fn long_signatures_verify_their_first_64_bytes_and_are_echoed() {
    let mut n = net();
    let k = key(6);
    let pk = k.verifying_key().to_bytes();
    let mut long = record(&k, b"long", 1, None);
    long.signature.as_mut().unwrap().push(0);
    assert_ok(&n.put_mutable(ALICE, &pk, long.clone()));
    assert_eq!(n.get_mutable(BOB, &pk, 0, None), Some(long));
    let mut too_long = record(&k, b"long", 2, None);
    too_long.signature.as_mut().unwrap().extend_from_slice(&[0; 65]);
    assert_err(&n.put_mutable(ALICE, &pk, too_long), mutable::ERR_INVALID_INPUT);
}

#[test]
fn null_value_or_signature_is_answered_and_stores_nothing() {
    let mut n = net();
    let k = key(7);
    let pk = k.verifying_key().to_bytes();
    let mut no_value = record(&k, b"x", 0, None);
    no_value.value = None;
    let r = n.put_mutable(ALICE, &pk, no_value);
    assert_ok(&r);
    assert_eq!(r.value, None);
    let mut no_sig = record(&k, b"x", 0, None);
    no_sig.signature = None;
    assert_ok(&n.put_mutable(ALICE, &pk, no_sig));
    assert_eq!(n.get_mutable(BOB, &pk, 0, None), None);
    assert_eq!(n.node.stats().values_stored, 0);
}

/// What, kind, command, target, value.
type Case = (&'static str, MessageType, &'static str, Vec<u8>, Option<Vec<u8>>);

#[test]
fn reference_crash_inputs_are_dropped_and_counted() {
    let mut n = net();
    let k = key(8);
    let pk = k.verifying_key().to_bytes();
    let ok = record(&k, b"x", 1, None);
    let mut cases: Vec<Case> = vec![
        ("mutable update without value", MessageType::Update, CMD_MUTABLE_STORE, pk.to_vec(), None),
        ("mutable query without value", MessageType::Query, CMD_MUTABLE_STORE, pk.to_vec(), None),
        ("immutable update without value", MessageType::Update, CMD_IMMUTABLE_STORE, immutable::key(b"").to_vec(), None),
        ("undecodable Mutable", MessageType::Update, CMD_MUTABLE_STORE, pk.to_vec(), Some(vec![0x0a, 0x05, 1])),
        ("31-byte key", MessageType::Update, CMD_MUTABLE_STORE, pk[..31].to_vec(), Some(ok.encode())),
        ("31-byte target, query", MessageType::Query, CMD_IMMUTABLE_STORE, vec![1; 31], None),
    ];
    let mut big = record(&k, &[0x62; 1001], 1, None);
    big.signature = ok.signature.clone();
    cases.push(("value 1001", MessageType::Update, CMD_MUTABLE_STORE, pk.to_vec(), Some(big.encode())));
    let salt = record(&k, b"x", 1, Some(&[0x73; 65]));
    cases.push(("salt 65", MessageType::Update, CMD_MUTABLE_STORE, pk.to_vec(), Some(salt.encode())));
    let mut short = ok.clone();
    short.signature.as_mut().unwrap().truncate(63);
    cases.push(("signature 63", MessageType::Update, CMD_MUTABLE_STORE, pk.to_vec(), Some(short.encode())));
    for (i, (what, kind, cmd, target, value)) in cases.into_iter().enumerate() {
        let replies = n.send(ALICE, kind, cmd, &target, value);
        assert!(replies.is_empty(), "{what}: no reply, got {replies:?}");
        assert_eq!(n.node.stats().values_dropped, i as u64 + 1, "{what}: counted");
    }
    // Positive control: the same request, well formed, is answered.
    assert_ok(&n.put_mutable(ALICE, &pk, ok));
    assert_eq!(n.node.stats().values_stored, 1);
}

#[test]
fn one_ip_flooding_evicts_only_its_own_values() {
    let mut n = net();
    assert_ok(&n.put_immutable(BOB, b"bob's"));
    for i in 0..(MAX_VALUES_PER_IP + 50) as u32 {
        assert_ok(&n.put_immutable(ALICE, &i.to_be_bytes()));
    }
    assert_eq!(n.get_immutable(BOB, &immutable::key(b"bob's")), Some(b"bob's".to_vec()));
    assert_eq!(n.node.values().values_of(*ALICE.ip()), MAX_VALUES_PER_IP);
    assert_eq!(n.get_immutable(BOB, &immutable::key(&0u32.to_be_bytes())), None, "the flooder's oldest went");
    assert_eq!(n.node.stats().values_evicted, 50);
}

#[test]
fn one_subnet_flooding_evicts_only_its_own_values() {
    let mut n = net();
    let neighbour = addr(198, 51, 101, 1);
    assert_ok(&n.put_immutable(neighbour, b"neighbour"));
    let mut i = 0u32;
    for host in 1..=8u8 {
        for _ in 0..MAX_VALUES_PER_IP * 5 / 8 {
            assert_ok(&n.put_immutable(addr(198, 51, 100, host), &i.to_be_bytes()));
            i += 1;
        }
    }
    let held: usize = (1..=8u8).map(|h| n.node.values().values_of(*addr(198, 51, 100, h).ip())).sum();
    assert_eq!(held, MAX_VALUES_PER_SUBNET);
    assert_eq!(n.node.values().len(), MAX_VALUES_PER_SUBNET + 1);
    assert_eq!(n.node.stats().values_evicted as usize, 8 * (MAX_VALUES_PER_IP * 5 / 8) - MAX_VALUES_PER_SUBNET);
    assert_eq!(n.get_immutable(BOB, &immutable::key(b"neighbour")), Some(b"neighbour".to_vec()));
}

#[test]
fn capacity_is_bounded_and_small_parties_survive() {
    let mut n = net();
    let honest: Vec<SocketAddrV4> = (0..20u8).map(|i| addr(100, 64, i, 1)).collect();
    for (i, h) in honest.iter().enumerate() {
        assert_ok(&n.put_immutable(*h, format!("honest {i}").as_bytes()));
    }
    // Many /24s, each filling its quota, well past the capacity.
    let mut i = 0u32;
    'flood: for net24 in 0..=255u8 {
        for host in 1..=4u8 {
            for _ in 0..MAX_VALUES_PER_IP {
                if i as usize > MAX_VALUES + 1000 {
                    break 'flood;
                }
                assert_ok(&n.put_immutable(addr(10, 9, net24, host), &i.to_be_bytes()));
                i += 1;
            }
        }
    }
    assert_eq!(n.node.values().len(), MAX_VALUES);
    assert!(n.node.stats().values_evicted >= 1000);
    for (i, h) in honest.iter().enumerate() {
        let v = format!("honest {i}");
        assert_eq!(n.get_immutable(*h, &immutable::key(v.as_bytes())), Some(v.into_bytes()), "honest {i} kept");
    }
}

#[test]
fn store_replies_stay_within_the_amplification_budget() {
    let mut n = net();
    let k = key(9);
    let pk = k.verifying_key().to_bytes();
    let salt = [0x73; 64];
    assert_ok(&n.put_mutable(ALICE, &pk, record(&k, &[0x62; 1000], 1, Some(&salt))));
    // A source that never completed a round trip asks for the ~1.2 KB
    // record over and over with ~100-byte requests.
    let victim = addr(192, 0, 2, 200);
    let mut answered = 0;
    for _ in 0..20 {
        answered += n.send(victim, MessageType::Query, CMD_MUTABLE_STORE, &pk, Some(Mutable { seq: Some(0), salt: Some(salt.to_vec()), ..Default::default() }.encode())).len();
    }
    assert!(answered >= 2, "the first replies fit the burst: {answered}");
    assert!(answered < 10, "then the 3x rule holds: {answered}");
    assert!(n.node.stats().amplification_dropped > 0);
}

/// Every store bound pushed past in one run, with honest records of other
/// parties (immutable and mutable) that must all survive:
///
/// 1. one IP writes 10× its quota, and re-puts every honest immutable
///    value and replays every honest mutable record it can read (an
///    identical re-put must not make it the writer, or its own churn
///    would then evict them);
/// 2. one /24 (16 hosts) writes 4× its quota, the same way;
/// 3. many /24s push the store 2,000 past its capacity;
/// 4. then, with the store full, one more IP floods.
///
/// After every single put the store holds at most [`MAX_VALUES`].
#[test]
fn spam_past_every_bound_never_evicts_other_parties() {
    let mut n = net();
    let mut puts = 0usize;
    let mut check = |n: &mut Net| {
        puts += 1;
        // 2 ms a put keeps every sender under the request rate.
        n.now += std::time::Duration::from_millis(2);
        assert!(n.node.values().len() <= MAX_VALUES, "store over capacity after put {puts}: {}", n.node.values().len());
    };
    // Honest parties: 40 hosts in 40 /24s, 3 immutable values and 2 mutable
    // records (one salted) each.
    let honest: Vec<SocketAddrV4> = (0..40u8).map(|i| addr(100, 64, i, 7)).collect();
    let mut imm: Vec<Vec<u8>> = Vec::new();
    let mut muts: Vec<(SigningKey, Mutable)> = Vec::new();
    for (i, h) in honest.iter().enumerate() {
        for j in 0..3 {
            let v = format!("honest {i} value {j}").into_bytes();
            assert_ok(&n.put_immutable(*h, &v));
            check(&mut n);
            imm.push(v);
        }
        let k = key(100 + i as u8);
        let pk = k.verifying_key().to_bytes();
        for salt in [None, Some(&b"0123456789abcdef"[..])] {
            let r = record(&k, format!("honest {i} record").as_bytes(), 5, salt);
            assert_ok(&n.put_mutable(*h, &pk, r.clone()));
            check(&mut n);
            muts.push((k.clone(), r));
        }
    }
    let honest_count = n.node.values().len();
    assert_eq!(honest_count, 40 * 5);
    let all_honest_kept = |n: &mut Net, phase: &str| {
        let reader = addr(192, 0, 2, 99);
        for v in &imm {
            assert_eq!(n.get_immutable(reader, &immutable::key(v)).as_ref(), Some(v), "{phase}: immutable {:?} evicted", String::from_utf8_lossy(v));
        }
        for (k, r) in &muts {
            let pk = k.verifying_key().to_bytes();
            assert_eq!(n.get_mutable(reader, &pk, 0, r.salt.as_deref()).as_ref(), Some(r), "{phase}: mutable record evicted");
        }
    };
    // What a spammer does from `from`: its own values, and everyone's it can read.
    let spam = |n: &mut Net, from: SocketAddrV4, own: usize, tag: &str, check: &mut dyn FnMut(&mut Net)| {
        for i in 0..own {
            assert_ok(&n.put_immutable(from, format!("{tag} {i}").as_bytes()));
            check(n);
            if i % 64 == 0 {
                for v in &imm {
                    assert_ok(&n.put_immutable(from, v));
                    check(n);
                }
                for (k, r) in &muts {
                    let reply = n.put_mutable(from, &k.verifying_key().to_bytes(), r.clone());
                    assert_err(&reply, mutable::ERR_SEQ_MUST_EXCEED_CURRENT);
                    check(n);
                }
            }
        }
    };

    // 1. One IP, 10× its quota.
    let spammer = addr(10, 66, 0, 1);
    spam(&mut n, spammer, 10 * MAX_VALUES_PER_IP, "ip spam", &mut check);
    assert_eq!(n.node.values().values_of(*spammer.ip()), MAX_VALUES_PER_IP);
    assert_eq!(n.node.values().len(), honest_count + MAX_VALUES_PER_IP, "the IP displaced only itself");
    all_honest_kept(&mut n, "one IP");

    // 2. One /24, 16 hosts, 4× the /24's quota.
    for host in 1..=16u8 {
        spam(&mut n, addr(10, 77, 0, host), MAX_VALUES_PER_SUBNET / 4, &format!("subnet spam {host}"), &mut check);
    }
    let in_subnet: usize = (1..=16u8).map(|h| n.node.values().values_of(*addr(10, 77, 0, h).ip())).sum();
    assert_eq!(in_subnet, MAX_VALUES_PER_SUBNET);
    assert_eq!(n.node.values().len(), honest_count + MAX_VALUES_PER_IP + MAX_VALUES_PER_SUBNET, "the /24 displaced only itself");
    all_honest_kept(&mut n, "one /24");

    // 3. Many /24s, each at its quota, 2,000 past the capacity.
    let mut i = 0u32;
    'flood: for net24 in 0..=255u8 {
        for host in 1..=4u8 {
            for _ in 0..MAX_VALUES_PER_IP {
                if i as usize >= MAX_VALUES + 2000 {
                    break 'flood;
                }
                assert_ok(&n.put_immutable(addr(10, 9, net24, host), &i.to_be_bytes()));
                check(&mut n);
                i += 1;
            }
        }
    }
    assert_eq!(n.node.values().len(), MAX_VALUES);
    all_honest_kept(&mut n, "many /24s");

    // 4. The store is full; one more IP floods.
    let late = addr(10, 88, 0, 1);
    spam(&mut n, late, 10 * MAX_VALUES_PER_IP, "late spam", &mut check);
    assert_eq!(n.node.values().len(), MAX_VALUES);
    assert!(n.node.values().values_of(*late.ip()) <= MAX_VALUES_PER_IP);
    all_honest_kept(&mut n, "full store");
    let s = n.node.stats();
    eprintln!("{puts} puts; {} stored, {} evicted, {} held", s.values_stored, s.values_evicted, n.node.values().len());
}
