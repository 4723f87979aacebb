//! Seeded random + mutation fuzzing of every decoder and of the sans-IO
//! state machines that eat network input; any panic is caught, counted and
//! its input printed in hex. Only stable Rust here (no cargo-fuzz), so this
//! is a loop over the fixture corpus with byte-level mutations, plus
//! structure-aware packets for the uTP connection.
//!
//!     cargo run --release --example fuzz_decoders -- [cases-per-target] [target ...]
//!
//! Targets (default: all):
//! - `dht-message`: a dht-rpc message (`wire::dht::Message::decode`)
//! - `peer-records`: every record codec inside a message value (peers
//!   input/output, holepunch, mutable, node and peer lists)
//! - `mdns`: `wire::mdns::decode`, then the LAN discovery machine
//! - `utp-packet`: `utp::packet::decode`
//! - `utp-connection`: an established uTP connection (handshake completed,
//!   valid connection ids) fed mutated and made-up packets carrying its
//!   connection id from its peer's address, with random timeouts, writes,
//!   reads and shutdowns in between
//! - `dht-node`: a live DHT node's `handle_datagram`
//! - `relay`: a live relay (`relay::Relay`) fed mutated relay messages from
//!   a few addresses that answer its challenges and use the ids it hands
//!   out, so sessions form, pair, carry data and end while it is fuzzed
//!
//! Prints executions per second per target, then one JSON line.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use hyperswarm_native::dht::{Dht, DhtConfig};
use hyperswarm_native::lan::{Lan, LanConfig, Link};
use hyperswarm_native::relay::{self, Relay, RelayConfig};
use hyperswarm_native::utp::packet::{self, Header, PacketType};
use hyperswarm_native::utp::{Endpoint, UtpConfig, UtpEvent};
use hyperswarm_native::wire::{dht as wire, mdns};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TARGETS: &[&str] = &["dht-message", "peer-records", "mdns", "utp-packet", "utp-connection", "dht-node", "relay"];

/// Every long hex string in the fixtures under `dir` is a packet.
fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
        for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if word.len() >= 24 && word.len() % 2 == 0 {
                let bytes: Vec<u8> =
                    (0..word.len()).step_by(2).filter_map(|i| u8::from_str_radix(&word[i..i + 2], 16).ok()).collect();
                out.push(bytes);
            }
        }
    }
    out
}

/// The byte fields inside dht-rpc messages (`value`, `closer_nodes`,
/// `to`): the record codecs' real inputs.
fn record_corpus(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for m in messages {
        if let Ok(msg) = wire::Message::decode(m) {
            out.extend([msg.value, msg.closer_nodes, msg.to].into_iter().flatten().filter(|v| !v.is_empty()));
        }
    }
    out
}

/// Values the mutator likes to drop in: edges of integer widths and varints.
const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x40, 0x20, 0x10, 0x0a, 0x12, 0x1a, 0xc0];

/// One input: a corpus entry (or random bytes) mutated a few times.
fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>], max_random: usize) -> Vec<u8> {
    let mut buf: Vec<u8> = if !seeds.is_empty() && rng.random_bool(0.8) {
        seeds[rng.random_range(0..seeds.len())].clone()
    } else {
        let n = rng.random_range(0..max_random);
        (0..n).map(|_| rng.random()).collect()
    };
    // Mostly few mutations, so that much of the input still parses and
    // reaches the deeper checks; sometimes many.
    let rounds = if rng.random_bool(0.8) { rng.random_range(0..3) } else { rng.random_range(3..12) };
    for _ in 0..rounds {
        if buf.is_empty() {
            buf.push(rng.random());
            continue;
        }
        let j = rng.random_range(0..buf.len());
        match rng.random_range(0..8) {
            0 => buf[j] = rng.random(),
            1 => buf[j] ^= 1 << rng.random_range(0..8),
            2 => buf[j] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            3 => buf.truncate(j),
            4 => {
                let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                buf.splice(j..j, extra);
            }
            5 => {
                // Duplicate a chunk (repeated fields, repeated questions).
                let end = (j + rng.random_range(1..64)).min(buf.len());
                let chunk = buf[j..end].to_vec();
                let at = rng.random_range(0..=buf.len());
                buf.splice(at..at, chunk);
            }
            6 if !seeds.is_empty() => {
                // Splice with another seed.
                let other = &seeds[rng.random_range(0..seeds.len())];
                let k = rng.random_range(0..=other.len());
                buf.truncate(j);
                buf.extend_from_slice(&other[k..]);
            }
            _ => {
                let end = (j + rng.random_range(1..32)).min(buf.len());
                buf.drain(j..end);
            }
        }
    }
    buf
}

