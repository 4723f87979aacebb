//! The crate's public face: a [`Swarm`] on the caller's tokio runtime,
//! reporting [`Event`]s and handing out [`Connection`]s.
//!
//! It wraps the engine (`crate::swarm`) the Node binding drives, and turns
//! its JS-shaped protocol (connection ids, uTP credit events, request ids)
//! into Rust values: the engine calls [`Router::on_event`] on its own task,
//! which routes uTP data to its connection and everything else to the
//! owner's event queue.

mod connection;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

pub use connection::{Connection, Transport};
use connection::UtpState;

use crate::dht::nat::NatType;
use crate::discovery::{Peer, Topic};
use crate::swarm::engine::{Control, Swarm as Engine};
use crate::swarm::{ConnStream, ConnectError, SwarmConfig, SwarmError, SwarmEvent, EVENT_QUEUE_BOUND};

/// The topic key for a name: its SHA-256, as the reference's examples make
/// one (`crypto.createHash('sha256').update(name).digest()`), so a Rust
/// peer and a JavaScript peer that hash the same name meet.
///
/// ```
/// let t = hyperswarm_native::topic(b"abc");
/// // The FIPS 180-2 test vector for SHA-256("abc").
/// assert_eq!(t[..4], [0xba, 0x78, 0x16, 0xbf]);
/// assert_eq!(t[28..], [0xf2, 0x00, 0x15, 0xad]);
/// assert_eq!(t, hyperswarm_native::topic(b"abc"));
/// assert_ne!(t, hyperswarm_native::topic(b"abd"));
/// ```
pub fn topic(name: &[u8]) -> Topic {
    Sha256::digest(name).into()
}

/// How [`Swarm::join`] takes part in a topic (hyperswarm's `{ announce,
/// lookup }`).
///
/// ```
/// use hyperswarm_native::JoinOptions;
/// assert_eq!(JoinOptions::BOTH, JoinOptions { announce: true, lookup: true });
/// assert_eq!(JoinOptions::default(), JoinOptions::LOOKUP);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinOptions {
    /// Tell the DHT and the LAN that we are in the topic, so that peers
    /// looking it up dial us.
    pub announce: bool,
    /// Ask the DHT and the LAN who is in the topic, and dial them. A join
    /// that does not announce always looks up, as in the reference.
    pub lookup: bool,
}

impl JoinOptions {
    /// Announce and look up: a peer of a symmetric swarm.
    pub const BOTH: JoinOptions = JoinOptions { announce: true, lookup: true };
    /// Announce only: a server, dialled by the others.
    pub const ANNOUNCE: JoinOptions = JoinOptions { announce: true, lookup: false };
    /// Look up only: a client. The reference's default.
    pub const LOOKUP: JoinOptions = JoinOptions { announce: false, lookup: true };
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions::LOOKUP
    }
}

/// What a [`Swarm`] reports, in order, through [`Swarm::next_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Sockets are bound: TCP and UDP share `port`.
    Listening {
        /// The port both sockets are bound to.
        port: u16,
    },
    /// Discovery found a peer in a joined topic (repeats are reported, as
    /// the reference does). With `auto_dial` on (the default) the swarm
    /// dials it by itself; [`Event::Connection`] follows if that works.
    ///
    /// Bounded: while 1024 of them wait unread (the engine's
    /// `EVENT_QUEUE_BOUND`, far above one discovery round's yield), new peer events are dropped (discovery
    /// reports every peer again at its next round).
    Peer(Peer),
    /// A connection the swarm made (to a discovered peer) or accepted.
    Connection(Connection),
    /// A DHT round of `topic` finished (hyperswarm's `updated`).
    Updated {
        /// The topic of the round.
        topic: Topic,
        /// Why the round failed, if it did.
        error: Option<String>,
    },
    /// A left topic is off the DHT (its unannounce finished).
    Left {
        /// The topic left.
        topic: Topic,
    },
    /// Something failed that the swarm survives (a send error, no bootstrap
    /// node, a bad packet).
    Warning(String),
    /// The swarm cannot go on as asked (binding failed, or the engine
    /// failed: a bug); [`Event::Closed`] follows the latter.
    Error(String),
    /// The swarm is destroyed: every socket is closed. The last event.
    Closed,
}

