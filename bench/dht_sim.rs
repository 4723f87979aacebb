//! Large-scale DHT simulation benchmark: thousands of real sans-IO `Dht`
//! nodes on the virtual clock and network of `tests/common/sim.rs`. No
//! sockets: everything is in memory.
//!
//!     CARGO_TARGET_DIR=/tmp/target-sim cargo run --release --example dht_sim -- \
//!         [--nodes 10000] [--lookups 200] [--loss 0.0] [--kill 0.0] [--seed 1] [--latency-ms 20]
//!
//! Measures, for a network bootstrapped like tests/simulation.rs:
//! - round trips per lookup: the one-way latency is FIXED (min = max), so
//!   every request/response exchange takes exactly one RTT and a lookup's
//!   virtual duration / RTT is the length of its longest chain of sequential
//!   requests (with loss or dead nodes, retry and timeout waits count too);
//! - datagrams per lookup: lookups run one at a time; all datagrams sent in
//!   the lookup's window minus those sent in a window of the same length at
//!   the same offset of the next 40 s maintenance cycle, with no lookup
//!   running; also the exact count of requests the looking-up node sent and
//!   datagrams it received;
//! - heap bytes per node: a counting global allocator;
//! - lookup success rate (announce N topics, look each up from another node);
//! - wall time.
//!
//! Ends with one JSON line `{"bench":"dht-sim", ...}`.

#[path = "../tests/common/sim.rs"]
mod sim;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hyperswarm_native::dht::peer_store::PeerStore;
use hyperswarm_native::dht::query::Query;
use hyperswarm_native::dht::routing_table::{Contact, RoutingTable, K};
use hyperswarm_native::dht::rpc::{Request, Rpc};
use hyperswarm_native::dht::tokens::Tokens;
use hyperswarm_native::dht::node::MAINTENANCE_TICK;
use hyperswarm_native::dht::{Dht, DhtEvent};
use std::mem::size_of;
use rand::Rng;
use sim::{Sim, SimConfig};

// ----- counting allocator ---------------------------------------------------

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// While set, frees are tallied by exact size (sizes ≥ HIST_MAX share the last slot).
static HIST_ON: AtomicBool = AtomicBool::new(false);
const HIST_MAX: usize = 65536;
static HIST_BYTES: [AtomicU64; HIST_MAX + 1] = [const { AtomicU64::new(0) }; HIST_MAX + 1];
static HIST_COUNT: [AtomicU64; HIST_MAX + 1] = [const { AtomicU64::new(0) }; HIST_MAX + 1];

