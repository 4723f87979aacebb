//! The capability exchange through a referrer (`dht::capability`), sans-IO:
//! A punches B through R, and the datagrams go between the three nodes.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::tests::announce_through;
use super::*;
use crate::dht::capability::{CACHE_CAP, CAPABILITY_MAGIC};
use crate::dht::nat::NatType;

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4001);
const R: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 4002);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 4003);

fn dht(now: Instant, id: u8, ephemeral: bool) -> Dht {
    Dht::new(now, DhtConfig { id: Some([id; 32]), ephemeral, adaptive: false, bootstrap: vec![], seed: id as u64 })
}

fn drain(d: &mut Dht) -> Vec<(SocketAddrV4, Vec<u8>)> {
    std::iter::from_fn(|| d.poll_transmit()).collect()
}

fn events(d: &mut Dht) -> Vec<DhtEvent> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

/// Delivers every datagram between the nodes until none is left; returns
/// them all as (from, to, bytes).
fn run(now: Instant, nodes: &mut HashMap<SocketAddrV4, Dht>) -> Vec<(SocketAddrV4, SocketAddrV4, Vec<u8>)> {
    let mut log = Vec::new();
    loop {
        let mut out = Vec::new();
        for (addr, d) in nodes.iter_mut() {
            for (to, bytes) in drain(d) {
                out.push((*addr, to, bytes));
            }
        }
        if out.is_empty() {
            return log;
        }
        for (from, to, bytes) in out {
            if let Some(d) = nodes.get_mut(&to) {
                d.handle_datagram(now, from, &bytes);
            }
            log.push((from, to, bytes));
        }
    }
}

fn three(now: Instant, relay_ephemeral: bool) -> HashMap<SocketAddrV4, Dht> {
    let mut a = dht(now, 0xaa, true);
    let mut r = dht(now, 0x5a, relay_ephemeral);
    let mut b = dht(now, 0xbb, true);
    a.advertise_capability(A.port(), vec![*A.ip(), Ipv4Addr::LOCALHOST]);
    b.advertise_capability(B.port(), vec![*B.ip()]);
    announce_through(&mut r, now, B);
    HashMap::from([(A, a), (R, r), (B, b)])
}

fn punches(log: &[(SocketAddrV4, SocketAddrV4, Vec<u8>)], from: SocketAddrV4, to: SocketAddrV4) -> Vec<Message> {
    log.iter().filter(|(f, t, _)| *f == from && *t == to).map(|(_, _, b)| Message::decode(b).unwrap()).collect()
}

#[test]
fn two_of_ours_learn_each_other_through_a_referrer() {
    let now = Instant::now();
    let mut nodes = three(now, false);
    let mine_a = nodes[&A].own_capability().unwrap();
    let mine_b = nodes[&B].own_capability().unwrap();
    // Loopback is no candidate; nobody has DHT reports yet, so no class
    // and no public address.
    assert_eq!(mine_a, Capability { nat: NatType::Unknown, candidates: vec![A], check: None });
    assert_eq!(mine_b, Capability { nat: NatType::Unknown, candidates: vec![B], check: None });

    let req = nodes.get_mut(&A).unwrap().holepunch(now, B, R);
    let log = run(now, &mut nodes);

    // A → R carries A's record in `target`; R → B carries it unchanged.
    let asked = punches(&log, A, R);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].target.as_deref(), Some(&mine_a.encode()[..]));
    let relayed = punches(&log, R, B);
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].target, asked[0].target, "the relay passes target through");
    // The direct punch A → B carries nothing new: B ignores it anyway.
    let direct = punches(&log, A, B);
    assert_eq!(direct.len(), 1);
    assert_eq!((direct[0].target.as_ref(), direct[0].value.as_ref()), (None, None));
    // B answers A directly, with its own record, within the relayed bytes.
    let answer = punches(&log, B, A);
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].kind, MessageType::Response);
    assert_eq!(answer[0].target.as_deref(), Some(&mine_b.encode()[..]));
    assert!(answer[0].encoded_len() <= relayed[0].encoded_len());

    let a = nodes.get_mut(&A).unwrap();
    assert_eq!(events(a), vec![DhtEvent::Holepunched { request: req, from: B, capability: Some(mine_b.clone()) }]);
    assert_eq!(a.peer_capability(now, B), Some(&mine_b));
    assert_eq!((a.stats().capabilities_learned, a.stats().capabilities_malformed), (1, 0));
    let b = nodes.get_mut(&B).unwrap();
    assert_eq!(b.peer_capability(now, A), Some(&mine_a));
    assert_eq!(b.peer_capability(now + crate::dht::capability::CACHE_TTL, A), None, "records expire");
    assert_eq!((b.stats().capabilities_learned, b.stats().capabilities_malformed), (1, 0));
    // The relay learns nothing and says so.
    let r = nodes.get_mut(&R).unwrap();
    assert_eq!(r.stats().capabilities_learned, 0);
    assert!(events(r).contains(&DhtEvent::Relayed { from: A, to: B }));
}