/// A Hyperswarm peer: joins topics, finds peers over the DHT and the LAN,
/// and connects to them over TCP or uTP.
///
/// It runs as one task on the tokio runtime it was made on, owning one UDP
/// socket (DHT and uTP) and one TCP listener on the same port, both bound
/// on the first [`join`](Self::join) or [`bind`](Self::bind). Dropping the
/// swarm destroys it (as [`destroy`](Self::destroy)); connections already
/// handed out over TCP stay open, uTP ones close with it.
///
/// ```no_run
/// use hyperswarm_native::{topic, Event, JoinOptions, Swarm, SwarmConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut swarm = Swarm::new(SwarmConfig {
///     bootstrap: Some(vec!["10.0.0.1:49737".into()]),
///     ..SwarmConfig::default()
/// });
/// swarm.join(topic(b"chat"), JoinOptions::BOTH)?;
/// while let Some(event) = swarm.next_event().await {
///     match event {
///         Event::Connection(c) => eprintln!("{:?} connection to {}", c.transport(), c.peer_addr()),
///         Event::Closed => break,
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Swarm {
    engine: Engine,
    router: Arc<Router>,
    events: mpsc::UnboundedReceiver<Event>,
    next_request: AtomicU32,
    /// [`Event::Closed`] was handed out: nothing follows.
    done: bool,
}

impl Swarm {
    /// Starts a swarm on the current tokio runtime (a multi-thread or a
    /// current-thread one, with IO and time enabled).
    ///
    /// # Panics
    /// Outside a tokio runtime, as [`tokio::runtime::Handle::current`] does.
    pub fn new(config: SwarmConfig) -> Swarm {
        Self::with_runtime(config, &tokio::runtime::Handle::current())
    }

    /// Starts a swarm on the runtime `rt`, from any thread.
    ///
    /// One process-wide mDNS socket is shared by every swarm with
    /// `multicast` on; its task runs on the runtime of the first of them
    /// that is alive.
    pub fn with_runtime(config: SwarmConfig, rt: &tokio::runtime::Handle) -> Swarm {
        let (tx, events) = mpsc::unbounded_channel(); // bounded: Peer events stop at EVENT_QUEUE_BOUND waiting (Router::on_event); Connection events at the accept limits and the fd limit; the rest come one per caller action or per DHT round of a joined topic
        let router = Arc::new(Router {
            control: OnceLock::new(),
            utp: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            events: tx,
            peers_waiting: AtomicUsize::new(0),
        });
        let sink = router.clone();
        let engine = Engine::spawn_on(config, Box::new(move |ev| sink.on_event(ev)), rt.clone());
        // Before any command: the engine reports connections only after a
        // bind, which only the caller's calls below start.
        let _ = router.control.set(engine.control());
        Swarm { engine, router, events, next_request: AtomicU32::new(1), done: false }
    }

    /// Binds the UDP socket and the TCP listener now (a `join` does it
    /// otherwise) and returns their port: `SwarmConfig::port` if set,
    /// else the first free one from `preferred_port` on.
    pub fn bind(&self) -> Result<u16, SwarmError> {
        self.engine.bind(None)
    }

    /// Joins `topic`: announces and/or looks it up on the DHT and the LAN,
    /// now and at every refresh, until [`leave`](Self::leave). Joining a
    /// joined topic again updates its options and runs a round now.
    pub fn join(&self, topic: Topic, options: JoinOptions) -> Result<(), SwarmError> {
        self.engine.join(topic, options.announce, options.lookup)
    }

    /// Leaves `topic`: stops looking it up and unannounces it;
    /// [`Event::Left`] follows. Connections stay open.
    pub fn leave(&self, topic: Topic) -> Result<(), SwarmError> {
        self.engine.leave(topic)
    }

