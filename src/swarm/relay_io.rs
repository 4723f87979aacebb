//! The swarm's side of the relay of last resort ([`crate::relay`]): when
//! both NATs are random no punch gets through, so two peers of ours meet at
//! a relay and run their uTP connection over its DATA messages. Sans-IO:
//! it takes relayed punches, lookup answers, relay datagrams and the time,
//! and returns [`Output`]s for the engine to carry out on the swarm's one
//! socket and its DHT.
//!
//! # Who decides, and how the token travels
//!
//! As with birthday punching (`birthday_io`), the punched peer is the one
//! that learns both NAT classes: the dialler's capability record arrives in
//! the relayed `_holepunch`. When both are random, the punched peer draws a
//! 16-byte nonce and punches back through the same referrer with it in its
//! record ([`Check::Relay`]). Both take the session token from the nonce
//! (`relay::rendezvous::token_from_nonce`), both look up the relay topic on
//! the DHT, both pick the same relay by rendezvous hashing, and both join.
//! The side that drew the nonce accepts the uTP connection; the other
//! dials it through the relay once the pair forms.
//!
//! Two peers that punch each other at once both draw a nonce; the smaller
//! nonce wins on both sides (each gives up its own session for a smaller
//! one it hears, and answers a larger one with its own again).
//!
//! # Budget
//!
//! A session gets [`RELAY_BUDGET`] from its start to a connection; a dial
//! of the same peer waits for it that long (past the reference's 10 s, only
//! for random × random). No relay found, a refusal, or the budget spent
//! fails it with an error that says which.
//!
//! A forged punch can make us join a relay session that never pairs: one
//! datagram to the referrer and a few joins to a relay, never anything to
//! the forged address; sessions are capped ([`MAX_SESSIONS`]) and a peer IP
//! gets one every [`REPEAT_AFTER`].

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::event::{ConnStream, SwarmEvent};
use super::utp_link::{LinkEvent, UtpLink};
use crate::dht::capability::{Capability, Check, RELAY_NONCE_LEN};
use crate::dht::nat::NatType;
use crate::dht::QueryId;
use crate::relay::rendezvous::{pick, token_from_nonce};
use crate::relay::{ClientEvent, RelayClient, Token};
use crate::utp::{looks_like_utp, ConnId, UtpConfig};

// The record carries what the token is derived from.
const _: () = assert!(RELAY_NONCE_LEN == crate::relay::rendezvous::NONCE_LEN);

/// From a relay session's start to its connection: lookup (a DHT query,
/// 1–3 s), join and pairing (the partner starts one referrer round trip
/// later), uTP's handshake through the relay. Issue 11 allows at most 35 s
/// for the slow paths; ours stays inside the relay's own 35 s wait.
pub const RELAY_BUDGET: Duration = Duration::from_secs(30);

/// Relays found by a lookup are used this long without looking again.
pub const RELAYS_FRESH: Duration = Duration::from_secs(5 * 60);

/// Relays remembered from one lookup at most (a bound: answers come from
/// any DHT node).
pub const MAX_RELAYS: usize = 32;

/// Relay sessions at once. Ours: a swarm keeps a few dozen connections,
/// and random × random is the rare pair.
pub const MAX_SESSIONS: usize = 8;

/// No new session with a peer IP sooner than this after the last one
/// started (its dial queue retries; a forger repeats).
pub const REPEAT_AFTER: Duration = Duration::from_secs(10);

/// A peer of ours that punched us and made no connection with us this
/// long after gets a relay session (when every punch failed): its dial
/// gave up at the reference's 10 s, and a second more lets a connection
/// that won at the last moment be seen first.
pub const FALLBACK_AFTER: Duration = Duration::from_secs(11);

/// A fallback session's budget: from the peer's first punch, 11 s, then
/// this, stays within issue 11's 35 s.
pub const FALLBACK_BUDGET: Duration = Duration::from_secs(20);

/// A fallback's budget at the least: a lookup and a relay round trip.
pub const FALLBACK_MIN: Duration = Duration::from_secs(4);

/// Punches watched for a fallback at once (a bound: anyone can get a
/// punch relayed to us).
pub const MAX_WATCHED: usize = 32;

/// A peer IP we connected with this recently is not watched when it
/// punches us again (a second `connect`, a retry beside a live
/// connection): its punches got through before. Ours.
pub const CONNECTED_MEMORY: Duration = Duration::from_secs(10 * 60);

/// The longest a fallback may take from the peer's first punch to its
/// connection: issue 11's cap on the slow paths.
pub const FALLBACK_BY: Duration = Duration::from_secs(35);

/// A peer of ours that punched us, watched for a connection.
struct Watch {
    origin: SocketAddrV4,
    referrer: SocketAddrV4,
    /// Its first punch, and when the fallback starts if nothing connects.
    since: Instant,
    due: Instant,
}

/// Why a session exists, the first words of its errors: both NATs are
/// random, or (a fallback, or a peer's nonce told us) no punch got through.
const CAUSE_RANDOM: &str = "both NATs are random";
const CAUSE_FALLBACK: &str = "no punch got through";

/// Our nonce goes to a peer again no sooner than this (its punch retries
/// mean it may not have heard it).
const PUNCH_BACK_AGAIN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// We drew the nonce: we take the peer's uTP connection.
    Accept,
    /// We were told the nonce: we dial through the relay.
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the relay lookup.
    Looking,
    /// Joined at `relay`; waiting for the partner.
    Joined,
    /// Paired: uTP runs.
    Paired,
}

