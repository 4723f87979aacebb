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

/// Sources tracked per generation (see [`Budget`]): at most twice this
/// many are known at once, 8,192 entries of 32 bytes, ~0.3 MiB. A bootstrap
/// node hears from more addresses than that; a source it forgets comes back
/// with a fresh burst and is verified again, which costs one ping.
pub const MAX_SOURCES: usize = 4096;

/// A generation lasts at most this long, so a source unheard for one to two
/// minutes is forgotten. Short, because a node hears from many addresses
/// (hundreds a minute in the 10,000-node simulation) and each costs memory.
pub const GENERATION: Duration = Duration::from_secs(60);

/// A round trip vouches for a source this long (while it is remembered):
/// the life of a round-trip token (wire-dht.md §5).
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

/// One source, 28 bytes: times are milliseconds or seconds since the
/// budget's epoch (wrapping u32: entries live minutes, not weeks).
#[derive(Debug, Clone, Copy)]
struct Source {
    last_ms: u32,
    requests: f32,
    relays: f32,
    bytes_in: u32,
    bytes_out: u32,
    /// Seconds since the epoch + 1 until which the source is verified; 0: not.
    verified_until: u32,
    /// Seconds since the epoch + 1 of the last verification ping; 0: none.
    pinged: u32,
}

/// What a request is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over the request rate: dropped unanswered.
    RateLimited,
}

/// The sources heard recently, in two generations: a lookup finds a source
/// in either and moves it to the current one; when the current generation
/// is full or [`GENERATION`] old, the previous one is dropped and the
/// current one becomes previous. O(1) per datagram and bounded memory, also
/// under a flood from spoofed addresses (which only makes honest sources
/// be forgotten sooner: they get a fresh burst and are verified again).
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    epoch: Option<Instant>,
    current: HashMap<Ipv4Addr, Source>,
    previous: HashMap<Ipv4Addr, Source>,
    rotated_ms: u32,
}

