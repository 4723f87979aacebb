//! A swarm driven from a Rust test: its events on a channel, and a bounded
//! wait for the one a test is after.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use hyperswarm_native::swarm::{Swarm, SwarmConfig, SwarmEvent};

/// A swarm whose events arrive on the returned channel.
pub fn spawn(config: SwarmConfig) -> (Swarm, mpsc::Receiver<SwarmEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let swarm = Swarm::spawn(config, Box::new(move |ev| {
        let _ = tx.lock().unwrap().send(ev);
    }));
    (swarm, rx)
}

/// The first event `pick` takes within `within`, skipping the others; None
/// when time runs out or the swarm is gone.
pub fn wait_for<T>(rx: &mpsc::Receiver<SwarmEvent>, within: Duration, mut pick: impl FnMut(SwarmEvent) -> Option<T>) -> Option<T> {
    let until = Instant::now() + within;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some(t) = pick(rx.recv_timeout(left).ok()?) {
            return Some(t);
        }
    }
    None
}
