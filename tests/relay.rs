//! The relay core on a virtual clock (issue 11 item 5): pairing,
//! forwarding both ways, every cap refusing with its reason, the rate cap,
//! lifetimes, the half-open bound pushed past, spoofed and malformed input
//! dropped and counted, and no amplification towards unverified sources.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::relay::message::{Cookie, COOKIE_LEN, JOIN_LEN, MAX_DATAGRAM};
use hyperswarm_native::relay::{EndReason, Message, Refusal, Relay, RelayConfig, Token};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn addr(a: u8, b: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, a, b), port)
}

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4000);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5000);

/// What the relay sent, decoded, and to whom.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Challenge(Token, Cookie),
    Waiting(Token, u64, u32),
    Paired(Token, u64, u32),
    Refused(Token, Refusal),
    Data(u64, Vec<u8>),
    Ended(Token, EndReason),
}

fn drain(r: &mut Relay) -> Vec<(SocketAddrV4, Out)> {
    std::iter::from_fn(|| r.poll_transmit())
        .map(|(to, bytes)| {
            let out = match Message::decode(&bytes).expect("the relay sends what it can read") {
                Message::Challenge { token, cookie } => Out::Challenge(token, cookie),
                Message::Waiting { token, id, expires_in } => Out::Waiting(token, id, expires_in),
                Message::Paired { token, id, expires_in } => Out::Paired(token, id, expires_in),
                Message::Refused { token, reason } => Out::Refused(token, reason),
                Message::Data { id, payload } => Out::Data(id, payload.to_vec()),
                Message::Ended { token, reason } => Out::Ended(token, reason),
                m => panic!("the relay sent a peer's message {m:?}"),
            };
            (to, out)
        })
        .collect()
}

/// A join with the challenge round trip; what the relay answered `from`.
fn join(r: &mut Relay, now: Instant, from: SocketAddrV4, token: Token) -> Vec<(SocketAddrV4, Out)> {
    r.handle_datagram(now, from, &Message::Join { token, cookie: [0; COOKIE_LEN] }.encode());
    let out = drain(r);
    let [(to, Out::Challenge(t, cookie))] = out.as_slice() else { panic!("expected one challenge, got {out:?}") };
    assert_eq!((*to, *t), (from, token));
    r.handle_datagram(now, from, &Message::Join { token, cookie: *cookie }.encode());
    drain(r)
}

fn data(id: u64, payload: &[u8]) -> Vec<u8> {
    Message::Data { id, payload }.encode()
}

/// A and B paired under `token`; their ids.
fn pair(r: &mut Relay, now: Instant, a: SocketAddrV4, b: SocketAddrV4, token: Token) -> (u64, u64) {
    let out = join(r, now, a, token);
    let [(_, Out::Waiting(_, _, _))] = out.as_slice() else { panic!("{out:?}") };
    let out = join(r, now, b, token);
    let (mut ia, mut ib) = (None, None);
    for (to, o) in out {
        match o {
            Out::Paired(t, id, _) if t == token && to == a => ia = Some(id),
            Out::Paired(t, id, _) if t == token && to == b => ib = Some(id),
            o => panic!("unexpected {o:?} to {to}"),
        }
    }
    (ia.expect("A told"), ib.expect("B told"))
}

fn relay(config: RelayConfig) -> (Relay, Instant) {
    let now = Instant::now();
    (Relay::new(config, now, [9; 32]), now)
}