fn grow(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

fn shrink(n: usize) {
    LIVE.fetch_sub(n, Relaxed);
    if HIST_ON.load(Relaxed) {
        let slot = n.min(HIST_MAX);
        HIST_BYTES[slot].fetch_add(n as u64, Relaxed);
        HIST_COUNT[slot].fetch_add(1, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Not a free: keep it out of the histogram.
            LIVE.fetch_sub(layout.size(), Relaxed);
            grow(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> usize {
    LIVE.load(Relaxed)
}

// ----- arguments -------------------------------------------------------------

struct Args {
    nodes: usize,
    lookups: usize,
    loss: f64,
    kill: f64,
    seed: u64,
    latency_ms: u64,
    /// Look up from node 0, the ephemeral bootstrap node (its id is not on
    /// the wire, so the nodes it asks do not learn it).
    from_ephemeral: bool,
}

fn parse_args() -> Args {
    let mut a = Args { nodes: 10_000, lookups: 200, loss: 0.0, kill: 0.0, seed: 1, latency_ms: 20, from_ephemeral: false };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| die(&format!("{flag} needs a value"))).clone();
        match flag.as_str() {
            "--nodes" => a.nodes = num(&val()),
            "--lookups" => a.lookups = num(&val()),
            "--loss" => a.loss = num(&val()),
            "--kill" => a.kill = num(&val()),
            "--seed" => a.seed = num(&val()),
            "--latency-ms" => a.latency_ms = num(&val()),
            "--from-ephemeral" => a.from_ephemeral = true,
            "-h" | "--help" => {
                println!("dht_sim [--nodes 10000] [--lookups 200] [--loss 0.0] [--kill 0.0] [--seed 1] [--latency-ms 20] [--from-ephemeral]");
                std::process::exit(0);
            }
            other => die(&format!("unknown option {other}")),
        }
    }
    if a.nodes < 10 || a.nodes > 1_000_000 {
        die("--nodes must be in 10..=1000000");
    }
    if a.lookups == 0 || a.lookups > a.nodes / 4 {
        die("--lookups must be in 1..=nodes/4");
    }
    if !(0.0..0.9).contains(&a.loss) || !(0.0..0.8).contains(&a.kill) {
        die("--loss must be in [0, 0.9) and --kill in [0, 0.8)");
    }
    if a.latency_ms == 0 || a.latency_ms > 1000 {
        die("--latency-ms must be in 1..=1000");
    }
    a
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| die(&format!("bad number {s:?}")))
}

fn die(msg: &str) -> ! {
    eprintln!("dht_sim: {msg}");
    std::process::exit(2)
}

// ----- statistics ------------------------------------------------------------

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    // Nearest rank.
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn kib(b: f64) -> f64 {
    b / 1024.0
}

/// A guess at what an allocation of `size` bytes freed with a node is, from
/// the element sizes of the node's public types.
fn guess(size: usize) -> String {
    let fits = |elem: usize| elem > 0 && size % elem == 0;
    let n = |elem: usize| size / elem;
    if fits(size_of::<Contact>()) && n(size_of::<Contact>()) <= K {
        return format!("= {} × Contact: a routing-table bucket", n(size_of::<Contact>()));
    }
    if fits(size_of::<Request>()) && n(size_of::<Request>()).is_power_of_two() {
        return format!("= {} × rpc::Request: Rpc's inflight Vec / waiting VecDeque", n(size_of::<Request>()));
    }
    let tx = size_of::<(std::net::SocketAddrV4, Vec<u8>)>();
    if fits(tx) && n(tx).is_power_of_two() {
        return format!("= {} × (SocketAddrV4, Vec<u8>): the transmit queue?", n(tx));
    }
    if fits(size_of::<DhtEvent>()) && n(size_of::<DhtEvent>()).is_power_of_two() {
        return format!("= {} × DhtEvent: the event queue?", n(size_of::<DhtEvent>()));
    }
    // hashbrown: buckets (a power of two) × entry, padded to 16, + buckets + 16 control bytes.
    for b in [4usize, 8, 16, 32, 64] {
        if size > b + 16 && (size - b - 16) % b == 0 && (size - b - 16) / b >= 8 {
            return format!("hash table? {b} buckets × {} B entries", (size - b - 16) / b);
        }
    }
    String::new()
}

// ----- the benchmark -----------------------------------------------------------

/// Bootstraps exactly like tests/simulation.rs `build`: members join through
/// node 0, 50 at a time every 1.5 virtual seconds, then the network settles
/// for a virtual minute.
fn build(sim: &mut Sim) {
    let n = sim.nodes.len();
    for i in 1..n {
        sim.bootstrap(i);
        if i % 50 == 0 {
            sim.run_for(Duration::from_millis(1500));
        }
    }
    sim.run_for(Duration::from_secs(60));
}

struct LookupResult {
    done: bool,
    found: bool,
    duration: Duration,
    first_hit: Option<Duration>,
    datagrams: u64,
    requests_sent: u64,
    received: u64,
    /// Requests every other node started during the window.
    others_requests: u64,
    /// Datagrams / requests (all nodes) in the matching quiet window.
    bg_datagrams: u64,
    bg_requests: u64,
    /// The same over one second from the lookup's start (trailing traffic
    /// the lookup set off included); None when the lookup took longer.
    datagrams_1s: Option<u64>,
    others_requests_1s: Option<u64>,
    bg_datagrams_1s: u64,
    bg_requests_1s: u64,
}

/// Runs one lookup of `topic` from `l` alone, stepping the virtual clock in
/// one-way-latency steps aligned on the lookup's start (so, with a fixed
/// latency, every event of the lookup lands exactly on a step).
fn run_lookup(sim: &mut Sim, l: usize, topic: [u8; 32], announcer: std::net::SocketAddrV4, step: Duration, limit: Duration) -> LookupResult {
    sim.events[l].clear();
    let start = sim.now;
    let d0 = sim.datagrams;
    let s0 = sim.nodes[l].stats();
    let others0: u64 = sim.nodes.iter().map(|d| d.stats().requests_sent).sum::<u64>() - s0.requests_sent;
    let q = sim.lookup(l, topic);
    let mut first_hit = None;
    let mut found = false;
    let mut done = false;
    let max_steps = (limit.as_nanos() / step.as_nanos()).max(1) as u64;
    for k in 0..=max_steps {
        for ev in sim.events[l].drain(..) {
            match ev {
                DhtEvent::Peers(f) if f.query == q => {
                    if f.peers.contains(&announcer) && !found {
                        found = true;
                        first_hit = Some(sim.now - start);
                    }
                }
                DhtEvent::QueryDone { query, .. } if query == q => done = true,
                _ => {}
            }
        }
        if done || k == max_steps {
            break;
        }
        sim.run_until(start + step * (k as u32 + 1));
    }
    let s1 = sim.nodes[l].stats();
    let others1: u64 = sim.nodes.iter().map(|d| d.stats().requests_sent).sum::<u64>() - s1.requests_sent;
    LookupResult {
        others_requests: others1 - others0,
        bg_datagrams: 0,
        bg_requests: 0,
        datagrams_1s: None,
        others_requests_1s: None,
        bg_datagrams_1s: 0,
        bg_requests_1s: 0,
        done,
        found,
        duration: sim.now - start,
        first_hit,
        datagrams: sim.datagrams - d0,
        requests_sent: s1.requests_sent - s0.requests_sent,
        received: s1.received - s0.received,
    }
}

fn main() {
    let args = parse_args();
    let wall0 = Instant::now();
    let n = args.nodes;
    let lat = Duration::from_millis(args.latency_ms);
    let rtt = lat * 2;

    println!(
        "dht-sim: {n} nodes, {} lookups, loss {}, kill {}, seed {}, fixed one-way latency {} ms (RTT {} ms)",
        args.lookups,
        args.loss,
        args.kill,
        args.seed,
        args.latency_ms,
        rtt.as_millis()
    );

    // --- build ---------------------------------------------------------------
    let mem_before = live();
    let mut sim = Sim::new(SimConfig { nodes: n, loss: args.loss, seed: args.seed, min_latency: lat, max_latency: lat });
    let mem_created = live();
    build(&mut sim);
    let build_wall = wall0.elapsed();
    let build_datagrams = sim.datagrams;
    // The harness's per-node event logs (never drained for most nodes) are
    // not node state: drop them before measuring.
    for e in sim.events.iter_mut() {
        *e = Vec::new();
    }
    let mem_settled = live();
    let peak_build = PEAK.load(Relaxed);

    let bootstrapped = sim.nodes.iter().filter(|d| d.is_bootstrapped()).count();
    let table_len: Vec<f64> = sim.nodes.iter().skip(1).map(|d| d.table().len() as f64).collect();
    let table_bytes: Vec<f64> = sim.nodes.iter().skip(1).map(|d| d.table().memory_bytes() as f64).collect();
    let buckets: Vec<f64> = sim.nodes.iter().skip(1).map(|d| d.table().bucket_count() as f64).collect();
    println!(
        "built in {:.1} s wall ({} virtual s, {} datagrams); {bootstrapped}/{n} bootstrapped; routing table: mean {:.0} contacts in {:.1} buckets",
        build_wall.as_secs_f64(),
        (sim.now - sim.t0).as_secs(),
        build_datagrams,
        mean(&table_len),
        mean(&buckets),
    );

    // --- announce (like tests/simulation.rs `trials`) -----------------------
    let announce_wall0 = Instant::now();
    let mut announced = Vec::new();
    let mut queries = Vec::new();
    for _ in 0..args.lookups {
        let topic: [u8; 32] = sim.rng().random();
        let a = sim.random_alive(0);
        queries.push((a, sim.announce(a, topic)));
        announced.push((topic, a));
    }
    let done = sim.wait_all(&queries, Duration::from_secs(120));
    let announces_done = done.iter().filter(|(d, _)| *d).count();
    let mut killed = 0usize;
    if args.kill > 0.0 {
        let kills = (n as f64 * args.kill) as usize;
        let mut attempts = 0usize;
        while killed < kills && attempts < kills * 100 + 1000 {
            attempts += 1;
            let i = sim.rng().random_range(1..n);
            if sim.alive[i] && !announced.iter().any(|&(_, a)| a == i) {
                sim.kill(i);
                killed += 1;
            }
        }
        sim.run_for(Duration::from_secs(10));
    }
    let announce_wall = announce_wall0.elapsed();

    // --- lookups, one at a time, each with a phase-matched quiet window ------
    //
    // Every node is created at the same virtual instant, so their 5 s
    // maintenance ticks are in phase: every 8th tick (40 s) all of them ping
    // their oldest contacts at once, and the background comes in bursts. So
    // lookups start at fixed offsets inside a 40 s maintenance cycle (0.5 s,
    // 1.5 s, 2.5 s and 3.5 s after each 5 s tick), and the background of a
    // lookup is counted in the next cycle, in the window at the same offset
    // and of the same length, with no lookup running.
    let cycle = MAINTENANCE_TICK * 8;
    let slots: Vec<Duration> =
        (0..8u32).flat_map(|j| [500u64, 1500, 2500, 3500].map(move |o| MAINTENANCE_TICK * j + Duration::from_millis(o))).collect();
    let next_cycle = |sim: &Sim| -> Instant {
        let e = (sim.now - sim.t0).as_nanos();
        let c = cycle.as_nanos();
        sim.t0 + cycle * e.div_ceil(c) as u32
    };
    let lookup_wall0 = Instant::now();
    let mut results: Vec<LookupResult> = Vec::new();
    let mut cycle_dg = Vec::new(); // background datagrams per whole quiet cycle
    let mut burst_dg = Vec::new(); // …of which in the first second after the cycle's tick
    let mut next = 0;
    // Records live 12 minutes (peer_store::MAX_AGE) and slow lookups (loss,
    // dead nodes) can stretch this phase past that: the announcers re-announce
    // every 5 virtual minutes, as a swarm does, between cycles (outside every
    // measured window).
    let mut announced_at = sim.now;
    let mut reannounces = 0usize;
    let mut reannounce_failures = 0usize;
    for _pair in 0..(args.lookups + 1) {
        if next >= announced.len() {
            break;
        }
        if sim.now - announced_at >= Duration::from_secs(300) {
            let qs: Vec<_> = announced.iter().map(|&(topic, a)| (a, sim.announce(a, topic))).collect();
            let done = sim.wait_all(&qs, Duration::from_secs(120));
            reannounce_failures += done.iter().filter(|(d, _)| !*d).count();
            sim.run_for(Duration::from_secs(2));
            announced_at = sim.now;
            reannounces += 1;
        }
        let ca = next_cycle(&sim);
        let mut windows: Vec<(usize, Duration, Duration)> = Vec::new();
        for &off in &slots {
            if next >= announced.len() {
                break;
            }
            let start = ca + off;
            if start < sim.now {
                continue; // the previous lookup ran past this slot
            }
            sim.run_until(start);
            let (topic, a) = announced[next];
            next += 1;
            let l = if args.from_ephemeral { 0 } else { sim.random_alive(a) };
            let announcer = sim.addrs[a];
            let (d0, r0) = (sim.datagrams, sim.nodes.iter().map(|d| d.stats().requests_sent).sum::<u64>());
            let l0 = sim.nodes[l].stats().requests_sent;
            let mut r = run_lookup(&mut sim, l, topic, announcer, lat, Duration::from_secs(120));
            if r.duration <= Duration::from_secs(1) {
                sim.run_until(start + Duration::from_secs(1));
                let r1 = sim.nodes.iter().map(|d| d.stats().requests_sent).sum::<u64>();
                let l1 = sim.nodes[l].stats().requests_sent;
                r.datagrams_1s = Some(sim.datagrams - d0);
                r.others_requests_1s = Some((r1 - r0) - (l1 - l0));
            }
            windows.push((results.len(), off, r.duration));
            results.push(r);
        }
        // The quiet cycle: counters at every window edge.
        let cb = next_cycle(&sim);
        let mut edges: Vec<Duration> = vec![Duration::ZERO, Duration::from_secs(1), cycle];
        for &(_, off, d) in &windows {
            edges.push(off);
            edges.push(off + d);
            edges.push(off + Duration::from_secs(1));
        }
        edges.sort();
        edges.dedup();
        let mut at = std::collections::BTreeMap::new();
        for e in edges {
            sim.run_until(cb + e);
            let reqs: u64 = sim.nodes.iter().map(|d| d.stats().requests_sent).sum();
            at.insert(e, (sim.datagrams, reqs));
        }
        for &(k, off, d) in &windows {
            let (d0, r0) = at[&off];
            let (d1, r1) = at[&(off + d)];
            results[k].bg_datagrams = d1 - d0;
            results[k].bg_requests = r1 - r0;
            let (d2, r2) = at[&(off + Duration::from_secs(1))];
            results[k].bg_datagrams_1s = d2 - d0;
            results[k].bg_requests_1s = r2 - r0;
        }
        cycle_dg.push((at[&cycle].0 - at[&Duration::ZERO].0) as f64);
        burst_dg.push((at[&Duration::from_secs(1)].0 - at[&Duration::ZERO].0) as f64);
    }
    let lookup_wall = lookup_wall0.elapsed();
    let bg_rate = mean(&cycle_dg) / cycle.as_secs_f64();
    let burst_share = burst_dg.iter().sum::<f64>() / cycle_dg.iter().sum::<f64>().max(1.0);

    let finished = results.iter().filter(|r| r.done).count();
    let found = results.iter().filter(|r| r.found).count();
    let success = found as f64 / results.len() as f64;
    let rtts: Vec<f64> = results.iter().filter(|r| r.done).map(|r| r.duration.as_secs_f64() / rtt.as_secs_f64()).collect();
    let hit_rtts: Vec<f64> =
        results.iter().filter_map(|r| r.first_hit).map(|d| d.as_secs_f64() / rtt.as_secs_f64()).collect();
    let durations_ms: Vec<f64> = results.iter().filter(|r| r.done).map(|r| r.duration.as_secs_f64() * 1000.0).collect();
    let raw_dg: Vec<f64> = results.iter().filter(|r| r.done).map(|r| r.datagrams as f64).collect();
    let net_dg: Vec<f64> =
        results.iter().filter(|r| r.done).map(|r| r.datagrams as f64 - r.bg_datagrams as f64).collect();
    let bg_in_window: Vec<f64> = results.iter().filter(|r| r.done).map(|r| r.bg_datagrams as f64).collect();
    let net_dg_1s: Vec<f64> =
        results.iter().filter_map(|r| r.datagrams_1s.map(|d| d as f64 - r.bg_datagrams_1s as f64)).collect();
    let other_reqs_1s: Vec<f64> =
        results.iter().filter_map(|r| r.others_requests_1s.map(|o| o as f64 - r.bg_requests_1s as f64)).collect();
    let reqs: Vec<f64> = results.iter().filter(|r| r.done).map(|r| r.requests_sent as f64).collect();
    let recv: Vec<f64> = results.iter().filter(|r| r.done).map(|r| r.received as f64).collect();
    let other_reqs: Vec<f64> = results
        .iter()
        .filter(|r| r.done)
        .map(|r| r.others_requests as f64 - r.bg_requests as f64)
        .collect();

    // --- memory ------------------------------------------------------------
    for e in sim.events.iter_mut() {
        *e = Vec::new();
    }
    let mem_end = live();
    let mut nodes: Vec<Dht> = std::mem::take(&mut sim.nodes);
    nodes.shrink_to_fit();
    let before_drop = live();
    HIST_ON.store(true, Relaxed);
    drop(nodes);
    HIST_ON.store(false, Relaxed);
    let node_bytes = before_drop - live();
    let dht_inline = std::mem::size_of::<Dht>();
    let mut hist: Vec<(usize, u64, u64)> =
        (0..=HIST_MAX).map(|s| (s, HIST_BYTES[s].load(Relaxed), HIST_COUNT[s].load(Relaxed))).filter(|h| h.2 > 0).collect();
    hist.sort_by(|a, b| b.1.cmp(&a.1));

    let per_node_settled = (mem_settled - mem_before) as f64 / n as f64;
    let per_node_created = (mem_created - mem_before) as f64 / n as f64;
    let per_node_end = (mem_end - mem_before) as f64 / n as f64;
    let per_node_exact = node_bytes as f64 / n as f64;
    let table_mean = mean(&table_bytes);

    let total_wall = wall0.elapsed();

    // --- report ---------------------------------------------------------------
    println!();
    println!("| metric | value |");
    println!("| --- | --- |");
    println!("| nodes (bootstrapped) | {n} ({bootstrapped}) |");
    println!("| announces finished | {announces_done}/{} |", args.lookups);
    println!("| nodes killed after announcing | {killed} |");
    println!("| re-announce rounds during the lookups (every 5 min) | {reannounces} ({reannounce_failures} unfinished) |");
    println!("| lookups finished | {finished}/{} |", results.len());
    println!("| lookup success (found the announcer) | {:.1} % ({found}/{}) |", success * 100.0, results.len());
    println!(
        "| round trips per lookup, median / p90 (duration / RTT) | {:.1} / {:.1} |",
        pct(&rtts, 50.0),
        pct(&rtts, 90.0)
    );
    println!(
        "| round trips to the first reply naming the announcer, median / p90 | {:.1} / {:.1} |",
        pct(&hit_rtts, 50.0),
        pct(&hit_rtts, 90.0)
    );
    println!("| lookup duration ms, median / p90 | {:.0} / {:.0} |", pct(&durations_ms, 50.0), pct(&durations_ms, 90.0));
    println!(
        "| datagrams per lookup, median / p90 (window − background) | {:.0} / {:.0} |",
        pct(&net_dg, 50.0),
        pct(&net_dg, 90.0)
    );
    println!(
        "| datagrams in the 1 s from the lookup's start (trailing traffic included), median / p90, {} lookups | {:.0} / {:.0} |",
        net_dg_1s.len(),
        pct(&net_dg_1s, 50.0),
        pct(&net_dg_1s, 90.0)
    );
    println!(
        "| datagrams in lookup window, raw median / background share | {:.0} / {:.0} |",
        pct(&raw_dg, 50.0),
        pct(&bg_in_window, 50.0)
    );
    println!(
        "| looking-up node: requests sent / datagrams received, median | {:.0} / {:.0} |",
        pct(&reqs, 50.0),
        pct(&recv, 50.0)
    );
    println!(
        "| requests started by OTHER nodes during a lookup, median (window − background) | {:.1} |",
        pct(&other_reqs, 50.0)
    );
    println!(
        "| requests started by OTHER nodes in the 1 s from the lookup's start, median | {:.1} |",
        pct(&other_reqs_1s, 50.0)
    );
    println!(
        "| background (whole network, mean over a 40 s maintenance cycle) | {:.0} datagrams/s ({:.3}/s per node), {:.0} % of it in the 1 s after the cycle's tick |",
        bg_rate,
        bg_rate / n as f64,
        burst_share * 100.0
    );
    println!("| routing table per node (mean contacts, mean bytes) | {:.0}, {:.0} B |", mean(&table_len), table_mean);
    println!("| heap per node after creation (before bootstrap) | {:.0} B |", per_node_created);
    println!("| heap per node after settling (all live heap incl. harness queues) | {:.0} B ({:.2} KiB) |", per_node_settled, kib(per_node_settled));
    println!("| heap per node at end (after announces + lookups) | {:.0} B ({:.2} KiB) |", per_node_end, kib(per_node_end));
    println!(
        "| owned by the Dht values per node at end (exact: freed on drop, incl. {dht_inline} B inline) | {:.0} B ({:.2} KiB) |",
        per_node_exact,
        kib(per_node_exact)
    );
    println!("| peak heap during build | {:.1} MiB |", peak_build as f64 / 1048576.0);
    println!(
        "| wall time: build / announce / lookups / total | {:.1} / {:.1} / {:.1} / {:.1} s |",
        build_wall.as_secs_f64(),
        announce_wall.as_secs_f64(),
        lookup_wall.as_secs_f64(),
        total_wall.as_secs_f64()
    );
    println!();
    println!("Largest allocation sizes freed when dropping the nodes (size: count, share of node heap):");
    for (size, bytes, count) in hist.iter().take(10) {
        let label = if *size == HIST_MAX { format!(">={HIST_MAX} B") } else { format!("{size} B") };
        println!(
            "  {label:>9}: {count:>7} allocations, {:>5.1} %  {}",
            *bytes as f64 * 100.0 / node_bytes.max(1) as f64,
            guess(*size)
        );
    }
    println!(
        "Inline sizes: Dht {} B = StdRng {} + RoutingTable {} + PeerStore {} + Rpc {} + Tokens {} + HashMap {} + 2 VecDeques {} + …; \
         Contact {} B, rpc::Request {} B, query::Query {} B, DhtEvent {} B",
        size_of::<Dht>(),
        size_of::<rand::rngs::StdRng>(),
        size_of::<RoutingTable>(),
        size_of::<PeerStore>(),
        size_of::<Rpc>(),
        size_of::<Tokens>(),
        size_of::<std::collections::HashMap<u64, ()>>(),
        2 * size_of::<std::collections::VecDeque<()>>(),
        size_of::<Contact>(),
        size_of::<Request>(),
        size_of::<Query>(),
        size_of::<DhtEvent>(),
    );
    println!();
    println!(
        "Round trips: the one-way latency is fixed at {} ms, so every exchange takes exactly {} ms and a lookup's \
         virtual duration / RTT is its longest chain of sequential requests{}.",
        args.latency_ms,
        rtt.as_millis(),
        if args.loss > 0.0 || args.kill > 0.0 { " (with loss or dead nodes this includes retry and timeout waits)" } else { "" }
    );
    println!(
        "Datagrams: all datagrams sent by any node during the lookup's window, minus those sent in a window of the \
         same length at the same offset of the next 40 s maintenance cycle, with no lookup running (the nodes' \
         maintenance ticks are in phase, so the background is bursty: lookups start 0.5-3.5 s after a 5 s tick)."
    );
    println!(
        "Memory: live heap from a counting global allocator; 'after settling' is (live − live before Sim::new) / nodes \
         with the harness's event logs freed (its delivery/timer heaps and address index are still included)."
    );

    let json = serde_json::json!({
        "bench": "dht-sim",
        "nodes": n,
        "lookups": results.len(),
        "loss": args.loss,
        "kill": args.kill,
        "seed": args.seed,
        "latency_ms": args.latency_ms,
        "bootstrapped": bootstrapped,
        "announces_done": announces_done,
        "reannounce_rounds": reannounces,
        "lookups_done": finished,
        "success_rate": success,
        "round_trips_definition": "lookup virtual duration / RTT with fixed latency",
        "round_trips_median": r3(pct(&rtts, 50.0)),
        "round_trips_p90": r3(pct(&rtts, 90.0)),
        "round_trips_to_hit_median": r3(pct(&hit_rtts, 50.0)),
        "round_trips_to_hit_p90": r3(pct(&hit_rtts, 90.0)),
        "lookup_ms_median": pct(&durations_ms, 50.0),
        "datagrams_per_lookup_median": pct(&net_dg, 50.0),
        "datagrams_per_lookup_p90": pct(&net_dg, 90.0),
        "datagrams_raw_median": pct(&raw_dg, 50.0),
        "datagrams_1s_median": pct(&net_dg_1s, 50.0),
        "other_nodes_requests_1s_median": pct(&other_reqs_1s, 50.0),
        "from_ephemeral": args.from_ephemeral,
        "lookup_node_requests_median": pct(&reqs, 50.0),
        "lookup_node_received_median": pct(&recv, 50.0),
        "other_nodes_requests_median": pct(&other_reqs, 50.0),
        "background_datagrams_per_s": bg_rate,
        "background_burst_share": burst_share,
        "routing_table_contacts_mean": mean(&table_len),
        "routing_table_bytes_mean": table_mean,
        "heap_bytes_per_node_settled": per_node_settled,
        "heap_bytes_per_node_end": per_node_end,
        "dht_bytes_per_node_exact": per_node_exact,
        "dht_inline_bytes": dht_inline,
        "target_bytes_per_node": 20 * 1024,
        "build_wall_s": build_wall.as_secs_f64(),
        "lookup_wall_s": lookup_wall.as_secs_f64(),
        "wall_s": total_wall.as_secs_f64(),
    });
    println!("{json}");
}
