//! Learning our external address from the `to` fields other nodes report
//! (wire-dht.md §7): dht-rpc's `remoteAddress()` / `holepunchable()`.
//!
//! Feed [`tally`] with `RoutingTable::recent_to(TALLY_SAMPLES)`.

use std::net::SocketAddrV4;

/// How many samples are tallied: the `to` values of the 10 most recently
/// seen routing-table nodes that have one (wire-dht.md §7).
pub const TALLY_SAMPLES: usize = 10;

/// The winning value must occur at least this often (wire-dht.md §7).
pub const TALLY_MIN_AGREE: usize = 3;

/// The tally fails once this many samples disagree with the winner
/// ("fewer than 3 disagree", wire-dht.md §7): a split view means we are
/// behind a NAT that maps per destination, or someone lies.
pub const TALLY_MAX_DISAGREE: usize = 3;

/// Result of the two passes of wire-dht.md §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tally {
    /// Pass 1: the address (IP and port) enough nodes agree on.
    pub exact: Option<SocketAddrV4>,
    /// Pass 2: enough nodes agree on the IP; this is the full `to` of the
    /// oldest sample that raised the winning count, so it carries that
    /// sample's port (not port 0). Computed even when pass 1 succeeded
    /// (then it always succeeds too, possibly with another port).
    pub ip_only: Option<SocketAddrV4>,
}

impl Tally {
    /// What `remoteAddress()` returns: pass 1, else pass 2.
    pub fn remote_address(&self) -> Option<SocketAddrV4> {
        self.exact.or(self.ip_only)
    }

    /// `holepunchable()`: pass 1 succeeded.
    pub fn holepunchable(&self) -> bool {
        self.exact.is_some()
    }
}

/// Tallies `samples`, given most recent first; only the first
/// [`TALLY_SAMPLES`] are considered.
pub fn tally(samples: &[SocketAddrV4]) -> Tally {
    let samples = &samples[..samples.len().min(TALLY_SAMPLES)];
    Tally {
        exact: pass(samples, |a| (u32::from(*a.ip()), a.port())),
        ip_only: pass(samples, |a| (u32::from(*a.ip()), 0)),
    }
}

/// One pass, walking from the most recent sample to the oldest. The winner
/// is the first key to reach the highest count; the sample returned is the
/// one that brought it there, i.e. the oldest of the winner's samples up to
/// that point. That choice only matters for the IP-only pass, where the
/// winner's samples may carry different ports.
fn pass(
    samples: &[SocketAddrV4],
    key: impl Fn(&SocketAddrV4) -> (u32, u16),
) -> Option<SocketAddrV4> {
    // At most 10 samples: a linear table beats a map.
    let mut counts: [((u32, u16), usize); TALLY_SAMPLES] = [((0, 0), 0); TALLY_SAMPLES];
    let mut distinct = 0;
    let mut best = 0;
    let mut result = None;
    for s in samples {
        let k = key(s);
        let slot = match counts[..distinct].iter().position(|(x, _)| *x == k) {
            Some(i) => i,
            None => {
                counts[distinct] = (k, 0);
                distinct += 1;
                distinct - 1
            }
        };
        counts[slot].1 += 1;
        if counts[slot].1 > best {
            best = counts[slot].1;
            result = Some(*s);
        }
    }
    let disagree = samples.len() - best;
    if best >= TALLY_MIN_AGREE && disagree < TALLY_MAX_DISAGREE {
        result
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, last), port)
    }

    #[test]
    fn empty_and_too_few() {
        assert_eq!(tally(&[]), Tally::default());
        let t = tally(&[a(1, 5000), a(1, 5000)]);
        assert_eq!(t, Tally::default());
        assert!(!t.holepunchable());
        assert_eq!(t.remote_address(), None);
    }

    #[test]
    fn three_agree_is_enough() {
        let x = a(1, 5000);
        let t = tally(&[x, x, x]);
        assert_eq!(t.exact, Some(x));
        assert_eq!(t.ip_only, Some(x));
        assert!(t.holepunchable());
        assert_eq!(t.remote_address(), Some(x));
    }

    #[test]
    fn two_disagree_still_ok_three_fail() {
        let x = a(1, 5000);
        let (y, z, w) = (a(2, 1), a(3, 1), a(4, 1));
        assert_eq!(tally(&[x, y, x, z, x]).exact, Some(x));
        // Three dissenters: rejected even with a clear majority.
        assert_eq!(tally(&[x, y, x, z, x, w, x, x, x]).exact, None);
        // Seven agree and three disagree out of ten: rejected.
        assert_eq!(tally(&[x, x, x, x, x, x, x, y, z, w]).exact, None);
    }

    #[test]
    fn only_ten_most_recent_count() {
        let x = a(1, 5000);
        let y = a(2, 5000);
        // The three y samples are older than the ten most recent.
        let mut s = vec![x; 10];
        s.extend([y, y, y]);
        assert_eq!(tally(&s).exact, Some(x));
        // Reversed: three y within the window, x wins 7 but 3 disagree.
        let mut s = vec![y; 3];
        s.extend(vec![x; 10]);
        assert_eq!(tally(&s).exact, None);
    }

    #[test]
    fn port_randomizing_nat_is_ip_only() {
        // Same IP, a different port per remote: not hole-punchable, but the
        // IP is known. The answer is the full `to` of the oldest sample that
        // raised the winning count: here the last (oldest) one, port 4.
        let s = [a(1, 1), a(1, 2), a(1, 3), a(1, 4)];
        let t = tally(&s);
        assert_eq!(t.exact, None);
        assert!(!t.holepunchable());
        assert_eq!(t.ip_only, Some(a(1, 4)));
        assert_eq!(t.remote_address(), Some(a(1, 4)));
        assert_ne!(t.ip_only.unwrap().port(), 0);
    }

    #[test]
    fn ip_pass_returns_sample_that_raised_the_count() {
        // Most recent first. IP .1 reaches 3 at index 4 (port 30); the
        // older .1 sample at index 5 (port 40) raises it to 4.
        let s = [a(1, 10), a(9, 1), a(1, 20), a(9, 2), a(1, 30), a(1, 40)];
        let t = tally(&s);
        assert_eq!(t.exact, None);
        assert_eq!(t.ip_only, Some(a(1, 40)));
        // A trailing dissenter does not change which sample is returned.
        let s = [a(1, 10), a(1, 20), a(1, 30), a(9, 9)];
        assert_eq!(tally(&s).ip_only, Some(a(1, 30)));
    }

    #[test]
    fn exact_wins_over_ip_pass_in_remote_address() {
        // Exact pass finds port 7; the IP pass would return the oldest
        // sample (port 8). remoteAddress prefers the exact answer.
        let s = [a(1, 7), a(1, 7), a(1, 7), a(1, 8)];
        let t = tally(&s);
        assert_eq!(t.exact, Some(a(1, 7)));
        assert_eq!(t.ip_only, Some(a(1, 8)));
        assert_eq!(t.remote_address(), Some(a(1, 7)));
    }

    #[test]
    fn tie_goes_to_first_to_reach_the_count() {
        // 3 vs 3 is rejected (3 disagree) whoever wins, but check the
        // winner bookkeeping with 3 vs 2.
        let x = a(1, 1);
        let y = a(2, 2);
        assert_eq!(tally(&[y, x, y, x, x]).exact, Some(x));
        assert_eq!(tally(&[x, y, x, y, y, x]).exact, None);
    }
}
