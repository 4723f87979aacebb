//! Requests in flight: request ids, the 750 ms retry clock, punches through
//! referrers, and the saturation gate (spec/wire-dht.md §3).
//!
//! Pure bookkeeping: the node asks it what to (re)send and when, and tells
//! it about responses.
//!
//! Unlike dht-rpc, request ids are drawn at random (still 16 bits on the
//! wire) and a response completes a request only when it comes from the
//! address the request went to: a forged response from anywhere else, even
//! with the right id, is dropped. For a hole punch the request is addressed
//! to the peer being punched, which is who answers (spec §6.1 step 4).

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::routing_table::NodeId;

/// One tick of the request clock (spec §3.3).
pub const TICK: Duration = Duration::from_millis(750);
/// Ticks a request waits before its next step (spec §3.3).
const COUNTDOWN: u8 = 4;
/// Transmissions before a request fails (spec §3.3).
pub const MAX_SENDS: u8 = 3;
/// Delay before a request to a node with a referrer also punches through
/// that referrer (spec §6.2).
pub const PUNCH_DELAY: Duration = Duration::from_millis(500);
/// Saturation: at least this many requests a second (over 5 s)… (spec §3.4)
pub const SATURATION_RPS: u32 = 50;
/// …and at least this many in flight (spec §3.4).
pub const SATURATION_INFLIGHT: usize = 16;
/// Requests waiting behind saturation. Beyond this new requests fail at
/// once instead of queueing without bound.
pub const MAX_WAITING: usize = 1024;

/// Who is waiting for a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Query(u64),
    Ping(u64),
    Holepunch(u64),
    /// A ping to a stale contact; on failure `newcomer` takes its place
    /// (`verified`: the newcomer was heard in a response, not a request).
    Evict { stale: NodeId, newcomer: NodeId, addr: SocketAddrV4, verified: bool },
    /// A ping that lets a requester prove its address (see `budget`).
    Verify,
    /// A maintenance ping; on failure the contact is dropped.
    Check,
}

#[derive(Debug)]
pub struct Request {
    pub rid: u16,
    pub to: SocketAddrV4,
    pub bytes: Vec<u8>,
    pub owner: Owner,
    /// The id we believe the destination has.
    pub expect: Option<NodeId>,
    /// The node that told us about the destination, punched through on retries.
    pub referrer: Option<SocketAddrV4>,
    sends: u8,
    countdown: u8,
    punch_at: Option<Instant>,
    /// Its first send was a low-TTL opening packet (`Dht::holepunch`), so
    /// at [`PUNCH_DELAY`] it goes once more at full TTL.
    opened: bool,
}

impl Request {
    /// A hole punch is answered by its target with the request's rid.
    fn punch_rid(&self) -> Option<u16> {
        matches!(self.owner, Owner::Holepunch(_)).then_some(self.rid)
    }
}

/// What the node must do now.
#[derive(Debug)]
pub enum Action {
    Send { to: SocketAddrV4, bytes: Vec<u8> },
    /// Ask `referrer` to punch `target` for us: with the request's own rid
    /// for a hole punch (the target answers it), else a fresh unregistered one.
    Punch { referrer: SocketAddrV4, target: SocketAddrV4, rid: Option<u16> },
    Failed(Request),
}

pub struct Rpc {
    rng: StdRng,
    inflight: Vec<Request>,
    waiting: VecDeque<Request>,
    next_tick: Option<Instant>,
    /// Requests started per second over the last five seconds (ring).
    rate: [u16; 5],
    rate_second: u64,
    epoch: Option<Instant>,
}

impl Rpc {
    pub fn new(seed: u64) -> Self {
        Rpc {
            rng: StdRng::seed_from_u64(seed),
            inflight: Vec::new(),
            waiting: VecDeque::new(),
            next_tick: None,
            rate: [0; 5],
            rate_second: 0,
            epoch: None,
        }
    }

