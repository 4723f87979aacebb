//! `NativeDhtNode`: a standalone DHT node on its own UDP socket, for local
//! testnets (`connect-test --local`, tests, benchmarks).

use std::net::SocketAddrV4;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::code::{os_error, Code};
use crate::dht::DhtConfig;
use crate::io::{dht_node::DhtNode, runtime};

#[napi(object)]
pub struct DhtNodeOptions {
    /// IPv4 address to bind; default 127.0.0.1.
    pub host: Option<String>,
    /// Port to bind; default 0 (any).
    pub port: Option<u32>,
    /// `"a.b.c.d:port"` entries (IPv4 literals only).
    pub bootstrap: Option<Vec<String>>,
    /// Default false: a full member that stores announcements.
    pub ephemeral: Option<bool>,
    /// Multiplies the per-source limits (testnets; default 1).
    pub limit_scale: Option<u32>,
}

#[napi]
pub struct NativeDhtNode {
    node: Option<DhtNode>,
    port: u32,
}

#[napi]
impl NativeDhtNode {
    #[napi(constructor, catch_unwind)]
    /// A bind failure's `code` is the OS error's name (`EADDRINUSE`, …).
    pub fn new(options: DhtNodeOptions) -> Result<Self, Code> {
        let invalid = |m: String| Error::new(Code("ERR_INVALID_ARG_VALUE"), m);
        crate::log::init();
        let host = options.host.unwrap_or_else(|| "127.0.0.1".into());
        let ip = host.parse().map_err(|_| invalid(format!("host must be an IPv4 address, got {host:?}")))?;
        let port = u16::try_from(options.port.unwrap_or(0)).map_err(|_| invalid("port must be 0-65535".into()))?;
        let mut bootstrap = Vec::new();
        for b in options.bootstrap.unwrap_or_default() {
            let a: SocketAddrV4 =
                b.parse().map_err(|_| invalid(format!("bootstrap entry {b:?} is not an IPv4 host:port")))?;
            bootstrap.push(a);
        }
        let config = DhtConfig { id: None, ephemeral: options.ephemeral.unwrap_or(false), adaptive: false, bootstrap, seed: rand::random() };
        let _rt = runtime::handle().enter();
        let node = DhtNode::spawn_with_limits(SocketAddrV4::new(ip, port), config, crate::dht::Limits::scaled(options.limit_scale.unwrap_or(1)))
            .map_err(|e| os_error(&e, format!("cannot bind {host}:{port}: {e}")))?;
        let port = node.local_addr().port() as u32;
        Ok(NativeDhtNode { node: Some(node), port })
    }

    #[napi(catch_unwind)]
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Routing-table size, or null once destroyed.
    #[napi(catch_unwind)]
    pub fn nodes(&self) -> Option<u32> {
        self.node.as_ref().map(|n| n.info().nodes as u32)
    }

    #[napi(catch_unwind)]
    pub fn destroy(&mut self) {
        if let Some(node) = self.node.take() {
            runtime::handle().spawn(node.shutdown());
        }
    }
}
