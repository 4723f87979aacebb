//! uTP (BEP 29 as libutp / utp-native 2.5.3 speak it, spec/wire-utp.md), a
//! sans-IO implementation: no socket, clock or runtime inside.
//!
//! - [`packet`]: the header codec, extensions (selective ack) and the
//!   shared-socket demultiplexing test [`looks_like_utp`].
//! - [`connection`]: one connection's state machine.
//! - [`ledbat`]: its congestion window.
//! - [`endpoint`]: all connections of one socket; the public API.
//!
//! Driving it: give every datagram for which `looks_like_utp` holds to
//! [`Endpoint::handle_datagram`], call [`Endpoint::handle_timeout`] at
//! [`Endpoint::poll_timeout`], and after each call drain
//! [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`].

pub mod connection;
pub mod endpoint;
pub mod ledbat;
pub mod packet;

pub use connection::MAX_PAYLOAD;
pub use endpoint::{ConnId, Endpoint, UtpConfig, UtpEvent, UtpStats};
pub use packet::looks_like_utp;
