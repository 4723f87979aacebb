//! LAN discovery over multicast DNS, wire-compatible with
//! `@hyperswarm/discovery` 2.0.1. Sans-IO: see [`Lan`].

mod discovery;

pub use discovery::{announcement, Lan, LanConfig, LanEvent, LanStats, Link, Transmit, ANSWER_INTERVAL, MAX_QUEUE, MAX_TOPICS};
