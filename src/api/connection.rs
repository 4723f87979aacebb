//! A connection as tokio's `AsyncRead + AsyncWrite`, over TCP or uTP.
//!
//! TCP is a plain [`tokio::net::TcpStream`]. uTP lives inside the swarm's
//! engine, which speaks a credit protocol (the one the Node binding's
//! `Duplex` uses): the owner grants reads ([`Control::utp_read`]) and gets
//! `Data` events until the grant is spent; a write is answered by `Written`
//! once the connection's bounded send buffer has taken it. The adapter here
//! keeps at most one grant's worth of data (1 MiB) and one write chunk in
//! its hands, so a slow reader closes the uTP window and a fast writer
//! waits for the peer: backpressure in both directions, no unbounded
//! buffer.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::discovery::Peer;
use crate::swarm::engine::Control;
use crate::swarm::utp_link::READ_CREDIT;

/// Largest chunk one `poll_write` hands to the engine: the engine's own
/// read chunk (`utp_link`), so one write is one command and one `Written`.
const WRITE_CHUNK: usize = 64 * 1024;

/// The transport a [`Connection`] runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP: a dial that won the race, or an accepted socket.
    Tcp,
    /// uTP on the swarm's UDP socket: after a hole punch, or when a LAN
    /// peer's TCP refused.
    Utp,
}

/// A connection to a peer, made or accepted by a [`Swarm`](crate::Swarm).
///
/// Read and write it with tokio's `AsyncReadExt` / `AsyncWriteExt`;
/// `shutdown()` ends our direction (the peer reads end-of-file), dropping it
/// closes it. Dropping a uTP connection ends our direction gracefully (data
/// already written still arrives, as with a closed TCP socket) and discards
/// what the peer still sends. The swarm learns of the drop: the peer may be
/// dialled again and an incoming connection frees its place under the
/// per-IP cap.
///
/// ```no_run
/// # async fn demo(mut connection: hyperswarm_native::Connection) -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// connection.write_all(b"ping").await?;
/// let mut reply = [0u8; 4];
/// connection.read_exact(&mut reply).await?;
/// connection.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Connection {
    id: u64,
    client: bool,
    remote: SocketAddr,
    peer: Option<Peer>,
    control: Control,
    io: Io,
}

enum Io {
    Tcp(tokio::net::TcpStream),
    Utp(Arc<Mutex<UtpState>>),
}

/// One uTP connection's side of the credit protocol, shared by the
/// [`Connection`] and the swarm's event router.
#[derive(Default)]
pub(crate) struct UtpState {
    /// Received chunks, the first one read from `offset` on.
    chunks: VecDeque<Vec<u8>>,
    offset: usize,
    /// Bytes the engine may still send under our last grant, as far as we
    /// know: never more than it really may (data sent under an older grant
    /// counts against the new one), so a read never waits on a spent grant.
    credit: usize,
    /// The peer finished sending.
    eof: bool,
    /// The connection is gone; `error` says why when it was not clean.
    closed: bool,
    error: Option<String>,
    /// The write the engine has not taken yet.
    in_flight: Option<u32>,
    next_write: u32,
    /// Our direction is ended.
    shut: bool,
    /// Dropped with a write in flight: end our direction once it is taken
    /// (the engine would send the FIN ahead of the rest of the write).
    shut_after_write: bool,
    /// The owner dropped the connection: data is discarded, and the swarm
    /// is told once the connection is gone.
    dropped: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl UtpState {
    /// Data from the engine. False when it was discarded (the owner is gone).
    pub(crate) fn on_data(&mut self, data: Vec<u8>) -> bool {
        self.credit = self.credit.saturating_sub(data.len());
        if self.dropped {
            return false;
        }
        if !data.is_empty() {
            self.chunks.push_back(data);
        }
        wake(&mut self.read_waker);
        true
    }

    /// A write was taken. True when the owner dropped the connection
    /// meanwhile and the router must now end our direction.
    pub(crate) fn on_written(&mut self, write: u32) -> bool {
        if self.in_flight == Some(write) {
            self.in_flight = None;
            wake(&mut self.write_waker);
            return std::mem::take(&mut self.shut_after_write);
        }
        false
    }

    /// The engine's read grant is spent, as far as we know: the router of
    /// a dropped connection grants again (see `credit`).
    pub(crate) fn regrant(&mut self) -> bool {
        if self.dropped && self.credit == 0 && !self.closed {
            self.credit = READ_CREDIT;
            return true;
        }
        false
    }

    pub(crate) fn on_end(&mut self) {
        self.eof = true;
        wake(&mut self.read_waker);
    }

    /// The connection is gone. True when the owner dropped it already, so
    /// the router reports it closed to the swarm.
    pub(crate) fn on_closed(&mut self, error: Option<String>) -> bool {
        self.closed = true;
        self.error = error;
        wake(&mut self.read_waker);
        wake(&mut self.write_waker);
        self.dropped
    }
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

fn lock(state: &Mutex<UtpState>) -> MutexGuard<'_, UtpState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed_error(kind: io::ErrorKind, st: &UtpState) -> io::Error {
    match &st.error {
        Some(e) => io::Error::new(kind, format!("uTP connection closed: {e}")),
        None => io::Error::new(kind, "uTP connection is closed"),
    }
}

impl Connection {
    pub(crate) fn tcp(id: u64, client: bool, peer: Option<Peer>, control: Control, stream: tokio::net::TcpStream) -> Connection {
        // The listener is dual-stack: IPv4 peers come as ::ffff:a.b.c.d.
        let remote = stream
            .peer_addr()
            .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Connection { id, client, remote, peer, control, io: Io::Tcp(stream) }
    }

