//! What a relay may hold and for how long: its caps, each with a default
//! and the reason for it. Every cap refuses with its own
//! [`Refusal`](super::message::Refusal) and has a counter in
//! [`RelayStats`](super::stats::RelayStats).

use std::time::Duration;

/// Default for [`RelayConfig::max_pairs`]. Ours: with the default rate a
/// full relay forwards at most 32 × 256 KiB/s = 8 MiB/s (about 67 Mbit/s),
/// what a volunteer's small server can give without noticing.
pub const MAX_PAIRS: usize = 32;

/// Default for [`RelayConfig::max_waiting`]. Ours: a waiting session costs
/// about 100 bytes and lives [`WAIT_LIFETIME`]; 256 of them is 25 KiB, and
/// eight times the pairs leaves room for sessions whose partner never comes.
pub const MAX_WAITING: usize = 256;

/// Default for [`RelayConfig::max_per_ip`]. Ours: a hyperswarm 2.x swarm
/// keeps at most `maxPeers` = 24 connections, and only the ones between two
/// random NATs (or after every punch failed) are relayed; 16 sessions from
/// one IP covers a swarm relaying two thirds of its peers, or several hosts
/// behind one NAT, and keeps one IP from taking the relay.
pub const MAX_PER_IP: usize = 16;

/// Default for [`RelayConfig::max_per_subnet`]. Ours: a /24 is mostly one
/// network (a home, an office, a hosting customer), so one party holding
/// many of its addresses could otherwise fill the waiting table with
/// 16 sessions from each; 64 is four hosts at the per-IP cap, a quarter
/// of the waiting table, twice the pairs.
pub const MAX_PER_SUBNET: usize = 64;

/// Default for [`RelayConfig::rate`], bytes a second per pair (both
/// directions together). Ours: 256 KiB/s (2 Mbit/s) carries a hypercore
/// replication of documents and small media; see [`MAX_PAIRS`] for the total.
pub const RATE: u32 = 256 * 1024;

/// Default for [`RelayConfig::pair_lifetime`]. Ours: a slot turns over at
/// least every half hour, so a long transfer cannot hold one forever; the
/// peers can pair again with a fresh token if they still need the path.
pub const PAIR_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Default for [`RelayConfig::wait_lifetime`]. Issue 11 item 6 gives
/// birthday punching and relaying at most 35 s: a partner that has not
/// joined by then has given up.
pub const WAIT_LIFETIME: Duration = Duration::from_secs(35);

/// Default for [`RelayConfig::idle_timeout`]. Ours: twice libutp's 29 s
/// keep-alive (spec/wire-utp.md §7), so a live uTP flow never idles out,
/// while a pair whose peers vanished frees its slot within a minute.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A cookie is valid in the period it was made and the next one, so for
/// 30 to 60 s. Ours: a client uses its cookie within one round trip, and
/// keeps re-joining (to refresh its NAT mapping) with a fresh one.
pub const COOKIE_PERIOD: Duration = Duration::from_secs(30);

/// Datagrams queued for sending at most; past it new ones are dropped and
/// counted (`transmit_overflow`). A driver drains the queue after every
/// call, and one call queues at most two; the bound is for a caller that
/// does not.
pub const MAX_QUEUED: usize = 4096;

/// The caps of a [`Relay`](super::Relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Paired sessions at most; a join that would start or complete one
    /// more is refused with `Refusal::Full`.
    pub max_pairs: usize,
    /// Waiting (half-open) sessions at most; past it a join with a new
    /// token is refused with `Refusal::WaitingFull`.
    pub max_waiting: usize,
    /// Sessions (waiting or paired) one IPv4 address may be a party to;
    /// past it `Refusal::PerIp`.
    pub max_per_ip: usize,
    /// Sessions the addresses of one IPv4 /24 may be parties to; past it
    /// `Refusal::Subnet`.
    pub max_per_subnet: usize,
    /// Bytes a second one pair may have forwarded, both directions
    /// together (a token bucket holding one second's worth, and at least
    /// one datagram). Datagrams over it are dropped and counted.
    pub rate: u32,
    /// A pair ends this long after it formed, however busy.
    pub pair_lifetime: Duration,
    /// A waiting session ends this long after its first join.
    pub wait_lifetime: Duration,
    /// A pair ends when neither side has sent anything for this long.
    pub idle_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            max_pairs: MAX_PAIRS,
            max_waiting: MAX_WAITING,
            max_per_ip: MAX_PER_IP,
            max_per_subnet: MAX_PER_SUBNET,
            rate: RATE,
            pair_lifetime: PAIR_LIFETIME,
            wait_lifetime: WAIT_LIFETIME,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}