#[test]
fn two_peers_pair_and_their_datagrams_cross_both_ways() {
    let (mut r, now) = relay(RelayConfig::default());
    let token = [1; 32];
    let out = join(&mut r, now, A, token);
    let [(to, Out::Waiting(t, id_a, expires))] = out.as_slice() else { panic!("{out:?}") };
    assert_eq!((*to, *t, *expires), (A, token, 35));
    assert_eq!(r.stats().waiting, 1);

    let (ia, ib) = pair(&mut r, now, A, B, [2; 32]);
    assert_ne!(ia, ib);
    // The pair is told its lifetime (the idle timeout moves with traffic).
    let out = join(&mut r, now + Duration::from_secs(1), B, [2; 32]);
    assert_eq!(out, vec![(B, Out::Paired([2; 32], ib, 30 * 60 - 1))]);
    assert_ne!(ia, *id_a, "another session, another id");

    r.handle_datagram(now, A, &data(ia, b"from a"));
    assert_eq!(drain(&mut r), vec![(B, Out::Data(ib, b"from a".to_vec()))]);
    r.handle_datagram(now, B, &data(ib, b"from b, longer"));
    assert_eq!(drain(&mut r), vec![(A, Out::Data(ia, b"from b, longer".to_vec()))]);
    let s = r.stats();
    assert_eq!((s.pairs, s.waiting, s.pairs_formed, s.forwarded, s.forwarded_bytes), (1, 1, 1, 2, 20));

    // A repeated join (a lost answer, a NAT keep-alive) gets the same
    // answer and makes nothing new.
    let out = join(&mut r, now, A, [2; 32]);
    assert!(matches!(out.as_slice(), [(to, Out::Paired(_, id, _))] if *to == A && *id == ia), "{out:?}");
    assert_eq!(r.stats().pairs, 1);

    // A close ends the pair for both; B is told why.
    r.handle_datagram(now, A, &Message::Close { id: ia }.encode());
    assert_eq!(drain(&mut r), vec![(B, Out::Ended([2; 32], EndReason::Closed))]);
    r.handle_datagram(now, B, &data(ib, b"late"));
    assert!(drain(&mut r).is_empty());
    let s = r.stats();
    assert_eq!((s.pairs, s.ended_closed, s.dropped_unknown_id), (0, 1, 1));
}

#[test]
fn each_cap_refuses_with_its_own_reason() {
    let config = RelayConfig { max_pairs: 1, max_waiting: 2, max_per_ip: 3, ..RelayConfig::default() };
    let (mut r, now) = relay(config);
    // A session waits for token 2 before the one pair fills the relay.
    assert!(matches!(join(&mut r, now, addr(1, 1, 1), [2; 32]).as_slice(), [(_, Out::Waiting(..))]));
    pair(&mut r, now, A, B, [1; 32]);

    // max_pairs: a new session, and the partner of a waiting one.
    assert_eq!(join(&mut r, now, addr(1, 2, 1), [3; 32]), vec![(addr(1, 2, 1), Out::Refused([3; 32], Refusal::Full))]);
    assert_eq!(join(&mut r, now, addr(1, 3, 1), [2; 32]), vec![(addr(1, 3, 1), Out::Refused([2; 32], Refusal::Full))]);

    // Taken: a third address for a paired token.
    assert_eq!(join(&mut r, now, addr(1, 4, 1), [1; 32]), vec![(addr(1, 4, 1), Out::Refused([1; 32], Refusal::Taken))]);
    assert_eq!(r.stats().refused_full, 2);

    // max_waiting and max_per_ip, with the pair gone.
    let (mut r, now) = relay(RelayConfig { max_pairs: 2, max_waiting: 2, max_per_ip: 3, ..RelayConfig::default() });
    for (i, t) in [[4u8; 32], [5; 32]].into_iter().enumerate() {
        assert!(matches!(join(&mut r, now, addr(2, 1, i as u16 + 1), t).as_slice(), [(_, Out::Waiting(..))]));
    }
    assert_eq!(join(&mut r, now, addr(2, 2, 1), [6; 32]), vec![(addr(2, 2, 1), Out::Refused([6; 32], Refusal::WaitingFull))]);
    // 10.0.2.1 is a party to two sessions; a third (pairing one) is its last.
    let out = join(&mut r, now, addr(2, 1, 9), [4; 32]);
    assert!(matches!(out.as_slice(), [(_, Out::Paired(..)), (_, Out::Paired(..))]), "{out:?}");
    assert_eq!(join(&mut r, now, addr(2, 1, 10), [5; 32]), vec![(addr(2, 1, 10), Out::Refused([5; 32], Refusal::PerIp))]);
    let s = r.stats();
    assert_eq!((s.refused_waiting_full, s.refused_per_ip, s.refused_full, s.refused_taken), (1, 1, 0, 0));

    // max_per_subnet: other IPs of one /24, each below its own cap.
    let (mut r, now) = relay(RelayConfig { max_per_ip: 2, max_per_subnet: 5, ..RelayConfig::default() });
    for i in 0..5u8 {
        assert!(matches!(join(&mut r, now, addr(4, i, 1), [10 + i; 32]).as_slice(), [(_, Out::Waiting(..))]));
    }
    assert_eq!(join(&mut r, now, addr(4, 9, 1), [20; 32]), vec![(addr(4, 9, 1), Out::Refused([20; 32], Refusal::Subnet))]);
    // Another /24 is not held back (the control).
    assert!(matches!(join(&mut r, now, addr(5, 9, 1), [21; 32]).as_slice(), [(_, Out::Waiting(..))]));
    assert_eq!(r.stats().refused_subnet, 1);
}