    /// Releases memory a burst of requests left behind.
    pub fn shrink(&mut self) {
        if self.inflight.is_empty() {
            self.inflight.shrink_to_fit();
        }
        if self.waiting.is_empty() {
            self.waiting.shrink_to_fit();
        }
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    /// A fresh request id: random, and not one in use (16 bits on the wire,
    /// spec §3.1). At most [`MAX_WAITING`] + a few hundred are in use, so a
    /// free one is found in a try or two.
    pub fn next_rid(&mut self) -> u16 {
        loop {
            let rid: u16 = self.rng.random();
            if !self.inflight.iter().chain(self.waiting.iter()).any(|r| r.rid == rid) {
                return rid;
            }
        }
    }

    fn rate_slot(&mut self, now: Instant) -> usize {
        let epoch = *self.epoch.get_or_insert(now);
        let second = now.duration_since(epoch).as_secs();
        while self.rate_second < second {
            self.rate_second += 1;
            self.rate[(self.rate_second % 5) as usize] = 0;
            if second - self.rate_second >= 5 {
                self.rate = [0; 5];
                self.rate_second = second;
            }
        }
        (second % 5) as usize
    }

    fn saturated(&mut self, now: Instant) -> bool {
        self.rate_slot(now);
        let per_second = self.rate.iter().map(|&n| n as u32).sum::<u32>() / 5;
        per_second >= SATURATION_RPS && self.inflight.len() >= SATURATION_INFLIGHT
    }

    /// Registers a request. Returns what to send now: nothing when it has to
    /// wait behind saturation, `Failed` when even the wait line is full.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Instant,
        rid: u16,
        to: SocketAddrV4,
        bytes: Vec<u8>,
        owner: Owner,
        expect: Option<NodeId>,
        referrer: Option<SocketAddrV4>,
        urgent: bool,
    ) -> Option<Action> {
        let req = Request { rid, to, bytes, owner, expect, referrer, sends: 0, countdown: COUNTDOWN, punch_at: None, opened: false };
        if !urgent && (!self.waiting.is_empty() || self.saturated(now)) {
            if self.waiting.len() >= MAX_WAITING {
                return Some(Action::Failed(req));
            }
            self.waiting.push_back(req);
            return None;
        }
        Some(self.launch(now, req))
    }

    fn launch(&mut self, now: Instant, mut req: Request) -> Action {
        let slot = self.rate_slot(now);
        self.rate[slot] = self.rate[slot].saturating_add(1);
        req.sends = 1;
        req.punch_at = req.referrer.map(|_| now + PUNCH_DELAY);
        let action = Action::Send { to: req.to, bytes: req.bytes.clone() };
        self.inflight.push(req);
        if self.next_tick.is_none() {
            self.next_tick = Some(now + TICK);
        }
        action
    }

    /// A response with `rid` arrived from `from`. It completes the request
    /// only when that is where the request went (the reference matches on
    /// rid alone, spec §3.1). A punched peer may answer from another port
    /// of its IP (its NAT's mapping towards us, which the swarm then dials),
    /// so a hole punch matches on the IP.
    pub fn complete(&mut self, now: Instant, rid: u16, from: SocketAddrV4, out: &mut Vec<Action>) -> Option<Request> {
        let i = self.inflight.iter().position(|r| {
            r.rid == rid && (r.to == from || (matches!(r.owner, Owner::Holepunch(_)) && r.to.ip() == from.ip()))
        })?;
        let req = self.inflight.swap_remove(i);
        self.release(now, out);
        Some(req)
    }

    /// Lets queued requests go, one per free place.
    fn release(&mut self, now: Instant, out: &mut Vec<Action>) {
        while !self.waiting.is_empty() && !self.saturated(now) {
            let Some(req) = self.waiting.pop_front() else { break };
            out.push(self.launch(now, req));
        }
    }

    /// Request `rid`, in flight, went out first as a low-TTL opening packet
    /// that cannot reach its destination: when its punch through the
    /// referrer is repeated ([`PUNCH_DELAY`] on), it is sent again at full
    /// TTL, instead of only with the first retry.
    pub fn set_opened(&mut self, rid: u16) {
        if let Some(r) = self.inflight.iter_mut().find(|r| r.rid == rid) {
            r.opened = true;
        }
    }

    /// Drops every request owned by `owner` (a query that was cancelled).
    pub fn cancel(&mut self, owner: Owner) {
        self.inflight.retain(|r| r.owner != owner);
        self.waiting.retain(|r| r.owner != owner);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let punch = self.inflight.iter().filter_map(|r| r.punch_at).min();
        [self.next_tick, punch].into_iter().flatten().min()
    }

