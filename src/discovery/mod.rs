//! Topic announce and lookup over the DHT and the LAN, with the reference's
//! refresh timers. Sans-IO, like the protocol cores it drives.

mod topics;

pub use topics::{Discovery, DiscoveryConfig, DiscoveryEvent, JoinSpec, Pong, Transmit, ROUND_MAX, ROUND_MIN};
