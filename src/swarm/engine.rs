//! The swarm driver: one tokio task per swarm owns its sockets and runs the
//! sans-IO cores on them: discovery, uTP, and the dialling core
//! ([`super::core`], which decides the dial queue and every connect race;
//! the driver only carries out its actions). Callers talk to it through a
//! command channel and hear from it through an event sink; nothing here
//! blocks the caller.

use std::collections::HashMap;
use std::future::pending;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::config::{SwarmConfig, DEFAULT_BOOTSTRAP};
use super::event::{ConnStream, SwarmEvent};
use super::error::{ConnectError, SwarmError};
use super::core::{Action, DialKind, RaceId, Refusal, SwarmCore, TcpError, Via};
use super::utp_link::{LinkEvent, UtpLink};
use super::birthday_io::{BirthdayIo, Decision, RaceNews};
use super::relay_io::{Output as RelayOutput, RelayIo};
use crate::discovery::{Host, Peer, Topic};

use super::peer_queue::CONNECT_TIMEOUT;
use crate::dht::{DhtConfig, DhtStats};
use crate::discovery::{Discovery, DiscoveryConfig, DiscoveryEvent, JoinSpec, Transmit};
use crate::io::{bind, mdns_hub, multicast::MulticastSocket, resolve, runtime, tcp_gate::TcpGate};
use crate::lan::LanStats;
use crate::utp::{looks_like_utp, UtpConfig};
/// Largest UDP datagram read. dht-rpc messages stay far below it (our
/// decoder caps them at 4 KiB) and uTP packets are under 1.5 KiB; longer
/// datagrams are truncated by the kernel and then dropped as malformed.
const UDP_BUF: usize = 8192;
/// Datagrams read per wake-up before the driver flushes.
const UDP_BATCH: usize = 64;
/// Longest wait between two refreshes of the counters callers can read.
const STATS_EVERY: Duration = Duration::from_millis(100);
/// First pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS, …). The
/// listener stays readable while the error lasts, so retrying at once
/// spins a core; the pause doubles per failure up to
/// [`ACCEPT_BACKOFF_MAX`] and ends at the first success.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Longest pause between two `accept` attempts while they fail: 1 s keeps
/// a starved process idle and still takes connections again within a
/// second once descriptors are free (pending ones wait in the backlog).
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

pub type EventSink = Box<dyn Fn(SwarmEvent) + Send + Sync>;
/// The sink, shared by the engine task and its supervisor.
type SharedSink = Arc<dyn Fn(SwarmEvent) + Send + Sync>;

/// Counters a caller can read at any time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwarmStats {
    pub lan: LanStats,
    pub dht: DhtStats,
    /// DHT nodes in the routing table.
    pub dht_nodes: usize,
    pub holepunchable: bool,
    pub remote_address: Option<std::net::SocketAddrV4>,
    /// Our NAT's class, from DHT reports of at least 3 /24s (`dht::nat`).
    pub nat_type: crate::dht::nat::NatType,
    /// uTP datagrams received, and those dropped as malformed, for no
    /// connection, or out of window.
    pub utp_received: u64,
    pub utp_malformed: u64,
    pub utp_unknown: u64,
    pub utp_invalid: u64,
    /// uTP SYNs refused (not accepting, over a limit), those refused by
    /// the per-IP caps, SYNs that opened half-open state, half-open
    /// connections evicted for newer ones, SYNs ignored on an established
    /// connection's key, and half-open connections held now.
    pub utp_syns_refused: u64,
    pub utp_refused_per_ip: u64,
    pub utp_half_opened: u64,
    pub utp_half_open_evicted: u64,
    pub utp_syn_collisions: u64,
    pub utp_half_open: u64,
    pub connections_accepted: u64,
    /// Incoming TCP connections closed at once for the per-IP cap.
    pub tcp_refused_per_ip: u64,
    /// Failed `accept` calls (each followed by a pause).
    pub accept_errors: u64,
    pub connections_dialled: u64,
    pub dials_failed: u64,
    /// Discovered peers the dial queue refused (their IP, /24 or referrer
    /// at its cap).
    pub dial_queue_refused: u64,
    /// Dials started ahead of the `./hyperswarm` entry's own
    /// ([`Swarm::set_speculation`]).
    pub dials_ahead: u64,
    pub multicast_sent: u64,
    /// Punches answered by a peer that runs our code (its answer carried
    /// a capability record).
    pub peers_ours_seen: u64,
    /// Birthday punching (`swarm::birthday`): sessions, their sockets and
    /// probes, and the connections they made.
    pub birthday: super::birthday_io::BirthdayIoStats,
    /// The relay of last resort (`swarm::relay_io`): sessions, lookups and
    /// the connections made through a relay.
    pub relay: super::relay_io::RelayIoStats,
}

#[derive(Default)]
struct Shared {
    stats: SwarmStats,
    port: Option<u16>,
    /// The process's mDNS socket, for announcements sent by the caller.
    mdns_socket: Option<Arc<MulticastSocket>>,
    /// Unsolicited answers of topics joined with
    /// [`Swarm::join_with_ports_deferred`], until [`Swarm::announce_now`]
    /// sends them (one per topic: a rejoin replaces it).
    announcements: HashMap<Topic, Vec<u8>>,
    /// Turns the TCP listener off and on from the caller's thread.
    tcp_gate: Option<Arc<TcpGate>>,
}

enum Command {
    /// Bootstrap nodes resolved (or not).
    Resolved(Result<Vec<std::net::SocketAddrV4>, String>),
    Bound { bound: Bound, mdns: Option<Result<mdns_hub::Member, String>> },
    Join {
        topic: Topic,
        announce: bool,
        lookup: bool,
        dht_port: u16,
        lan_port: Option<u16>,
        local_address: Option<std::net::SocketAddrV4>,
        lan_id: Option<crate::wire::mdns::InstanceId>,
        defer_round: bool,
    },
    /// The caller sent the deferred join's LAN answer: its DHT round may start.
    StartRound { topic: Topic },
    Leave { topic: Topic },
    Update { topic: Topic },
    Accepting(bool),
    Speculate(bool),
    /// The TCP listener was stopped or restarted through the gate: the
    /// accept loop waits, or reads again.
    TcpListening,
    PingBootstrap { request: u32 },
    Connect { request: u32, peer: Peer, caller_punch: bool },
    /// The caller's hole punch for request `request` ended.
    Punched { request: u32, ok: bool },
    Closed { conn: u64 },
    UtpWrite { conn: u64, write: u32, data: Vec<u8> },
    UtpRead { conn: u64 },
    UtpShutdown { conn: u64 },
    UtpClose { conn: u64 },
    /// An operation on the DHT node itself (the network entry's `discovery.dht`).
    Dht(crate::dht::ops::Command),
    /// Test hook: the engine task panics (see [`Swarm::inject_panic`]).
    Panic,
    Destroy,
}

/// A handle on a running swarm. Dropping it destroys the swarm.
pub struct Swarm {
    tx: mpsc::UnboundedSender<Command>,
    shared: Arc<Mutex<Shared>>,
    config: SwarmConfig,
    /// The runtime the engine task runs on; sockets are registered with it.
    rt: tokio::runtime::Handle,
}

/// A cloneable way to reach the engine from a connection's owner: the
/// per-connection calls of [`Swarm`], without the swarm itself (dropping
/// a `Control` does not destroy anything).
#[derive(Clone)]
pub struct Control {
    tx: mpsc::UnboundedSender<Command>,
}

