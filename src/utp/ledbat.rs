//! Congestion control: slow start, then LEDBAT (BEP 29 / RFC 6817) as the
//! spec describes libutp's (spec/wire-utp.md §4): a 100 ms queuing-delay
//! target, growth of at most 3000 bytes per round trip, halving on loss at
//! most once per 100 ms.
//!
//! The one-way delay samples are the peer's `timestamp_difference` fields:
//! its receive clock minus our send clock, so they carry an arbitrary clock
//! offset. The offset cancels out against the base delay (the minimum seen
//! over the last minutes); what remains is queuing delay.

use std::time::{Duration, Instant};

/// Most the window grows in one round trip in congestion avoidance (spec §4).
pub const MAX_GAIN_PER_RTT: f64 = 3000.0;
/// Loss halves the window at most this often (spec §4).
pub const LOSS_DECAY_INTERVAL: Duration = Duration::from_millis(100);
/// The window never shrinks below this many bytes (libutp's floor, spec §4).
pub const MIN_WINDOW: f64 = 10.0;
/// Base-delay history: one minimum per minute…
const BASE_BUCKET: Duration = Duration::from_secs(60);
/// …over this many minutes (RFC 6817's BASE_HISTORY).
const BASE_BUCKETS: usize = 10;
/// Current delay is the minimum of this many latest samples (RFC 6817's
/// CURRENT_FILTER), which filters out single delayed acks.
const CURRENT_FILTER: usize = 4;

/// `a < b` for 32-bit microsecond clocks that may wrap.
fn wrap_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Minimum one-way delay per time bucket.
#[derive(Debug, Clone)]
struct DelayBase {
    buckets: [u32; BASE_BUCKETS],
    filled: usize,
    current: usize,
    bucket_start: Option<Instant>,
}

impl DelayBase {
    fn new() -> Self {
        DelayBase { buckets: [0; BASE_BUCKETS], filled: 0, current: 0, bucket_start: None }
    }

    fn add(&mut self, now: Instant, sample: u32) {
        match self.bucket_start {
            None => {
                self.bucket_start = Some(now);
                self.buckets[0] = sample;
                self.filled = 1;
                self.current = 0;
            }
            Some(start) if now.saturating_duration_since(start) >= BASE_BUCKET => {
                self.bucket_start = Some(now);
                self.current = (self.current + 1) % BASE_BUCKETS;
                self.buckets[self.current] = sample;
                self.filled = (self.filled + 1).min(BASE_BUCKETS);
            }
            Some(_) => {
                if wrap_lt(sample, self.buckets[self.current]) {
                    self.buckets[self.current] = sample;
                }
            }
        }
    }

    fn base(&self) -> Option<u32> {
        if self.filled == 0 {
            return None;
        }
        let mut it = (0..self.filled).map(|i| self.buckets[(self.current + BASE_BUCKETS - i) % BASE_BUCKETS]);
        let first = it.next()?;
        Some(it.fold(first, |m, s| if wrap_lt(s, m) { s } else { m }))
    }
}

/// The congestion window of one connection.
#[derive(Debug, Clone)]
pub struct Ledbat {
    cwnd: f64,
    max_cwnd: f64,
    mss: f64,
    target_us: f64,
    slow_start: bool,
    ssthresh: f64,
    last_decrease: Option<Instant>,
    base: DelayBase,
    recent: [u32; CURRENT_FILTER],
    recent_len: usize,
    recent_pos: usize,
}

impl Ledbat {
    /// A window of one packet (spec §4: "starts at one packet").
    pub fn new(mss: usize, max_cwnd: usize, target: Duration) -> Self {
        Ledbat {
            cwnd: mss as f64,
            max_cwnd: max_cwnd as f64,
            mss: mss as f64,
            target_us: target.as_micros() as f64,
            slow_start: true,
            ssthresh: max_cwnd as f64,
            last_decrease: None,
            base: DelayBase::new(),
            recent: [0; CURRENT_FILTER],
            recent_len: 0,
            recent_pos: 0,
        }
    }

    /// Bytes that may be in flight.
    pub fn window(&self) -> usize {
        self.cwnd as usize
    }

    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// A one-way delay sample (the peer's timestamp difference, µs, non-zero).
    pub fn on_delay_sample(&mut self, now: Instant, sample: u32) {
        self.base.add(now, sample);
        self.recent[self.recent_pos] = sample;
        self.recent_pos = (self.recent_pos + 1) % CURRENT_FILTER;
        self.recent_len = (self.recent_len + 1).min(CURRENT_FILTER);
    }

    /// Queuing delay estimate in µs, if there are samples.
    pub fn queuing_delay_us(&self) -> Option<u32> {
        let base = self.base.base()?;
        let cur = self.recent[..self.recent_len].iter().copied().fold(None, |m: Option<u32>, s| match m {
            Some(m) if !wrap_lt(s, m) => Some(m),
            _ => Some(s),
        })?;
        let d = cur.wrapping_sub(base) as i32;
        Some(d.max(0) as u32)
    }