struct Outcome {
    execs: u64,
    panics: u64,
    accepted: u64,
    secs: f64,
    note: String,
}

/// Runs `one` `cases` times, each under catch_unwind. `one` puts its input
/// in the buffer it is given before using it, so that a panic's input can
/// be printed; a panic is counted and the run goes on.
fn run(name: &str, cases: u64, mut one: impl FnMut(&mut StdRng, &mut Vec<u8>) -> bool) -> Outcome {
    let mut rng = StdRng::seed_from_u64(0xf022 ^ name.len() as u64);
    let (mut panics, mut accepted) = (0u64, 0u64);
    let mut input = Vec::new();
    let t0 = Instant::now();
    for _ in 0..cases {
        match catch_unwind(AssertUnwindSafe(|| one(&mut rng, &mut input))) {
            Ok(ok) => accepted += ok as u64,
            Err(_) => {
                panics += 1;
                if panics <= 3 {
                    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                    eprintln!("{name}: PANIC on input {hex}");
                }
            }
        }
    }
    Outcome { execs: cases, panics, accepted, secs: t0.elapsed().as_secs_f64(), note: String::new() }
}

fn dht_message(cases: u64, seeds: &[Vec<u8>]) -> Outcome {
    run("dht-message", cases, |rng, input| {
        *input = mutate(rng, seeds, 600);
        wire::Message::decode(input).is_ok()
    })
}

fn peer_records(cases: u64, seeds: &[Vec<u8>]) -> Outcome {
    run("peer-records", cases, |rng, input| {
        *input = mutate(rng, seeds, 200);
        let buf = &input[..];
        let mut ok = false;
        ok |= wire::PeersInput::decode(buf).is_ok();
        ok |= wire::PeersOutput::decode(buf).is_ok();
        ok |= wire::Holepunch::decode(buf).is_ok();
        ok |= wire::Mutable::decode(buf).is_ok();
        ok |= wire::decode_nodes(buf).is_ok();
        ok |= wire::decode_peers(buf).is_ok();
        ok |= wire::decode_peer(buf).is_ok();
        let prefix = [buf.first().copied().unwrap_or(0), buf.get(1).copied().unwrap_or(0)];
        ok |= wire::decode_lan_peers(prefix, buf).is_ok();
        ok
    })
}

fn mdns_target(cases: u64, seeds: &[Vec<u8>]) -> Outcome {
    let now = Instant::now();
    let name = |k: u8| mdns::topic_name(&[k; 32], mdns::DEFAULT_DOMAIN);
    let new_lan = || {
        let mut lan = Lan::new(LanConfig { domain: mdns::DEFAULT_DOMAIN.into(), seed: 3 });
        lan.join(now, [5; 32], true, Some(4000));
        lan.join(now, [6; 32], false, Some(4001));
        lan
    };
    let mut lan = new_lan();
    // Seeds that speak to the joined topics, as well as the captures.
    let mut seeds = seeds.to_vec();
    seeds.push(mdns::encode_query(&[&name(5), &name(6), &name(6)]).unwrap());
    let id = mdns::instance_id([1; 32]);
    seeds.push(mdns::encode_response(&[mdns::Answer { name: &name(5), port: 1, id: &id }], None).unwrap());
    let link = Link::net(2, Ipv4Addr::new(10, 0, 0, 9), 16);
    let mut i = 0u32;
    let mut clock = now;
    let out = run("mdns", cases, |rng, input| {
        *input = mutate(rng, &seeds, 600);
        let buf = &input[..];
        let ok = mdns::decode(buf).is_ok();
        i = i.wrapping_add(1);
        if i % 4096 == 0 {
            clock += Duration::from_millis(rng.random_range(0..3000));
            lan.handle_timeout(clock);
        }
        let from = if rng.random_bool(0.9) { Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8) } else { Ipv4Addr::from(rng.random::<u32>()) };
        lan.handle_datagram(clock, from, &link, buf);
        while lan.poll_transmit().is_some() {}
        while lan.poll_event().is_some() {}
        ok
    });
    let s = lan.stats();
    Outcome {
        note: format!("lan: {} malformed, {} off-link, {} bad targets, {} answered", s.malformed, s.off_link, s.bad_targets, s.queries_answered),
        ..out
    }
}

