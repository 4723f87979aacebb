//! A token bucket of bytes: the per-pair rate cap.

use std::time::{Duration, Instant};

/// Bytes a second, holding at most `capacity` bytes. Kept in bytes × 10⁹
/// (byte-nanoseconds) so refills are exact integers at any rate.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: u128,
    capacity: u128,
    level: u128,
    last: Instant,
}

const NANOS: u128 = 1_000_000_000;

impl Bucket {
    /// A full bucket.
    pub fn new(now: Instant, rate: u32, capacity: usize) -> Self {
        let capacity = capacity as u128 * NANOS;
        Bucket { rate: rate as u128, capacity, level: capacity, last: now }
    }

    /// Takes `bytes` if the bucket holds them; otherwise takes nothing.
    pub fn take(&mut self, now: Instant, bytes: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.level = (self.level + self.rate * elapsed.as_nanos()).min(self.capacity);
        let need = bytes as u128 * NANOS;
        if self.level >= need {
            self.level -= need;
            true
        } else {
            false
        }
    }

    /// How long until `bytes` would fit (for tests and logs).
    pub fn wait_for(&self, bytes: usize) -> Duration {
        let need = (bytes as u128 * NANOS).saturating_sub(self.level);
        if self.rate == 0 {
            return Duration::MAX;
        }
        Duration::from_nanos(need.div_ceil(self.rate).min(u64::MAX as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_up_to_the_capacity() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 1000, 1500);
        assert!(b.take(t0, 1500));
        assert!(!b.take(t0, 1));
        assert_eq!(b.wait_for(500), Duration::from_millis(500));
        assert!(b.take(t0 + Duration::from_millis(500), 500));
        assert!(!b.take(t0 + Duration::from_millis(500), 1));
        // An hour idle fills it only to the capacity.
        assert!(b.take(t0 + Duration::from_secs(3600), 1500));
        assert!(!b.take(t0 + Duration::from_secs(3600), 1));
    }
}
