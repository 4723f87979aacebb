//! A DHT node on its own UDP socket: the driver behind the standalone
//! `hyperswarm-dht` bootstrap node (and the memory benchmark's many nodes).

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Notify};

use crate::dht::{Dht, DhtConfig, DhtEvent, DhtStats, Limits};
use crate::wire::dht::MAX_MESSAGE_LEN;

/// Counters readable while the node runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeInfo {
    pub stats: DhtStats,
    pub nodes: usize,
}

pub struct DhtNode {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
    /// Test hook: wakes the node task into a panic.
    panic: Arc<Notify>,
    info: Arc<Mutex<NodeInfo>>,
    addr: SocketAddrV4,
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
        tokio::spawn(run(socket, dht, stopped, info.clone(), done_tx, panic.clone()));
        Ok(DhtNode { stop: Some(stop), done: Some(done), info, addr, panic })
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

async fn run(
    socket: UdpSocket,
    mut dht: Dht,
    mut stop: oneshot::Receiver<()>,
    info: Arc<Mutex<NodeInfo>>,
    done: oneshot::Sender<()>,
    panic: Arc<Notify>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    loop {
        while let Some((to, bytes)) = dht.poll_transmit() {
            let _ = super::send_now(&socket, &bytes, SocketAddr::V4(to));
        }
        while let Some(ev) = dht.poll_event() {
            match ev {
                DhtEvent::Ready => tracing::info!(nodes = dht.table().len(), "bootstrapped"),
                DhtEvent::Announced { peer, .. } => tracing::debug!(%peer, "announce stored"),
                DhtEvent::Relayed { from, to } => tracing::debug!(%from, %to, "relayed a hole punch"),
                _ => {}
            }
        }
        if let Ok(mut i) = info.lock() {
            *i = NodeInfo { stats: dht.stats(), nodes: dht.table().len() };
        }
        let deadline = dht.poll_timeout();
        tokio::select! {
            _ = &mut stop => break,
            _ = panic.notified() => panic!("injected test panic in the DHT node task"),
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, SocketAddr::V4(from))) => dht.handle_datagram(Instant::now(), from, &buf[..n]),
                Ok(_) => {}
                Err(e) => tracing::trace!("receive error: {e}"),
            },
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => dht.handle_timeout(Instant::now()),
        }
    }
    drop(socket);
    let _ = done.send(());
}
