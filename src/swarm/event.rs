//! What the engine reports to its owner (the Node binding, or a Rust user).

use std::collections::HashSet;
use std::net::{SocketAddrV4, TcpStream};
use std::sync::Mutex;

use crate::discovery::{Peer, Topic};
use crate::discovery::Pong;

/// How a connection's bytes move.
#[derive(Debug)]
pub enum ConnStream {
    /// A connected TCP socket, handed over whole.
    Tcp(TcpStream),
    /// A uTP connection on the swarm's UDP socket, driven by the engine:
    /// data comes as [`SwarmEvent::Data`], and goes in with `Swarm::utp_write`.
    /// `peer_nat`: the peer's NAT class, when a punch told us it runs our
    /// code (`dht::capability`).
    /// `relay`: the relay the connection runs through (`swarm::relay_io`);
    /// `remote` is then the peer's address as the referrer saw it.
    Utp { remote: SocketAddrV4, peer_nat: Option<crate::dht::nat::NatType>, relay: Option<SocketAddrV4> },
}

#[derive(Debug)]
pub enum SwarmEvent {
    /// Sockets are bound; TCP and UDP share `port`.
    Listening { port: u16 },
    /// Discovery found a peer (repeats are reported, as the reference does).
    Peer(Peer),
    /// A dial of `peer` started ahead of the caller (see
    /// [`super::Swarm::set_speculation`]), reported just before its
    /// [`SwarmEvent::Peer`]; its outcome comes as [`SwarmEvent::Connected`]
    /// for `request`.
    Dialing { request: u32, peer: Peer },
    /// A connection the swarm made or accepted. `id` is passed back to
    /// [`super::Swarm::connection_closed`] when the owner is done with it.
    Connection { id: u64, stream: ConnStream, client: bool, peer: Option<Peer> },
    /// Dial `request` (made with [`super::Swarm::connect_with_caller_punch`])
    /// wants its hole punched now; answer with [`super::Swarm::punched`].
    Punch { request: u32 },
    /// The answer to [`super::Swarm::connect`].
    Connected { request: u32, result: Result<(u64, ConnStream), super::ConnectError>, peer: Peer },
    /// Bytes from uTP connection `id` (only after `utp_read` granted them).
    Data { id: u64, data: Vec<u8> },
    /// uTP write `write` of connection `id` is in the send buffer.
    Written { id: u64, write: u32 },
    /// The peer of uTP connection `id` finished sending.
    End { id: u64 },
    /// uTP connection `id` is gone.
    StreamClosed { id: u64, error: Option<String> },
    /// A DHT round of `topic` started.
    Updating { topic: Topic },
    /// The running DHT round of `topic` heard enough to flush early.
    Flushed { topic: Topic },
    /// A DHT round of `topic` finished.
    Update { topic: Topic, error: Option<String> },
    /// A left topic is off the DHT (its unannounce ended).
    Left { topic: Topic },
    /// The answer to [`super::Swarm::ping_bootstrap`].
    Pinged { request: u32, pongs: Vec<Pong> },
    /// A reply to an operation on the DHT node ([`super::Swarm::dht_command`]).
    Dht(crate::dht::ops::NodeEvent),
    /// Something failed that the swarm survives (a send error, a bad packet).
    Warning(String),
    /// Binding failed; the swarm cannot announce or accept.
    Error(String),
    /// The engine task died (a bug: it panicked). Every socket is gone;
    /// [`SwarmEvent::Closed`] follows at once.
    Failed(String),
    /// `destroy` finished: every socket and task is gone.
    Closed,
}

/// Events waiting for their owner beyond which new `peer` events are
/// dropped. The reference has no bound (its events are synchronous); a
/// flood of distinct peers while the JS thread is busy must not grow
/// memory without end. 1024 is far above what one discovery round yields
/// (a DHT round reports at most a few hundred peers), so honest swarms
/// never reach it.
pub const EVENT_QUEUE_BOUND: usize = 1024;

/// Counters of [`EventGate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Events handed over and not yet taken.
    pub pending: usize,
    /// `peer` events not queued because the same peer was already waiting.
    pub peers_merged: u64,
    /// `peer` events not queued because [`EVENT_QUEUE_BOUND`] events were waiting.
    pub peers_dropped: u64,
}