    /// Dials `peer` (one from [`Event::Peer`], or built by hand): TCP and,
    /// when the DHT can punch a hole through its referrer, uTP race; the
    /// first to connect wins. Each error has a stable
    /// [`code`](ConnectError::code), and the seed's words as its message.
    pub async fn connect(&self, peer: Peer) -> Result<Connection, ConnectError> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.router.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(request, tx);
        if self.engine.connect(request, peer).is_err() {
            self.router.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&request);
            return Err(ConnectError::Destroyed);
        }
        rx.await.unwrap_or(Err(ConnectError::Destroyed))
    }

    /// The next event; `None` after [`Event::Closed`].
    pub async fn next_event(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// [`next_event`](Self::next_event) as a poll function, for a `Stream`
    /// adapter or a hand-written future.
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.done {
            return Poll::Ready(None);
        }
        let ev = std::task::ready!(self.events.poll_recv(cx));
        match &ev {
            Some(Event::Peer(_)) => {
                self.router.peers_waiting.fetch_sub(1, Ordering::Relaxed);
            }
            Some(Event::Closed) | None => self.done = true,
            _ => {}
        }
        Poll::Ready(ev)
    }

    /// The port both sockets are bound to; `None` before the first bind
    /// and after destroy.
    pub fn port(&self) -> Option<u16> {
        self.engine.port()
    }

    /// Our NAT's class, from the addresses DHT nodes report seeing us at.
    pub fn nat_type(&self) -> NatType {
        self.engine.stats().nat_type
    }

    /// Our address as the DHT sees it, once enough nodes agree.
    pub fn remote_address(&self) -> Option<SocketAddrV4> {
        self.engine.stats().remote_address
    }

    /// Whether peers can punch a hole to us (the DHT reports one
    /// consistent address for us).
    pub fn holepunchable(&self) -> bool {
        self.engine.stats().holepunchable
    }

    /// The engine underneath, for this package's tests (e.g. to stop the
    /// TCP listener and so force uTP). Not part of the API.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Closes every socket and leaves every topic; [`Event::Closed`]
    /// follows. Dropping the swarm does the same.
    pub fn destroy(&self) {
        self.engine.destroy();
    }
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm").field("port", &self.port()).finish_non_exhaustive()
    }
}

impl NatType {
    /// Classifies the addresses DHT nodes saw our UDP socket at (most
    /// recent first, one per reporting /24; only the first 16 count),
    /// given the port we bound and our interfaces' IPv4 addresses.
    ///
    /// ```
    /// use hyperswarm_native::NatType;
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// let public = Ipv4Addr::new(203, 0, 113, 7);
    /// let seen = |port| SocketAddrV4::new(public, port);
    /// // Two nodes agreeing are not enough.
    /// assert_eq!(NatType::classify(&[seen(4000), seen(4000)], 49737, &[]), NatType::Unknown);
    /// // Three see one address and port: a hole punch works.
    /// assert_eq!(NatType::classify(&[seen(4000); 3], 49737, &[]), NatType::Consistent);
    /// // ... and when it is our own interface and port, there is no NAT.
    /// assert_eq!(NatType::classify(&[seen(49737); 3], 49737, &[public]), NatType::Open);
    /// // One IP, a port per node: a symmetric NAT.
    /// assert_eq!(NatType::classify(&[seen(1), seen(2), seen(3)], 49737, &[]), NatType::Random);
    /// ```
    pub fn classify(samples: &[SocketAddrV4], bound_port: u16, interface_ips: &[Ipv4Addr]) -> NatType {
        crate::dht::nat::classify(samples, Some(crate::dht::nat::Local { port: bound_port, ips: interface_ips }))
    }
}

type Pending = oneshot::Sender<Result<Connection, ConnectError>>;

/// The engine's event sink: routes uTP events to connections, dial
/// answers to their `connect` calls, and the rest to the owner.
struct Router {
    control: OnceLock<Control>,
    utp: Mutex<HashMap<u64, Arc<Mutex<UtpState>>>>,
    pending: Mutex<HashMap<u32, Pending>>,
    events: mpsc::UnboundedSender<Event>,
    /// Peer events queued and not taken (see [`Event::Peer`]).
    peers_waiting: AtomicUsize,
}

