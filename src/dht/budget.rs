//! Per-source budgets: how many requests one IPv4 address may make, how
//! many reply bytes it may draw before it has proven it can receive at that
//! address, and how many hole punches it may have us relay.
//!
//! Not in the reference, which answers everything. A UDP source address can
//! be forged, so every reply is a packet an attacker may aim at a victim.
//! QUIC's rule (RFC 9000 §8.1) bounds that: until a source has completed a
//! round trip with us, it gets at most [`AMPLIFICATION`]× the bytes it sent.
//! A round trip is a response to a request of ours that came back from the
//! address it went to, or an UPDATE carrying a round-trip token we issued
//! to that IP. A small first allowance ([`Limits::unverified_burst`])
//! keeps a client's first lookup fully answered; meanwhile the node pings
//! the source (see [`Budget::wants_ping`]) so an honest client is verified
//! before the allowance runs out.
//!
//! Every address has a budget, loopback and private ones too; a testnet
//! raises them with [`Limits::scaled`].

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// QUIC's anti-amplification factor (RFC 9000 §8.1).
pub const AMPLIFICATION: u64 = 3;

/// Sources tracked at once. Beyond this a new source gets no entry: it is
/// answered only within 3× of the request at hand and not pinged. A spoofed
/// flood from many addresses thus costs bounded memory. 8,192 entries are
/// ~0.5 MiB, more distinct addresses than a busy node hears from in the
/// [`IDLE`] window.
pub const MAX_SOURCES: usize = 8192;

/// A source unheard for this long is forgotten (and must prove itself
/// again). Ten minutes: the life of a round-trip token (wire-dht.md §5).
pub const IDLE: Duration = Duration::from_secs(600);

/// A round trip vouches for a source this long: again a token's life.
pub const VERIFIED_FOR: Duration = Duration::from_secs(600);

/// At most one verification ping per source this often.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Sustained requests a second from one IP. Default 1,000: a JS
    /// dht-rpc node sends at most 16 requests in flight, with a saturation
    /// gate at 50/s (wire-dht.md §3.4), so even dozens of honest hosts behind
    /// one NAT stay well below; a flood from one IP costs us 1,000 cheap
    /// replies a second at most.
    pub requests_per_second: u32,
    /// Requests one IP may send at once above the rate. Default 2,000: a
    /// loopback testnet of a few hundred nodes bootstrapping at once.
    pub request_burst: u32,
    /// Reply bytes a source gets before the 3× rule applies. Default 4,096:
    /// a JS client's first `_find_node` and `peers` replies (≈ 900 bytes
    /// each with 20 closer nodes) plus a holepunch fit; and 200 requests of
    /// the smallest decodable kind (7 bytes) already earn 4,200 bytes under
    /// the 3× rule, so the burst never lets 200 requests draw more than 3×.
    pub unverified_burst: u32,
    /// Hole punches one IP may have us relay, per second. Default 5, burst
    /// [`Limits::relay_burst`]: a client asks a referrer to punch once per
    /// connection attempt and once per retry (wire-dht.md §6).
    pub relays_per_second: u32,
    /// Default 20.
    pub relay_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { requests_per_second: 1000, request_burst: 2000, unverified_burst: 4096, relays_per_second: 5, relay_burst: 20 }
    }
}

impl Limits {
    /// Every limit multiplied by `factor` (a testnet with many nodes on one
    /// address). The 3× rule itself stays.
    pub fn scaled(factor: u32) -> Self {
        let d = Limits::default();
        let f = factor.max(1);
        Limits {
            requests_per_second: d.requests_per_second.saturating_mul(f),
            request_burst: d.request_burst.saturating_mul(f),
            unverified_burst: d.unverified_burst.saturating_mul(f),
            relays_per_second: d.relays_per_second.saturating_mul(f),
            relay_burst: d.relay_burst.saturating_mul(f),
        }
    }
}

