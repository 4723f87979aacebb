//! A DHT node on its own UDP socket: the driver behind the standalone
//! `hyperswarm-dht` bootstrap node, the memory benchmark's many nodes, and
//! the `./dht` entry (which sends [`Command`]s and takes [`NodeEvent`]s).

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::dht::{Dht, DhtConfig, DhtEvent, DhtStats, Limits, MutablePutOptions, NodeId, QueryId, RequestId};
use crate::wire::dht::MAX_MESSAGE_LEN;

/// Commands queued to one node at most; past it [`DhtNode::command`]
/// refuses (a caller that outruns the node hears so at once).
pub const COMMAND_QUEUE: usize = 4096;

/// Counters and state readable while the node runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeInfo {
    pub stats: DhtStats,
    pub nodes: usize,
    pub bootstrapped: bool,
    pub ephemeral: bool,
    pub holepunchable: bool,
    pub remote_address: Option<SocketAddrV4>,
}

/// An operation asked of the node; `request` is the caller's number for
/// it, which every [`NodeEvent::Reply`] about it carries.
#[derive(Debug)]
pub enum Command {
    Lookup { request: u32, topic: NodeId, local_address: Option<SocketAddrV4> },
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
#[derive(Debug)]
pub enum NodeEvent {
    /// Not about an operation of the owner's: `Ready`, `InitialNodes`,
    /// `Persistent`, `Announced`, `Unannounced`, `LookedUp`, `Relayed`.
    Dht(DhtEvent),
    /// About operation `request`. The last one for it is a `QueryDone`,
    /// `StoreDone`, `Pong`, `PingFailed`, `Holepunched` or `HolepunchFailed`.
    Reply { request: u32, event: DhtEvent },
    /// Operation `request` could not start (bad input); nothing was sent.
    Refused { request: u32, error: String },
    /// The node task ended (stopped, or died); the socket is closed.
    Closed,
}

/// Where a node's events go; called on the node's task, so it must not block.
pub type EventSink = Box<dyn Fn(NodeEvent) + Send + Sync>;

pub struct DhtNode {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
    /// Test hook: wakes the node task into a panic.
    panic: Arc<Notify>,
    info: Arc<Mutex<NodeInfo>>,
    addr: SocketAddrV4,
    commands: mpsc::Sender<Command>,
}

impl DhtNode {
    /// Binds `addr` and runs a node on the current tokio runtime; with
    /// `bootstrap` nodes configured it walks towards its own id at once.
    pub fn spawn(addr: SocketAddrV4, config: DhtConfig) -> io::Result<DhtNode> {
        Self::spawn_with_limits(addr, config, Limits::default())
    }

    /// [`Self::spawn`] with other per-source budgets (a testnet with many
    /// nodes behind one address raises them, `Limits::scaled`).
    pub fn spawn_with_limits(addr: SocketAddrV4, config: DhtConfig, limits: Limits) -> io::Result<DhtNode> {
        Self::spawn_with(addr, config, limits, None)
    }