    /// `bytes_acked` newly acknowledged; `flight` bytes were in flight
    /// before the ack.
    pub fn on_ack(&mut self, bytes_acked: usize, flight: usize) {
        if bytes_acked == 0 {
            return;
        }
        let acked = bytes_acked as f64;
        let delay = self.queuing_delay_us().map(|d| d as f64);
        let off_target = match delay {
            Some(d) => ((self.target_us - d) / self.target_us).clamp(-1.0, 1.0),
            None => 1.0,
        };
        // Application-limited senders do not grow the window: nothing was
        // learned about the path beyond what was in flight.
        let limited = (flight as f64) + 2.0 * self.mss < self.cwnd;
        if self.slow_start {
            if delay.is_some_and(|d| d > 0.9 * self.target_us) {
                self.slow_start = false;
                self.ssthresh = self.cwnd;
            } else if !limited {
                self.cwnd += acked;
                if self.cwnd >= self.ssthresh {
                    self.slow_start = false;
                }
            }
        }
        if !self.slow_start {
            let window_factor = acked.min(self.cwnd) / self.cwnd.max(acked);
            let gain = MAX_GAIN_PER_RTT * off_target * window_factor;
            if gain < 0.0 || !limited {
                self.cwnd += gain;
            }
        }
        self.cwnd = self.cwnd.clamp(MIN_WINDOW, self.max_cwnd);
    }

    /// A packet was lost (duplicate acks or a selective ack showing a hole).
    pub fn on_loss(&mut self, now: Instant) {
        if let Some(t) = self.last_decrease {
            if now.saturating_duration_since(t) < LOSS_DECAY_INTERVAL {
                return;
            }
        }
        self.last_decrease = Some(now);
        self.cwnd = (self.cwnd / 2.0).max(MIN_WINDOW);
        self.ssthresh = self.cwnd;
        self.slow_start = false;
    }

    /// The retransmission timer fired with packets in flight: start over
    /// from one packet in slow start.
    pub fn on_timeout(&mut self) {
        self.ssthresh = (self.cwnd / 2.0).max(self.mss * 2.0);
        self.cwnd = self.mss;
        self.slow_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1402;

    fn cc() -> Ledbat {
        Ledbat::new(MSS, 1 << 20, Duration::from_millis(100))
    }

    #[test]
    fn slow_start_doubles_then_ledbat_caps_gain() {
        let mut c = cc();
        let t0 = Instant::now();
        assert_eq!(c.window(), MSS);
        c.on_delay_sample(t0, 1_000);
        for _ in 0..4 {
            let w = c.window();
            c.on_ack(w, w);
        }
        assert_eq!(c.window(), MSS * 16);
        // Queuing delay above 90% of target: leaves slow start.
        c.on_delay_sample(t0, 1_000 + 95_000);
        c.on_delay_sample(t0, 1_000 + 95_000);
        c.on_delay_sample(t0, 1_000 + 95_000);
        c.on_delay_sample(t0, 1_000 + 95_000);
        let w = c.window();
        c.on_ack(w, w);
        assert!(!c.in_slow_start());
        // One full window of acks at zero queuing delay: at most +3000 B.
        for _ in 0..4 {
            c.on_delay_sample(t0, 1_000);
        }
        let before = c.window();
        for _ in 0..(before / MSS) {
            c.on_ack(MSS, before);
        }
        let grown = c.window() - before;
        assert!(grown <= 3000 && grown > 2000, "grew {grown}");
    }

    #[test]
    fn over_target_shrinks() {
        let mut c = cc();
        let t0 = Instant::now();
        c.on_loss(t0);
        let mut w = c.window();
        c.on_delay_sample(t0, 5_000);
        for _ in 0..4 {
            c.on_delay_sample(t0, 5_000 + 300_000);
        }
        c.on_ack(MSS, w);
        assert!(c.window() < w);
        w = c.window();
        assert!(w >= MIN_WINDOW as usize);
    }

    #[test]
    fn loss_halves_once_per_100ms() {
        let mut c = cc();
        let t0 = Instant::now();
        for _ in 0..6 {
            let w = c.window();
            c.on_ack(w, w);
        }
        let w = c.window();
        c.on_loss(t0);
        assert_eq!(c.window(), w / 2);
        c.on_loss(t0 + Duration::from_millis(50));
        assert_eq!(c.window(), w / 2);
        c.on_loss(t0 + Duration::from_millis(101));
        assert_eq!(c.window(), w / 4);
    }

    #[test]
    fn timeout_resets_to_one_packet() {
        let mut c = cc();
        for _ in 0..6 {
            let w = c.window();
            c.on_ack(w, w);
        }
        c.on_timeout();
        assert_eq!(c.window(), MSS);
        assert!(c.in_slow_start());
    }

    #[test]
    fn base_delay_survives_wrapping_clocks() {
        let mut c = cc();
        let t0 = Instant::now();
        c.on_delay_sample(t0, u32::MAX - 10);
        c.on_delay_sample(t0, u32::MAX - 10);
        c.on_delay_sample(t0, 20); // 31 µs later than the base, across the wrap
        c.on_delay_sample(t0, 20);
        c.on_delay_sample(t0, 20);
        c.on_delay_sample(t0, 20);
        assert_eq!(c.queuing_delay_us(), Some(31));
    }

    #[test]
    fn app_limited_does_not_grow() {
        let mut c = cc();
        for _ in 0..6 {
            let w = c.window();
            c.on_ack(w, w);
        }
        let w = c.window();
        c.on_ack(MSS, MSS);
        assert_eq!(c.window(), w);
    }
}