#[derive(Debug, Clone)]
struct Source {
    last: Instant,
    requests: f32,
    relays: f32,
    bytes_in: u64,
    bytes_out: u64,
    verified_until: Option<Instant>,
    pinged: Option<Instant>,
}

/// What a request is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over the request rate: dropped unanswered.
    RateLimited,
}

#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    sources: HashMap<Ipv4Addr, Source>,
    /// Bytes of the request being handled from a source without an entry
    /// (the table was full): its replies get 3× of that only.
    untracked: Option<(Ipv4Addr, u64, u64)>,
    next_sweep: Option<Instant>,
}

impl Budget {
    pub fn new(limits: Limits) -> Self {
        Budget { limits, sources: HashMap::new(), untracked: None, next_sweep: None }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    fn refill(limits: &Limits, s: &mut Source, now: Instant) {
        let dt = now.saturating_duration_since(s.last).as_secs_f32();
        s.requests = (s.requests + dt * limits.requests_per_second as f32).min(limits.request_burst as f32);
        s.relays = (s.relays + dt * limits.relays_per_second as f32).min(limits.relay_burst as f32);
        s.last = now;
    }

    fn entry(&mut self, now: Instant, ip: Ipv4Addr) -> Option<&mut Source> {
        if !self.sources.contains_key(&ip) {
            if self.sources.len() >= MAX_SOURCES {
                self.sweep(now);
                if self.sources.len() >= MAX_SOURCES {
                    return None;
                }
            }
            let l = &self.limits;
            self.sources.insert(
                ip,
                Source {
                    last: now,
                    requests: l.request_burst as f32,
                    relays: l.relay_burst as f32,
                    bytes_in: 0,
                    bytes_out: 0,
                    verified_until: None,
                    pinged: None,
                },
            );
        }
        let limits = self.limits;
        let s = self.sources.get_mut(&ip)?;
        Self::refill(&limits, s, now);
        Some(s)
    }

    /// Forgets idle sources; runs at most once a second (and when full).
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(1));
        self.sources.retain(|_, s| now.saturating_duration_since(s.last) < IDLE);
        if self.sources.len() < self.sources.capacity() / 4 {
            self.sources.shrink_to_fit();
        }
    }

    /// Periodic upkeep (the node's maintenance tick).
    pub fn maintain(&mut self, now: Instant) {
        self.next_sweep = None;
        self.sweep(now);
    }

    /// A request of `len` bytes arrived from `ip`.
    pub fn on_request(&mut self, now: Instant, ip: Ipv4Addr, len: usize) -> Admit {
        self.untracked = None;
        let Some(s) = self.entry(now, ip) else {
            self.untracked = Some((ip, len as u64, 0));
            return Admit::Yes;
        };
        if s.requests < 1.0 {
            return Admit::RateLimited;
        }
        s.requests -= 1.0;
        s.bytes_in += len as u64;
        Admit::Yes
    }

    pub fn is_verified(&self, now: Instant, ip: Ipv4Addr) -> bool {
        self.sources.get(&ip).and_then(|s| s.verified_until).is_some_and(|t| now < t)
    }

    /// `ip` completed a round trip with us.
    pub fn verify(&mut self, now: Instant, ip: Ipv4Addr) {
        if let Some(s) = self.entry(now, ip) {
            s.verified_until = Some(now + VERIFIED_FOR);
        }
    }

    /// May we send `len` more bytes on behalf of `ip` (a reply to it, or a
    /// packet it caused)? Counts them when yes.
    pub fn spend(&mut self, now: Instant, ip: Ipv4Addr, len: usize) -> bool {
        let len = len as u64;
        if let Some((uip, bytes_in, out)) = self.untracked.as_mut() {
            if *uip == ip {
                if *out + len > AMPLIFICATION * *bytes_in {
                    return false;
                }
                *out += len;
                return true;
            }
        }
        let burst = self.limits.unverified_burst as u64;
        let Some(s) = self.sources.get_mut(&ip) else { return false };
        if s.verified_until.is_some_and(|t| now < t) {
            s.bytes_out += len;
            return true;
        }
        let allowed = burst.max(AMPLIFICATION * s.bytes_in);
        if s.bytes_out + len > allowed {
            return false;
        }
        s.bytes_out += len;
        true
    }

    /// Should we ping `ip` to verify it now? True once an unverified source
    /// has used half its burst, at most every [`PING_INTERVAL`]; the ping's
    /// bytes are spent from the same budget.
    pub fn wants_ping(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        let burst = self.limits.unverified_burst as u64;
        let Some(s) = self.sources.get_mut(&ip) else { return false };
        if s.verified_until.is_some_and(|t| now < t) || s.bytes_out * 2 < burst {
            return false;
        }
        if s.pinged.is_some_and(|t| now.saturating_duration_since(t) < PING_INTERVAL) {
            return false;
        }
        s.pinged = Some(now);
        true
    }

    /// One hole-punch relay for `ip`, if its rate allows.
    pub fn relay(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        let Some(s) = self.entry(now, ip) else { return false };
        if s.relays < 1.0 {
            return false;
        }
        s.relays -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn unverified_sources_get_the_burst_then_three_times() {
        let now = Instant::now();
        let mut b = Budget::new(Limits::default());
        let (mut sent_in, mut sent_out) = (0u64, 0u64);
        for _ in 0..200 {
            b.on_request(now, IP, 7);
            sent_in += 7;
            if b.spend(now, IP, 800) {
                sent_out += 800;
            }
        }
        assert!(sent_out <= 3 * sent_in, "{sent_out} > 3 × {sent_in}");
        assert!(sent_out >= 3200, "the burst was answered: {sent_out}");
        b.verify(now, IP);
        assert!(b.spend(now, IP, 100_000), "verified sources are not byte-limited");
    }

    #[test]
    fn request_rate_and_burst() {
        let now = Instant::now();
        let l = Limits { request_burst: 10, requests_per_second: 10, ..Limits::default() };
        let mut b = Budget::new(l);
        let ok = (0..50).filter(|_| b.on_request(now, IP, 10) == Admit::Yes).count();
        assert_eq!(ok, 10);
        let later = now + Duration::from_millis(500);
        let ok = (0..50).filter(|_| b.on_request(later, IP, 10) == Admit::Yes).count();
        assert_eq!(ok, 5);
    }

    #[test]
    fn sources_beyond_the_table_get_three_times_their_request_only() {
        let now = Instant::now();
        let mut b = Budget::new(Limits::default());
        for i in 0..MAX_SOURCES as u32 {
            b.on_request(now, Ipv4Addr::from(0x0a00_0000 + i), 10);
        }
        assert_eq!(b.len(), MAX_SOURCES);
        let x = Ipv4Addr::new(203, 0, 113, 1);
        assert_eq!(b.on_request(now, x, 10), Admit::Yes);
        assert!(b.spend(now, x, 30));
        assert!(!b.spend(now, x, 1));
        assert_eq!(b.len(), MAX_SOURCES, "no entry for it");
        // Idle entries go after IDLE.
        b.on_request(now + IDLE, x, 10);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_testnet_raises_the_limits_but_keeps_the_three_times_rule() {
        let now = Instant::now();
        let mut b = Budget::new(Limits::scaled(10));
        let ok = (0..30_000).filter(|_| b.on_request(now, IP, 10) == Admit::Yes).count();
        assert_eq!(ok, 20_000);
        let mut b = Budget::new(Limits::scaled(10));
        b.on_request(now, IP, 10);
        assert!(b.spend(now, IP, 40_960));
        assert!(!b.spend(now, IP, 1));
    }

    #[test]
    fn relays_are_rate_limited() {
        let now = Instant::now();
        let mut b = Budget::new(Limits::default());
        let ok = (0..100).filter(|_| b.relay(now, IP)).count();
        assert_eq!(ok, 20);
        assert!(b.relay(now + Duration::from_millis(200), IP));
        assert!(!b.relay(now + Duration::from_millis(200), IP));
    }
}
