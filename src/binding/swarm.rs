//! `NativeSwarm`: one engine swarm, its events delivered to a JS callback
//! through a thread-safe function.

#[cfg(unix)]
use std::os::fd::IntoRawFd;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::dht::{DhtCommandArgs, DhtContact, DhtNativeEvent};
use super::code::{coded, Code};
use super::guard::guarded;
use crate::swarm::{ConnStream, EventGate, Host, Peer, Referrer, Swarm, SwarmConfig, SwarmError, SwarmEvent};

#[napi(object)]
pub struct NativeOptions {
    pub multicast: Option<bool>,
    pub domain: Option<String>,
    pub port: Option<u32>,
    pub preferred_port: Option<u32>,
    pub bootstrap: Option<Vec<String>>,
    pub ephemeral: Option<bool>,
    pub tcp: Option<bool>,
    /// `false`: report discovered peers, dial none (network 2.x).
    pub auto_dial: Option<bool>,
    /// The DHT node id, 32 bytes.
    pub id: Option<Buffer>,
    /// Incoming connections per IP and transport at most (0: no cap).
    pub max_incoming_per_ip: Option<u32>,
    /// Multiplies the DHT's per-source limits (testnets; default 1).
    pub dht_limit_scale: Option<u32>,
    /// Offer a relay of last resort (a public peer); absent: none.
    pub relay: Option<NativeRelayOptions>,
}

/// The swarm's own relay: its UDP port (0 or absent: any) and caps (absent:
/// `RelayConfig`'s defaults).
#[napi(object)]
pub struct NativeRelayOptions {
    pub port: Option<u32>,
    pub max_pairs: Option<u32>,
    pub rate: Option<u32>,
}

#[napi(object)]
pub struct NativeReferrer {
    pub host: String,
    pub port: u32,
    pub id: Option<Buffer>,
}

#[napi(object)]
pub struct NativePeer {
    pub host: String,
    pub port: u32,
    pub local: bool,
    pub referrer: Option<NativeReferrer>,
    pub topic: Option<Buffer>,
    /// Our address as the answering DHT node saw it, `host:port`.
    pub to: Option<String>,
}

/// A bootstrap node's answer to `pingBootstrap`.
#[napi(object)]
pub struct NativePong {
    pub host: String,
    pub port: u32,
    pub rtt: f64,
    /// Our address as the bootstrap node saw it, `host:port`.
    pub to: Option<String>,
}

/// One event for lib/engine.js: a tagged union on `kind` (the variant's
/// name in kebab-case), each variant carrying only its own fields, so the
/// typings tell JS exactly what each kind holds.
#[napi(discriminant = "kind", discriminant_case = "kebab-case")]
pub enum NativeEvent {
    Listening {
        port: u32,
    },
    /// Dial `request` wants the caller to punch its hole.
    Punch {
        request: u32,
    },
    Peer {
        peer: NativePeer,
    },
    /// The engine started dialling `peer` ahead of the caller
    /// (`setSpeculation`); comes just before its `peer`, and ends as
    /// `connected` or `connect-failed` for `request`.
    Dialing {
        request: u32,
        peer: NativePeer,
    },
    /// An incoming connection, or one the swarm dialled itself (`peer`:
    /// whom it dialled; none for incoming).
    Connection {
        id: f64,
        client: bool,
        peer: Option<NativePeer>,
        stream: NativeStream,
    },
    /// The answer to `connect(request, …)` when it worked.
    Connected {
        id: f64,
        request: u32,
        peer: NativePeer,
        stream: NativeStream,
    },
    /// The answer to `connect(request, …)` when it failed (`code`:
    /// `ETIMEDOUT`, `EHOLEPUNCH`, `ENOPATH`, `ECONNFAILED`, …). A kind of
    /// its own: a napi tag names one shape, and failure has another.
    ConnectFailed {
        request: u32,
        message: String,
        code: String,
    },
    Updating {
        topic: Buffer,
    },
    Flushed {
        topic: Buffer,
    },
    /// A DHT round of `topic` ended (`message`: why it failed).
    Update {
        topic: Buffer,
        message: Option<String>,
    },
    Left {
        topic: Buffer,
    },
    Pinged {
        request: u32,
        pongs: Vec<NativePong>,
    },
    /// Bytes of uTP connection `id`.
    Data {
        id: f64,
        data: Buffer,
    },
    /// uTP write `request` of connection `id` is buffered.
    Written {
        id: f64,
        request: u32,
    },
    End {
        id: f64,
    },
    /// uTP connection `id` is gone (`message`: the error that ended it).
    Closed {
        id: f64,
        message: Option<String>,
    },
    Warning {
        message: String,
    },
    Error {
        message: String,
    },
    /// The engine died; `close` follows.
    Fatal {
        message: String,
    },
    Close,
    /// An event of `discovery.dht`'s operations.
    Dht {
        dht: DhtNativeEvent,
    },
}