impl Control {
    /// See [`Swarm::utp_write`].
    pub fn utp_write(&self, conn: u64, write: u32, data: Vec<u8>) {
        let _ = self.tx.send(Command::UtpWrite { conn, write, data });
    }

    /// See [`Swarm::utp_read`].
    pub fn utp_read(&self, conn: u64) {
        let _ = self.tx.send(Command::UtpRead { conn });
    }

    /// See [`Swarm::utp_shutdown`].
    pub fn utp_shutdown(&self, conn: u64) {
        let _ = self.tx.send(Command::UtpShutdown { conn });
    }

    /// See [`Swarm::utp_close`].
    pub fn utp_close(&self, conn: u64) {
        let _ = self.tx.send(Command::UtpClose { conn });
    }

    /// See [`Swarm::connection_closed`].
    pub fn connection_closed(&self, conn: u64) {
        let _ = self.tx.send(Command::Closed { conn });
    }
}

impl Swarm {
    /// Starts a swarm on the shared runtime. Sockets bind on the first `join`.
    ///
    /// A supervisor task watches the engine task: if it dies (a panic: a
    /// bug), its sockets are already closed by the unwind, and the owner
    /// hears [`SwarmEvent::Failed`] then [`SwarmEvent::Closed`], so that
    /// nothing waits for an engine that is gone.
    pub fn spawn(config: SwarmConfig, sink: EventSink) -> Swarm {
        Self::spawn_on(config, sink, runtime::handle())
    }

    /// [`Self::spawn`], on the runtime `rt` (a Rust user's own).
    pub fn spawn_on(config: SwarmConfig, sink: EventSink, rt: tokio::runtime::Handle) -> Swarm {
        let (tx, rx) = mpsc::unbounded_channel(); // bounded: only API calls and the engine's own bind/resolve results send here, never the network
        let shared = Arc::new(Mutex::new(Shared::default()));
        let sink: SharedSink = Arc::from(sink);
        let driver = Driver::new(config.clone(), sink.clone(), rx, tx.clone(), shared.clone());
        let task = rt.spawn(driver.run());
        let watched = shared.clone();
        rt.spawn(async move {
            let Err(e) = task.await else { return };
            let reason = if e.is_panic() { panic_message(e.into_panic()) } else { "engine task cancelled".to_string() };
            tracing::error!("swarm engine died: {reason}");
            // The panic may have poisoned the lock; the port is gone either way.
            watched.lock().unwrap_or_else(|p| p.into_inner()).port = None;
            sink(SwarmEvent::Failed(format!("swarm engine failed: {reason}")));
            sink(SwarmEvent::Closed);
        });
        Swarm { tx, shared, config, rt }
    }

    /// The per-connection calls, for the owner of the connections.
    pub fn control(&self) -> Control {
        Control { tx: self.tx.clone() }
    }

