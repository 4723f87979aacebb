//! A DHT node on its own UDP socket: the driver behind the standalone
//! `hyperswarm-dht` bootstrap node, the memory benchmark's many nodes, and
//! the `./dht` entry (which sends [`Command`]s and takes [`NodeEvent`]s).

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::dht::ops::{Command, NodeEvent, Operations};
use crate::dht::{Dht, DhtConfig, DhtEvent, DhtStats, Limits, NodeId};
use crate::wire::dht::MAX_MESSAGE_LEN;

/// Commands queued to one node at most; past it [`DhtNode::command`]
/// refuses (a caller that outruns the node hears so at once).
pub const COMMAND_QUEUE: usize = 4096;

/// Held while one node sends what one step produced (see [`send_batch`]).
static SENDING: Mutex<()> = Mutex::new(());

/// Sends everything `dht` has queued, as one batch: no other node of this
/// process sends meanwhile. dht-rpc's nodes share one thread, so the
/// datagrams of one step (an announce's updates to each close node) are
/// all out before another node in the process can act on the first of
/// them. Ours run on several threads: a node preempted halfway let the
/// updated peer's lookup reach the bootstrap node before the update did
/// (upstream 'announce event' and 'unannounce event' then saw the record
/// missing, or still there). Any reaction of another node is a send of its
/// own, so it waits here until the whole batch is out.
fn send_batch(dht: &mut Dht, mut send: impl FnMut(SocketAddrV4, &[u8])) {
    let _batch = SENDING.lock().unwrap_or_else(|p| p.into_inner());
    while let Some((to, bytes)) = dht.poll_transmit() {
        send(to, &bytes);
    }
}

/// Counters and state readable while the node runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeInfo {
    pub stats: DhtStats,
    pub nodes: usize,
    pub bootstrapped: bool,
    pub ephemeral: bool,
    pub holepunchable: bool,
    pub remote_address: Option<SocketAddrV4>,
    /// Our NAT's class from the nodes' reports (`dht::nat`).
    pub nat_type: crate::dht::nat::NatType,
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
    commands: mpsc::Sender<Vec<Command>>,
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
        let addr = match std_socket.local_addr()? {
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
            // The walk's first requests leave here, on the caller's thread,
            // not whenever the runtime first polls the task. dht-rpc has
            // sent them before the JS that opened the node can start
            // anything else, so a node opened in one turn is known to its
            // bootstrap nodes before another node's later query reaches
            // them (upstream 'announce event' relies on it).
            send_batch(&mut dht, |to, bytes| {
                let _ = std_socket.send_to(bytes, to);
            });
        }
        let socket = UdpSocket::from_std(std_socket)?;
        let panic = Arc::new(Notify::new());
        // bounded: COMMAND_QUEUE, and `command` refuses past it.
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let local_ips = if sink.is_some() { super::multicast::ipv4_interfaces() } else { Vec::new() };
        let task = Task { dht, info: info.clone(), sink: Closing(sink), ops: Operations::default(), port: addr.port(), local_ips };
        tokio::spawn(run(socket, task, stopped, command_rx, done_tx, panic.clone()));
        Ok(DhtNode { stop: Some(stop), done: Some(done), info, addr, panic, commands })
    }

    /// Queues `command`; an error when the node is gone or
    /// [`COMMAND_QUEUE`] batches wait already.
    pub fn command(&self, command: Command) -> Result<(), &'static str> {
        self.commands(vec![command])
    }

    /// Queues `batch`, which the node starts in order before it reads
    /// another datagram.
    pub fn commands(&self, batch: Vec<Command>) -> Result<(), &'static str> {
        self.commands.try_send(batch).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "too many DHT operations queued",
            mpsc::error::TrySendError::Closed(_) => "the DHT node is destroyed",
        })
    }

    /// A sender of commands that outlives no node (for tasks that finish
    /// starting it, such as resolving bootstrap names).
    pub fn commander(&self) -> mpsc::Sender<Vec<Command>> {
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

/// The node task's state: the sans-IO node and the caller's operations.
struct Task {
    dht: Dht,
    info: Arc<Mutex<NodeInfo>>,
    sink: Closing,
    ops: Operations,
    /// The bound port and our interfaces' IPs, to tell "open" from a NAT.
    port: u16,
    local_ips: Vec<std::net::Ipv4Addr>,
}

impl Task {
    fn emit(&self, ev: NodeEvent) {
        if let Some(sink) = self.sink.0.as_ref() {
            sink(ev);
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
                nat_type: if owned {
                    self.dht.nat_type(Some(crate::dht::nat::Local { port: self.port, ips: &self.local_ips }))
                } else {
                    Default::default()
                },
            };
        }
    }
}

async fn run(
    socket: UdpSocket,
    mut task: Task,
    mut stop: oneshot::Receiver<()>,
    mut commands: mpsc::Receiver<Vec<Command>>,
    done: oneshot::Sender<()>,
    panic: Arc<Notify>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let mut commands_open = true;
    let mut listening = false;
    loop {
        send_batch(&mut task.dht, |to, bytes| {
            let _ = super::send_now(&socket, bytes, SocketAddr::V4(to));
        });
        // After the bootstrap walk's first datagrams, as dht-rpc's
        // 'listening' comes after its first send has bound the socket.
        if !listening {
            listening = true;
            task.emit(NodeEvent::Listening);
        }
        while let Some(ev) = task.dht.poll_event() {
            match &ev {
                DhtEvent::Ready => tracing::info!(nodes = task.dht.table().len(), "bootstrapped"),
                DhtEvent::Relayed { from, to } => tracing::debug!(%from, %to, "relayed a hole punch"),
                _ => {}
            }
            if let Some(ev) = task.ops.route(ev) {
                task.emit(ev);
            }
        }
        task.publish();
        let deadline = task.dht.poll_timeout();
        tokio::select! {
            // In order: the owner's commands before datagrams, so that
            // operations started together go out together (as on
            // dht-rpc's single thread), before any reply they cause.
            biased;
            _ = &mut stop => break,
            _ = panic.notified() => panic!("injected test panic in the DHT node task"),
            batch = commands.recv(), if commands_open => match batch {
                Some(batch) => {
                    for cmd in batch {
                        if let Some(ev) = task.ops.command(&mut task.dht, Instant::now(), cmd) {
                            task.emit(ev);
                        }
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::time::Duration;

    /// A node whose bootstrap walk has queued one request per bootstrap node.
    fn queued(n: u16) -> Dht {
        let bootstrap = (1..=n).map(|p| SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, p)).collect();
        let mut d = Dht::new(Instant::now(), DhtConfig { bootstrap, ..Default::default() });
        d.bootstrap(Instant::now());
        d
    }

    #[test]
    fn a_nodes_batch_goes_out_whole_before_another_node_sends() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [1u8, 2]
            .into_iter()
            .map(|who| {
                let (log, start) = (log.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut d = queued(4);
                    start.wait();
                    send_batch(&mut d, |_, _| {
                        log.lock().unwrap().push(who);
                        // A sender preempted between two datagrams: the
                        // other node has every chance to cut in.
                        std::thread::sleep(Duration::from_millis(5));
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 8, "{log:?}");
        assert_eq!(log.windows(2).filter(|w| w[0] != w[1]).count(), 1, "interleaved: {log:?}");
    }
}
