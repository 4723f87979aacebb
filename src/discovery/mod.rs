//! Topic announce and lookup over the DHT and the LAN, with the reference's
//! refresh timers. Sans-IO, like the protocol cores it drives.

pub(crate) mod peer;
mod topics;

pub use peer::{Host, Peer, Referrer, Topic};

pub use topics::{Discovery, DiscoveryConfig, DiscoveryEvent, JoinSpec, Pong, Transmit, ROUND_MAX, ROUND_MIN};