    /// Test hook: makes the engine task panic, to check that the failure
    /// reaches the owner. Only the binding's gated test method and Rust
    /// tests call it.
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        let _ = self.send(Command::Panic);
    }

    /// Binds on first use, on the caller's thread, so that `join` reports a
    /// bind failure at once and `port()` is known when it returns (the seed
    /// binds synchronously in `join` too).
    fn ensure_bound(&self) -> Result<u16, SwarmError> {
        self.bind(None)
    }

    /// Binds TCP and UDP now, starting at `preferred` (or the configured
    /// preferred port); returns the port. Later calls return the same port.
    pub fn bind(&self, preferred: Option<u16>) -> Result<u16, SwarmError> {
        let mut shared = self.shared.lock().map_err(|_| SwarmError::Destroyed)?;
        if let Some(port) = shared.port {
            return Ok(port);
        }
        if self.tx.is_closed() {
            return Err(SwarmError::Destroyed);
        }
        let _rt = self.rt.enter();
        let (udp, tcp) = bind::bind_first(self.config.port, preferred.unwrap_or(self.config.preferred_port))
            .map_err(SwarmError::Bind)?;
        let port = tcp.local_addr().map(|a| a.port()).map_err(SwarmError::Bind)?;
        let gate = Arc::new(TcpGate::new(tcp.as_raw_fd()));
        // Polled through AsyncFd, which shows a stale registration instead of
        // spinning on it (see `accept`).
        let tcp = tcp.into_std().and_then(register_listener).map_err(SwarmError::Bind)?;
        shared.tcp_gate = Some(gate.clone());
        let mdns = self.config.multicast.then(|| mdns_hub::join().map_err(|e| e.to_string()));
        shared.mdns_socket = mdns.as_ref().and_then(|m| m.as_ref().ok()).map(|m| m.socket().clone());
        self.send(Command::Bound { bound: Bound { udp, tcp: Some(tcp), port, gate, registered: 0 }, mdns })?;
        shared.port = Some(port);
        tracing::debug!(port, "swarm bound");
        Ok(port)
    }

    fn send(&self, cmd: Command) -> Result<(), SwarmError> {
        self.tx.send(cmd).map_err(|_| SwarmError::Destroyed)
    }

    pub fn join(&self, topic: Topic, announce: bool, lookup: bool) -> Result<(), SwarmError> {
        self.ensure_bound()?;
        self.send(Command::Join { topic, announce, lookup, dht_port: 0, lan_port: None, local_address: None, lan_id: None, defer_round: false })
    }

    /// [`Self::join`] with explicit ports: `dht_port` is announced on the
    /// DHT (0: our UDP source port), `lan_port` on mDNS (default: ours);
    /// `local_address` goes with DHT requests (`announceLocalAddress`).
    pub fn join_with_ports(
        &self,
        topic: Topic,
        announce: bool,
        lookup: bool,
        dht_port: u16,
        lan_port: Option<u16>,
        local_address: Option<std::net::SocketAddrV4>,
    ) -> Result<(), SwarmError> {
        self.ensure_bound()?;
        self.send(Command::Join { topic, announce, lookup, dht_port, lan_port, local_address, lan_id: None, defer_round: false })
    }

    /// [`Self::join_with_ports`], except that the LAN's unsolicited answer
    /// ("here I am") is not sent by the engine but by the caller, with
    /// [`Self::announce_now`], on its own thread. The reference sends it
    /// on the next tick after `announce`; sending it from the JS thread
    /// puts the swarms of one process on the wire in the order the
    /// application announced, as the reference's single event loop does.
    pub fn join_with_ports_deferred(
        &self,
        topic: Topic,
        announce: bool,
        lookup: bool,
        dht_port: u16,
        lan_port: Option<u16>,
        local_address: Option<std::net::SocketAddrV4>,
    ) -> Result<(), SwarmError> {
        let port = self.ensure_bound()?;
        let id = crate::wire::mdns::instance_id(rand::random());
        let payload = (announce && self.config.multicast)
            .then(|| crate::lan::announcement(&self.config.domain, &topic, lan_port.unwrap_or(port), &id))
            .flatten();
        // An announcer's DHT round waits for `announce_now`: the LAN answer
        // goes out first, as in the reference.
        self.send(Command::Join { topic, announce, lookup, dht_port, lan_port, local_address, lan_id: Some(id), defer_round: announce })?;
        let mut shared = self.shared.lock().map_err(|_| SwarmError::Destroyed)?;
        match payload {
            Some(p) => shared.announcements.insert(topic, p),
            None => shared.announcements.remove(&topic),
        };
        Ok(())
    }

    /// Multicasts the unsolicited answer of `topic` joined with
    /// [`Self::join_with_ports_deferred`], now, from the caller's thread
    /// (never blocks). Returns the copies sent (0: nothing waited, or the
    /// swarm has no mDNS socket).
    pub fn announce_now(&self, topic: &Topic) -> usize {
        let copies = self.send_announcement(topic);
        // Then the DHT round the deferred join held back.
        let _ = self.send(Command::StartRound { topic: *topic });
        copies
    }

    fn send_announcement(&self, topic: &Topic) -> usize {
        let Ok(mut shared) = self.shared.lock() else { return 0 };
        let (Some(payload), Some(socket)) = (shared.announcements.remove(topic), shared.mdns_socket.clone()) else { return 0 };
        if shared.port.is_none() {
            return 0;
        }
        drop(shared);
        let copies = socket.send_via(&payload, None);
        if let Ok(mut shared) = self.shared.lock() {
            shared.stats.multicast_sent += copies as u64;
        }
        copies
    }

    /// Runs a DHT round of `topic` now unless one is running; asks the LAN again.
    pub fn update(&self, topic: Topic) -> Result<(), SwarmError> {
        self.send(Command::Update { topic })
    }

    /// Whether new incoming connections are taken (`maxConnections`): when
    /// not, TCP connections are accepted and closed at once and uTP SYNs
    /// are refused.
    /// Runs an operation on the swarm's DHT node; its replies come as
    /// [`SwarmEvent::Dht`].
    pub fn dht_command(&self, command: crate::dht::ops::Command) -> Result<(), SwarmError> {
        self.send(Command::Dht(command))
    }

    pub fn set_accepting(&self, accepting: bool) {
        let _ = self.send(Command::Accepting(accepting));
    }

    /// Whether the caller would dial the next new peer it hears of at once
    /// (with automatic dials off): the engine then starts that dial itself
    /// and reports it as [`SwarmEvent::Dialing`], before the peer.
    pub fn set_speculation(&self, on: bool) {
        let _ = self.send(Command::Speculate(on));
    }

    /// Stops the TCP listener now, from the caller's thread (dialers are
    /// refused from the moment this returns: `close()` of the reference's
    /// server), or starts it again on the same port. Returns whether
    /// anything changed; before bind and after destroy nothing does.
    pub fn set_tcp_listening(&self, on: bool) -> Result<bool, SwarmError> {
        let gate = self.shared.lock().ok().and_then(|s| s.tcp_gate.clone());
        let Some(gate) = gate else { return Ok(false) };
        let changed = gate.set_listening(on).map_err(|error| SwarmError::Listen { start: on, error })?;
        if changed {
            let _ = self.send(Command::TcpListening);
        }
        Ok(changed)
    }

    /// Pings every bootstrap node; [`SwarmEvent::Pinged`] with `request` follows.
    pub fn ping_bootstrap(&self, request: u32) -> Result<(), SwarmError> {
        self.send(Command::PingBootstrap { request })
    }

    pub fn leave(&self, topic: Topic) -> Result<(), SwarmError> {
        if let Ok(mut shared) = self.shared.lock() {
            shared.announcements.remove(&topic);
        }
        self.send(Command::Leave { topic })
    }

    /// Dials `peer`; the answer comes as [`SwarmEvent::Connected`] with `request`.
    pub fn connect(&self, request: u32, peer: Peer) -> Result<(), SwarmError> {
        self.send(Command::Connect { request, peer, caller_punch: false })
    }

    /// [`Self::connect`], with the hole punch left to the caller: where the
    /// engine would punch through the peer's referrer it reports
    /// [`SwarmEvent::Punch`] instead, and dials uTP once the caller answers
    /// [`Self::punched`] with success. For an application that replaced the
    /// reference's `discovery.holepunch` seam.
    pub fn connect_with_caller_punch(&self, request: u32, peer: Peer) -> Result<(), SwarmError> {
        self.send(Command::Connect { request, peer, caller_punch: true })
    }

    /// The caller's punch asked for by [`SwarmEvent::Punch`] ended.
    pub fn punched(&self, request: u32, ok: bool) -> Result<(), SwarmError> {
        self.send(Command::Punched { request, ok })
    }

    /// The owner is done with connection `conn`; its peer may be dialled
    /// again, and an incoming one frees its place under the per-IP cap
    /// (so every connection handed out must be reported closed).
    pub fn connection_closed(&self, conn: u64) {
        let _ = self.send(Command::Closed { conn });
    }

    /// Queues `data` on uTP connection `conn`; [`SwarmEvent::Written`] follows.
    pub fn utp_write(&self, conn: u64, write: u32, data: Vec<u8>) {
        let _ = self.send(Command::UtpWrite { conn, write, data });
    }

    /// Grants the next batch of received data of uTP connection `conn`.
    pub fn utp_read(&self, conn: u64) {
        let _ = self.send(Command::UtpRead { conn });
    }

    /// Half-closes uTP connection `conn` (FIN after queued data).
    pub fn utp_shutdown(&self, conn: u64) {
        let _ = self.send(Command::UtpShutdown { conn });
    }

    /// Aborts uTP connection `conn`.
    pub fn utp_close(&self, conn: u64) {
        let _ = self.send(Command::UtpClose { conn });
    }

    /// Closes every socket; [`SwarmEvent::Closed`] follows.
    pub fn destroy(&self) {
        let _ = self.send(Command::Destroy);
    }

    pub fn port(&self) -> Option<u16> {
        self.shared.lock().map(|s| s.port).unwrap_or(None)
    }

    pub fn stats(&self) -> SwarmStats {
        self.shared.lock().map(|s| s.stats).unwrap_or_default()
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Destroy);
    }
}

struct Bound {
    udp: UdpSocket,
    /// None only while it is being registered again (see `relisten`).
    tcp: Option<AsyncFd<std::net::TcpListener>>,
    port: u16,
    gate: Arc<TcpGate>,
    /// The gate's restart count when `tcp` was registered with the reactor.
    registered: u64,
}

impl Bound {
    /// After the gate restarted listening: a fresh registration with the
    /// reactor. The stop left the old one marked read-closed, which tokio
    /// never clears, so its accept would spin on WouldBlock.
    fn relisten(&mut self) {
        let Some(tcp) = self.tcp.take() else { return };
        // Read first: a restart after this leaves the new registration
        // stale too, and its own command registers again.
        self.registered = self.gate.restarts();
        let slot = &mut self.tcp;
        // Under the gate's lock: if this fails the descriptor closes, and no
        // other thread may reach it in between.
        self.gate.hold(|| match register_listener(tcp.into_inner()) {
            Ok(fresh) => {
                *slot = Some(fresh);
                true
            }
            Err(e) => {
                tracing::warn!("TCP listener lost while listening again: {e}");
                false
            }
        });
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        // Before the listener's descriptor closes (fields drop after this).
        self.gate.close();
    }
}

struct DialDone {
    race: RaceId,
    result: Result<std::net::TcpStream, TcpError>,
}

