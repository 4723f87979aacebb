//! Byte formats no crate speaks for us. Golden-tested against captures of the
//! reference stack.

pub mod dht;
pub mod mdns;