#[test]
fn a_pair_over_its_rate_is_throttled() {
    let rate = 10_000;
    let (mut r, t0) = relay(RelayConfig { rate, ..RelayConfig::default() });
    let (ia, _) = pair(&mut r, t0, A, B, [1; 32]);
    // A burst: the bucket holds one second's worth.
    let payload = vec![7u8; 1000];
    for _ in 0..20 {
        r.handle_datagram(t0, A, &data(ia, &payload));
    }
    assert_eq!(drain(&mut r).len(), 10);
    assert_eq!((r.stats().dropped_throttled, r.stats().throttled_bytes), (10, 10_000));
    // Then 100 kB/s offered for 10 s: what passes is the rate.
    let before = r.stats().forwarded_bytes;
    for ms in (10..=10_000).step_by(10) {
        r.handle_datagram(t0 + Duration::from_millis(ms), A, &data(ia, &payload));
    }
    drain(&mut r);
    let passed = r.stats().forwarded_bytes - before;
    assert!((rate as u64 * 10 - 1000..=rate as u64 * 10).contains(&passed), "{passed}");
    // A rate below one datagram still lets a full one through now and then.
    let (mut r, t0) = relay(RelayConfig { rate: 100, ..RelayConfig::default() });
    let (ia, _) = pair(&mut r, t0, A, B, [1; 32]);
    r.handle_datagram(t0, A, &data(ia, &[1; MAX_DATAGRAM - 12]));
    assert_eq!(drain(&mut r).len(), 1);
}

#[test]
fn sessions_end_at_their_lifetimes() {
    let config = RelayConfig {
        wait_lifetime: Duration::from_secs(35),
        idle_timeout: Duration::from_secs(60),
        pair_lifetime: Duration::from_secs(600),
        ..RelayConfig::default()
    };
    let (mut r, t0) = relay(config);
    // Waiting: no partner within 35 s.
    join(&mut r, t0, A, [1; 32]);
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(35)));
    r.handle_timeout(t0 + Duration::from_secs(34));
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(t0 + Duration::from_secs(35));
    assert_eq!(drain(&mut r), vec![(A, Out::Ended([1; 32], EndReason::NoPartner))]);
    assert_eq!((r.stats().waiting, r.stats().ended_no_partner), (0, 1));

    // Idle: a pair with no traffic ends after 60 s; both are told.
    let (_, _) = pair(&mut r, t0, A, B, [2; 32]);
    r.handle_timeout(t0 + Duration::from_secs(60));
    let mut out = drain(&mut r);
    out.sort_by_key(|(to, _)| *to);
    assert_eq!(out, vec![(A, Out::Ended([2; 32], EndReason::Idle)), (B, Out::Ended([2; 32], EndReason::Idle))]);

    // Lifetime: keep-alives (empty data) every 30 s hold off the idle
    // timeout, not the lifetime.
    let (ia, ib) = pair(&mut r, t0, A, B, [3; 32]);
    let mut t = t0;
    while t + Duration::from_secs(30) < t0 + Duration::from_secs(600) {
        t += Duration::from_secs(30);
        r.handle_datagram(t, if t.duration_since(t0).as_secs() % 60 == 0 { A } else { B }, &data(if t.duration_since(t0).as_secs() % 60 == 0 { ia } else { ib }, &[]));
        if let Some(at) = r.poll_timeout() {
            if at <= t {
                r.handle_timeout(t);
            }
        }
        assert!(drain(&mut r).is_empty(), "ended early at {:?}", t - t0);
    }
    assert_eq!(r.stats().pairs, 1);
    r.handle_timeout(t0 + Duration::from_secs(600));
    assert_eq!(drain(&mut r).len(), 2);
    let s = r.stats();
    assert_eq!((s.pairs, s.ended_idle, s.ended_lifetime, s.forwarded), (0, 1, 1, 0));
}