struct Driver {
    sink: SharedSink,
    rx: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Mutex<Shared>>,
    bound: Option<Bound>,
    mdns: Option<mdns_hub::Member>,
    /// mDNS datagrams handled since the last flush: the hub hands each to
    /// the next swarm once the answers it caused have been sent.
    mdns_handled: Vec<tokio::sync::oneshot::Sender<()>>,
    discovery: Discovery,
    bootstrap: Option<Vec<String>>,
    /// Sends resolved bootstrap nodes back into the driver's own queue.
    tx: mpsc::UnboundedSender<Command>,
    /// The dial queue and the connect races: every dialling decision.
    core: SwarmCore<std::net::TcpStream>,
    dials: JoinSet<DialDone>,
    /// The TCP dials running, by race, to stop those the core gives up.
    tcp_tasks: HashMap<RaceId, tokio::task::AbortHandle>,
    utp: UtpLink,
    /// Birthday punches with peers of ours when one NAT is random.
    birthday: BirthdayIo,
    /// Relay sessions with peers of ours when both NATs are random.
    relay: RelayIo,
    /// Relayed connections a race won, until `run_actions` hands them out.
    side_streams: HashMap<u64, ConnStream>,
    /// The relay this swarm offers (`SwarmConfig::relay`): its port and
    /// caps until the sockets are bound, then the running server, its
    /// announces so far and the next one's time.
    relay_config: Option<(u16, crate::relay::RelayConfig)>,
    relay_server: Option<crate::io::relay::RelayServer>,
    relay_announces: u32,
    relay_announce_at: Option<Instant>,
    auto_dial: bool,
    pings: HashMap<u64, u32>,
    /// While `accept` fails: no new attempt before this instant.
    accept_resume: Option<Instant>,
    accept_backoff: Duration,
    next_stats: Instant,
    /// Our interfaces' IPv4 addresses when the socket was bound: a DHT
    /// report naming one of them (and our port) means no NAT.
    local_ips: Vec<std::net::Ipv4Addr>,
}

impl Driver {
    fn new(
        config: SwarmConfig,
        sink: SharedSink,
        rx: mpsc::UnboundedReceiver<Command>,
        tx: mpsc::UnboundedSender<Command>,
        shared: Arc<Mutex<Shared>>,
    ) -> Self {
        let ephemeral = config.ephemeral.unwrap_or(true);
        let dht = DhtConfig {
            id: config.id,
            ephemeral,
            // Undefined `ephemeral` means ephemeral *and* adaptive (spec/api-network.md §3.1).
            adaptive: config.ephemeral.is_none(),
            bootstrap: Vec::new(),
            seed: rand::random(),
        };
        let mut discovery = Discovery::new(
            Instant::now(),
            DiscoveryConfig {
                lan_domain: config.multicast.then(|| config.domain.clone()),
                dht: Some(dht),
                seed: rand::random(),
            },
        );
        if config.dht_limit_scale > 1 {
            if let Some(dht) = discovery.dht_mut() {
                dht.set_limits(crate::dht::Limits::scaled(config.dht_limit_scale));
            }
        }
        Driver {
            sink,
            rx,
            shared,
            bound: None,
            mdns: None,
            mdns_handled: Vec::new(),
            discovery,
            bootstrap: config.bootstrap.clone(),
            tx,
            core: SwarmCore::new(config.max_dials, config.dial_tcp).max_incoming_per_ip(config.max_incoming_per_ip),
            dials: JoinSet::new(),
            tcp_tasks: HashMap::new(),
            utp: UtpLink::new(
                UtpConfig {
                    max_incoming_per_ip: if config.max_incoming_per_ip == 0 { usize::MAX } else { config.max_incoming_per_ip },
                    ..UtpConfig::default()
                },
                rand::random(),
            ),
            birthday: BirthdayIo::new(rand::random(), UtpConfig::default()),
            relay: RelayIo::new(UtpConfig::default()),
            side_streams: HashMap::new(),
            relay_config: config.relay.clone(),
            relay_server: None,
            relay_announces: 0,
            relay_announce_at: None,
            auto_dial: config.auto_dial,
            pings: HashMap::new(),
            accept_resume: None,
            accept_backoff: ACCEPT_BACKOFF_MIN,
            next_stats: Instant::now(),
            local_ips: Vec::new(),
        }
    }

