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
//! [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`]. Acks are made
//! in `poll_transmit`, so one ack covers all datagrams handled before it.
//!
//! # What a libutp peer sees
//!
//! The wire behaviour follows libutp where the spec marks it: random
//! initial seq, ids per §2, SYN at 0/3/9 s and failure at 21 s, STATE
//! carrying the next seq, the acceptor sending nothing before the first
//! DATA/FIN arrives, RESET for unknown connections (remembered 10 s, at
//! most 1000) and RESET matching by id ± 1, RTO max(rtt + 4·var, 1 s)
//! starting at 3 s, death on the 5th consecutive timeout, keep-alive after
//! 29 s, 1382-byte payloads, a 1023-packet reorder window, LEDBAT with a
//! 100 ms target and +3000 B/RTT, halving on loss at most every 100 ms.
//!
//! # Where we differ from libutp, on purpose
//!
//! - **Advertised window** = free receive-buffer room (1 MiB buffer), so an
//!   application that stops reading stops the peer; libutp always says
//!   1 MiB. In-order data is still taken up to 64 KiB past a full buffer so
//!   a zero-window probe is acked rather than retransmitted to death. We
//!   honour the peer's window, probing a zero window after 15 s as libutp.
//! - **Half-close** is real: a FIN only ends the direction it travels in.
//!   `shutdown()` sends our FIN right behind the last queued data packet
//!   (the peer delivers everything before it first); `Closed` comes once
//!   our FIN is acked and the peer's End has been read. We then linger 5 s
//!   to re-ack a repeated FIN, like TCP's TIME_WAIT.
//! - **Repeated SYN** during the handshake is re-acked (libutp ignores it,
//!   so a lost SYN-ACK kills the attempt). A SYN reusing the key of a
//!   connection that lingers after a clean close, or of a half-open one
//!   with another seq, replaces it: utp-native never seeds `rand()`, so a
//!   restarted peer reuses its ids. A SYN never replaces an established
//!   connection (it may be spoofed); it is counted and ignored.
//! - **Half-open connections** (SYN acked, nothing else heard) live in
//!   their own table, `max_half_open` (1024) entries, oldest evicted
//!   first, at most `max_half_open_per_ip` (32) per IP. They are reported
//!   (`Incoming`) only when the dialler's first DATA or FIN acks our
//!   SYN-ACK exactly; libutp reports at SYN time. So spoofed SYNs never
//!   reach the application and cannot use up the room for connections.
//! - **Budgets**: established incoming and outgoing connections have
//!   `max_connections` (3000) each, so incoming ones cannot take the room
//!   our own `connect` needs; at most `max_incoming_per_ip` (128) incoming
//!   from one IP.
//! - **Loss recovery**: selective acks of any length are sent (up to 128
//!   bytes, the whole reorder window; libutp sends 4) and every hole they
//!   show is resent as the window allows, not 4 at a time; the oldest
//!   unacked packet is resent whatever the window. A tail-loss probe
//!   (2·RTT, ≥ 30 ms) and RACK-style marking (RFC 8985) recover bursts lost
//!   whole without waiting for the 1 s timer; the RTO itself is unchanged.
//!   RTT samples come from the newest packet an ack covers, sent once.
//! - **Reordering**: a DATA whose ack_nr was overtaken by a later ack keeps
//!   its payload (libutp drops the packet); STATEs like it are ignored.
//! - **RESET validation**: a RESET must ack one of our last 2048 sequence
//!   numbers, so off-path forgeries must guess; libutp takes any RESET
//!   with a matching id.
//! - **Refusing SYNs** (`set_accepting(false)`) answers with RESET unless
//!   `UtpConfig::reset_refused_syns` is off (libutp drops silently). Over
//!   a limit SYNs are dropped silently, as libutp does past 3000.
//! - **Half-open acceptors** that hear nothing for 60 s are dropped (libutp
//!   keeps them forever); `UtpConfig::idle_timeout` (off by default, like
//!   libutp) can close idle connections too.
//! - No MTU probing: 1402-byte datagrams always.

pub mod config;
pub mod connection;
pub mod endpoint;
pub mod event;
pub mod ledbat;
pub mod packet;

pub use config::{UtpConfig, MAX_PAYLOAD};
pub use endpoint::Endpoint;
pub use event::{ConnId, UtpEvent, UtpStats};
pub use packet::looks_like_utp;
