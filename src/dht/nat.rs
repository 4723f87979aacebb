//! Classifying our NAT from the `to` addresses DHT nodes report (not in the
//! 2019 stack; hyperdht 6 does the same job in `lib/nat.js`).
//!
//! Every response to one of our requests carries `to`: our address as that
//! node saw the datagram. Behind a NAT that maps per socket ("consistent":
//! cone routers, port-preserving or not) every node sees one address and
//! port. Behind a NAT that maps per destination ("random": symmetric
//! routers, carrier NATs) every node sees the same IP with a port of its
//! own. Without a NAT the address is one of our interfaces' and the port is
//! the one we bound.
//!
//! One party must never decide alone, so the samples are one per /24 of the
//! reporting nodes (`RoutingTable::recent_to_diverse`), and no class is
//! given below [`NAT_MIN_SAMPLES`] of them.

use std::net::{Ipv4Addr, SocketAddrV4};

/// Samples looked at, most recent first: hyperdht's nat-sampler keeps a
/// ring of 16.
pub const NAT_SAMPLES: usize = 16;

/// No decision below this many samples (from distinct /24s): hyperdht
/// decides from its 3rd sample on, and so does the 2019 `holepunchable()`
/// tally (wire-dht.md §7).
pub const NAT_MIN_SAMPLES: usize = 3;

/// What our NAT does to the UDP socket's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatType {
    /// Too few or disagreeing samples.
    #[default]
    Unknown,
    /// No NAT: nodes see one of our interface addresses and the bound port.
    Open,
    /// One public address and port for every destination: the peer can
    /// aim at it, and a hole punch works.
    Consistent,
    /// One public IP, a different port per destination: the peer cannot
    /// know the port; only birthday punching or a relay gets through.
    Random,
}

impl NatType {
    /// The word JS sees: `natType()` and `stats().natType`.
    pub fn as_str(self) -> &'static str {
        match self {
            NatType::Unknown => "unknown",
            NatType::Open => "open",
            NatType::Consistent => "consistent",
            NatType::Random => "random",
        }
    }

    /// The 1-byte code the capability record carries (`capability`).
    pub fn code(self) -> u8 {
        match self {
            NatType::Unknown => 0,
            NatType::Open => 1,
            NatType::Consistent => 2,
            NatType::Random => 3,
        }
    }

    /// The class for a capability record's code; unknown codes read as
    /// `Unknown` so a newer peer's classes never break an older one.
    pub fn from_code(code: u8) -> NatType {
        match code {
            1 => NatType::Open,
            2 => NatType::Consistent,
            3 => NatType::Random,
            _ => NatType::Unknown,
        }
    }
}

/// Where our socket is bound, to tell `Open` from `Consistent`: its port,
/// and whether an IP is one of our interfaces'.
pub struct Local<'a> {
    pub port: u16,
    pub ips: &'a [Ipv4Addr],
}