    fn stats(&self, f: impl FnOnce(&mut SwarmStats)) {
        if let Ok(mut s) = self.shared.lock() {
            f(&mut s.stats);
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; UDP_BUF];
        'run: loop {
            self.flush().await;
            for handled in self.mdns_handled.drain(..) {
                let _ = handled.send(());
            }
            let deadline = [self.discovery.poll_timeout(), self.core.poll_timeout(), self.utp.poll_timeout(), self.birthday.poll_timeout(), self.relay.poll_timeout(), self.relay_announce_at]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    None | Some(Command::Destroy) => break,
                    Some(cmd) => self.on_command(cmd),
                },
                accepted = accept(&self.bound, self.accept_resume) => match accepted {
                    Accepted::Stale => {
                        if let Some(b) = self.bound.as_mut() {
                            b.relisten();
                        }
                    }
                    Accepted::Conn(c) => self.on_accept(c),
                },
                got = recv_udp(&self.bound, &mut buf) => match got {
                    Ok((n, SocketAddr::V4(from))) => {
                        let now = Instant::now();
                        self.on_udp(now, from, &buf[..n]);
                        // Take what else is queued before the next flush:
                        // one flush per datagram capped uTP at ~10 MB/s.
                        for _ in 0..UDP_BATCH {
                            let Some(b) = &self.bound else { break };
                            match b.udp.try_recv_from(&mut buf) {
                                Ok((n, SocketAddr::V4(from))) => self.on_udp(now, from, &buf[..n]),
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    }
                    Ok(_) => {}
                    // ICMP errors surface here (ECONNREFUSED from a dead
                    // node); the socket itself is fine.
                    Err(e) => tracing::trace!("UDP receive error: {e}"),
                },
                Some(d) = recv_mdns(&mut self.mdns) => {
                    // Commands that came in before this datagram go first, as
                    // in the reference's one event loop: an answer to a topic
                    // joined just before it arrived is not dropped.
                    while let Ok(cmd) = self.rx.try_recv() {
                        match cmd {
                            Command::Destroy => break 'run,
                            cmd => self.on_command(cmd),
                        }
                    }
                    if let SocketAddr::V4(from) = d.from {
                        self.discovery.handle_mdns(Instant::now(), *from.ip(), &d.link, &d.bytes);
                    }
                    self.mdns_handled.push(d.done);
                }
                Some((sock, from, bytes)) = self.birthday.recv() => {
                    self.birthday.handle_extra(Instant::now(), sock, from, &bytes);
                }
                Some(done) = self.dials.join_next(), if !self.dials.is_empty() => {
                    if let Ok(done) = done {
                        self.on_dial(done);
                    }
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.discovery.handle_timeout(now);
                    self.utp.handle_timeout(now);
                    self.core.handle_timeout(now);
                    self.birthday.handle_timeout(now);
                    self.relay.handle_timeout(now);
                    self.announce_relay(now);
                }
            }
        }
        // Shutting down: reset uTP peers, abort dials, close sockets, then say so.
        let conns: Vec<u64> = (1..self.core.conn_ids_end()).filter(|c| self.utp.is_utp(*c)).collect();
        let now = Instant::now();
        for c in conns {
            self.utp.close(now, c);
        }
        self.send_utp();
        self.birthday.shut(now);
        self.relay.shut(now);
        self.send_relay();
        self.dials.shutdown().await;
        if let Some(r) = self.relay_server.take() {
            r.shutdown().await;
        }
        self.bound = None;
        self.mdns = None;
        if let Ok(mut s) = self.shared.lock() {
            s.port = None;
            s.mdns_socket = None;
            s.announcements.clear();
        }
        (self.sink)(SwarmEvent::Closed);
    }

    /// Sends what discovery queued, reports its peers, starts dials.
    async fn flush(&mut self) {
        let now = Instant::now();
        let mut link = Vec::new();
        self.utp.poll(now, &mut link);
        // A connection adopted here holds its dialler's first data, which
        // its first credit (utp_link::FIRST_CREDIT) lets out on one more poll.
        let adopted = link.iter().any(|ev| matches!(ev, LinkEvent::Incoming { .. }));
        for ev in link {
            self.on_link(now, ev);
        }
        if adopted {
            let mut more = Vec::new();
            self.utp.poll(now, &mut more);
            for ev in more {
                self.on_link(now, ev);
            }
        }
        self.send_utp();
        let mut discovered = false;
        while let Some(ev) = self.discovery.poll_event() {
            discovered = true;
            match ev {
                DiscoveryEvent::Peer(peer) => {
                    tracing::debug!(%peer, "peer found");
                    if self.auto_dial && peer.topic.is_some_and(|t| self.discovery.is_joined(&t)) {
                        self.core.peer_found(now, peer.clone());
                    } else if peer.topic.is_some_and(|t| self.discovery.looks_up(&t)) {
                        if let Some(request) = self.core.speculate(now, &peer) {
                            self.stats(|s| s.dials_ahead += 1);
                            (self.sink)(SwarmEvent::Dialing { request, peer: peer.clone() });
                        }
                    }
                    (self.sink)(SwarmEvent::Peer(peer));
                }
                DiscoveryEvent::Updating { topic } => (self.sink)(SwarmEvent::Updating { topic }),
                DiscoveryEvent::Flushed { topic } => (self.sink)(SwarmEvent::Flushed { topic }),
                DiscoveryEvent::Update { topic, error } => (self.sink)(SwarmEvent::Update { topic, error }),
                DiscoveryEvent::Left { topic } => (self.sink)(SwarmEvent::Left { topic }),
                DiscoveryEvent::Pinged { batch, pongs } => {
                    if let Some(request) = self.pings.remove(&batch) {
                        (self.sink)(SwarmEvent::Pinged { request, pongs });
                    }
                }
                DiscoveryEvent::Ready { error: Some(e) } => {
                    (self.sink)(SwarmEvent::Warning(format!("DHT bootstrap failed: {e}; LAN discovery goes on")))
                }
                DiscoveryEvent::Ready { error: None } => {}
                DiscoveryEvent::Punched { request, from, capability } => {
                    // The punched peer runs our code: its answer carried a
                    // record (`dht::capability`), which the DHT keeps by
                    // `from`, where the uTP leg dials.
                    if capability.is_some() {
                        self.stats(|s| s.peers_ours_seen += 1);
                    }
                    self.core.punch_result(now, request, from)
                }
                DiscoveryEvent::PunchedBy { origin, referrer, capability } => {
                    let ours = self.nat_type();
                    // Dialling that IP ourselves proves it (`birthday_io`).
                    let dialling = self.core.dialling_ip(*origin.ip());
                    // Both random: no punch gets through; a relay may.
                    self.relay.punched_by(now, ours, origin, referrer, &capability);
                    if let Decision::PunchBack(check) = self.birthday.punched_by(now, ours, origin, referrer, &capability, dialling) {
                        // The peer's own punch could not tell it our class
                        // (see `birthday_io`): ours, relayed, does, with a
                        // challenge or its echo when the check needs one.
                        let _ = self.discovery.holepunch_checked(now, origin, referrer, check);
                    }
                    self.birthday_news(now);
                }
                DiscoveryEvent::Dht(ev) => (self.sink)(SwarmEvent::Dht(ev)),
                DiscoveryEvent::SidePeers { query, peers } => {
                    self.relay.set_public_ip(self.discovery.remote_address().map(|a| *a.ip()));
                    self.relay.lookup_found(query, &peers)
                }
                DiscoveryEvent::SideDone { query, .. } => self.relay.lookup_done(now, query),
            }
        }
        if self.birthday.has_pending() {
            // A peer's punch waits for our NAT class (`birthday_io`).
            let ours = self.nat_type();
            if let Some((origin, referrer, check)) = self.birthday.nat_known(now, ours) {
                let _ = self.discovery.holepunch_checked(now, origin, referrer, check);
            }
            self.birthday_news(now);
        }
        self.pump_relay(now);
        self.run_actions(now);
        self.pump_birthday(now);
        // Last, so that what the events above started (punches, queries)
        // goes out in this same pass.
        self.send_discovery().await;
        self.send_utp();
        // Counters and the address tally are refreshed when discovery had
        // news, and at most every STATS_EVERY otherwise: not per uTP packet.
        if !discovered && now < self.next_stats {
            return;
        }
        self.next_stats = now + STATS_EVERY;
        let utp = self.utp.stats();
        self.stats(|s| {
            s.utp_received = utp.received;
            s.utp_malformed = utp.malformed;
            s.utp_unknown = utp.unknown_conn;
            s.utp_invalid = utp.invalid;
            s.utp_syns_refused = utp.syns_refused;
            s.utp_refused_per_ip = utp.refused_per_ip;
            s.utp_half_opened = utp.half_opened;
            s.utp_half_open_evicted = utp.half_open_evicted;
            s.utp_syn_collisions = utp.syn_collisions;
        });
        let (half_open, refused) = (self.utp.half_open() as u64, self.core.queue().refused());
        let birthday = self.birthday.stats();
        let relay = self.relay.stats();
        self.stats(|s| {
            s.birthday = birthday;
            s.relay = relay;
            s.utp_half_open = half_open;
            s.dial_queue_refused = refused;
        });
        let (lan, dht) = (self.discovery.lan_stats(), self.discovery.dht_stats());
        let dht_nodes = self.discovery.dht().map(|d| d.table().len()).unwrap_or(0);
        let (holepunchable, remote) = (self.discovery.holepunchable(), self.discovery.remote_address());
        let nat_type = self.nat_type();
        self.stats(|s| {
            s.nat_type = nat_type;
            s.lan = lan;
            s.dht = dht;
            s.dht_nodes = dht_nodes;
            s.holepunchable = holepunchable;
            s.remote_address = remote;
        });
    }

    /// One socket, two protocols (wire-utp.md §5): dht-rpc messages never
    /// pass the uTP header test.
    fn on_udp(&mut self, now: Instant, from: std::net::SocketAddrV4, bytes: &[u8]) {
        // A relay's datagrams start `ff 52`: neither uTP nor dht-rpc.
        if crate::relay::looks_like_relay(bytes) {
            self.relay.handle_datagram(now, from, bytes);
            return;
        }
        if self.birthday.handle_main(now, from, bytes) {
            return;
        }
        if looks_like_utp(bytes) {
            self.utp.handle_datagram(now, from, bytes);
        } else {
            self.discovery.handle_udp(now, from, bytes);
        }
    }

    async fn send_discovery(&mut self) {
        while let Some(t) = self.discovery.poll_transmit() {
            match t {
                Transmit::Multicast { payload, via } => {
                    if let Some(m) = &self.mdns {
                        let copies = m.socket().send_via(&payload, via) as u64;
                        tracing::trace!(port = self.bound.as_ref().map(|b| b.port), len = payload.len(), "mDNS sent");
                        self.stats(|s| s.multicast_sent += copies);
                    }
                }
                Transmit::Udp(to, bytes) => {
                    if let Some(b) = &self.bound {
                        // A full socket buffer drops the datagram, as UDP may.
                        if let Err(e) = crate::io::send_now(&b.udp, &bytes, SocketAddr::V4(to)) {
                            tracing::trace!(%to, "DHT send failed: {e}");
                        }
                    }
                }
                Transmit::UdpTtl { to, bytes, ttl } => {
                    if let Some(b) = &self.bound {
                        if let Err(e) = crate::io::send_with_ttl(&b.udp, &bytes, SocketAddr::V4(to), ttl) {
                            tracing::debug!(%to, ttl, "DHT send with a TTL failed: {e}");
                        }
                    }
                }
            }
        }
    }

    fn send_utp(&mut self) {
        while let Some((to, bytes)) = self.utp.poll_transmit() {
            if let Some(b) = &self.bound {
                if let Err(e) = crate::io::send_now(&b.udp, &bytes, SocketAddr::V4(to)) {
                    tracing::trace!(%to, "uTP send failed: {e}");
                }
            }
        }
    }

    /// Our NAT's class from the DHT's reports, our bound port and
    /// interface addresses telling an open host from a NATed one.
    fn nat_type(&self) -> crate::dht::nat::NatType {
        let local = self.bound.as_ref().map(|b| crate::dht::nat::Local { port: b.port, ips: &self.local_ips });
        self.discovery.nat_type(local)
    }

    /// Relay sessions: lookups, punches back with a nonce, the races that
    /// wait for them, their connections, and their datagrams.
    fn pump_relay(&mut self, now: Instant) {
        {
            let sink = &self.sink;
            self.relay.pump(now, &|ev| sink(ev));
        }
        while let Some(o) = self.relay.poll_output() {
            match o {
                RelayOutput::Lookup => {
                    let q = self.discovery.side_lookup(now, crate::relay::rendezvous::relay_topic());
                    self.relay.lookup_started(q);
                }
                RelayOutput::PunchBack { origin, referrer, check } => {
                    let _ = self.discovery.holepunch_checked(now, origin, referrer, Some(check));
                }
                RelayOutput::Started { ip, until } => {
                    self.core.side_started(ip, until);
                }
                RelayOutput::Failed { ip, error, quiet } => {
                    self.core.side_failed(now, ip, super::error::ConnectError::Failed { reason: error.clone(), errno: None });
                    if !quiet {
                        (self.sink)(SwarmEvent::Warning(format!("cannot reach the peer at {ip}: {error}")));
                    }
                }
                RelayOutput::Connected { token, ip } => match self.core.side_won(now, ip) {
                    // A dial of that peer waited for it: the connection is its.
                    Some(conn) => {
                        if let Some(stream) = self.relay.adopt(now, &token, conn) {
                            self.side_streams.insert(conn, stream);
                        }
                    }
                    None => {
                        let id = self.core.conn_id();
                        if let Some(stream) = self.relay.adopt(now, &token, id) {
                            self.stats(|s| s.connections_accepted += 1);
                            (self.sink)(SwarmEvent::Connection { id, stream, client: false, peer: None });
                        }
                    }
                },
            }
        }
        self.send_relay();
    }

    /// Our own relay's announce on the relay topic, when due.
    fn announce_relay(&mut self, now: Instant) {
        let Some(at) = self.relay_announce_at else { return };
        if now < at {
            return;
        }
        let Some(port) = self.relay_server.as_ref().map(|r| r.local_addr().port()) else { return };
        let _ = self.discovery.side_announce(now, crate::relay::rendezvous::relay_topic(), port);
        self.relay_announces = self.relay_announces.saturating_add(1);
        self.relay_announce_at = Some(now + crate::relay::rendezvous::announce_delay(self.relay_announces));
    }

    fn send_relay(&mut self) {
        while let Some((to, bytes)) = self.relay.poll_transmit() {
            if let Some(b) = &self.bound {
                if let Err(e) = crate::io::send_now(&b.udp, &bytes, SocketAddr::V4(to)) {
                    tracing::trace!(%to, "relay send failed: {e}");
                }
            }
        }
    }

    /// Birthday punching's sockets, sends and winning connections. A
    /// winning socket's connection answers a dial of its peer if one runs.
    fn pump_birthday(&mut self, now: Instant) {
        let core = &mut self.core;
        let sink = &self.sink;
        let mut raced = Vec::new();
        let mut connected = Vec::new();
        let mut claim = |ip| {
            connected.push(ip);
            match core.side_won(now, ip) {
                Some(conn) => (conn, true),
                None => (core.conn_id(), false),
            }
        };
        self.birthday.pump(now, self.bound.as_ref().map(|b| &b.udp), &mut claim, &mut raced, &|ev| sink(ev));
        let any = !raced.is_empty();
        self.side_streams.extend(raced);
        for ip in connected {
            self.relay.connected_to(now, ip);
        }
        self.birthday_news(now);
        if any {
            self.run_actions(now);
        }
    }

    /// Dials of a birthday session's peer wait for it, and fail with its
    /// reason when it ends without a connection.
    fn birthday_news(&mut self, now: Instant) {
        while let Some(news) = self.birthday.poll_race_news() {
            match news {
                // The relay fallback waits for the punch, and follows a
                // punch that found no path at once.
                RaceNews::Started(ip, until) => {
                    self.core.side_started(ip, until);
                    self.relay.defer(ip, until);
                }
                RaceNews::Failed(ip, reason) => {
                    self.core.side_failed(now, ip, super::error::ConnectError::Failed { reason, errno: None });
                    self.relay.expedite(now, ip);
                }
            }
        }
    }

    fn on_link(&mut self, now: Instant, ev: LinkEvent) {
        match ev {
            // The random side of a birthday punch connecting to us: a dial
            // of that peer waiting for the punch takes it.
            LinkEvent::Incoming { utp, from } if self.birthday.claims(now, *from.ip()) && self.core.dialling_ip(*from.ip()) => {
                let Some(id) = self.core.side_won(now, *from.ip()) else { return };
                self.relay.connected_to(now, *from.ip());
                self.birthday.connected_to(now, *from.ip(), id);
                self.utp.adopt(id, utp);
                self.side_streams.insert(id, ConnStream::Utp { remote: from, peer_nat: Some(crate::dht::nat::NatType::Random), relay: None });
            }
            LinkEvent::Incoming { utp, from } => {
                // A peer of ours that punched us got through: no fallback.
                self.relay.connected_to(now, *from.ip());
                let id = self.core.conn_id();
                self.birthday.connected_to(now, *from.ip(), id);
                self.utp.adopt(id, utp);
                self.stats(|s| s.connections_accepted += 1);
                // No peer_nat here, though the punch may have told us (the
                // DHT's `peer_capability`): the seed's details for an
                // accepted connection are exactly `{ type, client, peer }`,
                // and conformance tests compare them whole.
                (self.sink)(SwarmEvent::Connection { id, stream: ConnStream::Utp { remote: from, peer_nat: None, relay: None }, client: false, peer: None });
            }
            // An attempt no race waits for is abandoned by the core.
            LinkEvent::Connected { utp } => match self.utp.peer_addr(utp) {
                Some(_) => self.core.utp_connected(now, utp),
                None => self.core.utp_failed(now, utp, "uTP connection without an address".into()),
            },
            LinkEvent::Failed { utp, error } => self.core.utp_failed(now, utp, error),
            LinkEvent::Data { conn, data } => (self.sink)(SwarmEvent::Data { id: conn, data }),
            LinkEvent::Written { conn, write } => (self.sink)(SwarmEvent::Written { id: conn, write }),
            LinkEvent::End { conn } => (self.sink)(SwarmEvent::End { id: conn }),
            LinkEvent::Closed { conn, error } => (self.sink)(SwarmEvent::StreamClosed { id: conn, error }),
        }
    }

    /// Carries out what the core decided: dials, punches, uTP attempts,
    /// and the answers of races.
    fn run_actions(&mut self, now: Instant) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::StartTcp { race, peer } => {
                    tracing::debug!(%peer, "TCP dial started");
                    let handle = self.dials.spawn(async move { DialDone { race, result: dial_tcp(&peer).await } });
                    self.tcp_tasks.insert(race, handle);
                }
                Action::AbortTcp { race } => {
                    if let Some(t) = self.tcp_tasks.remove(&race) {
                        t.abort();
                    }
                }
                Action::Punch { race, target, referrer } => {
                    let request = self.discovery.holepunch(now, target, referrer);
                    self.core.punch_started(now, race, request);
                }
                Action::PunchUnanswered { target, referrer } => {
                    let _ = self.discovery.holepunch(now, target, referrer);
                }
                Action::AskCallerToPunch { request, .. } => (self.sink)(SwarmEvent::Punch { request }),
                Action::UtpConnect { race, addr } => {
                    let utp = self.utp.connect(now, addr);
                    self.core.utp_started(race, utp);
                }
                Action::AbandonUtp { utp } => self.utp.abandon(now, utp),
                Action::Won { kind, peer, conn, via, .. } => {
                    if let Some(addr) = peer.addr_v4() {
                        self.birthday.connected_to(now, *addr.ip(), conn);
                        self.relay.connected_to(now, *addr.ip());
                    }
                    let stream = match via {
                        Via::Tcp(stream) => ConnStream::Tcp(stream),
                        Via::Side => match self.side_streams.remove(&conn) {
                            Some(stream) => stream,
                            None => continue,
                        },
                        Via::Utp(utp) => {
                            // Checked before the core heard of the connection.
                            let remote = self.utp.peer_addr(utp).unwrap_or(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));
                            self.utp.adopt(conn, utp);
                            // The record the punched peer's answer carried,
                            // kept by the address that answered, which is
                            // where the core dials after a punch.
                            let peer_nat = self.discovery.dht().and_then(|d| d.peer_capability(now, remote)).map(|c| c.nat);
                            ConnStream::Utp { remote, peer_nat, relay: None }
                        }
                    };
                    self.stats(|s| s.connections_dialled += 1);
                    tracing::debug!(%peer, "dial won");
                    match kind {
                        DialKind::Auto => (self.sink)(SwarmEvent::Connection { id: conn, stream, client: true, peer: Some(peer) }),
                        DialKind::Request(request) => (self.sink)(SwarmEvent::Connected { request, result: Ok((conn, stream)), peer }),
                    }
                }
                Action::Failed { kind, peer, error, .. } => {
                    self.stats(|s| s.dials_failed += 1);
                    match kind {
                        DialKind::Auto => tracing::debug!(%peer, "dial failed: {error}"),
                        DialKind::Request(request) => (self.sink)(SwarmEvent::Connected { request, result: Err(error), peer }),
                    }
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Resolved(Ok(nodes)) => {
                if nodes.is_empty() {
                    (self.sink)(SwarmEvent::Warning("no DHT bootstrap nodes: DHT discovery is off, LAN discovery goes on".into()));
                }
                self.discovery.bootstrap(now, nodes);
            }
            Command::Resolved(Err(e)) => {
                (self.sink)(SwarmEvent::Warning(format!("cannot resolve DHT bootstrap nodes: {e}; LAN discovery goes on")));
                self.discovery.bootstrap_failed(now);
            }
            Command::Bound { bound, mdns } => {
                let port = bound.port;
                self.start_bootstrap();
                self.bound = Some(bound);
                self.core.set_udp(true);
                self.local_ips = crate::io::multicast::ipv4_interfaces();
                // Our punches tell a peer of ours our NAT class and where to
                // reach us; JS peers never look (`dht::capability`).
                if let Some((relay_port, config)) = self.relay_config.take() {
                    let addr = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, relay_port);
                    match crate::io::relay::RelayServer::spawn(addr, config) {
                        Ok(r) => {
                            tracing::debug!(addr = %r.local_addr(), "relay of last resort offered");
                            self.relay_announce_at = Some(now + crate::relay::rendezvous::announce_delay(0));
                            self.relay.set_own_relay_port(Some(r.local_addr().port()));
                            self.relay_server = Some(r);
                        }
                        Err(e) => (self.sink)(SwarmEvent::Warning(format!("cannot offer a relay: cannot bind UDP port {relay_port}: {e}"))),
                    }
                }
                if let Some(d) = self.discovery.dht_mut() {
                    d.advertise_capability(port, self.local_ips.clone());
                    // Our punches open our NAT with a packet that dies
                    // before the peer's router (`dht::node::OPENING_TTL`).
                    d.set_opening_ttl(Some(crate::dht::node::OPENING_TTL));
                }
                match mdns {
                    Some(Ok(m)) => self.mdns = Some(m),
                    Some(Err(e)) => {
                        (self.sink)(SwarmEvent::Warning(format!("LAN discovery is off: cannot open mDNS socket: {e}")))
                    }
                    None => {}
                }
                (self.sink)(SwarmEvent::Listening { port });
            }
            Command::Join { topic, announce, lookup, dht_port, lan_port, local_address, lan_id, defer_round } => {
                tracing::debug!(announce, lookup, "join asked");
                let lan_port = lan_port.or(self.bound.as_ref().map(|b| b.port)).unwrap_or(0);
                // The seed looks up whenever it does not announce.
                let lookup = lookup || !announce;
                self.discovery.join_with(now, topic, JoinSpec { announce, lookup, lan_port, dht_port, local_address, lan_id, defer_round });
            }
            Command::StartRound { topic } => self.discovery.start_deferred_round(now, &topic),
            Command::Leave { topic } => self.discovery.leave(now, &topic),
            Command::Update { topic } => self.discovery.update(now, &topic),
            Command::Speculate(on) => self.core.set_speculation(on),
            Command::Accepting(accepting) => {
                self.core.set_accepting(accepting);
                self.utp.set_accepting(accepting);
            }
            // `accept` reads the gate; listening again needs a fresh registration.
            Command::TcpListening => {
                if let Some(b) = self.bound.as_mut().filter(|b| !b.gate.stopped()) {
                    b.relisten();
                }
            }
            Command::PingBootstrap { request } => {
                let batch = self.discovery.ping_bootstrap(now);
                self.pings.insert(batch, request);
            }
            Command::Connect { request, peer, caller_punch } => {
                tracing::debug!(%peer, "connect asked");
                self.core.dial(now, DialKind::Request(request), peer, caller_punch);
            }
            Command::Punched { request, ok } => self.core.caller_punched(now, request, ok),
            Command::Closed { conn } => {
                self.birthday.closed(conn);
                self.core.connection_closed(conn);
            }
            Command::UtpWrite { conn, write, data } => {
                let mut out = Vec::new();
                if self.birthday.owns(conn) {
                    self.birthday.write(now, conn, write, data, &mut out);
                } else if self.relay.owns(conn) {
                    self.relay.write(now, conn, write, data, &mut out);
                } else {
                    self.utp.write(now, conn, write, data, &mut out);
                }
                for ev in out {
                    self.on_link(now, ev);
                }
            }
            // A connection over a birthday socket lives on its own endpoint.
            Command::UtpRead { conn } if self.birthday.owns(conn) => self.birthday.grant(conn),
            Command::UtpShutdown { conn } if self.birthday.owns(conn) => self.birthday.shutdown(now, conn),
            Command::UtpClose { conn } if self.birthday.owns(conn) => self.birthday.close(now, conn),
            // A relayed connection lives on its session's endpoint.
            Command::UtpRead { conn } if self.relay.owns(conn) => self.relay.grant(conn),
            Command::UtpShutdown { conn } if self.relay.owns(conn) => self.relay.shutdown(now, conn),
            Command::UtpClose { conn } if self.relay.owns(conn) => self.relay.close(now, conn),
            Command::UtpRead { conn } => self.utp.grant(conn),
            Command::UtpShutdown { conn } => self.utp.shutdown(now, conn),
            Command::UtpClose { conn } => self.utp.close(now, conn),
            Command::Dht(cmd) => {
                if let Some(ev) = self.discovery.dht_command(now, cmd) {
                    (self.sink)(SwarmEvent::Dht(ev));
                }
            }
            Command::Panic => panic!("injected test panic in the swarm engine"),
            Command::Destroy => {}
        }
    }

    /// Resolves the bootstrap list off the driver task; the answer comes
    /// back as [`Command::Resolved`].
    fn start_bootstrap(&mut self) {
        let list = self.bootstrap.clone().unwrap_or_else(|| DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect());
        // IP literals need no resolver: start at once, so that the first
        // join's DHT round goes straight to the bootstrap nodes.
        let literals: Option<Vec<std::net::SocketAddrV4>> = list
            .iter()
            .map(|e| match e.parse::<SocketAddr>() {
                Ok(SocketAddr::V4(a)) => Some(a),
                _ => None,
            })
            .collect();
        if let Some(nodes) = literals {
            self.on_command(Command::Resolved(Ok(nodes)));
            return;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Command::Resolved(resolve::bootstrap(&list).await));
        });
    }

    fn on_accept(&mut self, accepted: std::io::Result<(std::net::TcpStream, SocketAddr)>) {
        let (stream, from) = match accepted {
            Ok(a) => {
                self.accept_resume = None;
                self.accept_backoff = ACCEPT_BACKOFF_MIN;
                a
            }
            // The gate stopped the listener under a pending accept.
            Err(_) if self.bound.as_ref().is_some_and(|b| b.gate.stopped()) => return,
            Err(e) => {
                // EMFILE and friends: pause instead of spinning on a
                // listener that stays readable.
                tracing::debug!("accept failed: {e}; pausing {:?}", self.accept_backoff);
                self.accept_resume = Some(Instant::now() + self.accept_backoff);
                self.accept_backoff = (self.accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                self.stats(|s| s.accept_errors += 1);
                return;
            }
        };
        // Over a limit: taken and closed at once, as a Node server with
        // `maxConnections` does.
        let id = match self.core.tcp_incoming(from.ip()) {
            Ok(id) => id,
            Err(Refusal::NotAccepting) => return drop(stream),
            Err(Refusal::PerIp) => {
                tracing::debug!(ip = %from.ip(), "incoming TCP over the per-IP cap: closed");
                self.stats(|s| s.tcp_refused_per_ip += 1);
                return drop(stream);
            }
        };
        match stream.set_nodelay(true).and_then(|()| stream.set_nonblocking(true)).map(|()| stream) {
            Ok(stream) => {
                self.stats(|s| s.connections_accepted += 1);
                tracing::debug!(%from, "TCP accepted");
                if let std::net::IpAddr::V4(ip) = crate::discovery::peer::unmap(from.ip()) {
                    let now = Instant::now();
                    self.relay.connected_to(now, ip);
                    if let Some(dht) = self.discovery.dht_mut() {
                        dht.tcp_accepted(now, ip);
                    }
                }
                (self.sink)(SwarmEvent::Connection { id, stream: ConnStream::Tcp(stream), client: false, peer: None });
            }
            Err(e) => {
                tracing::debug!("accepted socket unusable: {e}");
                self.core.connection_closed(id);
            }
        }
    }

    fn on_dial(&mut self, done: DialDone) {
        self.tcp_tasks.remove(&done.race);
        // A race already decided drops a late TCP stream in the core.
        self.core.tcp_result(Instant::now(), done.race, done.result);
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_else(|| "panic".into()),
    }
}

