//! What an endpoint reports: connection events and counters.

use std::net::SocketAddrV4;

/// Endpoint-local connection handle (not the wire id).
pub type ConnId = u64;

/// What an [`Endpoint`](super::Endpoint) reports through [`Endpoint::poll_event`](super::Endpoint::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UtpEvent {
    /// A dialler's connection became real (server side): its first DATA or
    /// FIN acked our SYN-ACK. libutp reports at SYN time; we wait, so a
    /// spoofed SYN never reaches the application.
    Incoming {
        /// The connection.
        id: ConnId,
        /// The dialler's address.
        from: SocketAddrV4,
    },
    /// Our connect() completed (SYN acked).
    Connected {
        /// The connection [`Endpoint::connect`] returned.
        id: ConnId,
    },
    /// In-order data is available to read(). Emitted again only after a
    /// read() call and new data; read until read() returns 0.
    Readable {
        /// The connection.
        id: ConnId,
    },
    /// Send buffer has room again after write() returned less than asked.
    Writable {
        /// The connection.
        id: ConnId,
    },
    /// The peer finished sending (FIN received and all data before it
    /// delivered via read()).
    End {
        /// The connection.
        id: ConnId,
    },
    /// The connection is gone (both sides done, reset, or timed out).
    /// error: None for a clean close (and for our own close()).
    Closed {
        /// The connection; its id is not reused.
        id: ConnId,
        /// Why, unless the close was clean.
        error: Option<String>,
    },
}

/// Counters of an [`Endpoint`](super::Endpoint) ([`Endpoint::stats`](super::Endpoint::stats)), since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UtpStats {
    /// Datagrams handed to handle_datagram.
    pub received: u64,
    /// Datagrams that failed to decode.
    pub malformed: u64,
    /// Non-SYN packets for no connection.
    pub unknown_conn: u64,
    /// Packets for a connection that were dropped (ack out of range,
    /// sequence number out of the reorder window or past the FIN, …).
    pub invalid: u64,
    /// STATE packets overtaken by a later ack (reordering), ignored.
    pub stale_acks: u64,
    /// RESETs sent (to packets for no connection, refused SYNs, aborts).
    pub resets_sent: u64,
    /// RESETs that closed a connection.
    pub resets_received: u64,
    /// RESETs matching a connection but not acking anything recent.
    pub resets_ignored: u64,
    /// RESETs not sent because of the memo (repeat, or memo full).
    pub resets_suppressed: u64,
    /// SYNs refused (not accepting, too many connections, or over a
    /// per-IP cap).
    pub syns_refused: u64,
    /// Of those, refused by `max_half_open_per_ip` / `max_incoming_per_ip`.
    pub refused_per_ip: u64,
    /// SYNs that opened half-open state.
    pub half_opened: u64,
    /// Half-open connections dropped to make room for a newer SYN.
    pub half_open_evicted: u64,
    /// SYNs on the key of an established connection: ignored (never a
    /// replacement).
    pub syn_collisions: u64,
    /// Half-open connections that became real (reported as `Incoming`).
    pub accepted: u64,
    /// Datagrams sent (all types).
    pub packets_sent: u64,
    /// DATA packets sent again after a timeout or a selective ack.
    pub retransmits: u64,
    /// Packets marked lost by duplicate or selective acks (resent before the timer fires).
    pub fast_retransmits: u64,
    /// Tail-loss probes sent.
    pub probes: u64,
    /// Retransmission-timer expiries with data in flight.
    pub timeouts: u64,
    /// Connections that died of timeouts (connect, retransmission, idle).
    pub timed_out: u64,
    /// Keep-alive STATEs sent on idle connections (every 29 s, as libutp).
    pub keepalives: u64,
    /// In-order data dropped for lack of receive-buffer room.
    pub dropped_no_room: u64,
    /// Payload bytes delivered in order.
    pub bytes_received: u64,
    /// Payload bytes sent for the first time (retransmissions not counted).
    pub bytes_sent: u64,
}