struct Session {
    peer: SocketAddrV4,
    referrer: SocketAddrV4,
    nonce: [u8; RELAY_NONCE_LEN],
    role: Role,
    state: State,
    relay: Option<SocketAddrV4>,
    deadline: Instant,
    /// When our nonce last went to the peer.
    punched_back: Option<Instant>,
    utp: Option<UtpLink>,
    /// The uTP connection, up and waiting for its id ([`RelayIo::adopt`]).
    pending_utp: Option<ConnId>,
    conn: Option<u64>,
    started: Instant,
    /// Started as a fallback ([`FALLBACK_AFTER`]): no dial of ours waits,
    /// so a failure is only counted, not warned about.
    fallback: bool,
    /// [`CAUSE_RANDOM`] or [`CAUSE_FALLBACK`].
    cause: &'static str,
}

/// What the engine does for the relay side.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Look up the relay topic ([`crate::relay::rendezvous::relay_topic`]);
    /// report with [`RelayIo::lookup_started`].
    Lookup,
    /// Punch `origin` back through `referrer` with this record check.
    PunchBack { origin: SocketAddrV4, referrer: SocketAddrV4, check: Check },
    /// A session for the peer at `ip` runs until `until`: dials of it wait.
    Started { ip: Ipv4Addr, until: Instant },
    /// The session for the peer at `ip` failed; `quiet` when nobody of
    /// ours asked for it (a fallback): counted, not warned about.
    Failed { ip: Ipv4Addr, error: String, quiet: bool },
    /// The session's uTP connection is up: give it an id
    /// ([`RelayIo::adopt`]).
    Connected { token: Token, ip: Ipv4Addr },
}

/// Counters for the swarm's stats.
#[derive(Debug, Clone, Copy, Default)]
pub struct RelayIoStats {
    pub sessions_started: u64,
    pub sessions_paired: u64,
    pub sessions_failed: u64,
    pub connections: u64,
    pub lookups: u64,
    pub relays_known: u64,
    /// Relay datagrams from addresses no session joined, or malformed.
    pub dropped: u64,
    /// Milliseconds from the last session's start to its connection.
    pub last_ms: u64,
    /// Sessions started because a peer of ours punched us and never
    /// connected (every punch failed).
    pub fallbacks: u64,
}

pub struct RelayIo {
    client: RelayClient,
    sessions: HashMap<Token, Session>,
    by_conn: HashMap<u64, Token>,
    relays: Vec<SocketAddrV4>,
    relays_at: Option<Instant>,
    /// The relay lookup running, and whether one was asked of the engine.
    lookup: Option<QueryId>,
    lookup_asked: bool,
    found: Vec<SocketAddrV4>,
    /// Our own relay's port (the swarm's `relay` option): a relay at our
    /// public IP on it is ourselves, never picked.
    own_port: Option<u16>,
    /// Our public IP as the DHT sees it.
    public_ip: Option<Ipv4Addr>,
    /// Peer IPs sessions started with, and when (at most `4 * MAX_SESSIONS`).
    recent: Vec<(Ipv4Addr, Instant)>,
    out: VecDeque<Output>,
    /// Connections whose session the relay ended, to report closed.
    lost: Vec<(u64, String)>,
    /// Peers of ours that punched us, until a connection with them is
    /// seen ([`RelayIo::connected_to`]) or [`FALLBACK_AFTER`] passes:
    watched: Vec<Watch>,
    /// Peer IPs we connected with, and when (at most [`MAX_WATCHED`] × 2).
    connected: Vec<(Ipv4Addr, Instant)>,
    utp_config: UtpConfig,
    stats: RelayIoStats,
}

impl RelayIo {
    pub fn new(utp_config: UtpConfig) -> Self {
        RelayIo {
            client: RelayClient::new(),
            sessions: HashMap::new(),
            by_conn: HashMap::new(),
            relays: Vec::new(),
            relays_at: None,
            lookup: None,
            lookup_asked: false,
            found: Vec::new(),
            own_port: None,
            public_ip: None,
            recent: Vec::new(),
            out: VecDeque::new(),
            lost: Vec::new(),
            watched: Vec::new(),
            connected: Vec::new(),
            utp_config,
            stats: RelayIoStats::default(),
        }
    }

    pub fn stats(&self) -> RelayIoStats {
        RelayIoStats { relays_known: self.relays.len() as u64, ..self.stats }
    }

    /// The port of the relay this swarm runs itself, left out of its own
    /// picks (with [`Self::set_public_ip`]).
    pub fn set_own_relay_port(&mut self, port: Option<u16>) {
        self.own_port = port;
    }

    /// Our public IP as the DHT reports it.
    pub fn set_public_ip(&mut self, ip: Option<Ipv4Addr>) {
        self.public_ip = ip;
    }