/// Real uTP packets of every type, from a connection's life.
fn utp_corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pair = UtpPair::establish(Instant::now(), 7);
    out.extend(pair.templates.iter().cloned());
    out.append(&mut pair.server_sent);
    out
}

fn utp_packet(cases: u64, seeds: &[Vec<u8>]) -> Outcome {
    run("utp-packet", cases, |rng, input| {
        *input = mutate(rng, seeds, 100);
        packet::decode(input).is_ok()
    })
}

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 6000);

/// A client and a server endpoint with one established connection.
struct UtpPair {
    server: Endpoint,
    client: Endpoint,
    /// The server's id of the connection (from its Incoming event).
    conn: Option<u64>,
    /// The client's id of it.
    client_conn: u64,
    /// Client→server packets after the SYN: they carry the server
    /// connection's receive id, the one we keep while mutating the rest.
    templates: Vec<Vec<u8>>,
    server_sent: Vec<Vec<u8>>,
    conn_id: u16,
    established: bool,
}

impl UtpPair {
    fn establish(now: Instant, seed: u64) -> UtpPair {
        let mut p = UtpPair {
            server: Endpoint::new(UtpConfig::default(), seed),
            client: Endpoint::new(UtpConfig::default(), seed ^ 0x55),
            conn: None,
            client_conn: 0,
            templates: Vec::new(),
            server_sent: Vec::new(),
            conn_id: 0,
            established: false,
        };
        p.client_conn = p.client.connect(now, SERVER);
        // Handshake, then data both ways so that every packet type and
        // the server's full state exist.
        for round in 0..12 {
            if round == 2 {
                p.client.write(now, p.client_conn, b"hello from the client, establishing the connection");
            }
            if round == 4 {
                if let Some(c) = p.conn {
                    p.server.write(now, c, &[7u8; 3000]);
                }
            }
            p.shuttle(now, true);
        }
        p.established = p.conn.is_some();
        p
    }

    /// Moves every queued datagram across (the client's to the server only
    /// when `client_too`), collecting events.
    fn shuttle(&mut self, now: Instant, client_too: bool) {
        if client_too {
            while let Some((to, bytes)) = self.client.poll_transmit() {
                if to == SERVER {
                    if bytes[0] >> 4 != PacketType::Syn as u8 && bytes.len() >= 20 {
                        self.conn_id = u16::from_be_bytes([bytes[2], bytes[3]]);
                        if self.templates.len() < 64 {
                            self.templates.push(bytes.clone());
                        }
                    }
                    self.server.handle_datagram(now, CLIENT, &bytes);
                }
            }
        }
        while let Some((to, bytes)) = self.server.poll_transmit() {
            if to == CLIENT {
                if self.server_sent.len() < 64 {
                    self.server_sent.push(bytes.clone());
                }
                self.client.handle_datagram(now, SERVER, &bytes);
            }
        }
        self.events(now);
    }

    fn events(&mut self, _now: Instant) {
        let mut buf = Vec::new();
        while let Some(ev) = self.server.poll_event() {
            match ev {
                UtpEvent::Incoming { id, .. } => self.conn = Some(id),
                UtpEvent::Readable { id } => while self.server.read(id, &mut buf, 1 << 16) > 0 { buf.clear() },
                UtpEvent::Closed { id, error } if Some(id) == self.conn => {
                    if std::env::var_os("FUZZ_DEBUG").is_some() {
                        eprintln!("closed: {error:?}");
                    }
                    self.established = false
                }
                _ => {}
            }
        }
        while let Some(ev) = self.client.poll_event() {
            if let UtpEvent::Readable { id } = ev {
                while self.client.read(id, &mut buf, 1 << 16) > 0 {
                    buf.clear()
                }
            }
        }
    }
}

