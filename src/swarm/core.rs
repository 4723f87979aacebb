//! The swarm's dialling decisions as one sans-IO state machine: which peer
//! to dial, how each connect race runs, and when it is won or lost.
//!
//! # Design
//!
//! Like the other cores (`dht`, `utp`, `lan`, `discovery`) it is driven as
//! `(now, input) -> actions + next deadline`, with no socket, clock, task
//! or runtime inside, so that tests run thousands of dials on a virtual
//! clock (`tests/swarm_core.rs`).
//!
//! **Inputs.** [`SwarmCore::peer_found`] (discovery named a peer: the dial
//! queue, [`PeerQueue`], decides if and when), [`SwarmCore::tcp_incoming`]
//! (taken or refused by the accept limits, [`AcceptLimits`]),
//! [`SwarmCore::dial`] (the
//! caller's `connect`), the outcomes of what the core asked for
//! ([`SwarmCore::tcp_result`], [`SwarmCore::punch_started`] and
//! [`SwarmCore::punch_result`], [`SwarmCore::caller_punched`],
//! [`SwarmCore::utp_started`], [`SwarmCore::utp_connected`] and
//! [`SwarmCore::utp_failed`]), [`SwarmCore::connection_closed`], and
//! [`SwarmCore::handle_timeout`] at [`SwarmCore::poll_timeout`].
//!
//! **Outputs.** [`SwarmCore::poll_action`] yields [`Action`]s: start or
//! abort a TCP dial, punch (through the DHT, or ask the caller), start or
//! abandon a uTP attempt, and exactly one [`Action::Won`] or
//! [`Action::Failed`] per race, after the actions that tear down its
//! losing legs.
//!
//! **Identifiers.** The core numbers races and connections. Punch requests
//! and uTP attempts are numbered by the DHT and the uTP endpoint, which the
//! driver owns: it executes [`Action::Punch`] or [`Action::UtpConnect`] and
//! reports the id it got at once ([`SwarmCore::punch_started`],
//! [`SwarmCore::utp_started`]), so that every index from an attempt back
//! to its race lives here and the driver keeps none.
//!
//! **The TCP stream.** A connected TCP socket is an opaque `S` to the core:
//! it travels in [`SwarmCore::tcp_result`] and comes back out in
//! [`Action::Won`], or is dropped (closed) here when its race was already
//! decided. The driver therefore never stashes streams; tests use `()`.
//!
//! **What stays in the driver.** Sockets and the bytes on them, the tokio
//! tasks of TCP dials (and their abort handles, by race), the DHT and uTP
//! endpoints the actions are executed on, the accept loop and its pause
//! after `accept` errors (an OS matter), stats, and turning [`Action::Won`] and [`Action::Failed`] into
//! [`super::SwarmEvent`]s.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use crate::discovery::Peer;
use crate::dht::RequestId;
use crate::utp::config::MAX_INCOMING_PER_IP;
use crate::utp::ConnId;

use super::accept::AcceptLimits;
use super::error::ConnectError;
use super::peer_queue::PeerQueue;
use super::race::{Leg, Race};

pub use super::accept::Refusal;
pub use super::peer_queue::{CONNECT_TIMEOUT, FORGET_UNRESPONSIVE, MAX_TRACKED, REQUEUE};
pub use super::race::{DialKind, LAN_UTP_TIMEOUT, UDP_LEG_DELAY};

/// A connect race, numbered by the core.
pub type RaceId = u64;

/// Why a TCP dial failed: the error the caller sees, and whether the
/// peer's host refused (it is up and its TCP is not taking), which alone
/// lets a LAN peer be tried over uTP directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpError {
    pub error: ConnectError,
    pub refused: bool,
}