#[test]
fn retries_of_the_punch_carry_the_record_and_dht_punches_do_not() {
    let now = Instant::now();
    let mut a = dht(now, 0xaa, true);
    a.advertise_capability(A.port(), vec![*A.ip()]);
    let record = a.own_capability().unwrap().encode();
    a.holepunch(now, B, R);
    drain(&mut a);
    // Nobody answers: the retry punches through R again, with the record.
    let mut later = now;
    let mut retried = Vec::new();
    for _ in 0..20 {
        later += Duration::from_millis(500);
        a.handle_timeout(later);
        retried.extend(drain(&mut a).into_iter().filter(|(to, _)| *to == R).map(|(_, b)| Message::decode(&b).unwrap()));
    }
    assert!(!retried.is_empty());
    assert!(retried.iter().all(|m| m.target.as_deref() == Some(&record[..])));
    // A DHT request's own punch through a referrer (rid None) has none.
    a.send_punch(R, B, None);
    let (_, bytes) = drain(&mut a).pop().unwrap();
    assert_eq!(Message::decode(&bytes).unwrap().target, None);
}

#[test]
fn a_js_shaped_punch_gets_exactly_todays_bytes() {
    let now = Instant::now();
    // Without advertising, A's punch is dht-rpc's: no target.
    let mut plain = dht(now, 0xaa, true);
    plain.holepunch(now, B, R);
    assert!(drain(&mut plain).iter().all(|(_, b)| Message::decode(b).unwrap().target.is_none()));

    // A relayed punch without target (a JS A, through any relay) gets the
    // same answer from B whether B advertises or not.
    let relayed = {
        let mut m = Message::new(MessageType::Query, 39294);
        m.command = Some(CMD_HOLEPUNCH.into());
        m.relay_holepunch(Some([0x5a; 32]), A, B)
    };
    let answer = |advertise: bool| {
        let mut b = dht(now, 0xbb, true);
        if advertise {
            b.advertise_capability(B.port(), vec![*B.ip()]);
        }
        b.handle_datagram(now, R, &relayed.encode());
        (drain(&mut b), b.stats())
    };
    let (theirs, stats) = answer(true);
    assert_eq!(theirs, answer(false).0, "byte for byte");
    assert_eq!(theirs.len(), 1);
    assert_eq!(Message::decode(&theirs[0].1).unwrap().target, None);
    assert_eq!((stats.capabilities_learned, stats.capabilities_malformed), (0, 0));

    // And a JS B's answer (no target) gives A no capability.
    let mut nodes = three(now, false);
    let mut js_b = dht(now, 0xbb, true);
    js_b.advertise = None;
    nodes.insert(B, js_b);
    let req = nodes.get_mut(&A).unwrap().holepunch(now, B, R);
    run(now, &mut nodes);
    let a = nodes.get_mut(&A).unwrap();
    assert_eq!(events(a), vec![DhtEvent::Holepunched { request: req, from: B, capability: None }]);
    assert_eq!(a.stats().capabilities_malformed, 0);
}

