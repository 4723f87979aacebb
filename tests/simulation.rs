//! Thousands of real sans-IO DHT nodes on a virtual clock: announce from
//! random nodes, look up from other random nodes, and count how often the
//! announcer is found; also with dead nodes and packet loss.

mod common;

use std::time::Duration;

use common::sim::{Sim, SimConfig};
use rand::Rng;

fn build(nodes: usize, loss: f64, seed: u64) -> Sim {
    let mut sim = Sim::new(SimConfig { nodes, loss, seed, ..Default::default() });
    // Members join over a virtual minute, then settle.
    for i in 1..nodes {
        sim.bootstrap(i);
        if i % 50 == 0 {
            sim.run_for(Duration::from_millis(1500));
        }
    }
    sim.run_for(Duration::from_secs(60));
    sim
}

/// Announces `trials` topics from random nodes (all at once), optionally
/// kills a fraction of the other nodes, then looks each topic up from
/// another random node; returns the fraction of lookups that found the
/// announcer.
fn trials(sim: &mut Sim, trials: usize, kill_fraction: f64) -> f64 {
    let mut announced = Vec::new();
    let mut queries = Vec::new();
    for _ in 0..trials {
        let topic: [u8; 32] = sim.rng().random();
        let a = sim.random_alive(0);
        queries.push((a, sim.announce(a, topic)));
        announced.push((topic, a));
    }
    let done = sim.wait_all(&queries, Duration::from_secs(120));
    assert!(done.iter().all(|(d, _)| *d), "every announce finishes");
    if kill_fraction > 0.0 {
        let n = sim.nodes.len();
        let kills = (n as f64 * kill_fraction) as usize;
        let mut killed = 0;
        while killed < kills {
            let i = sim.rng().random_range(1..n);
            if sim.alive[i] && !announced.iter().any(|&(_, a)| a == i) {
                sim.kill(i);
                killed += 1;
            }
        }
        sim.run_for(Duration::from_secs(10));
    }
    let mut lookups = Vec::new();
    for &(topic, a) in &announced {
        let l = sim.random_alive(a);
        lookups.push((l, sim.lookup(l, topic)));
    }
    let results = sim.wait_all(&lookups, Duration::from_secs(120));
    assert!(results.iter().all(|(d, _)| *d), "every lookup finishes");
    let found = results.iter().zip(&announced).filter(|((_, peers), &(_, a))| peers.contains(&sim.addrs[a])).count();
    found as f64 / trials as f64
}

#[test]
fn small_network_finds_announcers() {
    let mut sim = build(200, 0.0, 7);
    let rate = trials(&mut sim, 20, 0.0);
    assert_eq!(rate, 1.0, "found {rate}");
}

#[test]
fn two_thousand_nodes() {
    let mut sim = build(2000, 0.0, 41);
    let rate = trials(&mut sim, 100, 0.0);
    assert!(rate >= 0.99, "only {:.1}% found", rate * 100.0);
}

#[test]
fn two_thousand_nodes_lossy_and_churned() {
    let mut sim = build(2000, 0.05, 42);
    let rate = trials(&mut sim, 100, 0.20);
    println!("2000 nodes, 5% loss, 20% killed: {:.1}% of lookups found the announcer", rate * 100.0);
    assert!(rate >= 0.99, "only {:.1}% found", rate * 100.0);
}


/// The figure behind `query::MAX_REQUESTS`: how many requests an honest
/// lookup sends in a 2,000-node network (one at a time, so each node's
/// `requests_sent` delta is its walk plus any maintenance ping meanwhile).
#[test]
fn honest_walks_stay_far_below_the_request_cap() {
    use hyperswarm_native::dht::query::MAX_REQUESTS;
    let mut sim = build(2000, 0.0, 43);
    let mut sizes = Vec::new();
    for _ in 0..40 {
        let topic: [u8; 32] = sim.rng().random();
        let l = sim.random_alive(0);
        let before = sim.nodes[l].stats().requests_sent;
        let q = sim.lookup(l, topic);
        let (done, _) = sim.wait_query(l, q, Duration::from_secs(60));
        assert!(done.is_some(), "the lookup finished");
        sizes.push(sim.nodes[l].stats().requests_sent - before);
    }
    sizes.sort_unstable();
    let capped: u64 = sim.nodes.iter().map(|n| n.stats().queries_capped).sum();
    println!(
        "2000 nodes: requests per lookup min {} median {} max {} (cap {MAX_REQUESTS}); walks capped anywhere: {capped}",
        sizes[0],
        sizes[sizes.len() / 2],
        sizes[sizes.len() - 1]
    );
    assert!(sizes[sizes.len() - 1] < MAX_REQUESTS as u64 / 2);
    assert_eq!(capped, 0, "no honest walk reaches the cap");
}
