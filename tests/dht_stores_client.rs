//! The client side of `immutable-store` / `mutable-store` (notes
//! dht4-stores.md §2-§4) on many sans-IO nodes with a virtual clock: puts
//! from one node, gets from another, seq updates and conflicts, not found,
//! and replies a hostile node forges. Nothing opens a socket.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::sim::{Sim, SimConfig};
use hyperswarm_native::dht::hypersign::salt;
use hyperswarm_native::dht::routing_table::distance;
use hyperswarm_native::dht::tokens::Tokens;
use hyperswarm_native::dht::{
    Dht, DhtConfig, DhtEvent, Got, Keypair, MutablePutOptions, QueryId, Signer, StoreFailure, StoreOutcome,
};
use hyperswarm_native::wire::dht::{encode_nodes, Message, MessageType, Mutable, NodeRecord, CMD_MUTABLE_STORE};

type Warnings = Vec<(String, Option<Mutable>)>;

fn network(nodes: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig { nodes, seed, ..Default::default() });
    for i in 1..nodes {
        sim.bootstrap(i);
    }
    sim.run_for(Duration::from_secs(30));
    sim
}

/// Runs until store operation `q` of node `i` ends (within two virtual
/// minutes); returns its result and its warnings in arrival order.
fn wait(sim: &mut Sim, i: usize, q: QueryId) -> (Result<StoreOutcome, StoreFailure>, Warnings) {
    let deadline = sim.now + Duration::from_secs(120);
    let mut warnings = Vec::new();
    loop {
        let mut done = None;
        for ev in sim.events[i].drain(..) {
            match ev {
                DhtEvent::StoreWarning { query, error, proof, .. } if query == q => warnings.push((error, proof)),
                DhtEvent::StoreDone { query, result } if query == q => done = Some(result),
                DhtEvent::QueryDone { query, .. } if query == q => panic!("a store operation ended with QueryDone"),
                _ => {}
            }
        }
        if let Some(r) = done {
            // Exactly one StoreDone: nothing more for q arrives later.
            sim.run_for(Duration::from_secs(10));
            assert!(!sim.events[i].iter().any(|e| matches!(e, DhtEvent::StoreDone { query, .. } if *query == q)), "second StoreDone");
            return (r, warnings);
        }
        assert!(sim.now < deadline, "store operation {q} of node {i} did not end");
        let step = sim.now + Duration::from_millis(100);
        sim.run_until(step);
    }
}

fn got(r: Result<StoreOutcome, StoreFailure>) -> Option<Got> {
    match r {
        Ok(StoreOutcome::Got(g)) => g,
        other => panic!("expected a get result, got {other:?}"),
    }
}

fn mput(sim: &mut Sim, i: usize, k: &Keypair, value: &[u8], seq: u64, salt: Option<&[u8]>) -> (Result<StoreOutcome, StoreFailure>, Warnings) {
    let opts = MutablePutOptions { signer: Signer::Keypair(k.clone()), seq, salt: salt.map(<[u8]>::to_vec) };
    let q = sim.with_node(i, |d, now| d.mutable_put(now, value.to_vec(), opts)).expect("valid put");
    wait(sim, i, q)
}

fn mget(sim: &mut Sim, i: usize, pk: [u8; 32], seq: u64, salt: Option<&[u8]>) -> Option<Got> {
    let q = sim.with_node(i, |d, now| d.mutable_get(now, pk, seq, salt.map(<[u8]>::to_vec))).expect("valid get");
    got(wait(sim, i, q).0)
}