    /// A peer of ours punched us through `referrer` from `origin` with
    /// `capability`; `ours` is our NAT's class. Random × random starts a
    /// session; a nonce joins the one it names (the peer decided it needs
    /// a relay: both random, or every punch failed); any other punch is
    /// watched, and a session starts if no connection with the peer
    /// follows within [`FALLBACK_AFTER`].
    pub fn punched_by(&mut self, now: Instant, ours: NatType, origin: SocketAddrV4, referrer: SocketAddrV4, capability: &Capability) {
        let ip = *origin.ip();
        let told = matches!(capability.check, Some(Check::Relay(_)));
        let cause = if ours == NatType::Random && capability.nat == NatType::Random { CAUSE_RANDOM } else { CAUSE_FALLBACK };
        let mine = self.sessions.iter().find(|(_, s)| *s.peer.ip() == ip).map(|(t, s)| (*t, s.nonce, s.state));
        if !told && (ours != NatType::Random || capability.nat != NatType::Random) {
            match mine {
                // A fallback of ours runs: the peer may not have heard our nonce.
                Some((token, ..)) => self.punch_back(now, &token),
                None => self.watch(now, origin, referrer),
            }
            return;
        }
        match (capability.check, mine) {
            (Some(Check::Relay(theirs)), Some((token, nonce, state))) => {
                if theirs == nonce {
                    return;
                }
                // Two nonces crossed: the smaller one wins on both sides.
                if theirs < nonce && state != State::Paired {
                    self.forget(&token);
                    self.start(now, origin, referrer, theirs, Role::Connect, None, cause);
                } else {
                    self.punch_back(now, &token);
                }
            }
            (Some(Check::Relay(theirs)), None) => {
                if self.may_start(now, ip) {
                    self.start(now, origin, referrer, theirs, Role::Connect, None, cause);
                }
            }
            // Its punch again: it may not have heard our nonce.
            (_, Some((token, _, _))) => self.punch_back(now, &token),
            (_, None) => {
                if self.may_start(now, ip) {
                    let nonce: [u8; RELAY_NONCE_LEN] = rand::random();
                    let token = self.start(now, origin, referrer, nonce, Role::Accept, None, CAUSE_RANDOM);
                    if let Some(token) = token {
                        self.punch_back(now, &token);
                    }
                }
            }
        }
    }

    fn watch(&mut self, now: Instant, origin: SocketAddrV4, referrer: SocketAddrV4) {
        self.connected.retain(|(_, at)| now.saturating_duration_since(*at) < CONNECTED_MEMORY);
        let ip = origin.ip();
        if self.watched.iter().any(|w| w.origin.ip() == ip) || self.sessions.values().any(|s| s.peer.ip() == ip) || self.connected.iter().any(|(i, _)| i == ip) {
            return;
        }
        if self.watched.len() >= MAX_WATCHED {
            self.watched.remove(0);
        }
        self.watched.push(Watch { origin, referrer, since: now, due: now + FALLBACK_AFTER });
    }

    /// A connection with the peer at `ip` was made (any transport): its
    /// punch needs no fallback.
    pub fn connected_to(&mut self, now: Instant, ip: Ipv4Addr) {
        self.watched.retain(|w| *w.origin.ip() != ip);
        self.connected.retain(|(i, _)| *i != ip);
        if self.connected.len() >= 2 * MAX_WATCHED {
            self.connected.remove(0);
        }
        self.connected.push((ip, now));
    }

    /// A longer path to the peer at `ip` runs until `until` (a birthday
    /// punch): its watch waits for it, a second past its end.
    pub fn defer(&mut self, ip: Ipv4Addr, until: Instant) {
        for w in self.watched.iter_mut().filter(|w| *w.origin.ip() == ip) {
            w.due = w.due.max(until + Duration::from_secs(1));
        }
    }

    /// That longer path failed: a watched punch of the peer at `ip` falls
    /// back now.
    pub fn expedite(&mut self, now: Instant, ip: Ipv4Addr) {
        for w in self.watched.iter_mut().filter(|w| *w.origin.ip() == ip) {
            w.due = w.due.min(now);
        }
    }

    /// Watched punches whose peer never connected: every punch failed, so
    /// a relay session starts, and the nonce goes to the peer.
    fn fallbacks(&mut self, now: Instant) {
        let due: Vec<(SocketAddrV4, SocketAddrV4, Instant)> = self.watched.iter().filter(|w| now >= w.due).map(|w| (w.origin, w.referrer, w.since)).collect();
        self.watched.retain(|w| now < w.due);
        for (origin, referrer, since) in due {
            if !self.may_start(now, *origin.ip()) {
                continue;
            }
            tracing::debug!(%origin, "a peer of ours punched us and never connected: relay session");
            let nonce: [u8; RELAY_NONCE_LEN] = rand::random();
            // Within 35 s of the first punch, after a birthday punch's 30 s
            // too, but never less than a few seconds.
            let deadline = (now + FALLBACK_BUDGET).min(since + FALLBACK_BY).max(now + FALLBACK_MIN);
            if let Some(token) = self.start(now, origin, referrer, nonce, Role::Accept, Some(deadline), CAUSE_FALLBACK) {
                self.stats.fallbacks += 1;
                self.punch_back(now, &token);
            }
        }
    }

    fn may_start(&mut self, now: Instant, ip: Ipv4Addr) -> bool {
        self.recent.retain(|(_, at)| now.saturating_duration_since(*at) < REPEAT_AFTER);
        if self.sessions.len() >= MAX_SESSIONS || self.recent.len() >= 4 * MAX_SESSIONS || self.recent.iter().any(|(i, _)| *i == ip) {
            tracing::debug!(%ip, "relay session not started: too many, or one started with this IP just now");
            return false;
        }
        true
    }