impl Router {
    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    fn state(&self, id: u64) -> Option<Arc<Mutex<UtpState>>> {
        self.utp.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    fn control(&self) -> &Control {
        self.control.get().expect("set before the first command")
    }

    /// A connection the engine handed over. Runs on the engine's task,
    /// inside the runtime, where a TCP socket can be registered.
    fn connection(&self, id: u64, stream: ConnStream, client: bool, peer: Option<Peer>) -> Result<Connection, ConnectError> {
        let control = self.control().clone();
        match stream {
            ConnStream::Tcp(std) => match tokio::net::TcpStream::from_std(std) {
                Ok(s) => Ok(Connection::tcp(id, client, peer, control, s)),
                Err(e) => {
                    control.connection_closed(id);
                    Err(ConnectError::Failed { reason: format!("cannot register the TCP connection: {e}"), errno: e.raw_os_error() })
                }
            },
            ConnStream::Utp { remote, .. } => {
                let state = Arc::new(Mutex::new(UtpState::default()));
                self.utp.lock().unwrap_or_else(|p| p.into_inner()).insert(id, state.clone());
                Ok(Connection::utp(id, client, peer, control, SocketAddr::V4(remote), state))
            }
        }
    }

    fn on_event(&self, ev: SwarmEvent) {
        match ev {
            SwarmEvent::Listening { port } => self.emit(Event::Listening { port }),
            // The crate's API never asks for dials ahead (set_speculation).
            SwarmEvent::Dialing { .. } => {}
            SwarmEvent::Peer(p) => {
                if self.peers_waiting.load(Ordering::Relaxed) >= EVENT_QUEUE_BOUND {
                    return;
                }
                self.peers_waiting.fetch_add(1, Ordering::Relaxed);
                self.emit(Event::Peer(p));
            }
            SwarmEvent::Connection { id, stream, client, peer } => match self.connection(id, stream, client, peer) {
                Ok(c) => self.emit(Event::Connection(c)),
                Err(e) => self.emit(Event::Warning(e.to_string())),
            },
            SwarmEvent::Connected { request, result, peer } => {
                let result = result.and_then(|(id, stream)| self.connection(id, stream, true, Some(peer)));
                let waiter = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&request);
                // A caller that stopped waiting drops the connection, which closes it.
                if let Some(w) = waiter {
                    let _ = w.send(result);
                }
            }
            SwarmEvent::Data { id, data } => {
                if let Some(s) = self.state(id) {
                    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                    st.on_data(data);
                    if st.regrant() {
                        self.control().utp_read(id);
                    }
                }
            }
            SwarmEvent::Written { id, write } => {
                if let Some(s) = self.state(id) {
                    if s.lock().unwrap_or_else(|p| p.into_inner()).on_written(write) {
                        self.control().utp_shutdown(id);
                    }
                }
            }
            SwarmEvent::End { id } => {
                if let Some(s) = self.state(id) {
                    s.lock().unwrap_or_else(|p| p.into_inner()).on_end();
                }
            }
            SwarmEvent::StreamClosed { id, error } => {
                let s = self.utp.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                if let Some(s) = s {
                    if s.lock().unwrap_or_else(|p| p.into_inner()).on_closed(error) {
                        self.control().connection_closed(id);
                    }
                }
            }
            SwarmEvent::Update { topic, error } => self.emit(Event::Updated { topic, error }),
            SwarmEvent::Left { topic } => self.emit(Event::Left { topic }),
            SwarmEvent::Warning(w) => self.emit(Event::Warning(w)),
            SwarmEvent::Error(e) | SwarmEvent::Failed(e) => self.emit(Event::Error(e)),
            SwarmEvent::Closed => {
                // The engine closed its uTP connections without a word each.
                let all: Vec<_> = self.utp.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
                for (_, s) in all {
                    s.lock().unwrap_or_else(|p| p.into_inner()).on_closed(Some("the swarm is destroyed".into()));
                }
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
                self.emit(Event::Closed);
            }
            // Only for the binding: caller punches, bootstrap pings, DHT
            // operations and round progress.
            SwarmEvent::Punch { .. }
            | SwarmEvent::Pinged { .. }
            | SwarmEvent::Dht(_)
            | SwarmEvent::Updating { .. }
            | SwarmEvent::Flushed { .. } => {}
        }
    }
}
