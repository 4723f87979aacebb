//! The engine's constants that JS needs too, so that each is written once.

use napi_derive::napi;

use crate::swarm::config::DEFAULT_BOOTSTRAP;
use crate::swarm::{CONNECT_TIMEOUT, MAX_INFOS, MAX_PER_IP, MAX_PER_REFERRER, MAX_PER_SUBNET, MAX_RETRIES};

#[napi(object)]
pub struct EngineConstants {
    /// How long a dial may take (the reference's 10 s).
    pub connect_timeout_ms: u32,
    /// The reference's public bootstrap nodes, used when none are given.
    pub default_bootstrap: Vec<String>,
    /// The `./hyperswarm` dial queue's bounds (src/swarm/peer_queue.rs).
    pub max_infos: u32,
    pub max_per_ip: u32,
    pub max_per_subnet: u32,
    pub max_per_referrer: u32,
    pub max_retries: u32,
}

#[napi]
pub fn engine_constants() -> EngineConstants {
    EngineConstants {
        connect_timeout_ms: CONNECT_TIMEOUT.as_millis() as u32,
        default_bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
        max_infos: MAX_INFOS as u32,
        max_per_ip: MAX_PER_IP as u32,
        max_per_subnet: MAX_PER_SUBNET as u32,
        max_per_referrer: MAX_PER_REFERRER as u32,
        max_retries: MAX_RETRIES.into(),
    }
}