    /// A session with `peer`; a fallback (`Some(deadline)`) ends then,
    /// any other after [`RELAY_BUDGET`].
    fn start(&mut self, now: Instant, peer: SocketAddrV4, referrer: SocketAddrV4, nonce: [u8; RELAY_NONCE_LEN], role: Role, fallback: Option<Instant>, cause: &'static str) -> Option<Token> {
        let token = token_from_nonce(&nonce);
        if self.sessions.contains_key(&token) {
            return None;
        }
        self.recent.push((*peer.ip(), now));
        let deadline = fallback.unwrap_or(now + RELAY_BUDGET);
        tracing::debug!(%peer, ?role, fallback = fallback.is_some(), "relay session started");
        self.sessions.insert(
            token,
            Session {
                peer,
                referrer,
                nonce,
                role,
                state: State::Looking,
                relay: None,
                deadline,
                punched_back: None,
                utp: None,
                pending_utp: None,
                conn: None,
                started: now,
                fallback: fallback.is_some(),
                cause,
            },
        );
        self.stats.sessions_started += 1;
        self.out.push_back(Output::Started { ip: *peer.ip(), until: deadline });
        let fresh = self.relays_at.is_some_and(|at| now.saturating_duration_since(at) < RELAYS_FRESH) && !self.relays.is_empty();
        if fresh {
            self.join(now, &token);
        } else if self.lookup.is_none() && !self.lookup_asked {
            self.lookup_asked = true;
            self.stats.lookups += 1;
            self.out.push_back(Output::Lookup);
        }
        Some(token)
    }

    fn punch_back(&mut self, now: Instant, token: &Token) {
        let Some(s) = self.sessions.get_mut(token) else { return };
        if s.role != Role::Accept || s.punched_back.is_some_and(|at| now.saturating_duration_since(at) < PUNCH_BACK_AGAIN) {
            return;
        }
        s.punched_back = Some(now);
        self.out.push_back(Output::PunchBack { origin: s.peer, referrer: s.referrer, check: Check::Relay(s.nonce) });
    }

    /// The engine started the relay lookup as `query` (None: no DHT).
    pub fn lookup_started(&mut self, query: Option<QueryId>) {
        self.lookup_asked = false;
        match query {
            Some(q) => {
                self.lookup = Some(q);
                self.found.clear();
            }
            None => {
                self.lookup = None;
                self.fail_looking("there is no DHT to find a relay on");
            }
        }
    }

    /// A DHT node answered the lookup with these relays.
    pub fn lookup_found(&mut self, query: QueryId, relays: &[SocketAddrV4]) {
        if self.lookup != Some(query) {
            return;
        }
        for r in relays {
            if self.found.len() >= MAX_RELAYS {
                break;
            }
            let ours = self.own_port == Some(r.port()) && self.public_ip == Some(*r.ip());
            if !ours && r.port() != 0 && !self.found.contains(r) {
                self.found.push(*r);
            }
        }
    }

    /// The lookup ended: sessions waiting for it join, or fail.
    pub fn lookup_done(&mut self, now: Instant, query: QueryId) {
        if self.lookup != Some(query) {
            return;
        }
        self.lookup = None;
        if !self.found.is_empty() {
            self.relays = std::mem::take(&mut self.found);
            self.relays_at = Some(now);
        }
        if self.relays.is_empty() {
            self.fail_looking("no relay is announced on the DHT");
            return;
        }
        for token in self.looking() {
            self.join(now, &token);
        }
    }

    /// Sessions waiting for the relay lookup.
    fn looking(&self) -> Vec<Token> {
        self.sessions.iter().filter(|(_, s)| s.state == State::Looking).map(|(t, _)| *t).collect()
    }

    fn fail_looking(&mut self, why: &str) {
        for token in self.looking() {
            self.fail(&token, why.to_string());
        }
    }

    fn join(&mut self, now: Instant, token: &Token) {
        let Some(relay) = pick(token, &self.relays) else { return };
        let Some(s) = self.sessions.get_mut(token) else { return };
        s.relay = Some(relay);
        s.state = State::Joined;
        tracing::debug!(peer = %s.peer, %relay, "relay session: joining");
        if let Err(e) = self.client.join(now, relay, *token) {
            self.fail(token, format!("the relay cannot be joined: {e}"));
        }
    }

    /// Ends session `token` at the relay and forgets it.
    fn forget(&mut self, token: &Token) -> Option<Session> {
        let s = self.sessions.remove(token)?;
        self.client.close(token);
        if let Some(conn) = s.conn {
            self.by_conn.remove(&conn);
        }
        Some(s)
    }

    /// Session `token` failed for `detail`; its error names its cause too.
    fn fail(&mut self, token: &Token, detail: String) {
        let Some(s) = self.forget(token) else { return };
        let error = format!("{} and {detail}", s.cause);
        match s.conn {
            // Connected: the connection ends with the session, with why.
            Some(conn) => {
                tracing::debug!(peer = %s.peer, "relayed connection lost: {error}");
                self.lost.push((conn, error));
            }
            None => {
                tracing::debug!(peer = %s.peer, "relay session failed: {error}");
                self.stats.sessions_failed += 1;
                self.out.push_back(Output::Failed { ip: *s.peer.ip(), error, quiet: s.fallback });
            }
        }
    }