    pub(crate) fn utp(id: u64, client: bool, peer: Option<Peer>, control: Control, remote: SocketAddr, state: Arc<Mutex<UtpState>>) -> Connection {
        Connection { id, client, remote, peer, control, io: Io::Utp(state) }
    }

    /// TCP or uTP.
    pub fn transport(&self) -> Transport {
        match self.io {
            Io::Tcp(_) => Transport::Tcp,
            Io::Utp(_) => Transport::Utp,
        }
    }

    /// True when we dialled, false when the peer did (hyperswarm's
    /// `details.client`).
    pub fn is_client(&self) -> bool {
        self.client
    }

    /// The peer's address (IPv4 peers as IPv4, also on the dual-stack
    /// listener).
    pub fn peer_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The discovered peer this connection was dialled for; `None` for
    /// incoming connections (`details.peer` in hyperswarm).
    pub fn peer(&self) -> Option<&Peer> {
        self.peer.as_ref()
    }

    /// Disables Nagle's algorithm on TCP (already off for the swarm's
    /// sockets); uTP sends at once anyway.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.io {
            Io::Tcp(s) => s.set_nodelay(nodelay),
            Io::Utp(_) => Ok(()),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("transport", &self.transport())
            .field("client", &self.client)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let state = match &mut this.io {
            Io::Tcp(s) => return Pin::new(s).poll_read(cx, buf),
            Io::Utp(state) => state,
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut st = lock(state);
        if !st.chunks.is_empty() {
            while buf.remaining() > 0 {
                let offset = st.offset;
                let Some(front) = st.chunks.front() else { break };
                let n = buf.remaining().min(front.len() - offset);
                buf.put_slice(&front[offset..offset + n]);
                if offset + n == front.len() {
                    st.chunks.pop_front();
                    st.offset = 0;
                } else {
                    st.offset += n;
                }
            }
            return Poll::Ready(Ok(()));
        }
        if st.eof {
            return Poll::Ready(Ok(()));
        }
        if st.closed {
            return Poll::Ready(match st.error {
                Some(_) => Err(closed_error(io::ErrorKind::ConnectionReset, &st)),
                None => Ok(()),
            });
        }
        if st.credit == 0 {
            st.credit = READ_CREDIT;
            this.control.utp_read(this.id);
        }
        st.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let state = match &mut this.io {
            Io::Tcp(s) => return Pin::new(s).poll_write(cx, buf),
            Io::Utp(state) => state,
        };
        let mut st = lock(state);
        if st.closed {
            return Poll::Ready(Err(closed_error(io::ErrorKind::BrokenPipe, &st)));
        }
        if st.shut {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after shutdown")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if st.in_flight.is_some() {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(WRITE_CHUNK);
        st.next_write = st.next_write.wrapping_add(1).max(1);
        let write = st.next_write;
        st.in_flight = Some(write);
        this.control.utp_write(this.id, write, buf[..n].to_vec());
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let state = match &mut this.io {
            Io::Tcp(s) => return Pin::new(s).poll_flush(cx),
            Io::Utp(state) => state,
        };
        let mut st = lock(state);
        if st.in_flight.is_none() {
            return Poll::Ready(Ok(()));
        }
        if st.closed {
            return Poll::Ready(Err(closed_error(io::ErrorKind::BrokenPipe, &st)));
        }
        st.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Io::Tcp(s) = &mut self.io {
            return Pin::new(s).poll_shutdown(cx);
        }
        std::task::ready!(self.as_mut().poll_flush(cx))?;
        let this = self.get_mut();
        let Io::Utp(state) = &this.io else { unreachable!("checked above") };
        let mut st = lock(state);
        if !st.shut && !st.closed {
            st.shut = true;
            this.control.utp_shutdown(this.id);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Io::Utp(state) = &self.io else {
            // The socket closes when the stream drops, right after this.
            self.control.connection_closed(self.id);
            return;
        };
        let mut st = lock(state);
        if st.closed {
            self.control.connection_closed(self.id);
            return;
        }
        // Ends our direction like a closed TCP socket, after what is
        // queued; the router discards what still comes and reports the
        // connection closed once the engine says it is gone.
        st.dropped = true;
        st.chunks.clear();
        if !st.shut {
            st.shut = true;
            if st.in_flight.is_some() {
                st.shut_after_write = true;
            } else {
                self.control.utp_shutdown(self.id);
            }
        }
        st.credit = READ_CREDIT;
        self.control.utp_read(self.id);
    }
}
