//! A caller's operations on a [`Dht`]: the commands it may send, and the
//! routing of the node's events back to the operation (request number)
//! each belongs to. Sans-IO; the standalone node's driver uses it.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Instant;

use super::{Dht, DhtEvent, MutablePutOptions, NodeId, QueryId, RequestId};

/// An operation asked of the node; `request` is the caller's number for
/// it, which every [`NodeEvent::Reply`] about it carries.
#[derive(Debug)]
pub enum Command {
    /// `port`: leave out our own record with this port.
    Lookup { request: u32, topic: NodeId, port: Option<u16>, local_address: Option<SocketAddrV4> },
    Announce { request: u32, topic: NodeId, port: u16, local_address: Option<SocketAddrV4> },
    Unannounce { request: u32, topic: NodeId, port: u16, local_address: Option<SocketAddrV4> },
    Ping { request: u32, to: SocketAddrV4 },
    Holepunch { request: u32, peer: SocketAddrV4, referrer: SocketAddrV4 },
    ImmutablePut { request: u32, value: Vec<u8> },
    ImmutableGet { request: u32, key: [u8; 32] },
    MutablePut { request: u32, value: Vec<u8>, opts: MutablePutOptions },
    MutableGet { request: u32, key: [u8; 32], seq: u64, salt: Option<Vec<u8>> },
    /// Walk towards our own id again; replies with the walk's `QueryDone`.
    Bootstrap { request: u32 },
    /// Become a full member (our id goes on the wire), then bootstrap.
    Persistent { request: u32 },
    AddNode { id: NodeId, addr: SocketAddrV4 },
    /// Bootstrap nodes resolved after the start (names): use them, and walk.
    UseBootstrap { nodes: Vec<SocketAddrV4> },
    /// Stop an operation; no further reply comes for it.
    Cancel { request: u32 },
    /// The routing table's contacts, answered on `reply`.
    Nodes { reply: std::sync::mpsc::SyncSender<Vec<(NodeId, SocketAddrV4)>> },
}

/// What the node tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// Not about an operation of the owner's: `Ready`, `InitialNodes`,
    /// `Persistent`, `Announced`, `Unannounced`, `LookedUp`, `Relayed`.
    Dht(DhtEvent),
    /// About operation `request`. The last one for it is a `QueryDone`,
    /// `StoreDone`, `Pong`, `PingFailed`, `Holepunched` or `HolepunchFailed`.
    Reply { request: u32, event: DhtEvent },
    /// Operation `request` could not start (bad input); nothing was sent.
    Refused { request: u32, error: String },
    /// The node's socket is bound and its first datagrams (the bootstrap
    /// walk's) are sent.
    Listening,
    /// The node task ended (stopped, or died); the socket is closed.
    Closed,
}

impl Command {
    /// The caller's number for this operation, for those that reply.
    pub fn request(&self) -> Option<u32> {
        match self {
            Command::Lookup { request, .. }
            | Command::Announce { request, .. }
            | Command::Unannounce { request, .. }
            | Command::Ping { request, .. }
            | Command::Holepunch { request, .. }
            | Command::ImmutablePut { request, .. }
            | Command::ImmutableGet { request, .. }
            | Command::MutablePut { request, .. }
            | Command::MutableGet { request, .. }
            | Command::Bootstrap { request }
            | Command::Persistent { request } => Some(*request),
            Command::AddNode { .. } | Command::UseBootstrap { .. } | Command::Cancel { .. } | Command::Nodes { .. } => None,
        }
    }
}

/// Which caller operation each query and request of the node is.
#[derive(Debug, Default)]
pub struct Operations {
    queries: HashMap<QueryId, u32>,
    requests: HashMap<RequestId, u32>,
}

impl Operations {
    /// Starts `cmd` on `dht`; `Some` when it could not start (bad input).
    pub fn command(&mut self, dht: &mut Dht, now: Instant, cmd: Command) -> Option<NodeEvent> {
        let refused = |request, e: super::InputError| Some(NodeEvent::Refused { request, error: e.to_string() });
        let (request, q) = match cmd {
            Command::Lookup { request, topic, port, local_address } => (request, dht.lookup_except(now, topic, port, local_address)),
            Command::Announce { request, topic, port, local_address } => (request, dht.announce(now, topic, port, local_address)),
            Command::Unannounce { request, topic, port, local_address } => (request, dht.unannounce(now, topic, port, local_address)),
            Command::Ping { request, to } => {
                self.requests.insert(dht.ping(now, to, None), request);
                return None;
            }
            Command::Holepunch { request, peer, referrer } => {
                self.requests.insert(dht.holepunch(now, peer, referrer), request);
                return None;
            }
            Command::ImmutablePut { request, value } => match dht.immutable_put(now, value) {
                Ok((q, _)) => (request, q),
                Err(e) => return refused(request, e),
            },
            Command::ImmutableGet { request, key } => (request, dht.immutable_get(now, key)),
            Command::MutablePut { request, value, opts } => match dht.mutable_put(now, value, opts) {
                Ok(q) => (request, q),
                Err(e) => return refused(request, e),
            },
            Command::MutableGet { request, key, seq, salt } => match dht.mutable_get(now, key, seq, salt) {
                Ok(q) => (request, q),
                Err(e) => return refused(request, e),
            },
            Command::Bootstrap { request } => (request, dht.bootstrap(now)),
            Command::Persistent { request } => {
                dht.persistent(now);
                // Already persistent: the reference bootstraps anyway.
                let q = match dht.bootstrap_query() {
                    Some(q) => q,
                    None => dht.bootstrap(now),
                };
                (request, q)
            }
            Command::AddNode { id, addr } => {
                dht.add_node(id, addr);
                return None;
            }
            Command::UseBootstrap { nodes } => {
                dht.set_bootstrap_nodes(nodes);
                dht.bootstrap(now);
                return None;
            }
            Command::Cancel { request } => {
                if let Some(q) = self.queries.iter().find(|(_, r)| **r == request).map(|(q, _)| *q) {
                    self.queries.remove(&q);
                    dht.cancel(q);
                }
                self.requests.retain(|_, r| *r != request);
                return None;
            }
            Command::Nodes { reply } => {
                let _ = reply.try_send(dht.nodes());
                return None;
            }
        };
        self.queries.insert(q, request);
        None
    }