    /// [`Self::spawn_with_limits`] whose events go to `sink`.
    pub fn spawn_with(addr: SocketAddrV4, config: DhtConfig, limits: Limits, sink: Option<EventSink>) -> io::Result<DhtNode> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        std_socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(std_socket)?;
        let addr = match socket.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(io::Error::other("IPv4 only")),
        };
        let info = Arc::new(Mutex::new(NodeInfo::default()));
        let (stop, stopped) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let mut dht = Dht::new(Instant::now(), config);
        dht.set_local_addr(addr);
        dht.set_limits(limits);
        if !dht.bootstrap_nodes().is_empty() {
            dht.bootstrap(Instant::now());
        }
        let panic = Arc::new(Notify::new());
        // bounded: COMMAND_QUEUE, and `command` refuses past it.
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let task = Task { dht, info: info.clone(), sink: Closing(sink), queries: HashMap::new(), requests: HashMap::new() };
        tokio::spawn(run(socket, task, stopped, command_rx, done_tx, panic.clone()));
        Ok(DhtNode { stop: Some(stop), done: Some(done), info, addr, panic, commands })
    }

    /// Queues `command`; an error when the node is gone or
    /// [`COMMAND_QUEUE`] commands wait already.
    pub fn command(&self, command: Command) -> Result<(), &'static str> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "too many DHT operations queued",
            mpsc::error::TrySendError::Closed(_) => "the DHT node is destroyed",
        })
    }

    /// A sender of commands that outlives no node (for tasks that finish
    /// starting it, such as resolving bootstrap names).
    pub fn commander(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// The routing table's contacts (waits for the node task, 1 s at most).
    pub fn nodes(&self) -> Vec<(NodeId, SocketAddrV4)> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        if self.command(Command::Nodes { reply }).is_err() {
            return Vec::new();
        }
        rx.recv_timeout(std::time::Duration::from_secs(1)).unwrap_or_default()
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.addr
    }

    pub fn info(&self) -> NodeInfo {
        self.info.lock().map(|i| *i).unwrap_or_default()
    }

    /// Resolves if the node task ends without being stopped: it died (a
    /// panic). Never resolves while the node runs.
    pub async fn died(&mut self) {
        match self.done.as_mut() {
            Some(done) => {
                if done.await.is_err() {
                    self.done = None;
                    return;
                }
                self.done = None;
                std::future::pending().await
            }
            None => std::future::pending().await,
        }
    }

    /// Test hook: makes the node task panic (the binary's
    /// HYPERSWARM_NATIVE_TEST_PANIC=node).
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        self.panic.notify_one();
    }

    /// Stops the node and waits until its socket is closed.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            let _ = d.await;
        }
    }
}

/// Sends [`NodeEvent::Closed`] when the task ends, also by a panic.
struct Closing(Option<EventSink>);

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(sink) = self.0.take() {
            sink(NodeEvent::Closed);
        }
    }
}

/// The node task's state: the sans-IO node and which caller operation
/// each of its queries and requests is.
struct Task {
    dht: Dht,
    info: Arc<Mutex<NodeInfo>>,
    sink: Closing,
    queries: HashMap<QueryId, u32>,
    requests: HashMap<RequestId, u32>,
}

impl Task {
    fn emit(&self, ev: NodeEvent) {
        if let Some(sink) = self.sink.0.as_ref() {
            sink(ev);
        }
    }

    fn query(&mut self, request: u32, q: QueryId) {
        self.queries.insert(q, request);
    }

    fn refused(&self, request: u32, error: impl ToString) {
        self.emit(NodeEvent::Refused { request, error: error.to_string() });
    }

    fn on_command(&mut self, now: Instant, cmd: Command) {
        let dht = &mut self.dht;
        match cmd {
            Command::Lookup { request, topic, local_address } => {
                let q = dht.lookup(now, topic, local_address);
                self.query(request, q)
            }
            Command::Announce { request, topic, port, local_address } => {
                let q = dht.announce(now, topic, port, local_address);
                self.query(request, q)
            }
            Command::Unannounce { request, topic, port, local_address } => {
                let q = dht.unannounce(now, topic, port, local_address);
                self.query(request, q)
            }
            Command::Ping { request, to } => {
                let r = dht.ping(now, to, None);
                self.requests.insert(r, request);
            }
            Command::Holepunch { request, peer, referrer } => {
                let r = dht.holepunch(now, peer, referrer);
                self.requests.insert(r, request);
            }
            Command::ImmutablePut { request, value } => match dht.immutable_put(now, value) {
                Ok((q, _)) => self.query(request, q),
                Err(e) => self.refused(request, e),
            },
            Command::ImmutableGet { request, key } => {
                let q = dht.immutable_get(now, key);
                self.query(request, q)
            }
            Command::MutablePut { request, value, opts } => match dht.mutable_put(now, value, opts) {
                Ok(q) => self.query(request, q),
                Err(e) => self.refused(request, e),
            },
            Command::MutableGet { request, key, seq, salt } => match dht.mutable_get(now, key, seq, salt) {
                Ok(q) => self.query(request, q),
                Err(e) => self.refused(request, e),
            },
            Command::Bootstrap { request } => {
                let q = dht.bootstrap(now);
                self.query(request, q)
            }
            Command::Persistent { request } => {
                dht.persistent(now);
                match dht.bootstrap_query() {
                    Some(q) => self.query(request, q),
                    // Already persistent: the reference bootstraps anyway.
                    None => {
                        let q = dht.bootstrap(now);
                        self.query(request, q)
                    }
                }
            }
            Command::AddNode { id, addr } => dht.add_node(id, addr),
            Command::UseBootstrap { nodes } => {
                dht.set_bootstrap_nodes(nodes);
                dht.bootstrap(now);
            }
            Command::Cancel { request } => {
                if let Some((&q, _)) = self.queries.iter().find(|(_, r)| **r == request) {
                    self.queries.remove(&q);
                    self.dht.cancel(q);
                }
                self.requests.retain(|_, r| *r != request);
            }
            Command::Nodes { reply } => {
                let _ = reply.try_send(dht.nodes());
            }
        }
    }