/// A packet for the server connection: header fields chosen near the
/// live values (or anywhere), the right connection id, random extensions
/// and payload; or a captured client packet mutated around its id.
fn utp_input(rng: &mut StdRng, p: &UtpPair) -> Vec<u8> {
    if !p.templates.is_empty() && rng.random_bool(0.4) {
        let mut b = p.templates[rng.random_range(0..p.templates.len())].clone();
        for _ in 0..rng.random_range(1..6) {
            match rng.random_range(0..4) {
                0 => {
                    let j = rng.random_range(4..b.len());
                    b[j] = rng.random();
                }
                // Any type, RESET rarely (it ends the connection).
                1 => b[0] = ([0u8, 0, 1, 2, 2, 4][rng.random_range(0..6)] << 4) | 1,
                2 if rng.random_bool(0.02) => b[0] = 0x31,
                2 => b.truncate(rng.random_range(20..=b.len())),
                _ => b.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
            }
        }
        return b;
    }
    // Fields near the last real packet's values, so that acks and
    // sequence numbers land inside the windows as well as outside.
    let base = p.templates.last().and_then(|t| packet::decode(t).ok().map(|pk| pk.header));
    let (seq, ack) = base.map_or((0, 0), |h| (h.seq_nr, h.ack_nr));
    let near = |rng: &mut StdRng, v: u16| match rng.random_range(0..3) {
        0 => v.wrapping_add(rng.random_range(0..8)),
        1 => v.wrapping_sub(rng.random_range(0..8)),
        _ => rng.random(),
    };
    // RESET and FIN end the connection (rebuilt at once): rarer, so that
    // most packets meet a connection deep in its life.
    let ptype = match rng.random_range(0..100) {
        0..=49 => PacketType::Data,
        50..=89 => PacketType::State,
        90..=94 => PacketType::Fin,
        95..=96 => PacketType::Reset,
        _ => PacketType::Syn,
    };
    let header = Header {
        ptype,
        conn_id: if ptype == PacketType::Syn { p.conn_id.wrapping_sub(1) } else { p.conn_id },
        timestamp: rng.random(),
        timestamp_diff: rng.random(),
        wnd_size: if rng.random_bool(0.5) { 1 << 20 } else { rng.random() },
        seq_nr: near(rng, seq),
        ack_nr: near(rng, ack),
    };
    let sack: Option<Vec<u8>> =
        rng.random_bool(0.3).then(|| (0..rng.random_range(0..40)).map(|_| rng.random::<u8>()).collect());
    let payload: Vec<u8> = (0..rng.random_range(0..1500)).map(|_| rng.random::<u8>()).collect();
    packet::encode(&header, sack.as_deref(), &payload)
}

fn utp_connection(cases: u64) -> Outcome {
    let mut clock = Instant::now();
    let mut seed = 1u64;
    let mut pair = UtpPair::establish(clock, seed);
    let (mut rebuilt, mut unestablished) = (0u64, 0u64);
    let mut execs_on_established = 0u64;
    let out = run("utp-connection", cases, |rng, input| {
        if !pair.established || pair.conn.is_none() {
            seed += 1;
            rebuilt += 1;
            pair = UtpPair::establish(clock, seed);
            if !pair.established {
                unestablished += 1;
            }
        }
        execs_on_established += pair.established as u64;
        *input = utp_input(rng, &pair);
        let buf = &input[..];
        pair.server.handle_datagram(clock, CLIENT, buf);
        match rng.random_range(0..64) {
            // Random timeouts, short and long (retransmission, keep-alive,
            // idle, time-wait).
            0..=3 => {
                clock += Duration::from_millis(rng.random_range(0..2000));
                pair.server.handle_timeout(clock);
                pair.client.handle_timeout(clock);
            }
            4 if rng.random_bool(0.1) => {
                clock += Duration::from_secs(rng.random_range(1..90));
                pair.server.handle_timeout(clock);
            }
            5 => {
                if let Some(c) = pair.conn {
                    pair.server.write(clock, c, &vec![1u8; rng.random_range(1..5000)]);
                }
            }
            6 => {
                pair.client.write(clock, pair.client_conn, &[2u8; 700]);
            }
            7 if rng.random_bool(0.05) => {
                if let Some(c) = pair.conn {
                    pair.server.shutdown(clock, c);
                }
            }
            _ => {}
        }
        // Real traffic in between keeps the connection moving, and its
        // packets become new templates.
        let honest = rng.random_bool(0.2);
        pair.shuttle(clock, honest);
        if !honest {
            while pair.client.poll_transmit().is_some() {}
        }
        if pair.templates.len() >= 64 && rng.random_bool(0.01) {
            pair.templates.remove(rng.random_range(0..pair.templates.len()));
        }
        packet::decode(buf).is_ok()
    });
    Outcome {
        note: format!(
            "{execs_on_established} packets on an established connection, {rebuilt} connections rebuilt, {unestablished} failed to establish, {} invalid, {} resets",
            pair.server.stats().invalid,
            pair.server.stats().resets_received
        ),
        ..out
    }
}

