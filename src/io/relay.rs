//! A relay ([`crate::relay::Relay`]) on a UDP socket of its own: the
//! `hyperswarm-dht --relay` role. The socket is not the DHT node's, so the
//! DHT node's per-source budgets never count relayed traffic, a JS node
//! never receives a relay datagram, and the relay's port is what a relay
//! will announce on the DHT (see `crate::relay`'s module doc).

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::relay::message::MAX_DATAGRAM;
use crate::relay::{Relay, RelayConfig, RelayStats};

/// Datagrams read in one turn before the task sends and looks at its
/// timers again: enough to amortise the wake-up, few enough that a flood
/// cannot starve the expiry timer.
const READ_BATCH: usize = 64;

pub struct RelayServer {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
    stats: Arc<Mutex<RelayStats>>,
    addr: SocketAddrV4,
}

impl RelayServer {
    /// Binds `addr` and runs a relay with `config` on the current tokio
    /// runtime; its secrets come from the operating system's randomness.
    pub fn spawn(addr: SocketAddrV4, config: RelayConfig) -> io::Result<RelayServer> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        std_socket.set_nonblocking(true)?;
        let addr = match std_socket.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(io::Error::other("IPv4 only")),
        };
        let socket = UdpSocket::from_std(std_socket)?;
        let relay = Relay::new(config, Instant::now(), rand::random());
        let stats = Arc::new(Mutex::new(relay.stats()));
        let (stop, stopped) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        tokio::spawn(run(socket, relay, stats.clone(), stopped, done_tx));
        Ok(RelayServer { stop: Some(stop), done: Some(done), stats, addr })
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// The counters as of the task's last turn.
    pub fn stats(&self) -> RelayStats {
        self.stats_reader().get()
    }

    /// Reads the counters without holding the server.
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader(self.stats.clone())
    }

    /// Resolves if the relay task ends without being stopped (a panic).
    pub async fn died(&mut self) {
        match self.done.as_mut() {
            Some(done) => {
                let died = done.await.is_err();
                self.done = None;
                if died {
                    return;
                }
                std::future::pending().await
            }
            None => std::future::pending().await,
        }
    }

    /// Stops the relay and waits until its socket is closed.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            let _ = d.await;
        }
    }
}

/// The counters of a running relay, readable from anywhere.
#[derive(Clone)]
pub struct StatsReader(Arc<Mutex<RelayStats>>);

impl StatsReader {
    pub fn get(&self) -> RelayStats {
        self.0.lock().map(|s| *s).unwrap_or_default()
    }
}

async fn run(socket: UdpSocket, mut relay: Relay, stats: Arc<Mutex<RelayStats>>, mut stop: oneshot::Receiver<()>, done: oneshot::Sender<()>) {
    // One byte more than the largest datagram the relay accepts, so that a
    // larger one arrives longer than that (and is counted as oversized)
    // rather than cut to size.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        while let Some((to, bytes)) = relay.poll_transmit() {
            if let Err(e) = super::send_now(&socket, &bytes, SocketAddr::V4(to)) {
                tracing::trace!(%to, "relay: send failed: {e}");
            }
        }
        if let Ok(mut s) = stats.lock() {
            *s = relay.stats();
        }
        let deadline = relay.poll_timeout();
        tokio::select! {
            biased;
            _ = &mut stop => break,
            got = socket.recv_from(&mut buf) => {
                let mut got = got;
                let mut read = 0;
                loop {
                    match got {
                        Ok((n, SocketAddr::V4(from))) => relay.handle_datagram(Instant::now(), from, &buf[..n]),
                        Ok(_) => {}
                        Err(e) => tracing::trace!("relay: receive error: {e}"),
                    }
                    read += 1;
                    if read == READ_BATCH {
                        break;
                    }
                    got = match socket.try_recv_from(&mut buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        other => other,
                    };
                }
            }
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => relay.handle_timeout(Instant::now()),
        }
        // Deadlines that passed while datagrams kept us busy.
        relay.handle_timeout(Instant::now());
    }
    drop(socket);
    let _ = done.send(());
}