/// How a connection's bytes move, tagged by `transport`.
#[napi(discriminant = "transport", discriminant_case = "lowercase")]
pub enum NativeStream {
    /// A connected TCP socket's descriptor; Node owns it from here.
    /// `remote_host`: the peer's address as the engine reads it (plain
    /// IPv4 where the dual-stack socket says `::ffff:a.b.c.d`).
    Tcp { fd: i32, remote_host: Option<String> },
    /// A uTP connection the engine keeps (data comes as `data` events);
    /// `peer_nat_type`: the peer's NAT class (`open`, `consistent`,
    /// `random`, `unknown`), when a punch told us it runs our code;
    /// `relay`: `host:port` of the relay it runs through, for a relayed
    /// connection (`details.type` is then `'relay'`).
    Utp {
        remote_host: String,
        remote_port: u32,
        peer_nat_type: Option<String>,
        relay: Option<String>,
    },
}

#[napi(object)]
pub struct NativeStats {
    pub mdns_received: f64,
    pub mdns_malformed: f64,
    pub mdns_own_answers: f64,
    pub mdns_queries_answered: f64,
    pub multicast_sent: f64,
    pub dht_nodes: u32,
    /// Our NAT's class, as `natType()` returns it.
    pub nat_type: String,
    pub dht_received: f64,
    pub dht_malformed: f64,
    pub dht_bad_token: f64,
    pub dht_unmatched_responses: f64,
    pub dht_timeouts: f64,
    pub dht_rate_limited: f64,
    pub dht_amplification_dropped: f64,
    pub dht_relays_refused: f64,
    pub dht_id_conflicts: f64,
    pub dht_subnet_refused: f64,
    pub dht_addresses_dropped: f64,
    pub dht_queries_capped: f64,
    /// Store UPDATEs stored, answered with an error, dropped unanswered,
    /// and values evicted to stay within the store's bounds.
    pub dht_values_stored: f64,
    pub dht_values_rejected: f64,
    pub dht_values_dropped: f64,
    pub dht_values_evicted: f64,
    pub utp_received: f64,
    pub utp_malformed: f64,
    pub utp_unknown: f64,
    pub utp_invalid: f64,
    pub utp_syns_refused: f64,
    pub utp_refused_per_ip: f64,
    pub utp_half_opened: f64,
    pub utp_half_open_evicted: f64,
    pub utp_syn_collisions: f64,
    pub utp_half_open: f64,
    pub tcp_refused_per_ip: f64,
    pub accept_errors: f64,
    pub connections_accepted: f64,
    pub connections_dialled: f64,
    pub dials_failed: f64,
    pub mdns_off_link: f64,
    pub mdns_bad_targets: f64,
    pub mdns_repeated_questions: f64,
    pub mdns_answers_deferred: f64,
    /// Events handed to JS and not yet delivered.
    pub events_pending: u32,
    /// `peer` events merged into an identical one still waiting for JS.
    pub peers_merged: f64,
    /// `peer` events dropped because the queue to JS was full.
    pub peers_dropped: f64,
    pub dial_queue_refused: f64,
    /// Dials the engine started ahead of the `./hyperswarm` entry.
    pub dials_ahead: f64,
    /// Punches answered by a peer that runs our code.
    pub peers_ours_seen: f64,
    /// Capability records learned from punches, and `_holepunch` targets
    /// that were not one (ignored).
    pub dht_capabilities_learned: f64,
    pub dht_capabilities_malformed: f64,
    /// Birthday punching (README, "Birthday punching"): sessions started,
    /// won, timed out, refused (one running, or the same IP within a
    /// minute); extra sockets and probes over all sessions; extra sockets
    /// open now; connections made; the last session's sockets, probes and
    /// duration.
    pub birthday_started: f64,
    pub birthday_won: f64,
    pub birthday_timed_out: f64,
    pub birthday_refused: f64,
    pub birthday_sockets_opened: f64,
    pub birthday_probes_sent: f64,
    pub birthday_sockets_open: f64,
    pub birthday_connections: f64,
    pub birthday_via_main: f64,
    pub birthday_last_sockets_opened: f64,
    pub birthday_last_probes_sent: f64,
    pub birthday_last_ms: f64,
    pub birthday_challenges_sent: f64,
    pub birthday_challenges_echoed: f64,
    /// Relay sessions (both NATs random) started, paired at a relay, and
    /// failed (no relay found, refused, out of time); relay lookups;
    /// relays known; connections made through a relay; relay datagrams
    /// dropped (from no joined relay); the last session's time to connect.
    pub relay_sessions_started: f64,
    pub relay_sessions_paired: f64,
    pub relay_sessions_failed: f64,
    pub relay_lookups: f64,
    pub relay_relays_known: f64,
    pub relay_connections: f64,
    pub relay_dropped: f64,
    pub relay_last_ms: f64,
    /// Relay sessions started because a peer of ours punched us and never
    /// connected (every punch failed).
    pub relay_fallbacks: f64,
}

