//! What the engine reports to its owner (the Node binding, or a Rust user).

use std::net::TcpStream;

use super::peer::Peer;

#[derive(Debug)]
pub enum SwarmEvent {
    /// Sockets are bound; TCP and UDP share `port`.
    Listening { port: u16 },
    /// Discovery found a peer (repeats are reported, as the reference does).
    Peer(Peer),
    /// A connection the swarm made or accepted. `id` is passed back to
    /// [`super::Swarm::connection_closed`] when the owner is done with it.
    Connection { id: u64, stream: TcpStream, client: bool, peer: Option<Peer> },
    /// The answer to [`super::Swarm::connect`].
    Connected { request: u32, result: Result<(u64, TcpStream), String>, peer: Peer },
    /// A discovery round for some topic finished.
    Update,
    /// Something failed that the swarm survives (a send error, a bad packet).
    Warning(String),
    /// Binding failed; the swarm cannot announce or accept.
    Error(String),
    /// `destroy` finished: every socket and task is gone.
    Closed,
}