#[test]
fn the_waiting_table_and_the_deadline_heap_stay_bounded() {
    // The per-IP and per-/24 caps are off here: this is the table's own bound.
    let config = RelayConfig { max_waiting: 256, max_per_ip: usize::MAX, max_per_subnet: usize::MAX, ..RelayConfig::default() };
    let (mut r, now) = relay(config);
    let mut rng = StdRng::seed_from_u64(1);
    let mut refused = 0;
    for i in 0..5000u32 {
        let from = addr((i >> 8) as u8, i as u8, 1000);
        let out = join(&mut r, now, from, rng.random());
        if matches!(out.as_slice(), [(_, Out::Refused(_, Refusal::WaitingFull))]) {
            refused += 1;
        }
    }
    assert_eq!((r.stats().waiting, refused, r.stats().refused_waiting_full), (256, 5000 - 256, 5000 - 256));
    // Churn: join and close 20,000 times; stale deadlines do not pile up.
    let (mut r, now) = relay(RelayConfig::default());
    for _ in 0..20_000 {
        let out = join(&mut r, now, A, rng.random());
        let [(_, Out::Waiting(_, id, _))] = out.as_slice() else { panic!("{out:?}") };
        r.handle_datagram(now, A, &Message::Close { id: *id }.encode());
        assert!(drain(&mut r).is_empty());
        assert!(r.deadline_entries() <= 64 + 2);
    }
    // All freed: the wait lifetime passes with nothing to end.
    r.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!((r.stats().waiting, r.stats().ended_closed, r.stats().ended_no_partner), (0, 20_000, 0));
}

#[test]
fn spoofed_and_malformed_datagrams_are_dropped_and_counted() {
    let (mut r, now) = relay(RelayConfig::default());
    let (ia, ib) = pair(&mut r, now, A, B, [1; 32]);
    let mallory = addr(6, 6, 6666);
    // A's id from another address (port or IP): not forwarded, not closed.
    r.handle_datagram(now, SocketAddrV4::new(*A.ip(), 4001), &data(ia, b"x"));
    r.handle_datagram(now, mallory, &data(ia, b"x"));
    r.handle_datagram(now, mallory, &Message::Close { id: ib }.encode());
    // B's id from A's address.
    r.handle_datagram(now, A, &data(ib, b"x"));
    // An id nobody has.
    r.handle_datagram(now, A, &data(ia ^ 1, b"x"));
    // A cookie made for another address, or for another token.
    let out = join(&mut r, now, mallory, [5; 32]);
    assert_eq!(r.stats().waiting, 1);
    drop(out);
    r.handle_datagram(now, A, &Message::Join { token: [7; 32], cookie: [0xaa; COOKIE_LEN] }.encode());
    // Malformed: garbage, another version, truncated, padded, oversized.
    let mut garbage = Vec::new();
    garbage.push(vec![1, 2, 3]);
    garbage.push(b"\x58\x01\x08\x01\x10\x07".to_vec());
    let mut v2 = Message::Close { id: ia }.encode();
    v2[2] = 2;
    garbage.push(v2);
    garbage.push(Message::Close { id: ia }.encode()[..11].to_vec());
    let mut padded = Message::Close { id: ia }.encode();
    padded.push(0);
    garbage.push(padded);
    let mut unknown = Message::Close { id: ia }.encode();
    unknown[3] = 99;
    garbage.push(unknown);
    for g in &garbage {
        r.handle_datagram(now, A, g);
    }
    let mut big = data(ia, &[0; MAX_DATAGRAM - 12]);
    big.push(0);
    r.handle_datagram(now, A, &big);
    // Relay → peer messages sent to the relay.
    r.handle_datagram(now, A, &Message::Ended { token: [1; 32], reason: EndReason::Idle }.encode());
    r.handle_datagram(now, A, &Message::Paired { token: [1; 32], id: ia, expires_in: 1 }.encode());

    let out = drain(&mut r);
    // Only the challenge to A for its bad cookie; nothing forwarded.
    assert!(matches!(out.as_slice(), [(to, Out::Challenge(..))] if *to == A), "{out:?}");
    let s = r.stats();
    assert_eq!(s.dropped_spoofed, 4);
    assert_eq!(s.dropped_unknown_id, 1);
    assert_eq!(s.dropped_malformed, garbage.len() as u64);
    assert_eq!((s.dropped_oversized, s.dropped_unexpected, s.forwarded, s.pairs), (1, 2, 0, 1));

    // Data from a side whose partner has not joined.
    let out = join(&mut r, now, addr(3, 3, 3), [8; 32]);
    let [(_, Out::Waiting(_, id, _))] = out.as_slice() else { panic!("{out:?}") };
    r.handle_datagram(now, addr(3, 3, 3), &data(*id, b"early"));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.stats().dropped_unpaired, 1);

    // The pair still works.
    r.handle_datagram(now, A, &data(ia, b"ok"));
    assert_eq!(drain(&mut r), vec![(B, Out::Data(ib, b"ok".to_vec()))]);
}