    fn on_event(&mut self, ev: DhtEvent) {
        let (id, last, of_query) = match &ev {
            DhtEvent::Peers(f) => (f.query, false, true),
            DhtEvent::StoreWarning { query, .. } => (*query, false, true),
            DhtEvent::QueryDone { query, .. } | DhtEvent::StoreDone { query, .. } => (*query, true, true),
            DhtEvent::Pong { request, .. }
            | DhtEvent::PingFailed { request }
            | DhtEvent::Holepunched { request, .. }
            | DhtEvent::HolepunchFailed { request } => (*request, true, false),
            DhtEvent::Ready => {
                tracing::info!(nodes = self.dht.table().len(), "bootstrapped");
                return self.emit(NodeEvent::Dht(ev));
            }
            DhtEvent::Relayed { from, to } => {
                tracing::debug!(%from, %to, "relayed a hole punch");
                return self.emit(NodeEvent::Dht(ev));
            }
            _ => return self.emit(NodeEvent::Dht(ev)),
        };
        let map = if of_query { &mut self.queries } else { &mut self.requests };
        let request = if last { map.remove(&id) } else { map.get(&id).copied() };
        // Not the owner's (the node's own bootstrap and maintenance walks).
        if let Some(request) = request {
            self.emit(NodeEvent::Reply { request, event: ev });
        }
    }

    fn publish(&self) {
        // The address tally is read by the `./dht` entry only (which has a
        // sink); a bootstrap node under load skips it.
        let owned = self.sink.0.is_some();
        if let Ok(mut i) = self.info.lock() {
            *i = NodeInfo {
                stats: self.dht.stats(),
                nodes: self.dht.table().len(),
                bootstrapped: self.dht.is_bootstrapped(),
                ephemeral: self.dht.is_ephemeral(),
                holepunchable: owned && self.dht.holepunchable(),
                remote_address: if owned { self.dht.remote_address() } else { None },
            };
        }
    }
}

async fn run(
    socket: UdpSocket,
    mut task: Task,
    mut stop: oneshot::Receiver<()>,
    mut commands: mpsc::Receiver<Command>,
    done: oneshot::Sender<()>,
    panic: Arc<Notify>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let mut commands_open = true;
    loop {
        while let Some((to, bytes)) = task.dht.poll_transmit() {
            let _ = super::send_now(&socket, &bytes, SocketAddr::V4(to));
        }
        while let Some(ev) = task.dht.poll_event() {
            task.on_event(ev);
        }
        task.publish();
        let deadline = task.dht.poll_timeout();
        tokio::select! {
            _ = &mut stop => break,
            _ = panic.notified() => panic!("injected test panic in the DHT node task"),
            cmd = commands.recv(), if commands_open => match cmd {
                Some(cmd) => task.on_command(Instant::now(), cmd),
                None => commands_open = false,
            },
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, SocketAddr::V4(from))) => task.dht.handle_datagram(Instant::now(), from, &buf[..n]),
                Ok(_) => {}
                Err(e) => tracing::trace!("receive error: {e}"),
            },
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => task.dht.handle_timeout(Instant::now()),
        }
    }
    drop(socket);
    // Closed goes out once the socket is closed.
    drop(task);
    let _ = done.send(());
}
