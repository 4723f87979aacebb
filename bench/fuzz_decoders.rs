//! One million (by default) random and mutated datagrams through every
//! decoder and through a live sans-IO DHT node and LAN discovery machine;
//! a panic fails the run. `npm test` runs a smaller count (proptests in
//! tests/golden_*.rs); this is the long run.
//!
//!     cargo run --release --example fuzz_decoders -- [cases]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use hyperswarm_native::dht::{Dht, DhtConfig};
use hyperswarm_native::lan::{Lan, LanConfig};
use hyperswarm_native::wire::{dht as wire, mdns};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeds for mutation: real messages of every kind.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["tests/fixtures/dht", "tests/fixtures/mdns"] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
            // Every long hex string in a fixture is a packet.
            for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
                if word.len() >= 24 && word.len() % 2 == 0 {
                    let bytes: Vec<u8> = (0..word.len()).step_by(2).filter_map(|i| u8::from_str_radix(&word[i..i + 2], 16).ok()).collect();
                    out.push(bytes);
                }
            }
        }
    }
    out
}

fn main() {
    let cases: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let seeds = corpus();
    let mut rng = StdRng::seed_from_u64(0xf022);
    let t0 = Instant::now();
    let now = Instant::now();
    let mut dht = Dht::new(now, DhtConfig { id: Some([1; 32]), ephemeral: false, adaptive: false, bootstrap: vec![], seed: 2 });
    let mut lan = Lan::new(LanConfig { domain: mdns::DEFAULT_DOMAIN.into(), seed: 3 });
    lan.join(now, [5; 32], true, Some(4000));
    let mut decoded = 0u64;
    for i in 0..cases {
        let mut buf: Vec<u8> = if !seeds.is_empty() && rng.random_bool(0.7) {
            seeds[rng.random_range(0..seeds.len())].clone()
        } else {
            let n = rng.random_range(0..600);
            (0..n).map(|_| rng.random()).collect()
        };
        // Mutate: flip bytes, truncate, extend.
        for _ in 0..rng.random_range(0..6) {
            if buf.is_empty() {
                break;
            }
            match rng.random_range(0..3) {
                0 => {
                    let j = rng.random_range(0..buf.len());
                    buf[j] = rng.random();
                }
                1 => buf.truncate(rng.random_range(0..buf.len())),
                _ => buf.extend((0..rng.random_range(1..16)).map(|_| rng.random::<u8>())),
            }
        }
        decoded += wire::Message::decode(&buf).is_ok() as u64;
        let _ = wire::PeersInput::decode(&buf);
        let _ = wire::PeersOutput::decode(&buf);
        let _ = wire::Holepunch::decode(&buf);
        let _ = wire::Mutable::decode(&buf);
        let _ = wire::decode_nodes(&buf);
        let _ = wire::decode_peers(&buf);
        let _ = mdns::decode(&buf);
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8), 1 + (i % 60000) as u16);
        dht.handle_datagram(now, from, &buf);
        while dht.poll_transmit().is_some() {}
        while dht.poll_event().is_some() {}
        lan.handle_datagram(now, *from.ip(), &buf);
        while lan.poll_transmit().is_some() {}
        while lan.poll_event().is_some() {}
    }
    let secs = t0.elapsed().as_secs_f64();
    let s = dht.stats();
    println!("cases              {cases}");
    println!("seed packets       {}", seeds.len());
    println!("decoded as dht-rpc {decoded}");
    println!("dht malformed      {}", s.malformed);
    println!("lan malformed      {}", lan.stats().malformed);
    println!("dht table / store  {} contacts", dht.table().len());
    println!("time               {secs:.1} s ({:.0} cases/s)", cases as f64 / secs);
    println!(
        "{{\"bench\":\"fuzz-decoders\",\"cases\":{cases},\"panics\":0,\"dht_malformed\":{},\"lan_malformed\":{},\"seconds\":{secs:.2}}}",
        s.malformed,
        lan.stats().malformed
    );
}