#[test]
fn immutable_put_then_get_from_another_node_and_locally() {
    let mut sim = network(40, 11);
    let value = b"hello stores".to_vec();
    let (q, key) = sim.with_node(5, |d, now| d.immutable_put(now, value.clone())).unwrap();
    let (r, warnings) = wait(&mut sim, 5, q);
    assert_eq!(r, Ok(StoreOutcome::ImmutablePut { key }));
    assert!(warnings.is_empty(), "{warnings:?}");
    let stored = sim.nodes.iter().filter(|n| n.stats().values_stored > 0).count();
    assert!(stored >= 10, "put reached the closest nodes ({stored})");

    let q = sim.with_node(23, |d, now| d.immutable_get(now, key));
    let g = got(wait(&mut sim, 23, q).0).expect("found");
    assert_eq!(g.value, value);
    assert!(g.from.is_some() && g.node_id.is_some(), "{g:?}");

    // The putter kept a copy: its get needs no network.
    let sent = sim.datagrams;
    let q = sim.with_node(5, |d, now| d.immutable_get(now, key));
    let g = got(wait(&mut sim, 5, q).0).expect("local copy");
    assert_eq!((g.from, g.node_id, g.value), (None, Some(*sim.nodes[5].id()), value));
    assert_eq!(sim.datagrams, sent, "no datagram for a local hit");
}

#[test]
fn mutable_put_and_get_with_and_without_salt_and_seq_updates() {
    let mut sim = network(40, 12);
    let k = Keypair::from_seed(&[9; 32]);
    let s = salt("profile", 32).unwrap();

    let (r, w) = mput(&mut sim, 3, &k, b"plain", 0, None);
    assert!(matches!(r, Ok(StoreOutcome::MutablePut { seq: 0, salt: None, .. })), "{r:?}");
    assert!(w.is_empty(), "{w:?}");
    let (r, _) = mput(&mut sim, 3, &k, b"salted", 0, Some(&s));
    let Ok(StoreOutcome::MutablePut { public_key, signature, seq: 0, salt: Some(ps) }) = r else { panic!("{r:?}") };
    assert_eq!((public_key, ps.as_slice()), (k.public_key, s.as_slice()));
    assert_eq!(signature, k.sign(b"salted", Some(&s), 0).unwrap().to_vec());

    let g = mget(&mut sim, 30, k.public_key, 0, None).expect("unsalted record");
    assert_eq!((g.value.as_slice(), g.seq, g.salt.as_deref()), (&b"plain"[..], Some(0), None));
    let g = mget(&mut sim, 31, k.public_key, 0, Some(&s)).expect("salted record");
    assert_eq!((g.value.as_slice(), g.salt.as_deref()), (&b"salted"[..], Some(s.as_slice())));
    assert!(mget(&mut sim, 31, k.public_key, 0, Some(b"another salt....")).is_none(), "other salt: not found");

    // seq update, then a get that asks for at least that seq.
    assert!(mget(&mut sim, 32, k.public_key, 1, None).is_none(), "seq 1 not there yet");
    let (r, w) = mput(&mut sim, 4, &k, b"plain v2", 1, None);
    assert!(r.is_ok() && w.is_empty(), "{r:?} {w:?}");
    let g = mget(&mut sim, 32, k.public_key, 1, None).expect("seq 1");
    assert_eq!((g.value.as_slice(), g.seq), (&b"plain v2"[..], Some(1)));
}

#[test]
fn seq_conflicts_fail_the_put_with_the_proof() {
    let mut sim = network(40, 13);
    let k = Keypair::from_seed(&[10; 32]);
    assert!(mput(&mut sim, 3, &k, b"one", 1, None).0.is_ok());

    // Same seq, another value.
    let (r, w) = mput(&mut sim, 7, &k, b"two", 1, None);
    let Err(StoreFailure { error, proof: Some(proof), from: Some(_) }) = r else { panic!("{r:?}") };
    assert_eq!(error, "ERR_INVALID_SEQ");
    assert_eq!((proof.value.as_deref(), proof.seq), (Some(&b"one"[..]), Some(1)));
    assert_eq!(w.len(), 1, "the first proof ends the put: {w:?}");
    assert_eq!((w[0].0.as_str(), w[0].1.as_ref()), ("ERR_INVALID_SEQ", Some(&proof)));

    // A lower seq, and the identical record again.
    for (value, seq) in [(&b"zero"[..], 0), (&b"one"[..], 1)] {
        let (r, _) = mput(&mut sim, 8, &k, value, seq, None);
        assert!(matches!(&r, Err(StoreFailure { error, .. }) if error == "ERR_SEQ_MUST_EXCEED_CURRENT"), "{r:?}");
    }
    // Nothing was overwritten.
    assert_eq!(mget(&mut sim, 20, k.public_key, 0, None).map(|g| g.value), Some(b"one".to_vec()));
}

