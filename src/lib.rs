//! hyperswarm-native: the 2019 Hyperswarm stack in Rust.
//!
//! The engine builds and tests without Node; the `napi` feature adds the
//! Node.js binding.

pub mod dht;
pub mod discovery;
pub mod io;
pub mod lan;
pub mod log;
pub mod swarm;
pub mod utp;
pub mod wire;

#[cfg(feature = "napi")]
mod binding;
