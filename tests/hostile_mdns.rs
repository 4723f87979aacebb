//! Hostile multicast DNS against the LAN discovery core (issue 10): names
//! in answers are never resolved, queries from off the link get no answer,
//! and repeated questions cannot turn us into an amplifier. Every negative
//! check has its positive control in the same test. The packets are the
//! reference's own (our encoders are byte-identical to its captures, see
//! tests/golden_mdns.rs), built here with only the field under test changed.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hyperswarm_native::lan::{Lan, LanConfig, LanEvent, Link, ANSWER_INTERVAL};
use hyperswarm_native::wire::mdns::{self, Answer};
use simple_dns::rdata::{RData, A, SRV, TXT};
use simple_dns::{CharacterString, Name, Packet, PacketFlag, ResourceRecord, CLASS};

const TOPIC: [u8; 32] = [0x2c; 32];
/// Our interface: 10.201.0.1/24, as in the LAN lab.
fn eth0() -> Link {
    Link::net(2, Ipv4Addr::new(10, 201, 0, 1), 24)
}
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

fn lan() -> Lan {
    Lan::new(LanConfig { domain: mdns::DEFAULT_DOMAIN.into(), seed: 11 })
}

fn name() -> String {
    mdns::topic_name(&TOPIC, mdns::DEFAULT_DOMAIN)
}

/// An answer as the reference writes it, but with SRV target `target`.
fn answer_with_target(target: &str, port: u16) -> Vec<u8> {
    let n = name();
    let mut p = Packet::new_reply(0);
    p.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    let rname = Name::new(&n).unwrap();
    let srv = SRV { priority: 0, weight: 0, port, target: Name::new(target).unwrap() };
    p.answers.push(ResourceRecord::new(rname.clone(), CLASS::IN, 0, RData::SRV(srv)));
    let id = mdns::instance_id([9; 32]);
    let txt = TXT::new().with_char_string(CharacterString::new(&id).unwrap());
    p.answers.push(ResourceRecord::new(rname, CLASS::IN, 0, RData::TXT(txt)));
    let referrer = Name::new("referrer.hyperswarm.local").unwrap();
    p.answers.push(ResourceRecord::new(referrer, CLASS::IN, 0, RData::A(A::from(NEIGHBOUR))));
    p.build_bytes_vec().unwrap()
}

fn peers(l: &mut Lan) -> Vec<(String, u16)> {
    std::iter::from_fn(|| l.poll_event()).map(|LanEvent::Peer { host, port, .. }| (host.to_string(), port)).collect()
}

fn drain(l: &mut Lan) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| l.poll_transmit().map(|t| t.payload)).collect()
}

#[test]
fn an_answer_naming_a_host_is_ignored_and_one_naming_an_address_is_used() {
    let now = Instant::now();
    let mut l = lan();
    l.join(now, TOPIC, true, None);
    drain(&mut l);
    // A host name: not resolved, not reported.
    l.handle_datagram(now, NEIGHBOUR, &eth0(), &answer_with_target("evil.example.com", 4000));
    l.handle_datagram(now, NEIGHBOUR, &eth0(), &answer_with_target("localhost", 4001));
    assert_eq!(peers(&mut l), vec![]);
    assert_eq!(l.stats().bad_targets, 2);
    // Control: the same answer naming an address on the link is used...
    l.handle_datagram(now, NEIGHBOUR, &eth0(), &answer_with_target("10.201.0.7", 4000));
    assert_eq!(peers(&mut l), vec![("10.201.0.7".to_string(), 4000)]);
    // ...and the reference's own form, target 0.0.0.0, means the sender.
    l.handle_datagram(now, NEIGHBOUR, &eth0(), &answer_with_target("0.0.0.0", 4000));
    assert_eq!(peers(&mut l), vec![("10.201.0.2".to_string(), 4000)]);
    // An address that no peer on this link can have is no better than a name.
    for bad in ["8.8.8.8", "255.255.255.255", "224.0.0.251", "127.0.0.1"] {
        l.handle_datagram(now, NEIGHBOUR, &eth0(), &answer_with_target(bad, 4000));
    }
    assert_eq!(peers(&mut l), vec![]);
    assert_eq!(l.stats().bad_targets, 6);
}