fn into_std((stream, _): (TcpStream, SocketAddr)) -> std::io::Result<std::net::TcpStream> {
    stream.set_nodelay(true)?;
    stream.into_std()
}

async fn dial_tcp(peer: &Peer) -> Result<std::net::TcpStream, TcpError> {
    let connect = async {
        // A host name here came from the user's own `connect` (discovery
        // reports addresses only); it resolves on the bounded resolver pool.
        let stream = match &peer.host {
            Host::Ip(ip) => TcpStream::connect((*ip, peer.port)).await,
            Host::Name(name) => {
                let addrs = resolve::shared()
                    .lookup(&format!("{name}:{}", peer.port))
                    .await
                    .map_err(|e| std::io::Error::other(format!("cannot resolve {name}: {e}")))?;
                TcpStream::connect(addrs.as_slice().iter().map(|a| SocketAddr::V4(*a)).collect::<Vec<_>>().as_slice()).await
            }
        }?;
        let addr = stream.peer_addr()?;
        into_std((stream, addr))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(TcpError { error: ConnectError::io(&e), refused: e.kind() == std::io::ErrorKind::ConnectionRefused }),
        Err(_) => Err(TcpError { error: ConnectError::TimedOut, refused: false }),
    }
}

/// The TCP listener, registered with the reactor.
fn register_listener(l: std::net::TcpListener) -> std::io::Result<AsyncFd<std::net::TcpListener>> {
    // SAFETY: the AsyncFd owns `l`, so the descriptor stays open (and its
    // number is not reused) for as long as it is registered.
    unsafe { AsyncFd::register(l) }.map_err(std::io::Error::from)
}