    /// A datagram on the main socket that `looks_like_relay`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        if !self.sessions.values().any(|s| s.relay == Some(from)) {
            self.stats.dropped += 1;
            return;
        }
        self.client.handle_datagram(now, from, bytes);
        self.client_events(now);
    }

    fn client_events(&mut self, now: Instant) {
        while let Some(ev) = self.client.poll_event() {
            match ev {
                ClientEvent::Waiting { .. } => {}
                ClientEvent::Paired { token } => {
                    let Some(s) = self.sessions.get_mut(&token) else { continue };
                    if s.state == State::Paired {
                        continue;
                    }
                    s.state = State::Paired;
                    self.stats.sessions_paired += 1;
                    let Some(relay) = s.relay else { continue };
                    let mut utp = UtpLink::new(self.utp_config.clone(), rand::random());
                    match s.role {
                        Role::Connect => {
                            utp.set_accepting(false);
                            utp.connect(now, relay);
                        }
                        Role::Accept => utp.set_accepting(true),
                    }
                    tracing::debug!(peer = %s.peer, %relay, "relay session paired: uTP through the relay");
                    s.utp = Some(utp);
                }
                ClientEvent::Data { token, payload } => {
                    let Some(s) = self.sessions.get_mut(&token) else { continue };
                    if let (Some(utp), Some(relay)) = (s.utp.as_mut(), s.relay) {
                        if looks_like_utp(&payload) {
                            utp.handle_datagram(now, relay, &payload);
                        }
                    }
                }
                // The client forgot it already; `fail` closes nothing more there.
                ClientEvent::Failed { token, error } => self.fail(&token, format!("the relay failed: {error}")),
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let links = self.sessions.values().filter_map(|s| s.utp.as_ref().and_then(UtpLink::poll_timeout)).min();
        let deadlines = self.sessions.values().filter(|s| s.conn.is_none()).map(|s| s.deadline).min();
        let watched = self.watched.iter().map(|w| w.due).min();
        [self.client.poll_timeout(), links, deadlines, watched].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.fallbacks(now);
        self.client.handle_timeout(now);
        self.client_events(now);
        for s in self.sessions.values_mut() {
            if let Some(utp) = s.utp.as_mut() {
                utp.handle_timeout(now);
            }
        }
        let late: Vec<Token> = self.sessions.iter().filter(|(_, s)| s.conn.is_none() && now >= s.deadline).map(|(t, _)| *t).collect();
        for token in late {
            let why = match self.sessions.get(&token).map(|s| s.state) {
                Some(State::Joined) => "the peer never came to the relay",
                Some(State::Paired) => "uTP through the relay did not connect",
                _ => "no relay was found in time",
            };
            let budget = self.sessions.get(&token).map_or(RELAY_BUDGET, |s| s.deadline.saturating_duration_since(s.started));
            self.fail(&token, format!("{why} (within {} s)", budget.as_secs()));
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether connection `conn` runs through a relay.
    pub fn owns(&self, conn: u64) -> bool {
        self.by_conn.contains_key(&conn)
    }

    /// The connection of session `token` is `conn` from now on; returns
    /// its stream for the owner.
    pub fn adopt(&mut self, now: Instant, token: &Token, conn: u64) -> Option<ConnStream> {
        let s = self.sessions.get_mut(token)?;
        let utp_id = s.pending_utp?;
        let utp = s.utp.as_mut()?;
        utp.adopt(conn, utp_id);
        s.conn = Some(conn);
        self.by_conn.insert(conn, *token);
        self.stats.connections += 1;
        self.stats.last_ms = now.saturating_duration_since(s.started).as_millis() as u64;
        Some(ConnStream::Utp { remote: s.peer, peer_nat: Some(NatType::Random), relay: s.relay })
    }

    fn session_of(&mut self, conn: u64) -> Option<&mut Session> {
        let token = self.by_conn.get(&conn)?;
        self.sessions.get_mut(token)
    }

    pub fn write(&mut self, now: Instant, conn: u64, write: u32, data: Vec<u8>, out: &mut Vec<LinkEvent>) {
        if let Some(utp) = self.session_of(conn).and_then(|s| s.utp.as_mut()) {
            utp.write(now, conn, write, data, out);
        }
    }

    pub fn grant(&mut self, conn: u64) {
        if let Some(utp) = self.session_of(conn).and_then(|s| s.utp.as_mut()) {
            utp.grant(conn);
        }
    }

    pub fn shutdown(&mut self, now: Instant, conn: u64) {
        if let Some(utp) = self.session_of(conn).and_then(|s| s.utp.as_mut()) {
            utp.shutdown(now, conn);
        }
    }

    pub fn close(&mut self, now: Instant, conn: u64) {
        if let Some(utp) = self.session_of(conn).and_then(|s| s.utp.as_mut()) {
            utp.close(now, conn);
        }
    }

    /// The swarm is going away: close every connection and session.
    pub fn shut(&mut self, now: Instant) {
        let conns: Vec<u64> = self.by_conn.keys().copied().collect();
        for conn in conns {
            self.close(now, conn);
        }
        self.flush_links(now);
        let tokens: Vec<Token> = self.sessions.keys().copied().collect();
        for t in tokens {
            self.client.close(&t);
        }
        self.sessions.clear();
        self.by_conn.clear();
    }

    /// Moves the links' events to the owner (connections become
    /// [`Output::Connected`]), and queues what their endpoints and the
    /// client send; `poll_transmit` hands it out.
    pub fn pump(&mut self, now: Instant, sink: &dyn Fn(SwarmEvent)) {
        for (conn, error) in self.lost.drain(..) {
            sink(SwarmEvent::StreamClosed { id: conn, error: Some(error) });
        }
        let mut dead = Vec::new();
        for (token, s) in self.sessions.iter_mut() {
            let Some(utp) = s.utp.as_mut() else { continue };
            let mut evs = Vec::new();
            utp.poll(now, &mut evs);
            for ev in evs {
                match ev {
                    LinkEvent::Connected { utp: id } | LinkEvent::Incoming { utp: id, .. } => {
                        if s.conn.is_some() || s.pending_utp.is_some() {
                            utp.abandon(now, id);
                            continue;
                        }
                        s.pending_utp = Some(id);
                        self.out.push_back(Output::Connected { token: *token, ip: *s.peer.ip() });
                    }
                    LinkEvent::Failed { error, .. } => dead.push((*token, Some(format!("uTP through the relay failed: {error}")))),
                    LinkEvent::Data { conn, data } => sink(SwarmEvent::Data { id: conn, data }),
                    LinkEvent::Written { conn, write } => sink(SwarmEvent::Written { id: conn, write }),
                    LinkEvent::End { conn } => sink(SwarmEvent::End { id: conn }),
                    LinkEvent::Closed { conn, error } => {
                        sink(SwarmEvent::StreamClosed { id: conn, error });
                        dead.push((*token, None));
                    }
                }
            }
        }
        for (token, error) in dead {
            match error {
                Some(error) => self.fail(&token, error),
                // The connection closed: the session ends with it.
                None => {
                    self.flush_one(now, &token);
                    self.forget(&token);
                }
            }
        }
        self.flush_links(now);
    }

    fn flush_one(&mut self, now: Instant, token: &Token) {
        let Some(s) = self.sessions.get_mut(token) else { return };
        let Some(utp) = s.utp.as_mut() else { return };
        while let Some((_, bytes)) = utp.poll_transmit() {
            let _ = self.client.send(now, token, &bytes);
        }
    }

    fn flush_links(&mut self, now: Instant) {
        let tokens: Vec<Token> = self.sessions.iter().filter(|(_, s)| s.utp.is_some()).map(|(t, _)| *t).collect();
        for t in tokens {
            self.flush_one(now, &t);
        }
    }

    /// The next datagram for the main socket (to a relay).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.client.poll_transmit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{Relay, RelayConfig};
    use std::cell::RefCell;

    const RELAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 49738);
    const REF: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 49737);
    /// A and B as the referrer and the relay see them (their routers).
    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 10), 40001);
    const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 11), 40002);

    fn cap(check: Option<Check>) -> Capability {
        Capability { nat: NatType::Random, candidates: vec![], check }
    }

    /// Two swarms' relay sides and a relay core, on a virtual clock.
    struct Net {
        now: Instant,
        a: RelayIo,
        b: RelayIo,
        relay: Relay,
        /// What each side's owner heard: (conn, bytes) and the outputs.
        data: [RefCell<Vec<(u64, Vec<u8>)>>; 2],
        outs: [Vec<Output>; 2],
        conns: [Option<u64>; 2],
        /// Relays each side's lookup finds.
        found: Vec<SocketAddrV4>,
    }

    impl Net {
        fn new() -> Net {
            let now = Instant::now();
            Net {
                now,
                a: RelayIo::new(UtpConfig::default()),
                b: RelayIo::new(UtpConfig::default()),
                relay: Relay::new(RelayConfig::default(), now, [7; 32]),
                data: [RefCell::new(Vec::new()), RefCell::new(Vec::new())],
                outs: [Vec::new(), Vec::new()],
                conns: [None, None],
                found: vec![RELAY],
            }
        }

        fn side(&mut self, i: usize) -> &mut RelayIo {
            if i == 0 {
                &mut self.a
            } else {
                &mut self.b
            }
        }

        /// Pumps both sides and carries every datagram until nothing moves.
        fn settle(&mut self) {
            for _ in 0..200 {
                let mut moved = false;
                for i in 0..2 {
                    let now = self.now;
                    let data = &self.data[i];
                    let side = if i == 0 { &mut self.a } else { &mut self.b };
                    side.pump(now, &|ev| {
                        if let SwarmEvent::Data { id, data: d } = ev {
                            data.borrow_mut().push((id, d));
                        }
                    });
                    while let Some(o) = self.side(i).poll_output() {
                        moved = true;
                        match &o {
                            Output::Lookup => {
                                let q = 100 + i as u64;
                                let found = self.found.clone();
                                let s = self.side(i);
                                s.lookup_started(Some(q));
                                s.lookup_found(q, &found);
                                s.lookup_done(now, q);
                            }
                            Output::Connected { token, .. } => {
                                let conn = 10 + i as u64;
                                let token = *token;
                                assert!(self.side(i).adopt(now, &token, conn).is_some());
                                self.conns[i] = Some(conn);
                            }
                            _ => {}
                        }
                        self.outs[i].push(o);
                    }
                    let from = if i == 0 { A } else { B };
                    while let Some((to, bytes)) = self.side(i).poll_transmit() {
                        assert_eq!(to, RELAY, "a relay side sends only to the relay");
                        moved = true;
                        self.relay.handle_datagram(now, from, &bytes);
                    }
                }
                while let Some((to, bytes)) = self.relay.poll_transmit() {
                    moved = true;
                    let now = self.now;
                    if to == A {
                        self.a.handle_datagram(now, RELAY, &bytes);
                    } else if to == B {
                        self.b.handle_datagram(now, RELAY, &bytes);
                    }
                }
                if !moved {
                    return;
                }
            }
            panic!("never settled");
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
            let now = self.now;
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
            self.relay.handle_timeout(now);
            self.settle();
        }

        /// The punch-back B sent A with its nonce.
        fn punch_back(&self, i: usize) -> Option<Check> {
            self.outs[i].iter().find_map(|o| match o {
                Output::PunchBack { check, .. } => Some(*check),
                _ => None,
            })
        }
    }

    #[test]
    fn random_by_random_pairs_at_the_relay_and_carries_data_both_ways() {
        let mut n = Net::new();
        let t0 = n.now;
        // A punches B (relayed, A's record says random): B draws a nonce
        // and punches back with it; a dial of A waits for the session.
        n.b.punched_by(t0, NatType::Random, A, REF, &cap(None));
        n.settle();
        let Some(nonce @ Check::Relay(_)) = n.punch_back(1) else { panic!("B punches back with a nonce: {:?}", n.outs[1]) };
        assert!(n.outs[1].iter().any(|o| matches!(o, Output::Started { ip, until } if *ip == *A.ip() && *until == t0 + RELAY_BUDGET)));
        // B's punch reaches A through the referrer: A joins the same session.
        n.a.punched_by(t0, NatType::Random, B, REF, &cap(Some(nonce)));
        n.settle();
        assert!(n.punch_back(0).is_none(), "the side told the nonce does not punch back");
        assert_eq!(n.relay.stats().pairs, 1, "one pair at the relay");
        // uTP's handshake ran through the relay: both have a connection.
        let (ca, cb) = (n.conns[0].expect("A connected"), n.conns[1].expect("B connected"));
        assert!(n.a.owns(ca) && n.b.owns(cb));
        let mut evs = Vec::new();
        n.a.write(n.now, ca, 1, b"hello from a".to_vec(), &mut evs);
        n.b.write(n.now, cb, 1, b"hello from b".to_vec(), &mut evs);
        n.settle();
        n.b.grant(cb);
        n.a.grant(ca);
        n.settle();
        assert!(n.data[1].borrow().iter().any(|(c, d)| *c == cb && d == b"hello from a"), "{:?}", n.data[1]);
        assert!(n.data[0].borrow().iter().any(|(c, d)| *c == ca && d == b"hello from b"), "{:?}", n.data[0]);
        assert!(n.relay.stats().forwarded >= 4);
        let (sa, sb) = (n.a.stats(), n.b.stats());
        assert_eq!((sa.connections, sb.connections, sa.sessions_failed, sb.sessions_failed), (1, 1, 0, 0));
        // Closing one side ends both sessions at the relay's word.
        n.a.close(n.now, ca);
        n.advance(Duration::from_secs(1));
        n.advance(Duration::from_secs(5));
        assert_eq!(n.a.sessions.len(), 0, "A's session ends with its connection");
        n.b.shut(n.now);
        assert_eq!(n.b.sessions.len(), 0);
    }

    #[test]
    fn no_relay_found_fails_at_once_with_the_reason_and_a_silent_partner_within_the_budget() {
        let mut n = Net::new();
        n.found.clear();
        n.b.punched_by(n.now, NatType::Random, A, REF, &cap(None));
        n.settle();
        let failed: Vec<_> = n.outs[1].iter().filter_map(|o| if let Output::Failed { error, .. } = o { Some(error.clone()) } else { None }).collect();
        assert_eq!(failed, vec!["both NATs are random and no relay is announced on the DHT".to_string()]);
        assert_eq!(n.b.stats().sessions_failed, 1);
        // A relay, but the peer never comes: failed when the budget is spent.
        let mut n = Net::new();
        n.b.punched_by(n.now, NatType::Random, A, REF, &cap(None));
        n.settle();
        n.advance(RELAY_BUDGET - Duration::from_secs(1));
        assert!(!n.outs[1].iter().any(|o| matches!(o, Output::Failed { .. })));
        n.advance(Duration::from_secs(1));
        assert!(n.outs[1].iter().any(|o| matches!(o, Output::Failed { error, .. } if error.contains("never came to the relay"))), "{:?}", n.outs[1]);
        assert_eq!(n.b.sessions.len(), 0);
    }

    #[test]
    fn a_relay_at_its_cap_refuses_and_both_dials_hear_why() {
        let mut n = Net::new();
        n.relay = Relay::new(RelayConfig { max_pairs: 0, ..RelayConfig::default() }, n.now, [7; 32]);
        n.b.punched_by(n.now, NatType::Random, A, REF, &cap(None));
        n.settle();
        let nonce = n.punch_back(1).unwrap();
        n.a.punched_by(n.now, NatType::Random, B, REF, &cap(Some(nonce)));
        n.settle();
        for i in 0..2 {
            let failed: Vec<&String> = n.outs[i].iter().filter_map(|o| if let Output::Failed { error, quiet: false, .. } = o { Some(error) } else { None }).collect();
            assert_eq!(failed.len(), 1, "side {i}: {:?}", n.outs[i]);
            assert!(failed[0].contains("relay refused: the relay carries as many pairs as it may"), "{}", failed[0]);
        }
        assert_eq!((n.a.stats().sessions_failed, n.b.stats().sessions_failed), (1, 1));
        assert!(n.conns.iter().all(Option::is_none));
    }

    #[test]
    fn only_random_by_random_and_bounded() {
        let t0 = Instant::now();
        let mut r = RelayIo::new(UtpConfig::default());
        // Any other pair of classes: nothing.
        for (ours, theirs) in [(NatType::Consistent, NatType::Random), (NatType::Random, NatType::Consistent), (NatType::Unknown, NatType::Random), (NatType::Open, NatType::Random)] {
            r.punched_by(t0, ours, A, REF, &Capability { nat: theirs, candidates: vec![], check: None });
        }
        assert!(r.poll_output().is_none());
        // Forged punches from many IPs: at most MAX_SESSIONS sessions, one
        // lookup, one punch back each; none to the forged addresses.
        for i in 0..100u32 {
            let origin = SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + i), 4000);
            r.punched_by(t0, NatType::Random, origin, REF, &cap(None));
            r.punched_by(t0, NatType::Random, origin, REF, &cap(None));
        }
        assert_eq!(r.sessions.len(), MAX_SESSIONS);
        let outs: Vec<Output> = std::iter::from_fn(|| r.poll_output()).collect();
        assert_eq!(outs.iter().filter(|o| matches!(o, Output::Lookup)).count(), 1);
        assert_eq!(outs.iter().filter(|o| matches!(o, Output::PunchBack { .. })).count(), MAX_SESSIONS);
        assert!(r.poll_transmit().is_none(), "nothing sent before a relay is known");
        // A datagram from anything but a joined relay is dropped and counted.
        r.handle_datagram(t0, SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 1), &[0xff, 0x52, 1, 4]);
        assert_eq!(r.stats().dropped, 1);
        // The same peer IP again within REPEAT_AFTER, once its session is gone: no new one.
        r.shut(t0);
        r.punched_by(t0 + Duration::from_secs(1), NatType::Random, SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000), 4000), REF, &cap(None));
        assert_eq!(r.sessions.len(), 0);
        r.punched_by(t0 + REPEAT_AFTER, NatType::Random, SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000), 4000), REF, &cap(None));
        assert_eq!(r.sessions.len(), 1);
    }

    #[test]
    fn a_peer_of_ours_that_punched_and_never_connected_gets_a_relay_session() {
        let mut n = Net::new();
        let t0 = n.now;
        let consistent = Capability { nat: NatType::Consistent, candidates: vec![], check: None };
        // A punched B (both consistent): nothing yet, and a connection in
        // time means nothing ever.
        n.b.punched_by(t0, NatType::Consistent, A, REF, &consistent);
        n.advance(FALLBACK_AFTER - Duration::from_secs(1));
        assert!(n.outs[1].is_empty(), "{:?}", n.outs[1]);
        n.b.connected_to(n.now, *A.ip());
        n.advance(Duration::from_secs(2));
        assert!(n.outs[1].is_empty(), "connected: no fallback");
        // Punched again by a peer it connected with: not watched.
        n.b.punched_by(n.now, NatType::Consistent, A, REF, &consistent);
        n.advance(FALLBACK_AFTER);
        assert!(n.outs[1].is_empty());

        // No connection within FALLBACK_AFTER: B starts a session and
        // sends its nonce; A, told it, joins whatever the classes; they
        // connect through the relay.
        let mut n = Net::new();
        let t0 = n.now;
        n.b.punched_by(t0, NatType::Consistent, A, REF, &consistent);
        n.advance(FALLBACK_AFTER);
        let Some(nonce @ Check::Relay(_)) = n.punch_back(1) else { panic!("B sends a nonce: {:?}", n.outs[1]) };
        assert_eq!(n.b.stats().fallbacks, 1);
        n.a.punched_by(n.now, NatType::Consistent, B, REF, &Capability { nat: NatType::Consistent, candidates: vec![], check: Some(nonce) });
        n.settle();
        assert!(n.conns[0].is_some() && n.conns[1].is_some(), "{:?} {:?}", n.outs[0], n.outs[1]);
        // A fallback that fails is not warned about: nobody asked for it.
        let mut n = Net::new();
        n.found.clear();
        n.b.punched_by(n.now, NatType::Open, A, REF, &consistent);
        n.advance(FALLBACK_AFTER);
        assert!(
            n.outs[1].iter().any(|o| matches!(o, Output::Failed { quiet: true, error, .. } if error == "no punch got through and no relay is announced on the DHT")),
            "{:?}",
            n.outs[1]
        );
    }

    #[test]
    fn crossed_nonces_settle_on_the_smaller_one_on_both_sides() {
        let mut n = Net::new();
        let t0 = n.now;
        // Both punched each other at once: each drew a nonce.
        n.a.punched_by(t0, NatType::Random, B, REF, &cap(None));
        n.b.punched_by(t0, NatType::Random, A, REF, &cap(None));
        let (Some(Check::Relay(na)), Some(Check::Relay(nb))) = (
            std::iter::from_fn(|| n.a.poll_output()).find_map(|o| if let Output::PunchBack { check, .. } = o { Some(check) } else { None }),
            std::iter::from_fn(|| n.b.poll_output()).find_map(|o| if let Output::PunchBack { check, .. } = o { Some(check) } else { None }),
        ) else {
            panic!("both punch back with a nonce")
        };
        // Each hears the other's nonce.
        n.a.punched_by(t0, NatType::Random, B, REF, &cap(Some(Check::Relay(nb))));
        n.b.punched_by(t0, NatType::Random, A, REF, &cap(Some(Check::Relay(na))));
        let token = token_from_nonce(&na.min(nb));
        assert_eq!(n.a.sessions.keys().collect::<Vec<_>>(), vec![&token]);
        assert_eq!(n.b.sessions.keys().collect::<Vec<_>>(), vec![&token]);
        // The sessions connect (the lookups answer in `settle`).
        n.a.lookup_started(Some(1));
        n.a.lookup_found(1, &[RELAY]);
        n.a.lookup_done(t0, 1);
        n.b.lookup_started(Some(2));
        n.b.lookup_found(2, &[RELAY]);
        n.b.lookup_done(t0, 2);
        n.settle();
        assert!(n.conns[0].is_some() && n.conns[1].is_some(), "{:?} {:?}", n.outs[0], n.outs[1]);
        assert_eq!(n.relay.stats().pairs, 1);
    }
}