/// The overflow policy of a queue of events to an owner that takes them
/// later (the Node binding's thread-safe function):
/// - a `peer` event equal to one still waiting is merged into it (dropped);
/// - a `peer` event arriving while [`EVENT_QUEUE_BOUND`] events wait is dropped;
///   discovery reports every peer again at its next round or answer;
/// - every other event (connections, dial results, errors, close, stream
///   data) is always queued: each is bounded by something else (connection
///   limits, one data batch per read grant, one round per topic).
#[derive(Default)]
pub struct EventGate {
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    waiting_peers: HashSet<Peer>,
    stats: GateStats,
}

impl EventGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// The producer asks before queueing `ev`; false means drop it.
    pub fn admit(&self, ev: &SwarmEvent) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let SwarmEvent::Peer(p) = ev {
            if st.waiting_peers.contains(p) {
                st.stats.peers_merged += 1;
                return false;
            }
            if st.stats.pending >= EVENT_QUEUE_BOUND {
                st.stats.peers_dropped += 1;
                return false;
            }
            st.waiting_peers.insert(p.clone());
        }
        st.stats.pending += 1;
        true
    }

    /// The owner took `ev` off the queue.
    pub fn taken(&self, ev: &SwarmEvent) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.stats.pending = st.stats.pending.saturating_sub(1);
        if let SwarmEvent::Peer(p) = ev {
            st.waiting_peers.remove(p);
        }
    }

    pub fn stats(&self) -> GateStats {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SwarmEvent {
        SwarmEvent::Peer(Peer { host: std::net::Ipv4Addr::new(10, 0, 0, 1).into(), port, local: true, referrer: None, topic: Some([1; 32]), to: None })
    }

    fn connection(id: u64) -> SwarmEvent {
        SwarmEvent::Connection { id, stream: ConnStream::Utp { remote: "10.0.0.1:1".parse().unwrap(), peer_nat: None, relay: None }, client: false, peer: None }
    }

    #[test]
    fn past_the_bound_peers_are_dropped_and_connections_are_not() {
        let gate = EventGate::new();
        let mut queued = Vec::new();
        // A flood of distinct peers, with connections and an error among them,
        // while the owner takes nothing.
        for i in 0..(3 * EVENT_QUEUE_BOUND) as u16 {
            let ev = if i % 100 == 0 { connection(i as u64) } else { peer(i) };
            if gate.admit(&ev) {
                queued.push(ev);
            }
        }
        assert!(gate.admit(&SwarmEvent::Failed("x".into())));
        let peers = queued.iter().filter(|e| matches!(e, SwarmEvent::Peer(_))).count();
        let conns = queued.iter().filter(|e| matches!(e, SwarmEvent::Connection { .. })).count();
        assert_eq!(conns, (3 * EVENT_QUEUE_BOUND).div_ceil(100), "every connection is queued");
        assert!(peers < EVENT_QUEUE_BOUND, "peers stop at the bound: {peers}");
        let s = gate.stats();
        assert_eq!(s.peers_dropped as usize + peers + conns, 3 * EVENT_QUEUE_BOUND);
        assert!(s.pending > EVENT_QUEUE_BOUND, "connections went past the bound: {}", s.pending);
        // Once the owner catches up, peers flow again.
        for ev in &queued {
            gate.taken(ev);
        }
        gate.taken(&SwarmEvent::Failed("x".into()));
        assert_eq!(gate.stats().pending, 0);
        assert!(gate.admit(&peer(1)));
    }

    #[test]
    fn a_repeated_peer_is_merged_while_the_first_waits() {
        let gate = EventGate::new();
        assert!(gate.admit(&peer(7)));
        assert!(!gate.admit(&peer(7)));
        assert!(!gate.admit(&peer(7)));
        assert!(gate.admit(&peer(8)));
        assert_eq!(gate.stats().peers_merged, 2);
        gate.taken(&peer(7));
        assert!(gate.admit(&peer(7)), "after it was taken, the peer is news again");
    }
}