fn peer_to_js(p: Peer) -> NativePeer {
    NativePeer {
        host: p.host.to_string(),
        port: p.port as u32,
        local: p.local,
        referrer: p.referrer.map(|r| NativeReferrer { host: r.host.to_string(), port: r.port as u32, id: r.id.map(Buffer::from) }),
        topic: p.topic.map(|t| Buffer::from(t.to_vec())),
        to: p.to.map(|a| a.to_string()),
    }
}

pub(super) fn peer_from_js(p: NativePeer) -> Result<Peer> {
    let port = u16::try_from(p.port).map_err(|_| Error::new(Status::InvalidArg, "peer.port must be 0-65535"))?;
    let topic = match p.topic {
        Some(t) => Some(topic_from_js(&t, "peer.topic")?),
        None => None,
    };
    let referrer = match p.referrer {
        Some(r) => Some(Referrer {
            host: host_from_js(&r.host, "peer.referrer.host")?,
            port: u16::try_from(r.port).map_err(|_| Error::new(Status::InvalidArg, "peer.referrer.port must be 0-65535"))?,
            id: r.id.map(|b| b.to_vec()),
        }),
        None => None,
    };
    let to = p.to.and_then(|a| a.parse().ok());
    Ok(Peer { host: host_from_js(&p.host, "peer.host")?, port, local: p.local, referrer, topic, to })
}

/// The one place a host from JS is read: an address (`::ffff:a.b.c.d`
/// unmapped) or a name to resolve when dialled, as `net.connect` takes.
fn host_from_js(host: &str, name: &str) -> Result<Host> {
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::new(Status::InvalidArg, format!("{name} must be an IP address or a host name, got {host:?}")));
    }
    Ok(Host::parse(host))
}

fn topic_from_js(b: &Buffer, name: &str) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(&b[..]).map_err(|_| Error::new(Status::InvalidArg, format!("{name} must be a 32-byte Buffer")))
}

/// Why a swarm cannot be made off Unix: TCP connections reach Node as
/// descriptors (`new net.Socket({ fd })`), and Windows has none to give.
const FD_HANDOFF_UNIX_ONLY: &str =
    "hyperswarm-native: this version hands TCP sockets to Node by file descriptor, which only works on Unix";

/// How a connection's bytes move: a descriptor for TCP (Node owns it from
/// here), an address for uTP (the engine keeps the connection). `Err`: the
/// event to send instead.
fn stream_to_js(stream: ConnStream) -> std::result::Result<NativeStream, NativeEvent> {
    match stream {
        #[cfg(unix)]
        ConnStream::Tcp(s) => {
            let remote_host = s.peer_addr().ok().map(|a| crate::discovery::peer::unmap(a.ip()).to_string());
            Ok(NativeStream::Tcp { fd: s.into_raw_fd(), remote_host })
        }
        // Not reached: `NativeSwarm::new` refuses off Unix.
        #[cfg(not(unix))]
        ConnStream::Tcp(_) => Err(NativeEvent::Error {
            message: FD_HANDOFF_UNIX_ONLY.into(),
        }),
        ConnStream::Utp {
            remote,
            peer_nat,
            relay,
        } => Ok(NativeStream::Utp {
            remote_host: remote.ip().to_string(),
            remote_port: remote.port() as u32,
            peer_nat_type: peer_nat.map(|n| n.as_str().into()),
            relay: relay.map(|r| r.to_string()),
        }),
    }
}

fn topic_js(topic: [u8; 32]) -> Buffer {
    Buffer::from(topic.to_vec())
}