/// The leg that won a race.
#[derive(Debug, PartialEq, Eq)]
pub enum Via<S> {
    /// The connected TCP stream, as given to [`SwarmCore::tcp_result`].
    Tcp(S),
    /// The uTP attempt that connected; it is the connection now.
    Utp(ConnId),
    /// A path outside the race connected (a relay session,
    /// [`SwarmCore::side_won`]); the driver holds the connection.
    Side,
}

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<S> {
    /// Dial `peer` over TCP; report with [`SwarmCore::tcp_result`].
    StartTcp { race: RaceId, peer: Peer },
    /// The race no longer needs its TCP dial: stop it.
    AbortTcp { race: RaceId },
    /// Ask the DHT to punch through `referrer` to `target`; report the
    /// request's id (or that there is no DHT) with
    /// [`SwarmCore::punch_started`] before taking the next action.
    Punch { race: RaceId, target: SocketAddrV4, referrer: SocketAddrV4 },
    /// Send the punch request, but nobody waits for its answer: TCP won
    /// inside its head start, and the referrer still hears the punch as the
    /// reference's (sent at once, beside TCP) would reach it.
    PunchUnanswered { target: SocketAddrV4, referrer: SocketAddrV4 },
    /// The punch is the caller's: tell it (`SwarmEvent::Punch`) and report
    /// its answer with [`SwarmCore::caller_punched`].
    AskCallerToPunch { race: RaceId, request: u32 },
    /// Open a uTP connection to `addr`; report its id with
    /// [`SwarmCore::utp_started`] before taking the next action.
    UtpConnect { race: RaceId, addr: SocketAddrV4 },
    /// Close uTP attempt `utp`: it lost its race, or belongs to none.
    AbandonUtp { utp: ConnId },
    /// The race is won; the connection's id is `conn`.
    Won { race: RaceId, kind: DialKind, peer: Peer, conn: u64, via: Via<S> },
    /// The race is lost.
    Failed { race: RaceId, kind: DialKind, peer: Peer, error: ConnectError },
}

/// The dial queue and every connect race of one swarm.
pub struct SwarmCore<S> {
    queue: PeerQueue,
    accept: AcceptLimits,
    races: HashMap<RaceId, Race>,
    by_punch: HashMap<RequestId, RaceId>,
    by_utp: HashMap<ConnId, RaceId>,
    actions: VecDeque<Action<S>>,
    /// Race TCP at all (`SwarmConfig::dial_tcp`).
    dial_tcp: bool,
    /// A UDP socket is bound: punches and uTP are possible.
    udp: bool,
    next_race: RaceId,
    next_conn: u64,
    /// The caller would dial the next new peer at once (see [`SwarmCore::speculate`]).
    speculate: bool,
    /// Addresses dialled ahead of the caller, never twice (bounded).
    speculated: HashSet<String>,
    next_speculation: u32,
}

/// Request ids of dials started ahead of the caller: the upper half of the
/// id space, so they never meet the caller's own (which stay below it).
pub const SPECULATIVE_REQUESTS: u32 = 0x8000_0000;
/// Addresses remembered as dialled ahead (then the memory starts over).
const MAX_SPECULATED: usize = 4096;
/// Dials ahead in flight at once (ours: the caller asks for one at a time;
/// this bounds what a caller that never claims them can cause).
pub const MAX_AHEAD: usize = 4;

impl<S> SwarmCore<S> {
    /// At most `max_dials` automatic dials at once; `dial_tcp: false`
    /// leaves only punch-then-uTP.
    pub fn new(max_dials: usize, dial_tcp: bool) -> Self {
        SwarmCore {
            queue: PeerQueue::new(max_dials),
            accept: AcceptLimits::new(MAX_INCOMING_PER_IP),
            races: HashMap::new(),
            by_punch: HashMap::new(),
            by_utp: HashMap::new(),
            actions: VecDeque::new(),
            dial_tcp,
            udp: false,
            next_race: 1,
            next_conn: 1,
            speculate: false,
            speculated: HashSet::new(),
            next_speculation: SPECULATIVE_REQUESTS,
        }
    }

    /// The caller (the `./hyperswarm` entry, which dials from its own
    /// queue) says whether it would dial a peer found now at once: its
    /// queue is empty, it has room and no `validatePeer`.
    pub fn set_speculation(&mut self, on: bool) {
        self.speculate = on;
    }