#[test]
fn a_query_from_off_the_link_is_not_answered_and_one_from_the_link_is() {
    let now = Instant::now();
    let mut l = lan();
    l.join(now, TOPIC, false, Some(30001));
    drain(&mut l);
    let query = mdns::encode_query(&[&name()]).unwrap();
    // Off the link: another subnet, a public address, a spoofed loopback.
    for off in [Ipv4Addr::new(10, 201, 1, 2), Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::LOCALHOST] {
        l.handle_datagram(now, off, &eth0(), &query);
    }
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.stats().off_link, 3);
    assert_eq!(l.stats().queries_answered, 0);
    // Control: from the link, answered at once, out of that interface.
    l.handle_datagram(now, NEIGHBOUR, &eth0(), &query);
    let t = l.poll_transmit().expect("an answer");
    assert_eq!(t.via, Some(Ipv4Addr::new(10, 201, 0, 1)));
    assert_eq!(t.payload.len(), 242, "the reference's answer shape (wire-mdns.md §6.2)");
    // Link-local sources are on every link; on loopback, everything is local.
    let mut l2 = lan();
    l2.join(now, TOPIC, false, Some(1));
    drain(&mut l2);
    l2.handle_datagram(now, Ipv4Addr::new(169, 254, 0, 9), &eth0(), &query);
    l2.handle_datagram(now, Ipv4Addr::LOCALHOST, &Link::loopback(), &query);
    assert_eq!(l2.stats().queries_answered, 2, "one per interface");
    // Responses from off the link are not believed either.
    let mut l3 = lan();
    l3.join(now, TOPIC, true, None);
    l3.handle_datagram(now, Ipv4Addr::new(192, 168, 9, 9), &eth0(), &answer_with_target("0.0.0.0", 5));
    assert_eq!(peers(&mut l3), vec![]);
    l3.handle_datagram(now, NEIGHBOUR, &eth0(), &answer_with_target("0.0.0.0", 5));
    assert_eq!(peers(&mut l3).len(), 1);
}

#[test]
fn repeated_questions_are_rate_limited() {
    let t0 = Instant::now();
    let mut l = lan();
    l.join(t0, TOPIC, false, Some(30001));
    drain(&mut l);
    // The attack: ~2.1 KB of one question repeated.
    let n = name();
    let repeated: Vec<&str> = std::iter::repeat_n(n.as_str(), 33).collect();
    let query = mdns::encode_query(&repeated).unwrap();
    assert!(query.len() > 2000, "{}", query.len());
    // What an answerer without limits sends for one such query: an answer
    // pair per question (the reference answers every question).
    let id = mdns::instance_id([0; 32]);
    let each: Vec<Answer<'_>> = (0..33).map(|_| Answer { name: &n, port: 30001, id: &id }).collect();
    let unlimited = mdns::encode_response(&each, Some((NEIGHBOUR, mdns::DEFAULT_DOMAIN))).unwrap().len();
    // 1,000 such queries over 10 s (100 per second) from one neighbour.
    let (mut bytes_in, mut bytes_out, mut packets_out) = (0usize, 0usize, 0usize);
    for i in 0..1000u64 {
        let now = t0 + Duration::from_millis(i * 10);
        l.handle_timeout(now);
        l.handle_datagram(now, NEIGHBOUR, &eth0(), &query);
        bytes_in += query.len();
        for p in drain(&mut l) {
            bytes_out += p.len();
            packets_out += 1;
        }
    }
    l.handle_timeout(t0 + Duration::from_secs(11));
    for p in drain(&mut l) {
        bytes_out += p.len();
        packets_out += 1;
    }
    println!(
        "repeated questions: {bytes_in} B in, {bytes_out} B out in {packets_out} answers (ratio {:.4}); \
         without limits: {} B out (one {unlimited} B answer per query, ratio {:.1})",
        bytes_out as f64 / bytes_in as f64,
        unlimited * 1000,
        (unlimited * 1000) as f64 / bytes_in as f64
    );
    // At most one answer per ANSWER_INTERVAL (10 s of queries: ≤ 11), each
    // the 242-byte single answer, never one per question.
    assert!(packets_out <= (10 * Duration::from_secs(1).as_millis() / ANSWER_INTERVAL.as_millis()) as usize + 1);
    assert!(packets_out >= 10, "control: the querier is still answered every second ({packets_out})");
    assert!(bytes_out <= packets_out * 242);
    assert!(bytes_out * 100 < bytes_in, "out {bytes_out} vs in {bytes_in}");
    assert_eq!(l.stats().repeated_questions, 1000 * 32);
    assert!(unlimited > 2 * query.len(), "the attack amplifies without limits: {unlimited}");
}

#[test]
fn queries_within_a_second_share_one_answer_so_a_late_querier_is_still_answered() {
    let t0 = Instant::now();
    let mut l = lan();
    l.join(t0, TOPIC, false, Some(30001));
    drain(&mut l);
    let query = mdns::encode_query(&[&name()]).unwrap();
    l.handle_datagram(t0, NEIGHBOUR, &eth0(), &query);
    assert_eq!(drain(&mut l).len(), 1);
    // A second querier 300 ms later: held back, not dropped.
    let late = t0 + Duration::from_millis(300);
    l.handle_datagram(late, Ipv4Addr::new(10, 201, 0, 3), &eth0(), &query);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(t0 + ANSWER_INTERVAL));
    l.handle_timeout(t0 + ANSWER_INTERVAL);
    let answers = drain(&mut l);
    assert_eq!(answers.len(), 1);
    // The deferred answer names the latest querier as the referrer, as the
    // reference's answer to that query would.
    assert_eq!(&answers[0][answers[0].len() - 4..], &[10, 201, 0, 3]);
    // Another interface has its own budget.
    l.handle_datagram(late, NEIGHBOUR, &Link::net(3, Ipv4Addr::new(10, 201, 0, 1), 24), &query);
    assert_eq!(drain(&mut l).len(), 1);
}