    /// Advances the clock: retransmissions, punches and failures.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        for r in &mut self.inflight {
            if let (Some(at), Some(referrer)) = (r.punch_at, r.referrer) {
                if at <= now {
                    r.punch_at = None;
                    if r.opened {
                        // By now the peer has normally answered the first
                        // punch through the referrer, which opened its NAT
                        // towards us: a full-TTL datagram no longer lands in
                        // a router that has not seen us yet. It also reaches
                        // a peer our opening packet could not (NATs further
                        // than its TTL on our side), half a second before
                        // the first retry would.
                        out.push(Action::Send { to: r.to, bytes: r.bytes.clone() });
                    }
                    out.push(Action::Punch { referrer, target: r.to, rid: r.punch_rid() });
                }
            }
        }
        let Some(tick) = self.next_tick else { return };
        if tick > now {
            return;
        }
        let saturated = self.saturated(now);
        let mut i = 0;
        while i < self.inflight.len() {
            let r = &mut self.inflight[i];
            if r.countdown == 2 && r.sends < MAX_SENDS {
                if saturated {
                    // A due retry waits while the node is saturated (spec §3.4).
                    i += 1;
                    continue;
                }
                r.countdown = COUNTDOWN;
                r.sends += 1;
                out.push(Action::Send { to: r.to, bytes: r.bytes.clone() });
                if let Some(referrer) = r.referrer {
                    out.push(Action::Punch { referrer, target: r.to, rid: r.punch_rid() });
                }
                i += 1;
                continue;
            }
            r.countdown -= 1;
            if r.countdown == 0 {
                let failed = self.inflight.swap_remove(i);
                out.push(Action::Failed(failed));
                continue;
            }
            i += 1;
        }
        self.release(now, out);
        self.next_tick = if self.inflight.is_empty() { None } else { Some(tick + TICK) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(p: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, p)
    }

    #[test]
    fn rids_are_random_and_never_reused_while_in_flight() {
        let t0 = Instant::now();
        let mut rpc = Rpc::new(3);
        let mut seen = std::collections::HashSet::new();
        let mut sequential = 0;
        let mut last = None;
        for _ in 0..1000 {
            let rid = rpc.next_rid();
            assert!(seen.insert(rid), "rid {rid} reused while in flight");
            if last.is_some_and(|l: u16| l.wrapping_add(1) == rid) {
                sequential += 1;
            }
            last = Some(rid);
            rpc.start(t0, rid, addr(1), vec![], Owner::Check, None, None, true);
        }
        assert!(sequential < 5, "{sequential} sequential rids");
    }

    #[test]
    fn three_sends_then_timeout_on_the_reference_schedule() {
        let t0 = Instant::now();
        let mut rpc = Rpc::new(1);
        let first = rpc.start(t0, 1, addr(1), vec![1], Owner::Check, None, None, false);
        assert!(matches!(first, Some(Action::Send { .. })));
        let mut sends = vec![Duration::ZERO];
        let mut failed = None;
        let mut now;
        for _ in 0..20 {
            let Some(at) = rpc.poll_timeout() else { break };
            now = at;
            let mut out = Vec::new();
            rpc.handle_timeout(now, &mut out);
            for a in out {
                match a {
                    Action::Send { .. } => sends.push(now - t0),
                    Action::Failed(_) => failed = Some(now - t0),
                    Action::Punch { .. } => {}
                }
            }
        }
        // Sends at 0, 2.25 s and 4.5 s; failure at 7.5 s (spec §3.3).
        assert_eq!(sends, vec![Duration::ZERO, TICK * 3, TICK * 6]);
        assert_eq!(failed, Some(TICK * 10));
        assert_eq!(rpc.inflight(), 0);
        assert_eq!(rpc.poll_timeout(), None);
    }

    #[test]
    fn response_completes_only_from_where_the_request_went() {
        let t0 = Instant::now();
        let mut rpc = Rpc::new(7);
        let rid = rpc.next_rid();
        rpc.start(t0, rid, addr(1), vec![], Owner::Ping(1), None, None, false);
        let mut out = Vec::new();
        assert!(rpc.complete(t0, rid.wrapping_add(1), addr(1), &mut out).is_none());
        assert!(rpc.complete(t0, rid, addr(2), &mut out).is_none(), "right rid, wrong address");
        assert_eq!(rpc.complete(t0, rid, addr(1), &mut out).unwrap().owner, Owner::Ping(1));
    }

    #[test]
    fn referrer_punch_after_500ms_and_with_each_retry() {
        let t0 = Instant::now();
        let mut rpc = Rpc::new(1);
        rpc.start(t0, 1, addr(1), vec![], Owner::Check, None, Some(addr(2)), false);
        let mut out = Vec::new();
        rpc.handle_timeout(t0 + PUNCH_DELAY, &mut out);
        assert!(matches!(out.as_slice(), [Action::Punch { referrer, target, rid: None }] if *referrer == addr(2) && *target == addr(1)));
        out.clear();
        for k in 1..=3 {
            rpc.handle_timeout(t0 + TICK * k, &mut out);
        }
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn saturation_queues_and_releases_one_per_completion() {
        let t0 = Instant::now();
        let mut rpc = Rpc::new(0);
        let mut sent = 0;
        for i in 0..300u16 {
            if let Some(Action::Send { .. }) = rpc.start(t0, i, addr(1), vec![], Owner::Check, None, None, false) {
                sent += 1;
            }
        }
        assert_eq!(sent, 250, "50/s over 5 s and 16 in flight saturate");
        assert_eq!(rpc.queued(), 50);
        let mut out = Vec::new();
        rpc.complete(t0, 0, addr(1), &mut out);
        assert!(out.is_empty(), "still saturated");
    }
}