impl Budget {
    pub fn new(limits: Limits) -> Self {
        Budget { limits, epoch: None, current: HashMap::new(), previous: HashMap::new(), rotated_ms: 0 }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Sources remembered.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn ms(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_millis() as u64 as u32
    }

    fn secs(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        (now.saturating_duration_since(epoch).as_secs() as u32).wrapping_add(1)
    }

    fn rotate(&mut self, now_ms: u32) {
        self.previous = std::mem::take(&mut self.current);
        self.rotated_ms = now_ms;
    }

    fn entry(&mut self, now: Instant, ip: Ipv4Addr) -> &mut Source {
        let now_ms = self.ms(now);
        if now_ms.wrapping_sub(self.rotated_ms) >= GENERATION.as_millis() as u32 {
            self.rotate(now_ms);
        }
        if !self.current.contains_key(&ip) {
            let found = self.previous.remove(&ip);
            if self.current.len() >= MAX_SOURCES {
                self.rotate(now_ms);
            }
            let l = &self.limits;
            let fresh = Source {
                last_ms: now_ms,
                requests: l.request_burst as f32,
                relays: l.relay_burst as f32,
                bytes_in: 0,
                bytes_out: 0,
                verified_until: 0,
                pinged: 0,
            };
            self.current.insert(ip, found.unwrap_or(fresh));
        }
        let limits = self.limits;
        let s = self.current.get_mut(&ip).expect("just inserted");
        let dt = now_ms.wrapping_sub(s.last_ms) as f32 / 1000.0;
        s.requests = (s.requests + dt * limits.requests_per_second as f32).min(limits.request_burst as f32);
        s.relays = (s.relays + dt * limits.relays_per_second as f32).min(limits.relay_burst as f32);
        s.last_ms = now_ms;
        s
    }

    fn verified(s: &Source, now_s: u32) -> bool {
        s.verified_until != 0 && (s.verified_until.wrapping_sub(now_s) as i32) > 0
    }

    /// Periodic upkeep (the node's maintenance tick): ages the generations
    /// when the node is quiet.
    pub fn maintain(&mut self, now: Instant) {
        let now_ms = self.ms(now);
        if now_ms.wrapping_sub(self.rotated_ms) >= GENERATION.as_millis() as u32 {
            self.rotate(now_ms);
        }
        if self.current.is_empty() && self.previous.is_empty() {
            self.current.shrink_to_fit();
            self.previous.shrink_to_fit();
        }
    }

    /// A request of `len` bytes arrived from `ip`.
    pub fn on_request(&mut self, now: Instant, ip: Ipv4Addr, len: usize) -> Admit {
        let s = self.entry(now, ip);
        if s.requests < 1.0 {
            return Admit::RateLimited;
        }
        s.requests -= 1.0;
        s.bytes_in = s.bytes_in.saturating_add(len as u32);
        Admit::Yes
    }

    pub fn is_verified(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        let now_s = self.secs(now);
        self.current.get(&ip).or_else(|| self.previous.get(&ip)).is_some_and(|s| Self::verified(s, now_s))
    }

    /// `ip` completed a round trip with us.
    pub fn verify(&mut self, now: Instant, ip: Ipv4Addr) {
        let until = self.secs(now).wrapping_add(VERIFIED_FOR.as_secs() as u32);
        self.entry(now, ip).verified_until = until.max(1);
    }

    /// May we send `len` more bytes on behalf of `ip` (a reply to it, or a
    /// packet it caused)? Counts them when yes.
    pub fn spend(&mut self, now: Instant, ip: Ipv4Addr, len: usize) -> bool {
        let now_s = self.secs(now);
        let burst = self.limits.unverified_burst as u64;
        let s = self.entry(now, ip);
        let len = len as u32;
        if Self::verified(s, now_s) {
            s.bytes_out = s.bytes_out.saturating_add(len);
            return true;
        }
        let allowed = burst.max(AMPLIFICATION * s.bytes_in as u64);
        if s.bytes_out as u64 + len as u64 > allowed {
            return false;
        }
        s.bytes_out += len;
        true
    }

    /// Should we ping `ip` to verify it now? True once an unverified source
    /// has used half its burst, at most every [`PING_INTERVAL`]; the ping's
    /// bytes are spent from the same budget.
    pub fn wants_ping(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        let now_s = self.secs(now);
        let burst = self.limits.unverified_burst as u64;
        let s = self.entry(now, ip);
        if Self::verified(s, now_s) || (s.bytes_out as u64) * 2 < burst {
            return false;
        }
        if s.pinged != 0 && now_s.wrapping_sub(s.pinged) < PING_INTERVAL.as_secs() as u32 {
            return false;
        }
        s.pinged = now_s;
        true
    }

    /// One hole-punch relay for `ip`, if its rate allows.
    pub fn relay(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        let s = self.entry(now, ip);
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
    fn memory_stays_bounded_under_a_spoofed_flood_and_idle_sources_are_forgotten() {
        let now = Instant::now();
        let mut b = Budget::new(Limits::default());
        b.on_request(now, IP, 10);
        b.verify(now, IP);
        for i in 0..100_000u32 {
            b.on_request(now, Ipv4Addr::from(0x0a00_0000 + i), 10);
            assert!(b.len() <= 2 * MAX_SOURCES);
        }
        assert_eq!(std::mem::size_of::<Source>(), 28);
        // The verified source was forgotten by the flood: it gets a fresh
        // burst, and is verified again by a ping.
        assert!(!b.is_verified(now, IP));
        assert!(b.spend(now, IP, 4096));
        // A quiet node forgets everyone within two generations.
        b.maintain(now + GENERATION);
        b.maintain(now + 2 * GENERATION);
        assert!(b.is_empty());
    }

    #[test]
    fn a_verified_source_stays_verified_while_it_is_heard() {
        let now = Instant::now();
        let mut b = Budget::new(Limits::default());
        b.verify(now, IP);
        for m in 0..30u32 {
            let at = now + Duration::from_secs(30 * m as u64);
            b.on_request(at, IP, 10);
            assert_eq!(b.is_verified(at, IP), 30 * m < VERIFIED_FOR.as_secs() as u32, "{m}");
        }
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