    /// A peer found for a looked-up topic while the caller dials: when the
    /// caller said it would dial it at once and the address is new, the
    /// dial starts now, as request id returned, and the caller claims it
    /// instead of dialling (saving the round trip through its thread).
    /// One per [`SwarmCore::set_speculation`]: the caller says again once
    /// it has seen the peer.
    pub fn speculate(&mut self, now: Instant, peer: &Peer) -> Option<u32> {
        if !self.speculate || self.speculated.contains(&peer.address_key()) {
            return None;
        }
        let ahead = self.races.values().filter(|r| matches!(r.kind, DialKind::Request(q) if q >= SPECULATIVE_REQUESTS)).count();
        if ahead >= MAX_AHEAD {
            return None;
        }
        self.speculate = false;
        if self.speculated.len() >= MAX_SPECULATED {
            self.speculated.clear();
        }
        self.speculated.insert(peer.address_key());
        let request = self.next_speculation;
        self.next_speculation = self.next_speculation.checked_add(1).unwrap_or(SPECULATIVE_REQUESTS);
        self.start(now, DialKind::Request(request), peer.clone(), false);
        Some(request)
    }

    /// At most `n` incoming TCP connections open per IP (0: no cap); the
    /// default is the uTP endpoint's [`MAX_INCOMING_PER_IP`].
    pub fn max_incoming_per_ip(mut self, n: usize) -> Self {
        self.accept = AcceptLimits::new(n);
        self
    }