fn dht_node(cases: u64, seeds: &[Vec<u8>]) -> Outcome {
    let now = Instant::now();
    let mut dht = Dht::new(now, DhtConfig { id: Some([1; 32]), ephemeral: false, adaptive: false, bootstrap: vec![], seed: 2 });
    let mut i = 0u64;
    let mut clock = now;
    let out = run("dht-node", cases, |rng, input| {
        *input = mutate(rng, seeds, 600);
        let buf = &input[..];
        i += 1;
        if i % 4096 == 0 {
            clock += Duration::from_millis(rng.random_range(0..5000));
            dht.handle_timeout(clock);
        }
        let from = SocketAddrV4::new(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8), 1 + (i % 60000) as u16);
        dht.handle_datagram(clock, from, buf);
        while dht.poll_transmit().is_some() {}
        while dht.poll_event().is_some() {}
        wire::Message::decode(buf).is_ok()
    });
    let s = dht.stats();
    Outcome { note: format!("dht: {} malformed, {} contacts", s.malformed, dht.table().len()), ..out }
}

fn relay_target(cases: u64) -> Outcome {
    use relay::{EndReason, Message, Refusal};
    let now = Instant::now();
    // Small caps, so that every refusal and ending is reached often.
    let config = RelayConfig { max_pairs: 4, max_waiting: 8, max_per_ip: 6, max_per_subnet: 10, rate: 4000, ..RelayConfig::default() };
    let mut r = Relay::new(config, now, [5; 32]);
    let tokens: Vec<[u8; 32]> = (0..6u8).map(|i| [i; 32]).collect();
    let seeds: Vec<Vec<u8>> = vec![
        Message::Join { token: tokens[0], cookie: [0; 16] }.encode(),
        Message::Challenge { token: tokens[1], cookie: [1; 16] }.encode(),
        Message::Waiting { token: tokens[2], id: 3, expires_in: 4 }.encode(),
        Message::Paired { token: tokens[3], id: 3, expires_in: 4 }.encode(),
        Message::Refused { token: tokens[4], reason: Refusal::Full }.encode(),
        Message::Ended { token: tokens[5], reason: EndReason::Idle }.encode(),
        Message::Data { id: 7, payload: b"payload" }.encode(),
        Message::Close { id: 7 }.encode(),
    ];
    let mut ids: Vec<(SocketAddrV4, u64)> = Vec::new();
    let mut clock = now;
    let mut i = 0u64;
    let out = run("relay", cases, |rng, input| {
        i += 1;
        if i % 1024 == 0 {
            clock += Duration::from_millis(rng.random_range(0..20_000));
            r.handle_timeout(clock);
        }
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 9, rng.random_range(0..3), rng.random_range(0..4)), 1000 + rng.random_range(0..3));
        // Sometimes a well-formed message under an id the relay handed out.
        *input = if !ids.is_empty() && rng.random_bool(0.3) {
            let (at, id) = ids[rng.random_range(0..ids.len())];
            let payload: Vec<u8> = (0..rng.random_range(0..1500)).map(|_| rng.random()).collect();
            let bytes = if rng.random_bool(0.9) { Message::Data { id, payload: &payload }.encode() } else { Message::Close { id }.encode() };
            // Mostly from the address that registered the id; else spoofed.
            let src = if rng.random_bool(0.9) { at } else { from };
            r.handle_datagram(clock, src, &bytes);
            bytes
        } else {
            let m = mutate(rng, &seeds, 80);
            r.handle_datagram(clock, from, &m);
            m
        };
        let mut ok = false;
        while let Some((to, bytes)) = r.poll_transmit() {
            match Message::decode(&bytes) {
                Err(e) => panic!("the relay sent what it cannot read: {e:?}"),
                Ok(Message::Challenge { token, cookie }) if rng.random_bool(0.7) => {
                    let join = Message::Join { token, cookie }.encode();
                    r.handle_datagram(clock, to, &join);
                }
                Ok(Message::Waiting { id, .. } | Message::Paired { id, .. }) => {
                    ok = true;
                    if ids.len() >= 64 {
                        ids.remove(0);
                    }
                    ids.push((to, id));
                }
                _ => {}
            }
        }
        ok
    });
    let s = r.stats();
    let note = format!(
        "relay: {} pairs formed, {} forwarded, {} refused, {} ended, {} malformed, {} spoofed",
        s.pairs_formed,
        s.forwarded,
        s.refused_full + s.refused_waiting_full + s.refused_per_ip + s.refused_taken + s.refused_subnet,
        s.ended_closed + s.ended_idle + s.ended_lifetime + s.ended_no_partner,
        s.dropped_malformed,
        s.dropped_spoofed
    );
    Outcome { note, ..out }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let cases: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let chosen: Vec<String> = args.collect();
    let want = |t: &str| chosen.is_empty() || chosen.iter().any(|c| c == t);
    for c in &chosen {
        if !TARGETS.contains(&c.as_str()) {
            eprintln!("unknown target {c}; targets: {}", TARGETS.join(", "));
            std::process::exit(2);
        }
    }
    // Panics are caught and counted; the default hook's message is enough.
    // Keep the fixture strings that are whole packets (the rest are ids,
    // keys and topics).
    let mut dht_seeds = corpus("tests/fixtures/dht");
    dht_seeds.retain(|s| wire::Message::decode(s).is_ok());
    let mut mdns_seeds = corpus("tests/fixtures/mdns");
    mdns_seeds.retain(|s| mdns::decode(s).is_ok());
    let record_seeds = record_corpus(&dht_seeds);
    let utp_seeds = utp_corpus();
    println!("corpus: {} dht-rpc, {} records, {} mDNS, {} uTP packets", dht_seeds.len(), record_seeds.len(), mdns_seeds.len(), utp_seeds.len());
    let mut results = Vec::new();
    for t in TARGETS.iter().filter(|t| want(t)) {
        let o = match *t {
            "dht-message" => dht_message(cases, &dht_seeds),
            "peer-records" => peer_records(cases, &record_seeds),
            "mdns" => mdns_target(cases, &mdns_seeds),
            "utp-packet" => utp_packet(cases, &utp_seeds),
            "utp-connection" => utp_connection(cases),
            "dht-node" => dht_node(cases, &dht_seeds),
            "relay" => relay_target(cases),
            _ => unreachable!(),
        };
        println!(
            "{t:<15} {:>11} execs  {:>9.0} execs/s  {:>6.1} s  panics {}  decoded {}  {}",
            o.execs,
            o.execs as f64 / o.secs,
            o.secs,
            o.panics,
            o.accepted,
            o.note
        );
        results.push((t.to_string(), o));
    }
    let total_panics: u64 = results.iter().map(|(_, o)| o.panics).sum();
    let fields: Vec<String> = results
        .iter()
        .map(|(t, o)| format!("\"{t}\":{{\"execs\":{},\"execs_per_s\":{:.0},\"panics\":{}}}", o.execs, o.execs as f64 / o.secs, o.panics))
        .collect();
    println!("{{\"bench\":\"fuzz-decoders\",\"cases_per_target\":{cases},\"panics\":{total_panics},\"targets\":{{{}}}}}", fields.join(","));
    if total_panics > 0 {
        std::process::exit(1);
    }
}