#[test]
fn an_unverified_source_never_gets_more_bytes_than_it_sent() {
    // Random traffic from 50 addresses that never echo a cookie (spoofed:
    // they do not see the answers): joins with random cookies, garbage,
    // data and closes under guessed ids, relay messages, oversized ones.
    let (mut r, now) = relay(RelayConfig::default());
    // One real pair, so that there are ids to guess at.
    pair(&mut r, now, A, B, [1; 32]);
    let mut rng = StdRng::seed_from_u64(7);
    let mut received: HashMap<SocketAddrV4, usize> = HashMap::new();
    let mut sent: HashMap<SocketAddrV4, usize> = HashMap::new();
    for i in 0..20_000u32 {
        let from = addr(200, (i % 50) as u8, 1234);
        let bytes = match rng.random_range(0..5) {
            0 => Message::Join { token: rng.random(), cookie: rng.random() }.encode(),
            1 => Message::Join { token: [1; 32], cookie: [0; 16] }.encode(),
            2 => data(rng.random(), &vec![0; rng.random_range(0..1500)]),
            3 => Message::Close { id: rng.random() }.encode(),
            _ => (0..rng.random_range(0..80)).map(|_| rng.random()).collect(),
        };
        *received.entry(from).or_default() += bytes.len();
        r.handle_datagram(now + Duration::from_millis(i as u64), from, &bytes);
        while let Some((to, out)) = r.poll_transmit() {
            *sent.entry(to).or_default() += out.len();
        }
    }
    for (to, n) in &sent {
        assert!(*n <= received[to], "{to}: sent {n}, received {}", received[to]);
    }
    assert!(!sent.is_empty(), "the control: challenges did go out");
    assert_eq!((r.stats().waiting, r.stats().pairs, r.stats().forwarded), (0, 1, 0));
    assert!(sent.values().sum::<usize>() <= JOIN_LEN * 20_000);
}

proptest::proptest! {
    /// Decoding is exact: whatever decodes encodes back to the same bytes,
    /// so there is one encoding per message (nothing hides in padding).
    #[test]
    fn what_decodes_encodes_back_to_the_same_bytes(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..80), kind in 0u8..10) {
        let mut bytes = vec![0xff, b'R', 1, kind];
        bytes.extend_from_slice(&tail);
        if let Ok(m) = Message::decode(&bytes) {
            proptest::prop_assert_eq!(m.encode(), bytes);
        }
    }

    /// Any datagram from anyone leaves the relay consistent: nothing sent
    /// larger than the datagram that caused it, nothing forwarded, no
    /// session kept without a cookie round trip.
    #[test]
    fn arbitrary_datagrams_keep_no_state_and_draw_no_more_bytes(datagrams in proptest::collection::vec((proptest::num::u8::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..120)), 1..50)) {
        let (mut r, now) = relay(RelayConfig::default());
        for (who, mut bytes) in datagrams {
            if who % 2 == 0 && bytes.len() >= 4 {
                bytes[..3].copy_from_slice(&[0xff, b'R', 1]);
            }
            let from = addr(7, who, 7);
            r.handle_datagram(now, from, &bytes);
            while let Some((to, out)) = r.poll_transmit() {
                proptest::prop_assert_eq!(to, from);
                proptest::prop_assert!(out.len() <= bytes.len());
            }
        }
        let s = r.stats();
        proptest::prop_assert_eq!((s.waiting, s.pairs, s.forwarded), (0, 0, 0));
    }
}
