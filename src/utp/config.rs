//! What an endpoint may hold and how its connections behave: the limits
//! (libutp's and ours) and the buffer, packet and timer settings
//! (spec/wire-utp.md §3, §4, §7).

use std::time::Duration;

use super::packet::HEADER_LEN;

/// Payload bytes per packet: 1402 bytes of UDP payload minus the header
/// (libutp's IPv4 MTU guess, spec §4).
pub const MAX_PAYLOAD: usize = 1402 - HEADER_LEN;

/// Most established incoming connections (live and lingering), and
/// separately most outgoing ones: libutp stops at 3000 sockets (spec §3).
/// SYNs beyond it are dropped silently, as libutp does.
pub const MAX_CONNECTIONS: usize = 3000;
/// Most half-open connections (a SYN acked, no DATA from the dialler yet).
/// Ours, not libutp's: a SYN's source may be spoofed, so it only gets a
/// slot here, and a full table evicts its oldest entry. Under a flood of
/// R SYNs/s an honest dialler has 1024/R seconds between its SYN and its
/// first data (2 s at 500/s; a hyperswarm dialler writes at once).
pub const MAX_HALF_OPEN: usize = 1024;
/// Most half-open connections from one IP. Ours: one host (or one NAT)
/// dialling us at the same instant from more sockets than this is not a
/// hyperswarm peer (it dials one peer once per race).
pub const MAX_HALF_OPEN_PER_IP: usize = 32;
/// Most incoming connections (half-open and established) from one IP.
/// Ours: a hyperswarm 2.x swarm keeps at most `maxPeers` (24) connections
/// and dials any one peer once at a time (each race holds one TCP and one
/// uTP attempt), so even several swarms behind one NAT stay far below
/// 128; a loopback testnet of a few dozen swarms on 127.0.0.1 does too.
pub const MAX_INCOMING_PER_IP: usize = 128;

/// Limits and timers of an [`Endpoint`](super::Endpoint); the defaults are libutp's where
/// it has one (spec wire-utp.md), and ours (with the reason) where not.
#[derive(Debug, Clone)]
pub struct UtpConfig {
    /// Established incoming connections at most, and outgoing ones at most
    /// (spec §3: libutp refuses beyond 3000). Half-open ones do not count:
    /// a SYN flood cannot take the room our own `connect` needs.
    pub max_connections: usize,
    /// Half-open connections at most; the oldest goes for a new one.
    pub max_half_open: usize,
    /// Half-open connections from one IP at most; more SYNs are dropped.
    pub max_half_open_per_ip: usize,
    /// Incoming connections (half-open and established) from one IP at
    /// most; more SYNs are dropped.
    pub max_incoming_per_ip: usize,
    /// Receive buffer per connection; the advertised window is what is
    /// free of it (spec §4: 1 MiB).
    pub recv_buffer: usize,
    /// Send buffer per connection (queued + unacked bytes), 1 MiB.
    pub send_buffer: usize,
    /// Payload bytes per packet (spec §4: 1382).
    pub max_payload: usize,
    /// LEDBAT queuing-delay target (spec §4: 100 ms).
    pub target_delay: Duration,
    /// An accepted connection whose peer sends nothing for this long is
    /// dropped. libutp has no such timer (spec §7); a libutp initiator
    /// sends keep-alives every 29 s, so this never hits a live one.
    pub syn_recv_timeout: Duration,
    /// Close connections that receive nothing for this long. `None`, like
    /// libutp and the Hyperswarm layers (spec §7).
    pub idle_timeout: Option<Duration>,
    /// After a clean close, how long to stay around to re-ack the peer's
    /// repeated FIN.
    pub time_wait: Duration,
    /// When not accepting: answer SYNs with RESET (true) or drop them
    /// silently as libutp does (false).
    pub reset_refused_syns: bool,
}

impl Default for UtpConfig {
    fn default() -> Self {
        UtpConfig {
            max_connections: MAX_CONNECTIONS,
            max_half_open: MAX_HALF_OPEN,
            max_half_open_per_ip: MAX_HALF_OPEN_PER_IP,
            max_incoming_per_ip: MAX_INCOMING_PER_IP,
            recv_buffer: 1 << 20,
            send_buffer: 1 << 20,
            max_payload: MAX_PAYLOAD,
            target_delay: Duration::from_millis(100),
            syn_recv_timeout: Duration::from_secs(60),
            idle_timeout: None,
            time_wait: Duration::from_secs(5),
            reset_refused_syns: true,
        }
    }
}

/// Which budget a connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Ours (`connect`): up to `max_connections`, whatever arrives.
    Outgoing,
    /// A SYN was acked, nothing more: `max_half_open`, invisible to users.
    HalfOpen,
    /// The dialler sent data: up to `max_connections`.
    Incoming,
}
