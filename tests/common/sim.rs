//! A deterministic simulation of many sans-IO DHT nodes: a virtual clock, a
//! virtual network with latency, loss and dead nodes. Shared by the
//! simulation test and the large-scale benchmark (bench/dht_sim.rs).

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::dht::{Dht, DhtConfig, DhtEvent, NodeId, QueryId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct SimConfig {
    pub nodes: usize,
    pub loss: f64,
    pub seed: u64,
    pub min_latency: Duration,
    pub max_latency: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { nodes: 100, loss: 0.0, seed: 1, min_latency: Duration::from_millis(5), max_latency: Duration::from_millis(60) }
    }
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub nodes: Vec<Dht>,
    pub addrs: Vec<SocketAddrV4>,
    pub alive: Vec<bool>,
    index: HashMap<SocketAddrV4, usize>,
    deliveries: BinaryHeap<Reverse<(Instant, u64, usize, SocketAddrV4, Vec<u8>)>>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    seq: u64,
    rng: StdRng,
    loss: f64,
    latency: (Duration, Duration),
    pub datagrams: u64,
    pub bytes: u64,
    /// Events per node since last drained.
    pub events: Vec<Vec<DhtEvent>>,
}

pub fn addr_of(i: usize) -> SocketAddrV4 {
    // 10.0.0.0/8 inside the simulation only: nothing here touches a socket.
    // Each node has a /24 of its own, as on the internet (the routing table
    // caps contacts per /24); past 65,535 nodes they share /24s.
    let n = i as u32 + 1;
    SocketAddrV4::new(Ipv4Addr::new(10, (n >> 8) as u8, n as u8, 1 + (n >> 16) as u8), 49737)
}

impl Sim {
    /// Node 0 is an ephemeral bootstrap node with an empty list (the
    /// documented way to run one); the others are persistent members that
    /// bootstrap through it.
    pub fn new(cfg: SimConfig) -> Sim {
        let t0 = Instant::now();
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let boot = addr_of(0);
        let mut sim = Sim {
            t0,
            now: t0,
            nodes: Vec::with_capacity(cfg.nodes),
            addrs: Vec::with_capacity(cfg.nodes),
            alive: vec![true; cfg.nodes],
            index: HashMap::new(),
            deliveries: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(cfg.seed ^ 0x5eed),
            loss: cfg.loss,
            latency: (cfg.min_latency, cfg.max_latency),
            datagrams: 0,
            bytes: 0,
            events: vec![Vec::new(); cfg.nodes],
        };
        for i in 0..cfg.nodes {
            let config = DhtConfig {
                id: None,
                ephemeral: i == 0,
                adaptive: false,
                bootstrap: if i == 0 { vec![] } else { vec![boot] },
                seed: rng.random(),
            };
            sim.nodes.push(Dht::new(t0, config));
            sim.addrs.push(addr_of(i));
            sim.index.insert(addr_of(i), i);
        }
        sim
    }

    /// Starts node `i`'s bootstrap walk.
    pub fn bootstrap(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].bootstrap(now);
        self.flush(i);
    }

    /// Runs `f` on node `i` at the current virtual time (a command), then
    /// sends what it queued.
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Dht, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i], now);
        self.flush(i);
        r
    }

    pub fn kill(&mut self, i: usize) {
        self.alive[i] = false;
    }

    fn flush(&mut self, i: usize) {
        while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
            self.datagrams += 1;
            self.bytes += bytes.len() as u64;
            if self.rng.random::<f64>() < self.loss {
                continue;
            }
            let (lo, hi) = self.latency;
            let lat = lo + (hi - lo).mul_f64(self.rng.random::<f64>());
            self.seq += 1;
            self.deliveries.push(Reverse((self.now + lat, self.seq, i, to, bytes)));
        }
        while let Some(ev) = self.nodes[i].poll_event() {
            if self.events[i].len() < 10_000 {
                self.events[i].push(ev);
            }
        }
        if let Some(at) = self.nodes[i].poll_timeout() {
            self.timers.push(Reverse((at, i)));
        }
    }

    /// Runs until `until` (virtual time) or nothing is left to do.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            let next_delivery = self.deliveries.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let next = match (next_delivery, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_delivery == Some(next) {
                let Reverse((_, _, from, to, bytes)) = self.deliveries.pop().unwrap();
                let Some(&j) = self.index.get(&to) else { continue };
                if !self.alive[j] {
                    continue;
                }
                let now = self.now;
                self.nodes[j].handle_datagram(now, self.addrs[from], &bytes);
                self.flush(j);
            } else {
                let Reverse((at, i)) = self.timers.pop().unwrap();
                if !self.alive[i] || self.nodes[i].poll_timeout() != Some(at) {
                    continue; // stale timer entry
                }
                let now = self.now;
                self.nodes[i].handle_timeout(now);
                self.flush(i);
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub fn announce(&mut self, i: usize, topic: NodeId) -> QueryId {
        let now = self.now;
        let q = self.nodes[i].announce(now, topic, 0, None);
        self.flush(i);
        q
    }

    pub fn lookup(&mut self, i: usize, topic: NodeId) -> QueryId {
        let now = self.now;
        let q = self.nodes[i].lookup(now, topic, None);
        self.flush(i);
        q
    }

    /// Runs until query `q` of node `i` is done (bounded by `limit`); returns
    /// the peers it found, and how many Peers replies carried them.
    pub fn wait_query(&mut self, i: usize, q: QueryId, limit: Duration) -> (Option<Option<String>>, Vec<SocketAddrV4>) {
        let deadline = self.now + limit;
        let mut peers = Vec::new();
        loop {
            let mut done = None;
            for ev in self.events[i].drain(..) {
                match ev {
                    DhtEvent::Peers(f) if f.query == q => peers.extend(f.peers),
                    DhtEvent::QueryDone { query, error, .. } if query == q => done = Some(error),
                    _ => {}
                }
            }
            if done.is_some() {
                return (done, peers);
            }
            if self.now >= deadline {
                return (None, peers);
            }
            let step = self.now + Duration::from_millis(100);
            self.run_until(step.min(deadline));
        }
    }

    /// Runs until every `(node, query)` is done (bounded by `limit`);
    /// returns, per query, whether it finished and the peers it found.
    pub fn wait_all(&mut self, queries: &[(usize, QueryId)], limit: Duration) -> Vec<(bool, Vec<SocketAddrV4>)> {
        let deadline = self.now + limit;
        let mut out: Vec<(bool, Vec<SocketAddrV4>)> = vec![(false, Vec::new()); queries.len()];
        loop {
            for (k, &(i, q)) in queries.iter().enumerate() {
                for ev in &self.events[i] {
                    match ev {
                        DhtEvent::Peers(f) if f.query == q => out[k].1.extend(f.peers.iter().copied()),
                        DhtEvent::QueryDone { query, .. } if *query == q => out[k].0 = true,
                        _ => {}
                    }
                }
            }
            for &(i, _) in queries {
                self.events[i].clear();
            }
            if out.iter().all(|(done, _)| *done) || self.now >= deadline {
                return out;
            }
            let step = self.now + Duration::from_millis(250);
            self.run_until(step.min(deadline));
        }
    }

    pub fn random_alive(&mut self, skip: usize) -> usize {
        loop {
            let i = self.rng.random_range(1..self.nodes.len());
            if self.alive[i] && i != skip {
                return i;
            }
        }
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}