#[test]
fn malformed_or_oversized_targets_are_ignored_and_counted() {
    let now = Instant::now();
    let relayed = |target: Vec<u8>| {
        let mut m = Message::new(MessageType::Query, 7);
        m.command = Some(CMD_HOLEPUNCH.into());
        m.target = Some(target);
        m.relay_holepunch(None, A, B)
    };
    let mut bad_count = CAPABILITY_MAGIC.to_vec();
    bad_count.extend_from_slice(&[1, 2, 4, 10, 0, 0]);
    for (i, target) in [vec![0x5a; 32], bad_count, b"HSN\x07\x02\x00".to_vec(), vec![]].into_iter().enumerate() {
        let mut b = dht(now, 0xbb, true);
        b.advertise_capability(B.port(), vec![*B.ip()]);
        let m = relayed(target);
        assert!(m.target.is_some(), "case {i}: fits a relay");
        b.handle_datagram(now, R, &m.encode());
        let out = drain(&mut b);
        assert_eq!(out.len(), 1, "case {i}: answered as today");
        assert_eq!(Message::decode(&out[0].1).unwrap().target, None, "case {i}: no record back");
        assert_eq!(b.peer_capability(now, A), None, "case {i}");
        assert_eq!((b.stats().capabilities_learned, b.stats().capabilities_malformed), (0, 1), "case {i}");
    }
    // Over 32 bytes, a relay of ours drops the target...
    let mut big = Capability { nat: NatType::Open, candidates: vec![A], check: None }.encode();
    big.resize(200, 0);
    assert_eq!(relayed(big.clone()).target, None);
    // ...and a JS relay, which carries it, gets no further with B: a record
    // with trailing bytes is a record, but B's answer stays within bounds.
    let mut b = dht(now, 0xbb, true);
    b.advertise_capability(B.port(), vec![*B.ip()]);
    let mut m = relayed(vec![]);
    m.target = Some(big);
    b.handle_datagram(now, R, &m.encode());
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    assert!(out[0].1.len() <= m.encoded_len());
    assert_eq!(b.peer_capability(now, A).map(|c| c.nat), Some(NatType::Open));
}

#[test]
fn the_answer_never_outgrows_the_relayed_punch() {
    let now = Instant::now();
    // The smallest relayed punch with a record: an ephemeral relay, a
    // record without candidates. B (persistent, four candidates) trims its
    // record until the answer fits, down to no candidates.
    let mut m = Message::new(MessageType::Query, 7);
    m.command = Some(CMD_HOLEPUNCH.into());
    m.target = Some(Capability { nat: NatType::Random, candidates: vec![], check: None }.encode());
    let relayed = m.relay_holepunch(None, A, B);
    let mut b = dht(now, 0xbb, false);
    let ips: Vec<Ipv4Addr> = (1..=6).map(|i| Ipv4Addr::new(192, 168, 0, i)).collect();
    b.advertise_capability(B.port(), ips);
    assert_eq!(b.own_capability().unwrap().candidates.len(), 4);
    b.handle_datagram(now, R, &relayed.encode());
    let out = drain(&mut b);
    assert_eq!(out.len(), 1);
    let answer = Message::decode(&out[0].1).unwrap();
    let base = {
        let mut a = answer.clone();
        a.target = None;
        a.encoded_len()
    };
    assert!(out[0].1.len() <= relayed.encoded_len().max(base), "{} > {}", out[0].1.len(), relayed.encoded_len());
    let theirs = answer.target.as_deref().and_then(Capability::decode);
    if let Some(c) = &theirs {
        assert!(c.candidates.len() < 4, "trimmed");
    }
    assert_eq!(b.peer_capability(now, A).map(|c| c.nat), Some(NatType::Random));
}

#[test]
fn the_capability_map_is_bounded() {
    let now = Instant::now();
    let mut b = dht(now, 0xbb, true);
    let record = Capability { nat: NatType::Consistent, candidates: vec![], check: None }.encode();
    let n = CACHE_CAP + 44;
    for i in 0..n {
        // Each punch from its own relay and origin: no rate limit in play.
        let relay = SocketAddrV4::new(Ipv4Addr::new(10, 1, (i / 200) as u8, (i % 200) as u8 + 1), 5000);
        let origin = SocketAddrV4::new(Ipv4Addr::new(10, 2, (i / 200) as u8, (i % 200) as u8 + 1), 6000);
        let mut m = Message::new(MessageType::Query, i as u64);
        m.command = Some(CMD_HOLEPUNCH.into());
        m.target = Some(record.clone());
        b.handle_datagram(now + Duration::from_millis(i as u64), relay, &m.relay_holepunch(None, origin, B).encode());
    }
    let s = b.stats();
    assert_eq!(s.capabilities_learned, n as u64);
    assert_eq!(s.capabilities_evicted, 44);
    assert_eq!(b.capabilities.len(), CACHE_CAP);
    let last = SocketAddrV4::new(Ipv4Addr::new(10, 2, ((n - 1) / 200) as u8, ((n - 1) % 200) as u8 + 1), 6000);
    let first = SocketAddrV4::new(Ipv4Addr::new(10, 2, 0, 1), 6000);
    let later = now + Duration::from_secs(1);
    assert!(b.peer_capability(later, last).is_some());
    assert!(b.peer_capability(later, first).is_none(), "the oldest went");
}
