//! Options of a swarm, as `network(opts)` accepts them after index.js has
//! checked their types.

use crate::utp::config::MAX_INCOMING_PER_IP;
use crate::wire::mdns::DEFAULT_DOMAIN;

/// The reference's public bootstrap nodes (@hyperswarm/dht 4.0.1, spec
/// wire-dht.md §9.4): used when no list is given. Tests always pass their own.
pub const DEFAULT_BOOTSTRAP: [&str; 3] =
    ["bootstrap1.hyperdht.org:49737", "bootstrap2.hyperdht.org:49737", "bootstrap3.hyperdht.org:49737"];

/// How a swarm runs: `network(opts)` of the reference, as Rust fields.
/// Start from [`SwarmConfig::default()`], which matches the reference's
/// defaults; tests and private networks set `bootstrap`.
///
/// ```
/// let config = hyperswarm_native::SwarmConfig {
///     bootstrap: Some(vec!["127.0.0.1:49737".into()]),
///     multicast: false,
///     ..Default::default()
/// };
/// assert!(config.auto_dial && config.dial_tcp);
/// assert_eq!(config.max_dials, 16);
/// ```
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// LAN discovery over mDNS; `multicast: false` in JS turns it off.
    pub multicast: bool,
    /// mDNS domain (`@hyperswarm/discovery`'s `domain` option).
    pub domain: String,
    /// Bind exactly this port (one attempt), like the reference's `port`.
    pub port: Option<u16>,
    /// First port to try (`preferredPort`).
    pub preferred_port: u16,
    /// DHT bootstrap nodes as `host:port`; `None` means the reference's
    /// public defaults. Kept for the DHT layer.
    pub bootstrap: Option<Vec<String>>,
    /// `None`: ephemeral and adaptive, as the reference's default.
    pub ephemeral: Option<bool>,
    /// The DHT node id (network 2.x's `id`); `None` picks a random one.
    pub id: Option<[u8; 32]>,
    /// Most automatic dials in flight at once.
    pub max_dials: usize,
    /// Dial TCP in connect races. `false` leaves only punch-then-uTP (a
    /// diagnostic switch: `connect-test --local` shows a punched connection
    /// with it on a loopback network, where TCP would always win).
    pub dial_tcp: bool,
    /// Dial discovered peers by itself (the seed's swarm). `false` only
    /// reports them: network 2.x leaves dialling to its caller.
    pub auto_dial: bool,
    /// Incoming connections from one IP at most, per transport (TCP, and
    /// uTP half-open plus established); more are closed at once (TCP) or
    /// their SYNs dropped (uTP). Default 128 (the uTP endpoint's `MAX_INCOMING_PER_IP`): a
    /// hyperswarm 2.x swarm holds at most `maxPeers` (24) connections and
    /// dials a peer once at a time, so one host, or a few swarms behind one
    /// NAT, stays far below it; so does a loopback testnet. 0: no cap.
    pub max_incoming_per_ip: usize,
    /// Multiplies the DHT's per-source limits (request rate and burst, the
    /// unverified allowance, relays; `dht::Limits::scaled`). Default 1: no
    /// address is exempt. A testnet with many nodes behind one address
    /// raises it.
    pub dht_limit_scale: u32,
    /// Run a relay of last resort beside the swarm (for a public peer), on
    /// this UDP port (0: any), announced on the relay topic
    /// (`relay::rendezvous`). None: no relay.
    pub relay: Option<(u16, crate::relay::RelayConfig)>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            multicast: true,
            domain: DEFAULT_DOMAIN.to_string(),
            port: None,
            preferred_port: 0,
            bootstrap: None,
            ephemeral: None,
            id: None,
            max_dials: 16,
            dial_tcp: true,
            auto_dial: true,
            max_incoming_per_ip: MAX_INCOMING_PER_IP,
            dht_limit_scale: 1,
            relay: None,
        }
    }
}
