//! `NativePeerQueue`: the engine's dial queue ([`crate::swarm::PeerQueue`])
//! with hyperswarm 2.x's policy, driven from JS by the `./hyperswarm` entry
//! (lib/hyperswarm/peer-queue.js), which dials through the network layer
//! as the reference does. Times are the caller's milliseconds, so JS tests
//! can run it on mocked timers.

use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::swarm::{peer_from_js, NativePeer};
use crate::swarm::{EntryId, PeerQueue, QueuePolicy};

/// hyperswarm 2.15.3's `queue` option.
#[napi(object)]
pub struct NativeQueueOptions {
    /// Milliseconds before retry 1, 2, …
    pub requeue: Option<Vec<f64>>,
    /// Milliseconds before a peer out of retries is forgotten (`Infinity`: never).
    pub forget_unresponsive: Option<f64>,
    /// Milliseconds before a banned peer is forgotten (`Infinity`: never).
    pub forget_banned: Option<f64>,
    /// One entry per address across topics.
    pub multiplex: Option<bool>,
}

/// What `add` did.
#[napi(object)]
pub struct NativeAdded {
    /// The entry, unless the peer was refused.
    pub id: Option<u32>,
    /// It now waits to be dialled.
    pub queued: bool,
    /// Its topic is new to the entry.
    pub new_topic: bool,
}

/// One entry's state, as PeerInfo shows it.
#[napi(object)]
pub struct NativeEntry {
    pub status: u32,
    pub priority: u32,
    pub retries: u32,
}

#[napi]
pub struct NativePeerQueue {
    queue: PeerQueue,
    origin: Instant,
}

fn ms(name: &str, v: f64) -> Result<Option<Duration>> {
    if v.is_nan() || v < 0.0 {
        return Err(Error::new(Status::InvalidArg, format!("{name} must be a number of milliseconds, 0 or more")));
    }
    // Infinity, or anything past a century: never.
    Ok((v < 3.2e12).then(|| Duration::from_millis(v as u64)))
}

fn entry(id: u32) -> EntryId {
    EntryId(u64::from(id))
}

fn js_id(id: EntryId) -> u32 {
    // Ids count up from 0 per queue; a queue that made 4 billion entries
    // would wrap, long after its bounded table forgot the old ones.
    id.0 as u32
}

#[napi]
impl NativePeerQueue {
    #[napi(constructor)]
    pub fn new(options: Option<NativeQueueOptions>) -> Result<Self> {
        let mut policy = QueuePolicy::hyperswarm(rand::random());
        if let Some(o) = options {
            if let Some(r) = o.requeue {
                policy.requeue = r
                    .iter()
                    .map(|&v| ms("options.queue.requeue", v).map(|d| d.unwrap_or(Duration::MAX)))
                    .collect::<Result<_>>()?;
            }
            if let Some(v) = o.forget_unresponsive {
                policy.forget_unresponsive = ms("options.queue.forget.unresponsive", v)?;
            }
            if let Some(v) = o.forget_banned {
                policy.forget_banned = ms("options.queue.forget.banned", v)?;
            }
            if let Some(m) = o.multiplex {
                policy.multiplex = m;
                policy.requeue_known = !m;
            }
        }
        Ok(NativePeerQueue { queue: PeerQueue::with_policy(policy), origin: Instant::now() })
    }

    fn at(&self, now: f64) -> Instant {
        self.origin + Duration::from_millis(if now.is_finite() && now > 0.0 { now as u64 } else { 0 })
    }

    #[napi(catch_unwind)]
    pub fn add(&mut self, now: f64, peer: NativePeer) -> Result<NativeAdded> {
        let peer = peer_from_js(peer)?;
        let at = self.at(now);
        let a = self.queue.add(at, peer);
        Ok(NativeAdded { id: a.id.map(js_id), queued: a.queued, new_topic: a.new_topic })
    }

    /// The next entry to dial, marked active.
    #[napi(catch_unwind)]
    pub fn shift(&mut self, now: f64) -> Option<u32> {
        let at = self.at(now);
        self.queue.shift(at).map(js_id)
    }

    #[napi(catch_unwind)]
    pub fn connected(&mut self, id: u32, tcp: bool) {
        self.queue.connected(entry(id), None, tcp);
    }

    #[napi(catch_unwind)]
    pub fn disconnected(&mut self, id: u32) {
        self.queue.disconnected(entry(id));
    }

    /// After a failed dial or a drop: false if the peer is given up.
    #[napi(catch_unwind)]
    pub fn requeue(&mut self, now: f64, id: u32) -> bool {
        let at = self.at(now);
        self.queue.requeue(at, entry(id))
    }

    #[napi(catch_unwind)]
    pub fn backoff(&mut self, now: f64, id: u32) -> bool {
        let at = self.at(now);
        self.queue.backoff(at, entry(id))
    }

    #[napi(catch_unwind)]
    pub fn reconnect(&mut self, id: u32, allowed: bool) {
        self.queue.reconnect(entry(id), allowed);
    }

    #[napi(catch_unwind)]
    pub fn ban(&mut self, now: f64, id: u32) {
        let at = self.at(now);
        self.queue.ban(at, entry(id));
    }

    /// Forgets `peer`'s entry; its id, if it had one.
    #[napi(catch_unwind)]
    pub fn remove(&mut self, peer: NativePeer) -> Result<Option<u32>> {
        let peer = peer_from_js(peer)?;
        Ok(self.queue.remove(&peer).map(js_id))
    }

    #[napi(catch_unwind)]
    pub fn view(&self, id: u32) -> Option<NativeEntry> {
        self.queue.view(entry(id)).map(|v| NativeEntry { status: v.status.into(), priority: v.priority.into(), retries: v.retries.into() })
    }

    /// Due backoffs and forgets; true if the queue went from empty to not.
    #[napi(catch_unwind)]
    pub fn handle_timeout(&mut self, now: f64) -> bool {
        let at = self.at(now);
        self.queue.handle_timeout(at)
    }

    /// When `handleTimeout` next has work, in the caller's milliseconds.
    #[napi(catch_unwind)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.queue.poll_timeout().map(|t| t.saturating_duration_since(self.origin).as_millis() as f64)
    }

    /// Entries forgotten since the last call (their PeerInfo is dropped).
    #[napi(catch_unwind)]
    pub fn take_forgotten(&mut self) -> Vec<u32> {
        self.queue.take_forgotten().into_iter().map(js_id).collect()
    }

    /// Entries waiting to be dialled now.
    #[napi(getter)]
    pub fn queued(&self) -> u32 {
        self.queue.queued() as u32
    }

    /// Queued entries of priority 2 and up.
    #[napi(getter)]
    pub fn prioritised(&self) -> u32 {
        self.queue.prioritised() as u32
    }

    /// Entries known.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.queue.len() as u32
    }

    /// Peers refused by the per-party caps or a full table.
    #[napi(getter)]
    pub fn refused(&self) -> f64 {
        self.queue.refused() as f64
    }
}