#[test]
fn a_seq_conflict_after_a_timeout_still_fails_the_put() {
    // The reference only looks at its first warning; here a walk timeout
    // comes first, and the conflict behind it must still fail the put.
    let mut sim = network(40, 14);
    let k = Keypair::from_seed(&[11; 32]);
    assert!(mput(&mut sim, 3, &k, b"one", 1, None).0.is_ok());
    let closest = (1..sim.nodes.len())
        .filter(|&i| i != 3 && i != 9 && sim.nodes[i].stats().values_stored > 0)
        .min_by_key(|&i| distance(sim.nodes[i].id(), &k.public_key))
        .expect("a node stores the record");
    sim.kill(closest);
    let (r, w) = mput(&mut sim, 9, &k, b"two", 1, None);
    assert_eq!(w.first().map(|x| x.0.as_str()), Some("Request timed out"), "{w:?}");
    assert!(matches!(&r, Err(StoreFailure { error, proof: Some(_), .. }) if error == "ERR_INVALID_SEQ"), "{r:?} {w:?}");
}

#[test]
fn not_found_and_nobody_answering() {
    let mut sim = network(30, 15);
    let q = sim.with_node(4, |d, now| d.immutable_get(now, [0xab; 32]));
    assert_eq!(got(wait(&mut sim, 4, q).0), None);
    assert!(mget(&mut sim, 4, Keypair::from_seed(&[12; 32]).public_key, 0, None).is_none());

    // A node whose only contact is dead.
    let mut sim = Sim::new(SimConfig { nodes: 2, seed: 16, ..Default::default() });
    sim.kill(0);
    let (q, _) = sim.with_node(1, |d, now| d.immutable_put(now, b"x".to_vec())).unwrap();
    let (r, w) = wait(&mut sim, 1, q);
    assert_eq!(r.map_err(|f| f.error), Err("No nodes responded".to_string()));
    assert!(w.iter().all(|(e, _)| e == "Request timed out") && !w.is_empty(), "{w:?}");
    let q = sim.with_node(1, |d, now| d.immutable_get(now, [1; 32]));
    assert_eq!(wait(&mut sim, 1, q).0.map_err(|f| f.error), Err("No nodes responded".to_string()));
}

#[test]
fn bad_inputs_are_refused_before_anything_is_sent() {
    let mut sim = network(5, 17);
    let k = Keypair::from_seed(&[13; 32]);
    let sent = sim.datagrams;
    assert!(sim.with_node(1, |d, now| d.immutable_put(now, vec![0; 1001])).is_err());
    let opts = MutablePutOptions { signer: Signer::Keypair(k.clone()), seq: 1 << 53, salt: None };
    assert!(sim.with_node(1, |d, now| d.mutable_put(now, b"v".to_vec(), opts)).is_err());
    assert!(sim.with_node(1, |d, now| d.mutable_get(now, k.public_key, 0, Some(vec![0; 65]))).is_err());
    assert_eq!(sim.datagrams, sent);
}

// ----- a hostile node, by hand ------------------------------------------------

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 40000);
const HOSTILE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 66), 49737);
const HONEST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 49737);
const SECRET: [u8; 32] = [0x33; 32];

fn drain(d: &mut Dht) -> Vec<(SocketAddrV4, Message)> {
    std::iter::from_fn(|| d.poll_transmit()).filter_map(|(a, b)| Message::decode(&b).ok().map(|m| (a, m))).collect()
}

/// A client whose only contact is the hostile node, and an honest node
/// holding `record` under `pk`.
fn setup(pk: [u8; 32], record: &Mutable) -> (Dht, Dht, Instant) {
    let now = Instant::now();
    let client = Dht::new(now, DhtConfig { id: None, ephemeral: true, adaptive: false, bootstrap: vec![HOSTILE], seed: 1 });
    let mut honest = Dht::new(now, DhtConfig { id: Some([0x77; 32]), ephemeral: false, adaptive: false, bootstrap: vec![], seed: 2 });
    honest.set_token_secrets(SECRET, SECRET);
    let mut u = Message::new(MessageType::Update, 1);
    u.command = Some(CMD_MUTABLE_STORE.into());
    u.target = Some(pk.to_vec());
    u.value = Some(record.encode());
    u.roundtrip_token = Some(Tokens::new(SECRET, SECRET).token(*CLIENT.ip()).to_vec());
    honest.handle_datagram(now, CLIENT, &u.encode());
    assert_eq!(honest.stats().values_stored, 1);
    drain(&mut honest);
    (client, honest, now)
}

