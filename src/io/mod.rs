//! Tokio drivers: the shared runtime and the sockets. Everything that touches
//! the operating system lives here.

pub mod bind;
pub mod multicast;
pub mod runtime;
