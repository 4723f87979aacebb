//! The engine's constants that JS needs too, so that each is written once.

use napi_derive::napi;

use crate::swarm::config::DEFAULT_BOOTSTRAP;
use crate::swarm::CONNECT_TIMEOUT;

#[napi(object)]
pub struct EngineConstants {
    /// How long a dial may take (the reference's 10 s).
    pub connect_timeout_ms: u32,
    /// The reference's public bootstrap nodes, used when none are given.
    pub default_bootstrap: Vec<String>,
}

#[napi]
pub fn engine_constants() -> EngineConstants {
    EngineConstants {
        connect_timeout_ms: CONNECT_TIMEOUT.as_millis() as u32,
        default_bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
    }
}