/// Runs on the JS thread. Streams become plain descriptors here, and only
/// here, so a stream whose event never reaches JS is closed by its drop.
fn to_js(ev: SwarmEvent) -> NativeEvent {
    match ev {
        SwarmEvent::Listening { port } => NativeEvent::Listening { port: port as u32 },
        SwarmEvent::Punch { request } => NativeEvent::Punch { request },
        SwarmEvent::Peer(p) => NativeEvent::Peer { peer: peer_to_js(p) },
        SwarmEvent::Dialing { request, peer } => NativeEvent::Dialing { request, peer: peer_to_js(peer) },
        SwarmEvent::Connection { id, stream, client, peer } => match stream_to_js(stream) {
            Ok(stream) => NativeEvent::Connection { id: id as f64, client, peer: peer.map(peer_to_js), stream },
            Err(ev) => ev,
        },
        SwarmEvent::Connected { request, result, peer } => match result {
            Ok((id, stream)) => match stream_to_js(stream) {
                Ok(stream) => NativeEvent::Connected { request, id: id as f64, peer: peer_to_js(peer), stream },
                Err(ev) => ev,
            },
            Err(e) => NativeEvent::ConnectFailed { request, message: e.to_string(), code: e.code().into() },
        },
        SwarmEvent::Updating { topic } => NativeEvent::Updating { topic: topic_js(topic) },
        SwarmEvent::Flushed { topic } => NativeEvent::Flushed { topic: topic_js(topic) },
        SwarmEvent::Update { topic, error } => NativeEvent::Update { topic: topic_js(topic), message: error },
        SwarmEvent::Left { topic } => NativeEvent::Left { topic: topic_js(topic) },
        SwarmEvent::Pinged { request, pongs } => NativeEvent::Pinged {
            request,
            pongs: pongs
                .into_iter()
                .map(|p| NativePong {
                    host: p.bootstrap.ip().to_string(),
                    port: p.bootstrap.port() as u32,
                    rtt: p.rtt.as_secs_f64() * 1000.0,
                    to: p.to.map(|a| a.to_string()),
                })
                .collect(),
        },
        SwarmEvent::Data { id, data } => NativeEvent::Data { id: id as f64, data: Buffer::from(data) },
        SwarmEvent::Written { id, write } => NativeEvent::Written { id: id as f64, request: write },
        SwarmEvent::End { id } => NativeEvent::End { id: id as f64 },
        SwarmEvent::StreamClosed { id, error } => NativeEvent::Closed { id: id as f64, message: error },
        SwarmEvent::Warning(message) => NativeEvent::Warning { message },
        SwarmEvent::Error(message) => NativeEvent::Error { message },
        SwarmEvent::Failed(message) => NativeEvent::Fatal { message },
        SwarmEvent::Closed => NativeEvent::Close,
        SwarmEvent::Dht(ev) => NativeEvent::Dht { dht: super::dht::to_js(ev) },
    }
}

type EventFn = ThreadsafeFunction<SwarmEvent, (), NativeEvent, Status, false>;

/// The event function, shared by the engine's sink (which drops it after
/// `Closed`) and `ref`/`unref`.
type SharedFn = std::sync::Arc<std::sync::Mutex<Option<EventFn>>>;

#[napi]
pub struct NativeSwarm {
    swarm: Option<Swarm>,
    tsfn: SharedFn,
    gate: std::sync::Arc<EventGate>,
}

/// Set to `1` to let `_testPanic` work; unset, it throws. Tests only.
pub const TEST_PANIC_ENV: &str = "HYPERSWARM_NATIVE_TEST_PANIC";

#[napi]
impl NativeSwarm {
    #[napi(constructor, catch_unwind)]
    pub fn new(options: NativeOptions, on_event: Function<NativeEvent, ()>) -> Result<Self> {
        guarded(|| Self::create(options, on_event))
    }

