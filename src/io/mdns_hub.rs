//! One mDNS socket per process, shared by every swarm in it.
//!
//! The reference gives each swarm its own socket, but its single event loop
//! hands a datagram to those sockets one after the other, in the order they
//! were created, so swarms of one process answer a query in creation order
//! (upstream tests rely on it: "lookupOne gets the first peer found").
//! Our swarms run on a multi-thread runtime; with a socket each they
//! answered in whatever order the runtime woke them. The hub reads the
//! group once and hands each query to the swarms in creation order, the
//! next one only when the one before has handled it and sent its answer
//! (or [`HANDOFF_TIMEOUT`] passed); a response goes to every swarm at once
//! (nothing is sent back, so there is no order to keep but arrival order).
//! Nothing changes on the wire: every swarm still sends its own answers,
//! from port 5353, one packet each.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::multicast::MulticastSocket;
use crate::lan::Link;
use crate::wire::mdns::MAX_PACKET;

/// Longest wait for one swarm to handle a datagram before the next swarm
/// gets it. A swarm answers within microseconds; the bound only keeps a
/// stalled engine from holding up LAN discovery of the others. 50 ms is
/// far above a loaded runtime's wake-up latency and far below the 1 s an
/// mDNS answer may take anyway (RFC 6762 §6).
pub const HANDOFF_TIMEOUT: Duration = Duration::from_millis(50);
/// How often new interfaces are joined to the mDNS group (the reference
/// rescans every 5 s, wire-mdns.md §1).
const MEMBERSHIP_REFRESH: Duration = Duration::from_secs(5);

/// A datagram from the group, for one swarm. Dropping `done` (or sending on
/// it) lets the next swarm have it.
pub struct Datagram {
    pub bytes: Arc<[u8]>,
    pub from: SocketAddr,
    pub link: Link,
    pub done: oneshot::Sender<()>,
}

struct Hub {
    socket: Arc<MulticastSocket>,
    /// Swarms in creation order, with the time each joined.
    members: Vec<(u64, SystemTime, mpsc::Sender<Datagram>)>,
    next_id: u64,
    task: JoinHandle<()>,
}

static HUB: Mutex<Option<Hub>> = Mutex::new(None);

/// A swarm's place at the hub. Dropping it leaves; the socket closes when
/// the last swarm has left.
pub struct Member {
    id: u64,
    socket: Arc<MulticastSocket>,
    rx: mpsc::Receiver<Datagram>,
}

impl Member {
    /// The shared socket, to send from.
    pub fn socket(&self) -> &Arc<MulticastSocket> {
        &self.socket
    }

    /// The next datagram from the group.
    pub async fn recv(&mut self) -> Option<Datagram> {
        self.rx.recv().await
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut hub = HUB.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = hub.as_mut() {
            h.members.retain(|(id, _, _)| *id != self.id);
            if h.members.is_empty() {
                h.task.abort();
                *hub = None;
            }
        }
    }
}

/// Datagrams waiting for one swarm. A live swarm takes each before the hub
/// hands on (or within [`HANDOFF_TIMEOUT`]); a stalled one would otherwise
/// collect every LAN datagram. 64 covers a burst of answers from a LAN of
/// swarms; past it the swarm misses datagrams, as a full socket would.
pub const MEMBER_QUEUE: usize = 64;

/// Joins the hub, opening the socket if this is the first swarm. Must run
/// inside the runtime (it may spawn the hub's task).
pub fn join() -> io::Result<Member> {
    let mut hub = HUB.lock().unwrap_or_else(|p| p.into_inner());
    if hub.is_none() {
        let socket = Arc::new(MulticastSocket::open()?);
        let task = tokio::spawn(run(socket.clone()));
        *hub = Some(Hub { socket, members: Vec::new(), next_id: 1, task });
    }
    let h = hub.as_mut().expect("hub was just set");
    let (tx, rx) = mpsc::channel(MEMBER_QUEUE);
    let id = h.next_id;
    h.next_id += 1;
    h.members.push((id, SystemTime::now(), tx));
    Ok(Member { id, socket: h.socket.clone(), rx })
}

/// The swarms of the process that existed when a datagram came in at `at`,
/// in creation order. A swarm's own socket in the reference would not have
/// held a datagram that arrived before it was opened; neither does its
/// place here (the hub may read it a little later, while swarms are added).
fn members(at: Option<SystemTime>) -> Vec<mpsc::Sender<Datagram>> {
    let hub = HUB.lock().unwrap_or_else(|p| p.into_inner());
    let Some(h) = hub.as_ref() else { return Vec::new() };
    h.members.iter().filter(|(_, since, _)| at.map_or(true, |at| at >= *since)).map(|(_, _, tx)| tx.clone()).collect()
}

/// A DNS query: the header's QR bit (RFC 1035 §4.1.1, byte 2's top bit)
/// is clear. Anything too short to tell is treated as one.
fn is_query(bytes: &[u8]) -> bool {
    bytes.get(2).map_or(true, |b| b & 0x80 == 0)
}

async fn run(socket: Arc<MulticastSocket>) {
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut next_refresh = Instant::now() + MEMBERSHIP_REFRESH;
    loop {
        tokio::select! {
            got = socket.recv(&mut buf) => match got {
                Ok((n, from, link, at)) => {
                    let bytes: Arc<[u8]> = buf[..n].into();
                    tracing::trace!(%from, n, "mDNS datagram for the swarms");
                    let query = is_query(&bytes);
                    for tx in members(at) {
                        let (done, handled) = oneshot::channel();
                        let datagram = Datagram { bytes: bytes.clone(), from, link: link.clone(), done };
                        if query {
                            // A swarm whose queue is full misses this
                            // datagram, as its own full socket buffer would
                            // drop it; the next swarm gets the query once
                            // this one has answered.
                            if tx.try_send(datagram).is_err() {
                                continue;
                            }
                            let _ = tokio::time::timeout(HANDOFF_TIMEOUT, handled).await;
                        } else {
                            // A response (an answer, a "here I am") needs no
                            // order but arrival order: every swarm gets it at
                            // once. A burst (a swarm announcing 100 topics)
                            // waits for room in a queue rather than overflow
                            // it, for at most the handoff bound.
                            let _ = tokio::time::timeout(HANDOFF_TIMEOUT, tx.send(datagram)).await;
                        }
                    }
                }
                Err(e) => tracing::debug!("mDNS receive error: {e}"),
            },
            _ = tokio::time::sleep_until(next_refresh.into()) => {
                socket.refresh_membership();
                next_refresh = Instant::now() + MEMBERSHIP_REFRESH;
            }
        }
    }
}
