//! What the engine reports to its owner (the Node binding, or a Rust user).

use std::net::{SocketAddrV4, TcpStream};

use super::peer::{Peer, Topic};
use crate::discovery::Pong;

/// How a connection's bytes move.
#[derive(Debug)]
pub enum ConnStream {
    /// A connected TCP socket, handed over whole.
    Tcp(TcpStream),
    /// A uTP connection on the swarm's UDP socket, driven by the engine:
    /// data comes as [`SwarmEvent::Data`], and goes in with `Swarm::utp_write`.
    Utp { remote: SocketAddrV4 },
}

#[derive(Debug)]
pub enum SwarmEvent {
    /// Sockets are bound; TCP and UDP share `port`.
    Listening { port: u16 },
    /// Discovery found a peer (repeats are reported, as the reference does).
    Peer(Peer),
    /// A connection the swarm made or accepted. `id` is passed back to
    /// [`super::Swarm::connection_closed`] when the owner is done with it.
    Connection { id: u64, stream: ConnStream, client: bool, peer: Option<Peer> },
    /// The answer to [`super::Swarm::connect`].
    Connected { request: u32, result: Result<(u64, ConnStream), String>, peer: Peer },
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
    /// Something failed that the swarm survives (a send error, a bad packet).
    Warning(String),
    /// Binding failed; the swarm cannot announce or accept.
    Error(String),
    /// `destroy` finished: every socket and task is gone.
    Closed,
}
