//! hyperswarm-native: the 2019 Hyperswarm stack (`@hyperswarm/network`,
//! `@hyperswarm/discovery`, `@hyperswarm/dht` over dht-rpc 4, and uTP) in
//! Rust, on the same network as the JavaScript peers of that era.
//!
//! Peers that join the same 32-byte [`Topic`] find each other through the
//! DHT and the LAN (multicast DNS) and connect over TCP or uTP, hole
//! punching through NATs where needed. Every connection is a
//! [`Connection`]: tokio's [`AsyncRead`](tokio::io::AsyncRead) and
//! [`AsyncWrite`](tokio::io::AsyncWrite), whichever transport won.
//!
//! ```no_run
//! use hyperswarm_native::{topic, Event, JoinOptions, Swarm, SwarmConfig};
//! use tokio::io::AsyncWriteExt;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // On the caller's runtime (`Swarm::new` takes `Handle::current()`).
//! let mut swarm = Swarm::new(SwarmConfig {
//!     bootstrap: Some(vec!["127.0.0.1:49737".into()]),
//!     ..SwarmConfig::default()
//! });
//! swarm.join(topic(b"my app's topic"), JoinOptions::BOTH)?;
//! while let Some(event) = swarm.next_event().await {
//!     if let Event::Connection(mut connection) = event {
//!         tokio::spawn(async move { connection.write_all(b"hello").await });
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The engine is sans-IO at its core (the `dht`, `utp`, `lan` and
//! `discovery` state machines never touch a socket or a clock) with a thin
//! tokio driver; the Node.js binding (the `napi` feature) drives the same
//! engine on a runtime of its own.
//!
//! # Features
//! - `napi`: the Node.js addon (`npm install` builds with it).
//! - `internals`: makes the engine's modules public (hidden from the docs,
//!   and without any stability promise) for this package's own tests,
//!   benchmarks and the `hyperswarm-dht` binary.

// Every public item is documented: a build without `internals` (the
// published crate, the addon) fails otherwise. With `internals` the
// engine's modules are public but hidden, and need not be.
#![cfg_attr(not(feature = "internals"), deny(missing_docs))]
#![cfg_attr(feature = "internals", warn(missing_docs))]

/// Declares the engine's modules: crate-private, or public but hidden with
/// the `internals` feature (the tests, benches and bins of this package
/// reach into them; nothing else should).
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        // Without `internals`, items only the tests and bins use are unused.
        #[cfg(not(feature = "internals"))]
        #[allow(dead_code, unused_imports)]
        pub(crate) mod $name;
    )*};
}

internal_modules!(dht, discovery, io, lan, log, relay, swarm, utp, wire);

mod api;
pub mod sansio;

#[cfg(feature = "napi")]
mod binding;

pub use api::{topic, Connection, Event, JoinOptions, Swarm, Transport};
pub use dht::nat::NatType;
pub use discovery::{Host, Peer, Referrer, Topic};
pub use swarm::{ConnectError, SwarmConfig, SwarmError};