    fn create(options: NativeOptions, on_event: Function<NativeEvent, ()>) -> Result<Self> {
        if cfg!(not(unix)) {
            return Err(Error::from_reason(FD_HANDOFF_UNIX_ONLY));
        }
        crate::log::init();
        let port_opt = |v: Option<u32>, name: &str| -> Result<Option<u16>> {
            v.map(|p| u16::try_from(p).map_err(|_| Error::new(Status::InvalidArg, format!("{name} must be 0-65535"))))
                .transpose()
        };
        let defaults = SwarmConfig::default();
        let config = SwarmConfig {
            multicast: options.multicast.unwrap_or(true),
            domain: options.domain.unwrap_or(defaults.domain),
            port: port_opt(options.port, "port")?.filter(|p| *p != 0),
            preferred_port: port_opt(options.preferred_port, "preferredPort")?.unwrap_or(0),
            bootstrap: options.bootstrap,
            ephemeral: options.ephemeral,
            dial_tcp: options.tcp.unwrap_or(true),
            auto_dial: options.auto_dial.unwrap_or(true),
            id: options
                .id
                .as_ref()
                .map(|b| topic_from_js(b, "options.id"))
                .transpose()?,
            max_incoming_per_ip: options
                .max_incoming_per_ip
                .map_or(defaults.max_incoming_per_ip, |n| n as usize),
            dht_limit_scale: options
                .dht_limit_scale
                .unwrap_or(defaults.dht_limit_scale)
                .max(1),
            relay: match options.relay {
                None => None,
                Some(r) => {
                    let mut c = crate::relay::RelayConfig::default();
                    if let Some(n) = r.max_pairs.filter(|n| *n > 0) {
                        c.max_pairs = n as usize;
                    }
                    if let Some(n) = r.rate.filter(|n| *n > 0) {
                        c.rate = n;
                    }
                    Some((port_opt(r.port, "relay.port")?.unwrap_or(0), c))
                }
            },
            ..defaults
        };
        // The queue to JS is bounded by the gate's policy (EventGate): the
        // engine asks it before queueing, and JS taking an event frees a place.
        let gate = std::sync::Arc::new(EventGate::new());
        let taken = gate.clone();
        let tsfn: EventFn = on_event
            .build_threadsafe_function::<SwarmEvent>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                taken.taken(&ctx.value);
                guarded(|| Ok(to_js(ctx.value)))
            })?;
        // The thread-safe function keeps Node alive while the swarm runs; the
        // engine drops it after `Closed`, which lets the process exit.
        let tsfn: SharedFn = std::sync::Arc::new(std::sync::Mutex::new(Some(tsfn)));
        let sink = tsfn.clone();
        let admit = gate.clone();
        let swarm = Swarm::spawn(
            config,
            Box::new(move |ev| {
                let closing = matches!(ev, SwarmEvent::Closed);
                if !admit.admit(&ev) {
                    return;
                }
                let mut guard = sink.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(f) = guard.as_ref() {
                    f.call(ev, ThreadsafeFunctionCallMode::NonBlocking);
                }
                if closing {
                    guard.take();
                }
            }),
        );
        Ok(NativeSwarm { swarm: Some(swarm), tsfn, gate })
    }

    /// Whether this swarm keeps Node's event loop alive (it does from the
    /// start). An unbound network 2.x resource does not, as an unlistening
    /// net.Server does not.
    // napi-rs marks refer/unref deprecated in favour of clone/drop, which
    // count references; what is wanted here is napi_ref/unref_threadsafe_function
    // (whether the loop waits for us), which only these two reach.
    #[napi(catch_unwind)]
    #[allow(deprecated)]
    pub fn set_ref(&self, env: Env, keep_alive: bool) -> Result<()> {
        let Ok(mut guard) = self.tsfn.lock() else { return Ok(()) };
        match guard.as_mut() {
            Some(f) if keep_alive => f.refer(&env),
            Some(f) => f.unref(&env),
            None => Ok(()),
        }
    }

    fn live(&self) -> Result<&Swarm> {
        // Methods without an error code of their own say "destroyed" in words.
        self.swarm.as_ref().ok_or_else(|| Error::new(Status::GenericFailure, "swarm is destroyed"))
    }

    #[napi(catch_unwind)]
    pub fn join(&self, topic: Buffer, announce: bool, lookup: bool) -> Result<()> {
        let topic = topic_from_js(&topic, "topic")?;
        self.live()?.join(topic, announce, lookup).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    /// Binds now (first port tried: `preferred_port`, else the configured
    /// one) and returns the port TCP and UDP share.
    #[napi(catch_unwind)]
    /// A failure's `code` is the OS error's name (`EADDRINUSE`, …) or
    /// `EDESTROYED`.
    pub fn bind(&self, preferred_port: Option<u32>) -> Result<u32, Code> {
        let preferred = preferred_port
            .map(|p| u16::try_from(p).map_err(|_| Error::new(Code("ERR_OUT_OF_RANGE"), "preferredPort must be 0-65535")))
            .transpose()?;
        let swarm = self.swarm.as_ref().ok_or_else(|| coded(SwarmError::Destroyed))?;
        swarm.bind(preferred).map(u32::from).map_err(coded)
    }

    /// Joins with explicit ports: `dht_port` goes on the DHT (0: our UDP
    /// source port), `lan_port` in mDNS answers (default: our TCP port);
    /// `local_address` (`"a.b.c.d:port"`) is sent with DHT requests.
    /// The LAN's unsolicited answer of an announce waits for
    /// `announceNow(topic)` (network.js calls it on the next tick, as the
    /// reference fires it), so that it leaves in JS call order.
    #[napi(catch_unwind)]
    pub fn join_with_ports(
        &self,
        topic: Buffer,
        announce: bool,
        lookup: bool,
        dht_port: u32,
        lan_port: Option<u32>,
        local_address: Option<String>,
    ) -> Result<()> {
        let topic = topic_from_js(&topic, "topic")?;
        let port = |p: u32, name: &str| u16::try_from(p).map_err(|_| Error::new(Status::InvalidArg, format!("{name} must be 0-65535")));
        let dht_port = port(dht_port, "port")?;
        let lan_port = lan_port.map(|p| port(p, "localPort")).transpose()?;
        let local_address = local_address
            .map(|a| a.parse().map_err(|_| Error::new(Status::InvalidArg, "localAddress must be an IPv4 \"host:port\"")))
            .transpose()?;
        self.live()?
            .join_with_ports_deferred(topic, announce, lookup, dht_port, lan_port, local_address)
            .map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    /// Multicasts the unsolicited LAN answer of `topic`, joined with
    /// `joinWithPorts`, now, from this thread. Returns the copies sent (0:
    /// none waited, no mDNS socket, or the swarm is destroyed).
    #[napi(catch_unwind)]
    pub fn announce_now(&self, topic: Buffer) -> Result<u32> {
        let topic = topic_from_js(&topic, "topic")?;
        Ok(self.swarm.as_ref().map(|s| s.announce_now(&topic) as u32).unwrap_or(0))
    }

    /// Runs a DHT round of `topic` now unless one is running.
    #[napi(catch_unwind)]
    pub fn update(&self, topic: Buffer) -> Result<()> {
        let topic = topic_from_js(&topic, "topic")?;
        self.live()?.update(topic).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    /// Takes new incoming connections, or refuses them.
    #[napi(catch_unwind)]
    pub fn set_accepting(&self, accepting: bool) {
        if let Some(s) = &self.swarm {
            s.set_accepting(accepting);
        }
    }

    /// Whether the `./hyperswarm` entry would dial the next new peer at
    /// once: the engine then dials it ahead and reports `dialing` first.
    #[napi(catch_unwind)]
    pub fn set_speculation(&self, on: bool) {
        if let Some(s) = &self.swarm {
            s.set_speculation(on);
        }
    }

    /// Stops the TCP listener at once (`false`: new dialers are refused from
    /// now on) or starts it again on the same port; whether anything changed.
    #[napi(catch_unwind)]
    pub fn set_tcp_listening(&self, listening: bool) -> Result<bool, Code> {
        match &self.swarm {
            Some(s) => s.set_tcp_listening(listening).map_err(coded),
            None => Ok(false),
        }
    }

    /// An operation on the swarm's DHT node (`discovery.dht`): as
    /// `NativeDht.command`, its events come as kind `dht`.
    #[napi(catch_unwind)]
    pub fn dht_command(&self, op: String, request: u32, args: DhtCommandArgs) -> Result<()> {
        let command = super::dht::parse_command(&op, request, args)?;
        self.live()?.dht_command(command).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    /// The swarm DHT node's contacts (empty once destroyed, or with no DHT).
    #[napi(catch_unwind)]
    pub fn dht_nodes(&self) -> Vec<DhtContact> {
        let Some(swarm) = &self.swarm else { return Vec::new() };
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        if swarm.dht_command(crate::dht::ops::Command::Nodes { reply }).is_err() {
            return Vec::new();
        }
        super::dht::contacts(rx.recv_timeout(std::time::Duration::from_secs(1)).unwrap_or_default())
    }

    /// Pings every bootstrap node; a `pinged` event with `request` follows.
    #[napi(catch_unwind)]
    pub fn ping_bootstrap(&self, request: u32) -> Result<()> {
        self.live()?.ping_bootstrap(request).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    #[napi(catch_unwind)]
    pub fn leave(&self, topic: Buffer) -> Result<()> {
        let topic = topic_from_js(&topic, "topic")?;
        self.live()?.leave(topic).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    /// Dials `peer`; with `callerPunch`, a `punch` event asks the caller to
    /// punch the hole (answered with `punched`) instead of the engine.
    #[napi(catch_unwind)]
    pub fn connect(&self, request: u32, peer: NativePeer, caller_punch: Option<bool>) -> Result<()> {
        let peer = peer_from_js(peer)?;
        let swarm = self.live()?;
        let sent = if caller_punch == Some(true) { swarm.connect_with_caller_punch(request, peer) } else { swarm.connect(request, peer) };
        sent.map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    /// The caller's punch for dial `request` ended (`ok`: the hole is open).
    #[napi(catch_unwind)]
    pub fn punched(&self, request: u32, ok: bool) -> Result<()> {
        self.live()?.punched(request, ok).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
    }

    #[napi(catch_unwind)]
    pub fn connection_closed(&self, id: f64) {
        if let Some(s) = &self.swarm {
            s.connection_closed(id as u64);
        }
    }

    #[napi(catch_unwind)]
    pub fn port(&self) -> Option<u32> {
        self.swarm.as_ref().and_then(|s| s.port()).map(u32::from)
    }

    #[napi(catch_unwind)]
    pub fn stats(&self) -> Option<NativeStats> {
        let s = self.swarm.as_ref()?.stats();
        let gate = self.gate.stats();
        Some(NativeStats {
            mdns_received: s.lan.received as f64,
            mdns_malformed: s.lan.malformed as f64,
            mdns_own_answers: s.lan.own_answers as f64,
            mdns_queries_answered: s.lan.queries_answered as f64,
            multicast_sent: s.multicast_sent as f64,
            dht_nodes: s.dht_nodes as u32,
            nat_type: s.nat_type.as_str().into(),
            dht_received: s.dht.received as f64,
            dht_malformed: s.dht.malformed as f64,
            dht_bad_token: s.dht.bad_token as f64,
            dht_unmatched_responses: s.dht.unmatched_responses as f64,
            dht_timeouts: s.dht.timeouts as f64,
            dht_rate_limited: s.dht.rate_limited as f64,
            dht_amplification_dropped: s.dht.amplification_dropped as f64,
            dht_relays_refused: s.dht.relays_refused as f64,
            dht_id_conflicts: s.dht.id_conflicts as f64,
            dht_subnet_refused: s.dht.subnet_refused as f64,
            dht_addresses_dropped: s.dht.addresses_dropped as f64,
            dht_queries_capped: s.dht.queries_capped as f64,
            dht_values_stored: s.dht.values_stored as f64,
            dht_values_rejected: s.dht.values_rejected as f64,
            dht_values_dropped: s.dht.values_dropped as f64,
            dht_values_evicted: s.dht.values_evicted as f64,
            utp_received: s.utp_received as f64,
            utp_malformed: s.utp_malformed as f64,
            utp_unknown: s.utp_unknown as f64,
            utp_invalid: s.utp_invalid as f64,
            utp_syns_refused: s.utp_syns_refused as f64,
            utp_refused_per_ip: s.utp_refused_per_ip as f64,
            utp_half_opened: s.utp_half_opened as f64,
            utp_half_open_evicted: s.utp_half_open_evicted as f64,
            utp_syn_collisions: s.utp_syn_collisions as f64,
            utp_half_open: s.utp_half_open as f64,
            tcp_refused_per_ip: s.tcp_refused_per_ip as f64,
            accept_errors: s.accept_errors as f64,
            connections_accepted: s.connections_accepted as f64,
            connections_dialled: s.connections_dialled as f64,
            dials_failed: s.dials_failed as f64,
            mdns_off_link: s.lan.off_link as f64,
            mdns_bad_targets: s.lan.bad_targets as f64,
            mdns_repeated_questions: s.lan.repeated_questions as f64,
            mdns_answers_deferred: s.lan.answers_deferred as f64,
            events_pending: gate.pending as u32,
            peers_merged: gate.peers_merged as f64,
            peers_dropped: gate.peers_dropped as f64,
            dial_queue_refused: s.dial_queue_refused as f64,
            dials_ahead: s.dials_ahead as f64,
            peers_ours_seen: s.peers_ours_seen as f64,
            dht_capabilities_learned: s.dht.capabilities_learned as f64,
            dht_capabilities_malformed: s.dht.capabilities_malformed as f64,
            birthday_started: s.birthday.machine.started as f64,
            birthday_won: s.birthday.machine.won as f64,
            birthday_timed_out: s.birthday.machine.timed_out as f64,
            birthday_refused: (s.birthday.machine.refused_busy + s.birthday.machine.refused_recent) as f64,
            birthday_sockets_opened: s.birthday.machine.sockets_opened as f64,
            birthday_probes_sent: s.birthday.machine.probes_sent as f64,
            birthday_sockets_open: s.birthday.sockets_open as f64,
            birthday_connections: s.birthday.connections as f64,
            birthday_via_main: s.birthday.via_main as f64,
            birthday_last_sockets_opened: s.birthday.last_sockets_opened as f64,
            birthday_last_probes_sent: s.birthday.last_probes_sent as f64,
            birthday_last_ms: s.birthday.last_ms as f64,
            birthday_challenges_sent: s.birthday.challenges_sent as f64,
            birthday_challenges_echoed: s.birthday.challenges_echoed as f64,
            relay_sessions_started: s.relay.sessions_started as f64,
            relay_sessions_paired: s.relay.sessions_paired as f64,
            relay_sessions_failed: s.relay.sessions_failed as f64,
            relay_lookups: s.relay.lookups as f64,
            relay_relays_known: s.relay.relays_known as f64,
            relay_connections: s.relay.connections as f64,
            relay_dropped: s.relay.dropped as f64,
            relay_last_ms: s.relay.last_ms as f64,
            relay_fallbacks: s.relay.fallbacks as f64,
        })
    }

    /// Queues bytes on uTP connection `id`; a `written` event with `write` follows.
    #[napi(catch_unwind)]
    pub fn utp_write(&self, id: f64, write: u32, data: Buffer) -> Result<()> {
        self.live()?.utp_write(id as u64, write, data.to_vec());
        Ok(())
    }

    /// Grants the next batch of received bytes of uTP connection `id`.
    #[napi(catch_unwind)]
    pub fn utp_read(&self, id: f64) {
        if let Some(s) = &self.swarm {
            s.utp_read(id as u64);
        }
    }

    /// Half-closes uTP connection `id`.
    #[napi(catch_unwind)]
    pub fn utp_shutdown(&self, id: f64) {
        if let Some(s) = &self.swarm {
            s.utp_shutdown(id as u64);
        }
    }

    /// Aborts uTP connection `id`.
    #[napi(catch_unwind)]
    pub fn utp_close(&self, id: f64) {
        if let Some(s) = &self.swarm {
            s.utp_close(id as u64);
        }
    }

    /// Whether enough DHT nodes agree on our address and port (spec §7).
    #[napi(catch_unwind)]
    pub fn holepunchable(&self) -> bool {
        self.swarm.as_ref().is_some_and(|s| s.stats().holepunchable)
    }

    /// Our NAT's class from DHT reports of at least 3 /24s: `"unknown"`,
    /// `"open"`, `"consistent"` or `"random"`.
    #[napi(catch_unwind)]
    pub fn nat_type(&self) -> &'static str {
        self.swarm.as_ref().map(|s| s.stats().nat_type.as_str()).unwrap_or("unknown")
    }

    /// Our public `host:port` as DHT nodes report it, if they agree.
    #[napi(catch_unwind)]
    pub fn remote_address(&self) -> Option<String> {
        self.swarm.as_ref().and_then(|s| s.stats().remote_address).map(|a| a.to_string())
    }

    /// Test hook, hidden from the typings: `"engine"` makes the engine task
    /// panic (JS then gets `fatal` and `close`), `"method"` panics inside
    /// this method (JS gets an Error). Throws unless the environment has
    /// HYPERSWARM_NATIVE_TEST_PANIC=1.
    #[napi(js_name = "_testPanic", catch_unwind)]
    pub fn test_panic(&self, target: String) -> Result<()> {
        if std::env::var(TEST_PANIC_ENV).as_deref() != Ok("1") {
            return Err(Error::new(Status::GenericFailure, format!("_testPanic needs {TEST_PANIC_ENV}=1")));
        }
        match target.as_str() {
            "engine" => {
                self.live()?.inject_panic();
                Ok(())
            }
            "method" => panic!("injected test panic in a napi method"),
            other => Err(Error::new(Status::InvalidArg, format!("unknown panic target {other:?}"))),
        }
    }

    /// Starts shutdown; a `close` event follows once every socket is closed.
    #[napi(catch_unwind)]
    pub fn destroy(&mut self) {
        if let Some(s) = self.swarm.take() {
            s.destroy();
        }
    }
}
