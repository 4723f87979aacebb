//! Hostile uTP on a virtual clock (issue 10): a spoofed SYN flood of 500
//! SYNs/s for 60 s against an endpoint, while honest diallers connect to it
//! and it dials out. Spoofed SYNs must yield no `Incoming`, honest ones
//! must all get through, the half-open table stays bounded, and our own
//! connects always succeed.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::utp::packet::{encode, Header, PacketType};
use hyperswarm_native::utp::{Endpoint, UtpConfig, UtpEvent};
use rand::{rngs::StdRng, Rng, SeedableRng};

const TARGET: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 4000);
const HONEST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 5000);

fn spoofed_syn(rng: &mut StdRng) -> (SocketAddrV4, Vec<u8>) {
    let from = SocketAddrV4::new(Ipv4Addr::new(127, rng.random_range(1..255), rng.random(), rng.random_range(1..255)), rng.random_range(1024..65535));
    let h = Header {
        ptype: PacketType::Syn,
        conn_id: rng.random(),
        timestamp: rng.random(),
        timestamp_diff: 0,
        wnd_size: 1 << 20,
        seq_nr: rng.random(),
        ack_nr: 0,
    };
    (from, encode(&h, None, &[]))
}

/// Delivers everything queued between the two honest endpoints until
/// quiet; datagrams to anyone else (SYN-ACKs to spoofed sources) vanish.
fn exchange(now: Instant, target: &mut Endpoint, honest: &mut Endpoint, lost: &mut u64) {
    loop {
        let mut any = false;
        while let Some((to, b)) = target.poll_transmit() {
            any = true;
            if to == HONEST {
                honest.handle_datagram(now, TARGET, &b);
            } else {
                *lost += 1;
            }
        }
        while let Some((to, b)) = honest.poll_transmit() {
            any = true;
            assert_eq!(to, TARGET);
            target.handle_datagram(now, HONEST, &b);
        }
        if !any {
            break;
        }
    }
}

#[test]
fn spoofed_syn_flood_yields_nothing_and_blocks_nothing() {
    let mut rng = StdRng::seed_from_u64(10);
    let t0 = Instant::now();
    let mut target = Endpoint::new(UtpConfig::default(), 1);
    let mut honest = Endpoint::new(UtpConfig::default(), 2);
    let mut lost = 0u64;
    let mut incoming = Vec::new();
    let mut honest_conns = HashSet::new();
    let mut honest_connected = HashSet::new();
    let mut outgoing = HashSet::new();
    let mut outgoing_connected = 0;
    let step = Duration::from_millis(10);
    let mut now = t0;
    let mut sent = 0u64;
    while now < t0 + Duration::from_secs(60) {
        // 5 spoofed SYNs per 10 ms: 500/s.
        for _ in 0..5 {
            let (from, b) = spoofed_syn(&mut rng);
            target.handle_datagram(now, from, &b);
            sent += 1;
        }
        let ms = (now - t0).as_millis();
        // An honest dialler every second, writing at once.
        if ms % 1000 == 0 {
            honest_conns.insert(honest.connect(now, TARGET));
        }
        // And every 5 s, the target dials out.
        if ms % 5000 == 2500 {
            outgoing.insert(target.connect(now, HONEST));
        }
        exchange(now, &mut target, &mut honest, &mut lost);
        while let Some(ev) = honest.poll_event() {
            match ev {
                UtpEvent::Connected { id } if honest_conns.contains(&id) => {
                    honest.write(now, id, b"hello");
                    honest_connected.insert(id);
                }
                UtpEvent::Closed { id, error } if honest_conns.contains(&id) => panic!("honest connection {id} closed: {error:?}"),
                _ => {}
            }
        }
        exchange(now, &mut target, &mut honest, &mut lost);
        while let Some(ev) = target.poll_event() {
            match ev {
                UtpEvent::Incoming { id, from } => incoming.push((id, from)),
                UtpEvent::Connected { id } if outgoing.contains(&id) => outgoing_connected += 1,
                UtpEvent::Closed { id, error } => panic!("target connection {id} closed: {error:?}"),
                _ => {}
            }
        }
        assert!(target.half_open_count() <= UtpConfig::default().max_half_open);
        now += step;
        if target.poll_timeout().is_some_and(|t| t <= now) {
            target.handle_timeout(now);
        }
        if honest.poll_timeout().is_some_and(|t| t <= now) {
            honest.handle_timeout(now);
        }
    }
    let s = target.stats();
    println!(
        "{{\"test\":\"hostile_utp\",\"spoofed\":{sent},\"half_opened\":{},\"evicted\":{},\"incoming\":{},\"honest\":{},\"outgoing\":{outgoing_connected},\"syn_acks_to_nowhere\":{lost}}}",
        s.half_opened,
        s.half_open_evicted,
        incoming.len(),
        honest_conns.len()
    );
    assert_eq!(sent, 30_000);
    // Positive control: the spoofed SYNs made half-open state…
    assert!(s.half_opened >= sent, "{s:?}");
    assert!(s.half_open_evicted > 20_000, "{s:?}");
    // …and none of it reached the application: every Incoming is honest.
    assert!(incoming.iter().all(|(_, from)| *from == HONEST), "{incoming:?}");
    assert_eq!(incoming.len(), honest_conns.len(), "every honest dialler got through");
    assert_eq!(honest_connected.len(), honest_conns.len());
    assert_eq!(outgoing_connected, outgoing.len(), "every connect() of ours succeeded");
    assert_eq!(outgoing.len(), 12);
}

#[test]
fn blind_syn_then_data_must_guess_our_sequence_number() {
    // A forger that cannot see our SYN-ACK follows each SYN with the DATA
    // a dialler would send, guessing the ack_nr: only an exact ack of our
    // random 16-bit seq makes the connection real, so ~1 in 65,536 pairs.
    let mut rng = StdRng::seed_from_u64(11);
    let t0 = Instant::now();
    let mut target = Endpoint::new(UtpConfig::default(), 3);
    let pairs = 65_536u32;
    let mut incoming = 0;
    for i in 0..pairs {
        let now = t0 + Duration::from_micros(u64::from(i) * 100);
        let (from, syn) = spoofed_syn(&mut rng);
        target.handle_datagram(now, from, &syn);
        let conn_id = u16::from_be_bytes([syn[2], syn[3]]);
        let seq = u16::from_be_bytes([syn[16], syn[17]]);
        let data = Header {
            ptype: PacketType::Data,
            conn_id: conn_id.wrapping_add(1),
            timestamp: 1,
            timestamp_diff: 0,
            wnd_size: 1 << 20,
            seq_nr: seq.wrapping_add(1),
            ack_nr: rng.random(),
        };
        target.handle_datagram(now, from, &encode(&data, None, b"GET"));
        while target.poll_transmit().is_some() {}
        while let Some(ev) = target.poll_event() {
            if matches!(ev, UtpEvent::Incoming { .. }) {
                incoming += 1;
            }
        }
    }
    let s = target.stats();
    println!("{{\"test\":\"blind_syn_then_data\",\"pairs\":{pairs},\"incoming\":{incoming},\"invalid\":{}}}", s.invalid);
    // Positive control: every DATA reached its half-open connection and
    // was judged (dropped as invalid unless it guessed right).
    assert_eq!(s.invalid + incoming, u64::from(pairs));
    assert!(incoming <= 4, "{incoming} blind forgeries got through");
}
