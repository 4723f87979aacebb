//! The engine behind `join`, `leave` and `connect`: topics, the dial queue,
//! and the connections they produce.

mod accept;
pub mod birthday;
mod birthday_io;
pub use birthday_io::BirthdayIoStats;
pub(crate) mod config;
pub mod core;
pub(crate) mod engine;
mod error;
mod event;
mod peer_queue;
mod race;
mod relay_io;
pub use relay_io::RelayIoStats;
pub(crate) mod utp_link;

pub use config::SwarmConfig;
pub use engine::{Swarm, SwarmStats};
pub use error::{errno_name, ConnectError, SwarmError};
pub use event::{ConnStream, EventGate, GateStats, SwarmEvent, EVENT_QUEUE_BOUND};
pub use crate::discovery::{Host, Peer, Referrer, Topic};
pub use peer_queue::{status, Added, EntryId, EntryView, PeerQueue, QueuePolicy, CONNECT_TIMEOUT, MAX_INFOS, MAX_PER_IP, MAX_PER_REFERRER, MAX_PER_SUBNET, MAX_RETRIES};