/// The hostile node answers the client's request to it with `value` and
/// names the honest node as closer.
fn hostile_reply(client: &mut Dht, now: Instant, value: Vec<u8>) {
    let out = drain(client);
    let (_, req) = out.iter().find(|(a, _)| *a == HOSTILE).expect("a request to the hostile node");
    let mut r = Message::new(MessageType::Response, req.rid);
    r.id = Some([0x66; 32]);
    r.roundtrip_token = Some(vec![1; 32]);
    r.closer_nodes = Some(encode_nodes(&[NodeRecord { id: [0x77; 32], addr: HONEST }]));
    r.value = Some(value);
    client.handle_datagram(now, HOSTILE, &r.encode());
}

/// Relays the client's requests to the honest node and its answers back.
fn relay_honest(client: &mut Dht, honest: &mut Dht, now: Instant) {
    for (to, m) in drain(client) {
        if to == HONEST {
            honest.handle_datagram(now, CLIENT, &m.encode());
            for (_, r) in drain(honest) {
                client.handle_datagram(now, HONEST, &r.encode());
            }
        }
    }
}

fn store_done(client: &mut Dht) -> Option<Result<StoreOutcome, StoreFailure>> {
    std::iter::from_fn(|| client.poll_event()).find_map(|e| if let DhtEvent::StoreDone { result, .. } = e { Some(result) } else { None })
}

#[test]
fn forged_records_from_a_hostile_node_are_dropped_by_get_verification() {
    let k = Keypair::from_seed(&[14; 32]);
    let good = Mutable { value: Some(b"good".to_vec()), signature: Some(k.sign(b"good", None, 3).unwrap().to_vec()), seq: Some(3), salt: None };
    // Forgeries: another value under the real signature, a higher seq, a
    // valid record signed by another key, a record signed with a salt the
    // caller did not ask for but labelled unsalted.
    let other = Keypair::from_seed(&[15; 32]);
    let forgeries = [
        Mutable { value: Some(b"evil".to_vec()), ..good.clone() },
        Mutable { seq: Some(99), ..good.clone() },
        Mutable { signature: Some(other.sign(b"evil", None, 3).unwrap().to_vec()), value: Some(b"evil".to_vec()), ..good.clone() },
        Mutable { signature: Some(k.sign(b"good", Some(b"s"), 3).unwrap().to_vec()), ..good.clone() },
    ];
    for forged in forgeries {
        let (mut client, mut honest, now) = setup(k.public_key, &good);
        client.mutable_get(now, k.public_key, 0, None).unwrap();
        hostile_reply(&mut client, now, forged.encode());
        assert_eq!(store_done(&mut client), None, "forged record accepted: {forged:?}");
        relay_honest(&mut client, &mut honest, now);
        let r = store_done(&mut client).expect("the honest reply ends the get");
        let Ok(StoreOutcome::Got(Some(g))) = r else { panic!("{r:?}") };
        assert_eq!((g.value.as_slice(), g.seq, g.from), (&b"good"[..], Some(3), Some(HONEST)));
    }
    // Immutable: a value that does not hash to the key is dropped, and the
    // walk goes on to the honest node (which has nothing: not found).
    let (mut client, mut honest, now) = setup(k.public_key, &good);
    client.immutable_get(now, hyperswarm_native::dht::immutable::key(b"real"));
    hostile_reply(&mut client, now, b"fake".to_vec());
    assert_eq!(store_done(&mut client), None);
    relay_honest(&mut client, &mut honest, now);
    assert_eq!(store_done(&mut client), Some(Ok(StoreOutcome::Got(None))));
}