    /// Whether incoming connections are taken (`maxConnections`).
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accept.set_accepting(accepting);
    }

    /// A TCP connection from `ip` came in: its connection id, or why it is
    /// to be closed at once. The owner reports it closed like any other
    /// ([`Self::connection_closed`]), which frees its place.
    pub fn tcp_incoming(&mut self, ip: std::net::IpAddr) -> Result<u64, Refusal> {
        let conn = self.next_conn;
        self.accept.admit(ip, conn)?;
        self.next_conn += 1;
        Ok(conn)
    }

    /// The UDP socket is bound (or gone): punches and uTP can run.
    pub fn set_udp(&mut self, bound: bool) {
        self.udp = bound;
    }

    /// A fresh connection id, for an incoming connection: dialled and
    /// accepted connections share one numbering.
    pub fn conn_id(&mut self) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    /// Every connection id handed out so far is below this.
    pub fn conn_ids_end(&self) -> u64 {
        self.next_conn
    }

    /// The dial queue (its size and refusals, for stats).
    pub fn queue(&self) -> &PeerQueue {
        &self.queue
    }

    /// Races running.
    pub fn races(&self) -> usize {
        self.races.len()
    }

    /// Whether a dial to a peer at `ip` runs: that IP came from our own
    /// lookup or from the caller, not from a datagram anyone could forge.
    pub fn dialling_ip(&self, ip: std::net::Ipv4Addr) -> bool {
        self.races.values().any(|r| r.peer.addr_v4().is_some_and(|a| *a.ip() == ip))
    }

    /// Punch requests and uTP attempts the core waits on.
    pub fn attempts(&self) -> (usize, usize) {
        (self.by_punch.len(), self.by_utp.len())
    }

    pub fn poll_action(&mut self) -> Option<Action<S>> {
        self.actions.pop_front()
    }

    /// The earliest race deadline, UDP leg start or queue retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let races = self.races.values().flat_map(|r| [Some(r.deadline), r.udp_at]).flatten().min();
        [races, self.queue.poll_timeout()].into_iter().flatten().min()
    }

    /// Discovery reported `peer` (of a joined topic, with automatic dials
    /// on). Returns whether the queue took it.
    pub fn peer_found(&mut self, now: Instant, peer: Peer) -> bool {
        let queued = self.queue.discovered(now, peer);
        self.pump(now);
        queued
    }

    /// The caller's `connect`: a race outside the queue.
    pub fn dial(&mut self, now: Instant, kind: DialKind, peer: Peer, caller_punch: bool) -> RaceId {
        self.start(now, kind, peer, caller_punch)
    }

    /// The owner closed connection `conn`: its peer may be dialled again
    /// once rediscovered, or its place under the per-IP cap is free.
    pub fn connection_closed(&mut self, conn: u64) {
        self.queue.closed(conn);
        self.accept.closed(conn);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<RaceId> = self.races.iter().filter(|(_, r)| r.deadline <= now).map(|(id, _)| *id).collect();
        for race in expired {
            self.fail(now, race, ConnectError::TimedOut);
        }
        let due: Vec<RaceId> = self.races.iter().filter(|(_, r)| r.udp_at.is_some_and(|at| at <= now)).map(|(id, _)| *id).collect();
        for race in due {
            self.start_udp_leg(now, race);
        }
        self.pump(now);
    }

    /// Race `race`'s TCP dial ended. A stream for a race already decided
    /// is dropped here.
    pub fn tcp_result(&mut self, now: Instant, race: RaceId, result: Result<S, TcpError>) {
        let Some(r) = self.races.get_mut(&race) else { return };
        if r.tcp != Leg::Running {
            return;
        }
        match result {
            Ok(stream) => {
                self.win(now, race, Via::Tcp(stream));
            }
            Err(TcpError { error, refused }) => {
                r.tcp = Leg::Failed;
                if r.udp_pending.is_some() {
                    // TCP is out: punch at once rather than wait.
                    self.start_udp_leg(now, race);
                } else if let Some(addr) = self.udp.then(|| r.lan_fallback(now, refused, &error)).flatten() {
                    // A LAN peer refusing TCP may still take uTP (its TCP
                    // is full or firewalled); there is nothing to punch.
                    tracing::debug!(peer = %r.peer, "TCP refused on the LAN: dialling uTP directly");
                    self.actions.push_back(Action::UtpConnect { race, addr });
                } else if r.lost() {
                    self.fail(now, race, error);
                }
            }
        }
        self.pump(now);
    }

    /// The driver sent race `race`'s punch as DHT request `request`, or
    /// could not (`None`: no DHT).
    pub fn punch_started(&mut self, now: Instant, race: RaceId, request: Option<RequestId>) {
        let Some(r) = self.races.get_mut(&race) else { return };
        match request {
            Some(req) => {
                r.punch = Some(req);
                self.by_punch.insert(req, race);
            }
            None => {
                r.utp = Leg::Failed;
                if r.lost() {
                    self.fail(now, race, ConnectError::NoPath("no DHT to punch through"));
                }
            }
        }
        self.pump(now);
    }

    /// DHT punch `request` was answered from `from`, or failed (`None`).
    /// An answer for a race already decided is dropped.
    pub fn punch_result(&mut self, now: Instant, request: RequestId, from: Option<SocketAddrV4>) {
        let Some(race) = self.by_punch.remove(&request) else { return };
        if let Some(r) = self.races.get_mut(&race) {
            r.punch = None;
        }
        self.punched(now, race, from);
    }

    /// The caller's punch for dial `request` ended.
    pub fn caller_punched(&mut self, now: Instant, request: u32, ok: bool) {
        let Some((&race, r)) = self.races.iter_mut().find(|(_, r)| r.awaiting_caller && r.kind == DialKind::Request(request)) else {
            return;
        };
        r.awaiting_caller = false;
        let target = r.peer.addr_v4();
        self.punched(now, race, target.filter(|_| ok));
    }

    /// The driver opened race `race`'s uTP attempt as `utp`.
    pub fn utp_started(&mut self, race: RaceId, utp: ConnId) {
        match self.races.get_mut(&race) {
            Some(r) => {
                r.utp_id = Some(utp);
                self.by_utp.insert(utp, race);
            }
            None => self.actions.push_back(Action::AbandonUtp { utp }),
        }
    }

    /// uTP attempt `utp` connected. One that no race waits for is abandoned.
    pub fn utp_connected(&mut self, now: Instant, utp: ConnId) {
        match self.by_utp.remove(&utp) {
            Some(race) if self.races.contains_key(&race) => {
                self.win(now, race, Via::Utp(utp));
                self.pump(now);
            }
            _ => self.actions.push_back(Action::AbandonUtp { utp }),
        }
    }

    /// uTP attempt `utp` failed (reset, or its SYNs unanswered).
    pub fn utp_failed(&mut self, now: Instant, utp: ConnId, reason: String) {
        let Some(race) = self.by_utp.remove(&utp) else { return };
        let Some(r) = self.races.get_mut(&race) else { return };
        r.utp_id = None;
        r.utp = Leg::Failed;
        if r.lost() {
            self.fail(now, race, ConnectError::Failed { reason, errno: None });
        }
        self.pump(now);
    }

    /// A longer path to the peer at `ip` started outside the races (a relay
    /// session): every race dialling that IP waits for it until `until`,
    /// past the reference's 10 s when the path needs longer (the budget is
    /// the caller's to keep, at most 35 s).
    pub fn side_started(&mut self, ip: std::net::Ipv4Addr, until: Instant) -> usize {
        let mut n = 0;
        for r in self.races.values_mut().filter(|r| r.peer.addr_v4().is_some_and(|a| *a.ip() == ip)) {
            r.side = Leg::Running;
            r.deadline = r.deadline.max(until);
            n += 1;
        }
        n
    }

    /// The path outside the races connected with the peer at `ip`: the
    /// oldest race dialling it wins, and the connection's id is returned;
    /// None when no race dials that IP (the connection is an incoming one).
    pub fn side_won(&mut self, now: Instant, ip: std::net::Ipv4Addr) -> Option<u64> {
        let race = self.races.iter().filter(|(_, r)| r.peer.addr_v4().is_some_and(|a| *a.ip() == ip)).map(|(id, _)| *id).min()?;
        let conn = self.win(now, race, Via::Side);
        self.pump(now);
        conn
    }

    /// The path outside the races failed for the peer at `ip` with
    /// `error`: a race that has nothing else running fails with it.
    pub fn side_failed(&mut self, now: Instant, ip: std::net::Ipv4Addr, error: ConnectError) {
        let races: Vec<RaceId> = self.races.iter().filter(|(_, r)| r.side == Leg::Running && r.peer.addr_v4().is_some_and(|a| *a.ip() == ip)).map(|(id, _)| *id).collect();
        for race in races {
            let Some(r) = self.races.get_mut(&race) else { continue };
            r.side = Leg::Failed;
            if r.lost() {
                self.fail(now, race, error.clone());
            }
        }
        self.pump(now);
    }

    /// Starts queued automatic dials while the queue allows.
    fn pump(&mut self, now: Instant) {
        while let Some(peer) = self.queue.next_dial(now) {
            self.start(now, DialKind::Auto, peer, false);
        }
    }

    /// Starts a connect race: TCP now, and a punch then uTP when the peer
    /// came with a referrer (spec/api-network.md §2.5).
    fn start(&mut self, now: Instant, kind: DialKind, peer: Peer, caller_punch: bool) -> RaceId {
        let race = self.next_race;
        self.next_race += 1;
        let udp_leg = match (&peer.referrer, peer.addr_v4(), self.udp) {
            // The caller punches however it likes: its referrer need not be an address.
            (Some(_), Some(addr), true) if caller_punch => Some((addr, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))),
            (Some(r), Some(addr), true) => r.host.ipv4().map(|rip| (addr, SocketAddrV4::new(rip, r.port))),
            _ => None,
        };
        let mut r = Race::new(now, kind, peer.clone(), udp_leg.is_some());
        r.caller_punch = caller_punch;
        if self.dial_tcp {
            self.actions.push_back(Action::StartTcp { race, peer });
        } else {
            r.tcp = Leg::Absent;
        }
        if let Some(leg) = udp_leg {
            r.udp_pending = Some(leg);
            r.udp_at = Some(if self.dial_tcp { now + super::race::head_start(leg.0) } else { now });
        }
        let lost = r.lost();
        let start_now = r.udp_at.is_some_and(|at| at <= now);
        self.races.insert(race, r);
        if lost {
            self.fail(now, race, ConnectError::NoPath("no transport to try"));
        } else if start_now {
            self.start_udp_leg(now, race);
        }
        race
    }

    /// Punch through the referrer; uTP follows when the punch is answered.
    fn start_udp_leg(&mut self, _now: Instant, race: RaceId) {
        let Some(r) = self.races.get_mut(&race) else { return };
        r.udp_at = None;
        let Some((target, referrer)) = r.udp_pending.take() else { return };
        match r.kind {
            DialKind::Request(request) if r.caller_punch => {
                r.awaiting_caller = true;
                self.actions.push_back(Action::AskCallerToPunch { race, request });
            }
            _ => self.actions.push_back(Action::Punch { race, target, referrer }),
        }
    }

    /// The UDP leg's punch ended: answered from `from`, or failed.
    fn punched(&mut self, now: Instant, race: RaceId, from: Option<SocketAddrV4>) {
        let Some(r) = self.races.get_mut(&race) else { return };
        match from {
            // Dial where the punched peer's answer came from: behind a NAT
            // that is the mapping that is open now, which may not be the
            // address that was announced.
            Some(from) => {
                let addr = match r.peer.addr_v4() {
                    Some(addr) if addr.ip() == from.ip() => from,
                    Some(addr) => addr,
                    None => from,
                };
                self.actions.push_back(Action::UtpConnect { race, addr });
            }
            None => {
                r.utp = Leg::Failed;
                if r.lost() {
                    // The reference hands back the punch's own error when
                    // it is the last leg to fail: dht-rpc's timeout message.
                    self.fail(now, race, ConnectError::PunchFailed);
                }
            }
        }
        self.pump(now);
    }

    /// Forgets race `race`'s attempts; returns the race.
    fn unindex(&mut self, race: RaceId) -> Option<Race> {
        let r = self.races.remove(&race)?;
        if let Some(req) = r.punch {
            self.by_punch.remove(&req);
        }
        if let Some(utp) = r.utp_id {
            self.by_utp.remove(&utp);
        }
        Some(r)
    }

    /// A leg connected first: it is the connection; the others are dropped.
    /// Returns the connection's id.
    fn win(&mut self, _now: Instant, race: RaceId, via: Via<S>) -> Option<u64> {
        let Some(r) = self.unindex(race) else { return None };
        if let Some((target, referrer)) = r.udp_pending {
            self.actions.push_back(Action::PunchUnanswered { target, referrer });
        }
        match &via {
            Via::Utp(_) if r.tcp == Leg::Running => self.actions.push_back(Action::AbortTcp { race }),
            Via::Tcp(_) => {
                if let Some(utp) = r.utp_id {
                    self.actions.push_back(Action::AbandonUtp { utp });
                }
            }
            Via::Utp(_) => {}
            Via::Side => {
                if r.tcp == Leg::Running {
                    self.actions.push_back(Action::AbortTcp { race });
                }
                if let Some(utp) = r.utp_id {
                    self.actions.push_back(Action::AbandonUtp { utp });
                }
            }
        }
        let conn = self.conn_id();
        if r.kind == DialKind::Auto {
            self.queue.dial_succeeded(&r.peer, conn);
        }
        self.actions.push_back(Action::Won { race, kind: r.kind, peer: r.peer, conn, via });
        Some(conn)
    }

    fn fail(&mut self, now: Instant, race: RaceId, error: ConnectError) {
        let Some(r) = self.unindex(race) else { return };
        // After a LAN peer's direct uTP dial, TCP's refusal is the answer.
        let error = r.tcp_error.clone().unwrap_or(error);
        if r.tcp == Leg::Running {
            self.actions.push_back(Action::AbortTcp { race });
        }
        if let Some(utp) = r.utp_id {
            self.actions.push_back(Action::AbandonUtp { utp });
        }
        if r.kind == DialKind::Auto {
            tracing::debug!(peer = %r.peer, "dial failed: {error}");
            self.queue.dial_failed(now, &r.peer);
        }
        self.actions.push_back(Action::Failed { race, kind: r.kind, peer: r.peer, error });
    }
}