    /// Where `ev` goes: a reply to one of the caller's operations, an
    /// unsolicited event, or nowhere (a reply to a walk the node started
    /// itself, such as its maintenance).
    pub fn route(&mut self, ev: DhtEvent) -> Option<NodeEvent> {
        let (id, last, of_query) = match &ev {
            DhtEvent::Peers(f) => (f.query, false, true),
            DhtEvent::StoreWarning { query, .. } => (*query, false, true),
            DhtEvent::QueryDone { query, .. } | DhtEvent::StoreDone { query, .. } => (*query, true, true),
            DhtEvent::Pong { request, .. }
            | DhtEvent::PingFailed { request }
            | DhtEvent::Holepunched { request, .. }
            | DhtEvent::HolepunchFailed { request } => (*request, true, false),
            _ => return Some(NodeEvent::Dht(ev)),
        };
        let map = if of_query { &mut self.queries } else { &mut self.requests };
        let request = if last { map.remove(&id) } else { map.get(&id).copied() }?;
        Some(NodeEvent::Reply { request, event: ev })
    }

    /// Whether `ev` is a reply to one of the caller's operations (a node
    /// that runs walks of its own routes only these to the caller).
    pub fn owns(&self, ev: &DhtEvent) -> bool {
        match ev {
            DhtEvent::Peers(f) => self.queries.contains_key(&f.query),
            DhtEvent::StoreWarning { query, .. } | DhtEvent::QueryDone { query, .. } | DhtEvent::StoreDone { query, .. } => {
                self.queries.contains_key(query)
            }
            DhtEvent::Pong { request, .. }
            | DhtEvent::PingFailed { request }
            | DhtEvent::Holepunched { request, .. }
            | DhtEvent::HolepunchFailed { request } => self.requests.contains_key(request),
            _ => false,
        }
    }

    /// Operations in flight (each ends with its last reply, or a cancel).
    pub fn len(&self) -> usize {
        self.queries.len() + self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::DhtConfig;

    fn node() -> Dht {
        Dht::new(Instant::now(), DhtConfig { ephemeral: true, ..DhtConfig::default() })
    }

    #[test]
    fn replies_go_to_their_operation_and_end_it() {
        let now = Instant::now();
        let mut dht = node();
        let mut ops = Operations::default();
        assert!(ops.command(&mut dht, now, Command::Lookup { request: 7, topic: [1; 32], port: None, local_address: None }).is_none());
        assert_eq!(ops.len(), 1);
        // With no contacts the walk ends at once.
        let mut replies = Vec::new();
        for _ in 0..4 {
            dht.handle_timeout(now);
            while let Some(ev) = dht.poll_event() {
                if let Some(NodeEvent::Reply { request, event }) = ops.route(ev) {
                    replies.push((request, event));
                }
            }
        }
        assert!(matches!(replies.last(), Some((7, DhtEvent::QueryDone { .. }))), "{replies:?}");
        assert!(ops.is_empty(), "the operation ended with its QueryDone");
        // A stray completion for nobody's query goes nowhere.
        assert!(ops.route(DhtEvent::QueryDone { query: 999, error: None, closest: vec![] }).is_none());
        // Unsolicited events pass through.
        assert!(matches!(ops.route(DhtEvent::Ready), Some(NodeEvent::Dht(DhtEvent::Ready))));
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_sent_and_cancel_forgets() {
        let now = Instant::now();
        let mut dht = node();
        let mut ops = Operations::default();
        let refused = ops.command(&mut dht, now, Command::ImmutablePut { request: 3, value: vec![0; 1001] });
        assert!(matches!(&refused, Some(NodeEvent::Refused { request: 3, error }) if error.contains("1000")), "{refused:?}");
        assert!(dht.poll_transmit().is_none());
        ops.command(&mut dht, now, Command::Ping { request: 4, to: "127.0.0.1:9".parse().unwrap() });
        assert_eq!(ops.len(), 1);
        ops.command(&mut dht, now, Command::Cancel { request: 4 });
        assert!(ops.is_empty());
    }
}