/// What the listener gave.
enum Accepted {
    Conn(std::io::Result<(std::net::TcpStream, SocketAddr)>),
    /// The reactor registration was made before a stop and restart (the
    /// stop's read-closed mark never clears): register again.
    Stale,
}

async fn accept(bound: &Option<Bound>, resume: Option<Instant>) -> Accepted {
    if let Some(at) = resume {
        tokio::time::sleep_until(at.into()).await;
    }
    match bound {
        // Not while stopped, nor through a registration from before the
        // latest restart (the command that re-registers is on its way).
        Some(Bound { tcp: Some(tcp), gate, registered, .. }) if !gate.stopped() && gate.restarts() == *registered => loop {
            let mut guard = match tcp.readable().await {
                Ok(g) => g,
                Err(e) => return Accepted::Conn(Err(e)),
            };
            // A stop and restart between this future's creation and its
            // poll leave the registration read-closed for good; tokio's own
            // accept would spin on it (WouldBlock, ready again, forever).
            if guard.ready().is_read_closed() {
                if gate.stopped() {
                    // Stopped now: the restart's command will come.
                    drop(guard);
                    return pending().await;
                }
                return Accepted::Stale;
            }
            match guard.try_io(|l| l.get_ref().accept()) {
                Ok(r) => return Accepted::Conn(r),
                Err(_would_block) => continue,
            }
        },
        _ => pending().await,
    }
}

async fn recv_udp(bound: &Option<Bound>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match bound {
        Some(b) => b.udp.recv_from(buf).await,
        None => pending().await,
    }
}

async fn recv_mdns(mdns: &mut Option<mdns_hub::Member>) -> Option<mdns_hub::Datagram> {
    match mdns {
        Some(m) => m.recv().await,
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => pending().await,
    }
}