/// Classifies `samples` (one per reporting /24, most recent first; only the
/// first [`NAT_SAMPLES`] count).
///
/// - `Consistent` (or `Open`): at least 3 samples name the same address
///   and port.
/// - `Random`: at least 3 samples name the same IP, and no port is named
///   by more than one of them; or, from 4 samples on, by more than two (a
///   port drawn twice by a random mapper happens, three times does not).
/// - Otherwise `Unknown`: too few samples, several IPs, or a split view.
pub fn classify(samples: &[SocketAddrV4], local: Option<Local<'_>>) -> NatType {
    let samples = &samples[..samples.len().min(NAT_SAMPLES)];
    if samples.len() < NAT_MIN_SAMPLES {
        return NatType::Unknown;
    }
    let exact = |a: &SocketAddrV4| samples.iter().filter(|s| *s == a).count();
    let same_ip = |ip: &Ipv4Addr| samples.iter().filter(|s| s.ip() == ip).count();
    // At most 16 samples: quadratic counting is a few hundred compares.
    let (top, top_hits) = samples.iter().map(|s| (*s, exact(s))).max_by_key(|(_, n)| *n).expect("non-empty");
    if top_hits >= NAT_MIN_SAMPLES {
        let open = local.is_some_and(|l| l.port == top.port() && l.ips.contains(top.ip()));
        return if open { NatType::Open } else { NatType::Consistent };
    }
    let ip_hits = samples.iter().map(|s| same_ip(s.ip())).max().unwrap_or(0);
    if ip_hits >= NAT_MIN_SAMPLES && (top_hits == 1 || samples.len() > NAT_MIN_SAMPLES) {
        return NatType::Random;
    }
    NatType::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(host: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, host), port)
    }

    #[test]
    fn too_few_samples_decide_nothing() {
        assert_eq!(classify(&[], None), NatType::Unknown);
        assert_eq!(classify(&[a(1, 5)], None), NatType::Unknown);
        // Two parties agreeing are still not enough.
        assert_eq!(classify(&[a(1, 5), a(1, 5)], None), NatType::Unknown);
        // Two parties seeing two ports are not "random" either.
        assert_eq!(classify(&[a(1, 5), a(1, 6)], None), NatType::Unknown);
    }

    #[test]
    fn three_agreeing_parties_make_it_consistent() {
        assert_eq!(classify(&[a(1, 5), a(1, 5), a(1, 5)], None), NatType::Consistent);
        // A liar among five does not change it.
        assert_eq!(classify(&[a(1, 5), a(9, 9), a(1, 5), a(1, 5), a(1, 5)], None), NatType::Consistent);
    }

    #[test]
    fn open_needs_our_own_ip_and_bound_port() {
        let ips = [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(203, 0, 113, 1)];
        let s = [a(1, 5), a(1, 5), a(1, 5)];
        assert_eq!(classify(&s, Some(Local { port: 5, ips: &ips })), NatType::Open);
        // A port-preserving NAT keeps the port, but the IP is the router's.
        assert_eq!(classify(&[a(7, 5), a(7, 5), a(7, 5)], Some(Local { port: 5, ips: &ips })), NatType::Consistent);
        // Our IP with another port: a NAT on our own host (or a firewall
        // that remaps), not open.
        assert_eq!(classify(&s, Some(Local { port: 6, ips: &ips })), NatType::Consistent);
    }

    #[test]
    fn one_ip_with_a_port_per_party_is_random() {
        assert_eq!(classify(&[a(1, 5), a(1, 6), a(1, 7)], None), NatType::Random);
        // From 4 samples on, one repeated port is chance.
        assert_eq!(classify(&[a(1, 5), a(1, 6), a(1, 7), a(1, 5)], None), NatType::Random);
        // Three samples with one repeat: undecided.
        assert_eq!(classify(&[a(1, 5), a(1, 6), a(1, 5)], None), NatType::Unknown);
    }

    #[test]
    fn several_ips_without_agreement_are_unknown() {
        assert_eq!(classify(&[a(1, 5), a(2, 5), a(3, 5)], None), NatType::Unknown);
        assert_eq!(classify(&[a(1, 5), a(2, 6), a(1, 7), a(2, 8)], None), NatType::Unknown);
    }

    #[test]
    fn only_the_most_recent_samples_count() {
        // 16 recent "random" samples outweigh older consistent ones.
        let mut s: Vec<_> = (0..NAT_SAMPLES as u16).map(|i| a(1, 1000 + i)).collect();
        s.extend([a(1, 5), a(1, 5), a(1, 5)]);
        assert_eq!(classify(&s, None), NatType::Random);
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_are_unknown() {
        for t in [NatType::Unknown, NatType::Open, NatType::Consistent, NatType::Random] {
            assert_eq!(NatType::from_code(t.code()), t);
        }
        assert_eq!(NatType::from_code(200), NatType::Unknown);
    }
}
