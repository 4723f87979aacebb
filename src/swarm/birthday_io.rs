//! The driver side of birthday punching ([`super::birthday`]): the extra
//! UDP sockets, their readers, and the uTP connection over the socket that
//! won. Every decision (when to start, what to send where, when to stop)
//! is the sans-IO machine's; this file binds, sends, reads and closes.
//!
//! # Who starts, in either join order
//!
//! Both sides learn the other's NAT class from capability records
//! (`dht::capability`), but a record only travels two ways: inside a
//! relayed `_holepunch` (the referrer has a flow to the punched peer, so it
//! always arrives) and inside the punched peer's answer (which a random
//! NAT drops: it comes from an address the random side never sent to). So
//! the punched peer is the one that learns. When it sees that exactly one
//! side is random ([`super::birthday::role_for`]), it starts its half of
//! the session and punches back through the same referrer, once, with its
//! own record; that punch is relayed to the first peer, which learns the
//! same thing and starts its half (it is already in a session with that
//! IP, or had one within `REPEAT_AFTER`, so it does not punch back again).
//! Whoever dialled, and whichever side is random, both halves run within
//! one relay round trip of each other. A JS peer sends no record, so none
//! of this ever reaches one.
//!
//! # uTP over the winning socket
//!
//! The uTP endpoint is sans-IO and keys connections by peer address and
//! id, not by socket, so the simplest sound design is one more endpoint
//! ([`UtpLink`]) per winning socket: it carries exactly one connection,
//! dialled at once to the consistent side's address (the random side
//! always connects, see `birthday`), and is dropped with its socket when
//! that connection closes or fails to connect. The consistent side needs
//! nothing: the SYN arrives on its main socket, which takes it as any
//! incoming uTP connection. Connection ids come from the swarm core's one
//! numbering, so the owner cannot tell which endpoint a connection lives
//! on; the engine asks [`BirthdayIo::owns`] to route its calls.
//!
//! A dial of the peer that runs when a session starts waits for it (the
//! session's [`super::birthday::BUDGET`], past the reference's 10 s), and
//! the session's connection answers it ([`RaceNews`]): the winning
//! socket's connection on the random side, the random side's uTP
//! connection on the consistent side. With no such dial the connection
//! reaches the owner as an incoming one (`client: false`, no peer). A
//! session that ends without a connection fails the dial with its reason.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::birthday::{role_for, Birthday, BirthdayStats, Output, Refused, Role, SockId, Via};
use super::event::{ConnStream, SwarmEvent};
use super::utp_link::{LinkEvent, UtpLink};
use crate::dht::capability::{Capability, Check};
use crate::dht::nat::NatType;
use crate::utp::{looks_like_utp, UtpConfig};

/// Datagrams from extra sockets queued for the driver: the readers wait
/// when it is full (bounded; the kernel's buffers drop the rest).
const QUEUE: usize = 256;

/// How long after a session got through a connection from its peer's IP
/// still counts as the punch's: the random side's uTP handshake and first
/// data, a few round trips.
const WON_GRACE: Duration = Duration::from_secs(10);

/// How long a punch from a peer of ours waits for our own NAT class to be
/// known: a join's first DHT round hears from 3 /24s within a few seconds
/// (the NAT lab: under 2 s), and the peer's dial gives up at 10 s.
const PENDING_FOR: Duration = Duration::from_secs(10);

/// A peer's punch that came while our NAT class was unknown.
struct Pending {
    origin: SocketAddrV4,
    referrer: SocketAddrV4,
    theirs: NatType,
    /// Whether the punch's origin was proved (see [`BirthdayIo::punched_by`]).
    verified: bool,
    check: Option<Check>,
    until: Instant,
}

/// Largest datagram read on an extra socket: uTP packets stay under
/// 1.5 KiB and birthday packets are 6 bytes.
const EXTRA_BUF: usize = 2048;

/// What [`BirthdayIo::punched_by`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do (no role for these NAT classes, or refused).
    None,
    /// Punch back through the referrer with our record, carrying this
    /// check: a session started and the peer must learn our record too
    /// (with the echo of its challenge, if it sent one), or the peer's
    /// address must be proved first (a challenge), or a hint (none).
    PunchBack(Option<Check>),
}

/// How long a challenge waits for its echo: the peer's dial gives up at
/// 10 s (the reference's connect deadline).
const CHALLENGE_FOR: Duration = Duration::from_secs(10);

/// A challenge to the same IP is sent again no sooner than this: the
/// peer's punch retries arrive every half second or so, and the first
/// challenge may be lost like any datagram.
const CHALLENGE_AGAIN: Duration = Duration::from_secs(1);

struct Extra {
    sock: Arc<UdpSocket>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Extra {
    fn drop(&mut self) {
        // The reader holds the other reference: the descriptor closes
        // when the aborted task is dropped, on the runtime's next turn.
        self.reader.abort();
    }
}

/// A winning socket and the one uTP connection it carries.
struct SideLink {
    extra: Extra,
    utp: UtpLink,
    peer: SocketAddrV4,
    conn: Option<u64>,
}

/// What the swarm's dials of a session's peer learn ([`BirthdayIo::poll_race_news`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaceNews {
    /// A session with the peer at this IP runs until then: dials of it wait.
    Started(std::net::Ipv4Addr, Instant),
    /// It ended without a connection, for this reason.
    Failed(std::net::Ipv4Addr, String),
}

/// Counters for the swarm's stats.
#[derive(Debug, Clone, Copy, Default)]
pub struct BirthdayIoStats {
    pub machine: BirthdayStats,
    /// Extra sockets open now (session sockets and winners).
    pub sockets_open: u64,
    /// Connections a session made on the random side: over the winning
    /// socket, or on the main socket (`via_main`, see
    /// [`BirthdayIo::connected_to`]).
    pub connections: u64,
    pub via_main: u64,
    /// Challenges sent to an origin we could not trust yet, and echoes of
    /// ours that came back (each proves an address and lets a session start).
    pub challenges_sent: u64,
    pub challenges_echoed: u64,
    /// The last session's cost and duration.
    pub last_sockets_opened: u32,
    pub last_probes_sent: u32,
    pub last_ms: u64,
}

pub struct BirthdayIo {
    machine: Birthday,
    extras: HashMap<SockId, Extra>,
    links: HashMap<SockId, SideLink>,
    by_conn: HashMap<u64, SockId>,
    /// Connections birthday punches made, open now, by peer IP.
    live: HashMap<u64, std::net::Ipv4Addr>,
    /// The peer IP of the last session that got through, and when.
    last_won: Option<(std::net::Ipv4Addr, Instant)>,
    /// The latest peer's punch waiting for our NAT class (one: a bound).
    pending: Option<Pending>,
    /// Peer IPs told our class while theirs was unknown, and when (one
    /// hint per IP per `REPEAT_AFTER`, at most `MAX_RECENT` at once).
    hinted: Vec<(std::net::Ipv4Addr, Instant)>,
    /// Challenges sent to unproved origins: (IP, nonce, sent, expires);
    /// at most `MAX_RECENT`.
    challenges: Vec<(std::net::Ipv4Addr, u32, Instant, Instant)>,
    tx: mpsc::Sender<(SockId, SocketAddrV4, Vec<u8>)>,
    rx: mpsc::Receiver<(SockId, SocketAddrV4, Vec<u8>)>,
    utp_config: UtpConfig,
    stats: BirthdayIoStats,
    /// The running session's peer IP, and news for the dials of it.
    session_ip: Option<std::net::Ipv4Addr>,
    news: std::collections::VecDeque<RaceNews>,
}

impl BirthdayIo {
    pub fn new(seed: u64, utp_config: UtpConfig) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        BirthdayIo {
            machine: Birthday::new(seed),
            extras: HashMap::new(),
            links: HashMap::new(),
            by_conn: HashMap::new(),
            live: HashMap::new(),
            last_won: None,
            pending: None,
            hinted: Vec::new(),
            challenges: Vec::new(),
            tx,
            rx,
            utp_config,
            stats: BirthdayIoStats::default(),
            session_ip: None,
            news: std::collections::VecDeque::new(),
        }
    }

    pub fn stats(&self) -> BirthdayIoStats {
        BirthdayIoStats { machine: self.machine.stats(), sockets_open: (self.extras.len() + self.links.len()) as u64, ..self.stats }
    }

    /// A peer of ours punched us through `referrer` from `origin` with
    /// `capability`; `ours` is our NAT's class now, and `dialling` whether
    /// we are dialling a peer at `origin`'s IP ourselves.
    ///
    /// A session sends hundreds of datagrams to the peer's IP, so it starts
    /// only for a proved origin. A relayed punch's origin is only what the
    /// referrer saw, and anyone can forge a UDP source there. It is proved
    /// when we are dialling that IP (we found it in our own lookup, where
    /// DHT tokens proved the announcer's IP), or when the punch echoes the
    /// challenge we sent it through the referrer (only the holder of the
    /// address saw that). Otherwise we answer with a challenge, one
    /// datagram to the referrer: the peer, dialling us, is proved on its
    /// side, starts, and echoes it.
    ///
    /// Right after a join one class may still be unknown (the DHT has not
    /// heard from 3 /24s yet), and the first dial is the one that counts.
    /// When the known class could pair with the unknown one, the side that
    /// knows punches back once with its record (a hint), and the side that
    /// does not keeps the peer's punch for [`PENDING_FOR`] and goes on when
    /// its own class is known ([`Self::nat_known`]).
    pub fn punched_by(
        &mut self,
        now: Instant,
        ours: NatType,
        origin: SocketAddrV4,
        referrer: SocketAddrV4,
        capability: &Capability,
        dialling: bool,
    ) -> Decision {
        // Connected by an earlier punch: the dial queue's retries of a dial
        // that timed out beside it must not start another.
        if self.live.values().any(|ip| ip == origin.ip()) {
            return Decision::None;
        }
        let echoed = match capability.check {
            Some(Check::Echo(nonce)) => self.answered(now, *origin.ip(), nonce),
            _ => false,
        };
        let verified = dialling || echoed;
        let theirs = capability.nat;
        let Some(role) = role_for(ours, theirs) else {
            let could = matches!((ours, theirs), (NatType::Unknown, NatType::Random | NatType::Consistent) | (NatType::Random | NatType::Consistent, NatType::Unknown));
            if !could {
                return Decision::None;
            }
            if ours == NatType::Unknown {
                self.pending = Some(Pending { origin, referrer, theirs, verified, check: capability.check, until: now + PENDING_FOR });
                return Decision::None;
            }
            self.hinted.retain(|(_, at)| now.saturating_duration_since(*at) < super::birthday::REPEAT_AFTER);
            if self.hinted.iter().any(|(ip, _)| ip == origin.ip()) || self.hinted.len() >= super::birthday::MAX_RECENT {
                return Decision::None;
            }
            self.hinted.push((*origin.ip(), now));
            tracing::debug!(%origin, ?ours, "birthday punch: the peer's NAT class is unknown yet; telling it ours");
            return Decision::PunchBack(None);
        };
        self.begin(now, role, origin, verified, capability.check)
    }

    /// A session with `origin` in `role`, if its address is proved;
    /// otherwise a challenge.
    fn begin(&mut self, now: Instant, role: Role, origin: SocketAddrV4, verified: bool, theirs: Option<Check>) -> Decision {
        // Our half runs already (it may have started on the peer's hint,
        // before the peer knew our class): a challenge the peer sends since
        // is still echoed, or its half never starts; and nothing else is
        // sent, above all no challenge of ours (each would draw an echo,
        // and the peer's retried punches a new challenge: a loop).
        if self.machine.running().is_some_and(|(_, r, peer)| r == role && peer.ip() == origin.ip()) {
            return match theirs {
                Some(Check::Challenge(nonce)) => Decision::PunchBack(Some(Check::Echo(nonce))),
                _ => Decision::None,
            };
        }
        if !verified {
            return match self.challenge(now, *origin.ip()) {
                Some(nonce) => {
                    self.stats.challenges_sent += 1;
                    tracing::debug!(%origin, "birthday punch: challenging the peer's address first");
                    Decision::PunchBack(Some(Check::Challenge(nonce)))
                }
                None => Decision::None,
            };
        }
        // Spray aims at the consistent side's one mapping: where the
        // referrer saw its punch come from. Probe needs only the IP.
        match self.machine.start(now, role, origin) {
            Ok(_) => {
                self.session_ip = Some(*origin.ip());
                self.news.push_back(RaceNews::Started(*origin.ip(), now + super::birthday::BUDGET));
                tracing::debug!(?role, %origin, "birthday punch: peer of ours with the other NAT class");
                match theirs {
                    // It proved itself with our nonce: it runs already.
                    Some(Check::Echo(_)) => Decision::None,
                    Some(Check::Challenge(nonce)) => Decision::PunchBack(Some(Check::Echo(nonce))),
                    Some(Check::Relay(_)) | None => Decision::PunchBack(None),
                }
            }
            Err(Refused::Busy) => {
                tracing::debug!(%origin, "birthday punch refused: one is running");
                Decision::None
            }
            Err(Refused::Recent) => Decision::None,
        }
    }

    /// The nonce to challenge `ip` with now, or None if one was sent less
    /// than [`CHALLENGE_AGAIN`] ago (the same nonce goes again after it).
    fn challenge(&mut self, now: Instant, ip: std::net::Ipv4Addr) -> Option<u32> {
        self.challenges.retain(|(_, _, _, until)| now < *until);
        if let Some(c) = self.challenges.iter_mut().find(|(i, ..)| *i == ip) {
            if now.saturating_duration_since(c.2) < CHALLENGE_AGAIN {
                return None;
            }
            c.2 = now;
            return Some(c.1);
        }
        if self.challenges.len() >= super::birthday::MAX_RECENT {
            self.challenges.remove(0);
        }
        let nonce = rand::random::<u32>();
        self.challenges.push((ip, nonce, now, now + CHALLENGE_FOR));
        Some(nonce)
    }

    /// Whether `nonce` answers the challenge sent to `ip` (used once).
    fn answered(&mut self, now: Instant, ip: std::net::Ipv4Addr, nonce: u32) -> bool {
        let found = self.challenges.iter().position(|(i, n, _, until)| *i == ip && *n == nonce && now < *until);
        let hit = found.map(|k| self.challenges.remove(k)).is_some();
        self.stats.challenges_echoed += u64::from(hit);
        hit
    }

    /// News for the dials of sessions' peers, oldest first.
    pub fn poll_race_news(&mut self) -> Option<RaceNews> {
        self.news.pop_front()
    }

    /// Whether an incoming connection from `ip` is a session's: the
    /// random side connecting to the consistent side after a probe got
    /// through (within [`WON_GRACE`] of the win).
    pub fn claims(&self, now: Instant, ip: std::net::Ipv4Addr) -> bool {
        self.last_won.is_some_and(|(won, at)| won == ip && now.saturating_duration_since(at) < WON_GRACE)
    }

    /// Whether a peer's punch waits for our NAT class.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Our NAT's class now. A punch kept by [`Self::punched_by`] while it
    /// was unknown goes on if the classes call for a session: returns
    /// (origin, referrer, check) to punch back through.
    pub fn nat_known(&mut self, now: Instant, ours: NatType) -> Option<(SocketAddrV4, SocketAddrV4, Option<Check>)> {
        if ours == NatType::Unknown {
            if self.pending.as_ref().is_some_and(|p| now >= p.until) {
                self.pending = None;
            }
            return None;
        }
        let p = self.pending.take().filter(|p| now < p.until)?;
        let role = role_for(ours, p.theirs)?;
        if self.live.values().any(|ip| ip == p.origin.ip()) {
            return None;
        }
        tracing::debug!(?role, origin = %p.origin, "birthday punch: our NAT class is known now");
        match self.begin(now, role, p.origin, p.verified, p.check) {
            Decision::PunchBack(check) => Some((p.origin, p.referrer, check)),
            Decision::None => None,
        }
    }

    /// A connection with `ip` was made on the main socket (a dial won,
    /// or an incoming uTP connection). While a session with that IP runs,
    /// this is its success by another door: a probe that hit the port the
    /// random side's main socket uses for the peer (its punch's direct
    /// query opened one) lets that punch's next retry through, and the
    /// ordinary race connects. The session ends at once, so the winning
    /// socket does not make a second connection. Counted as a birthday
    /// connection on the random side, which has no other way through.
    pub fn connected_to(&mut self, now: Instant, ip: std::net::Ipv4Addr, conn: u64) {
        // The consistent side's session may have ended won (its
        // confirmations sent) before the random side's SYN and first data
        // came: that connection is the punch's too.
        if self.last_won.is_some_and(|(won, at)| won == ip && now.saturating_duration_since(at) < WON_GRACE) {
            self.live.insert(conn, ip);
        }
        let Some((_, role, peer)) = self.machine.running() else { return };
        if *peer.ip() != ip {
            return;
        }
        self.live.insert(conn, ip);
        if role == Role::Spray {
            self.stats.connections += 1;
            self.stats.via_main += 1;
        }
        tracing::debug!(%ip, "birthday punch ends: a connection with the peer was made on the main socket");
        self.machine.cancel(now);
    }

    /// The owner closed connection `conn`.
    pub fn closed(&mut self, conn: u64) {
        self.live.remove(&conn);
    }

    /// A datagram on the main socket: true when it was a birthday packet
    /// (taken here; otherwise it goes to uTP or the DHT as always).
    pub fn handle_main(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) -> bool {
        self.machine.handle_datagram(now, Via::Main, from, bytes)
    }

    /// The next datagram read on an extra socket.
    pub async fn recv(&mut self) -> Option<(SockId, SocketAddrV4, Vec<u8>)> {
        self.rx.recv().await
    }

    /// A datagram read on extra socket `sock`.
    pub fn handle_extra(&mut self, now: Instant, sock: SockId, from: SocketAddrV4, bytes: &[u8]) {
        if self.machine.handle_datagram(now, Via::Extra(sock), from, bytes) {
            return;
        }
        if let Some(link) = self.links.get_mut(&sock) {
            // Only the peer speaks uTP to this socket.
            if from == link.peer && looks_like_utp(bytes) {
                link.utp.handle_datagram(now, from, bytes);
            }
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let links = self.links.values().filter_map(|l| l.utp.poll_timeout()).min();
        [self.machine.poll_timeout(), links].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.machine.handle_timeout(now);
        for link in self.links.values_mut() {
            link.utp.handle_timeout(now);
        }
    }

    /// Whether connection `conn` lives on a winning socket.
    pub fn owns(&self, conn: u64) -> bool {
        self.by_conn.contains_key(&conn)
    }

    fn link(&mut self, conn: u64) -> Option<&mut SideLink> {
        let sock = self.by_conn.get(&conn)?;
        self.links.get_mut(sock)
    }

    pub fn write(&mut self, now: Instant, conn: u64, write: u32, data: Vec<u8>, out: &mut Vec<LinkEvent>) {
        if let Some(l) = self.link(conn) {
            l.utp.write(now, conn, write, data, out);
        }
    }

    pub fn grant(&mut self, conn: u64) {
        if let Some(l) = self.link(conn) {
            l.utp.grant(conn);
        }
    }

    pub fn shutdown(&mut self, now: Instant, conn: u64) {
        if let Some(l) = self.link(conn) {
            l.utp.shutdown(now, conn);
        }
    }

    pub fn close(&mut self, now: Instant, conn: u64) {
        if let Some(l) = self.link(conn) {
            l.utp.close(now, conn);
        }
    }

    /// Closes every socket: the swarm is going away.
    pub fn shut(&mut self, now: Instant) {
        for link in self.links.values_mut() {
            if let Some(conn) = link.conn {
                link.utp.close(now, conn);
            }
        }
        self.flush_links();
        self.machine.cancel(now);
        while self.machine.poll_output().is_some() {}
        self.extras.clear();
        self.links.clear();
        self.by_conn.clear();
        self.live.clear();
    }

    /// Carries out the machine's outputs, moves the winning links' events
    /// to the owner, and sends what their endpoints queued. `main` is the
    /// swarm's socket; `conn_id` numbers connections as the core does.
    /// `claim(ip)` gives a connection with the peer at `ip` its id, and
    /// says whether a dial took it (its stream then goes to `raced`
    /// rather than out as an incoming connection).
    pub fn pump(
        &mut self,
        now: Instant,
        main: Option<&UdpSocket>,
        claim: &mut dyn FnMut(std::net::Ipv4Addr) -> (u64, bool),
        raced: &mut Vec<(u64, ConnStream)>,
        sink: &dyn Fn(SwarmEvent),
    ) {
        while let Some(o) = self.machine.poll_output() {
            match o {
                Output::OpenSocket { sock } => match self.open(sock) {
                    Ok(extra) => {
                        self.extras.insert(sock, extra);
                    }
                    Err(e) => {
                        tracing::debug!("birthday socket not opened: {e}");
                        self.machine.socket_failed(sock);
                    }
                },
                Output::Send { via, to, payload } => {
                    let socket = match via {
                        Via::Main => main,
                        Via::Extra(s) => self.extras.get(&s).map(|e| &*e.sock),
                    };
                    if let Some(socket) = socket {
                        // An opener only has to open our own NAT. Reaching
                        // the peer's router it would do harm: one without a
                        // WAN input firewall (natlab.js, cone-nofw) makes it
                        // a conntrack entry of its own, and then masquerades
                        // the probe to that port from another port, which
                        // our NAT drops. So it dies after our router, as a
                        // hole punch's opening packet does (`OPENING_TTL`).
                        let sent = if super::birthday::decode(&payload) == Some(super::birthday::Kind::Opener) {
                            crate::io::send_with_ttl(socket, &payload, SocketAddr::V4(to), crate::dht::node::OPENING_TTL)
                        } else {
                            crate::io::send_now(socket, &payload, SocketAddr::V4(to))
                        };
                        if let Err(e) = sent {
                            tracing::trace!(%to, "birthday send failed: {e}");
                        }
                    }
                }
                Output::CloseSocket { sock } => {
                    self.extras.remove(&sock);
                }
                Output::Won { via: Via::Extra(sock), peer, .. } => {
                    self.last_won = Some((*peer.ip(), now));
                    let Some(extra) = self.extras.remove(&sock) else { continue };
                    let mut utp = UtpLink::new(self.utp_config.clone(), rand::random());
                    // This socket is the peer's alone: nobody else's SYN.
                    utp.set_accepting(false);
                    utp.connect(now, peer);
                    tracing::debug!(%peer, sock, "birthday punch won: uTP over the winning socket");
                    self.links.insert(sock, SideLink { extra, utp, peer, conn: None });
                }
                Output::Won { via: Via::Main, peer, .. } => {
                    self.last_won = Some((*peer.ip(), now));
                    tracing::debug!(%peer, "birthday punch won: the random side connects to us");
                }
                Output::Ended { report, outcome, .. } => {
                    if let Some(ip) = self.session_ip.take() {
                        if outcome == super::birthday::Outcome::TimedOut {
                            let why = format!("one NAT is random and the birthday punch found no path in {} s", super::birthday::BUDGET.as_secs());
                            self.news.push_back(RaceNews::Failed(ip, why));
                        }
                    }
                    self.stats.last_sockets_opened = report.sockets_opened;
                    self.stats.last_probes_sent = report.probes_sent;
                    self.stats.last_ms = report.elapsed.as_millis() as u64;
                }
            }
        }
        let mut events = Vec::new();
        let mut dead = Vec::new();
        for (sock, link) in self.links.iter_mut() {
            let mut out = Vec::new();
            link.utp.poll(now, &mut out);
            for ev in out {
                match ev {
                    LinkEvent::Connected { utp } => {
                        let (conn, dialled) = claim(*link.peer.ip());
                        link.utp.adopt(conn, utp);
                        link.conn = Some(conn);
                        self.by_conn.insert(conn, *sock);
                        self.live.insert(conn, *link.peer.ip());
                        self.stats.connections += 1;
                        // A dial's details may say the peer's class; an
                        // incoming connection's are the seed's exactly.
                        let stream = ConnStream::Utp { remote: link.peer, peer_nat: dialled.then_some(NatType::Consistent), relay: None };
                        if dialled {
                            raced.push((conn, stream));
                        } else {
                            events.push(SwarmEvent::Connection { id: conn, stream, client: false, peer: None });
                        }
                    }
                    LinkEvent::Failed { error, .. } => {
                        tracing::debug!(peer = %link.peer, "uTP over the birthday socket failed: {error}");
                        self.news.push_back(RaceNews::Failed(*link.peer.ip(), format!("uTP over the birthday punch's socket failed: {error}")));
                        dead.push(*sock);
                    }
                    LinkEvent::Incoming { utp, .. } => link.utp.abandon(now, utp),
                    LinkEvent::Data { conn, data } => events.push(SwarmEvent::Data { id: conn, data }),
                    LinkEvent::Written { conn, write } => events.push(SwarmEvent::Written { id: conn, write }),
                    LinkEvent::End { conn } => events.push(SwarmEvent::End { id: conn }),
                    LinkEvent::Closed { conn, error } => {
                        events.push(SwarmEvent::StreamClosed { id: conn, error });
                        dead.push(*sock);
                    }
                }
            }
        }
        self.flush_links();
        for sock in dead {
            if let Some(link) = self.links.remove(&sock) {
                if let Some(conn) = link.conn {
                    self.by_conn.remove(&conn);
                }
            }
        }
        for ev in events {
            sink(ev);
        }
    }

    fn flush_links(&mut self) {
        for link in self.links.values_mut() {
            while let Some((to, bytes)) = link.utp.poll_transmit() {
                if let Err(e) = crate::io::send_now(&link.extra.sock, &bytes, SocketAddr::V4(to)) {
                    tracing::trace!(%to, "uTP send on the birthday socket failed: {e}");
                }
            }
        }
    }

    /// Binds extra socket `sock` and starts its reader.
    fn open(&self, sock: SockId) -> std::io::Result<Extra> {
        let std = std::net::UdpSocket::bind("0.0.0.0:0")?;
        std.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(std)?);
        let reader = socket.clone();
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; EXTRA_BUF];
            loop {
                match reader.recv_from(&mut buf).await {
                    Ok((n, SocketAddr::V4(from))) => {
                        if tx.send((sock, from, buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // ICMP errors (the peer's router refusing): one each.
                    Err(e) => tracing::trace!("birthday socket receive error: {e}"),
                }
            }
        });
        Ok(Extra { sock: socket, reader: task.abort_handle() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::birthday::REPEAT_AFTER;
    use std::net::Ipv4Addr;

    const REF: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 49737);

    fn cap(nat: NatType) -> Capability {
        Capability { nat, candidates: vec![], check: None }
    }

    fn with(nat: NatType, check: Check) -> Capability {
        Capability { nat, candidates: vec![], check: Some(check) }
    }

    #[test]
    fn an_unproved_origin_gets_a_challenge_and_no_session_until_it_echoes_it() {
        let t0 = Instant::now();
        let victim = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 66), 4000);
        let mut b = BirthdayIo::new(9, UtpConfig::default());
        // A forged relayed punch claiming a random NAT, from an IP we do not
        // dial: one challenge back through the referrer, nothing to the IP.
        let Decision::PunchBack(Some(Check::Challenge(nonce))) = b.punched_by(t0, NatType::Consistent, victim, REF, &cap(NatType::Random), false) else {
            panic!("a challenge")
        };
        assert!(b.machine.running().is_none(), "no session, no probes");
        assert_eq!(b.stats().machine.started, 0);
        // The forger's retries: no second challenge within a second, the
        // same nonce after it, and still no session.
        assert_eq!(b.punched_by(t0 + Duration::from_millis(500), NatType::Consistent, victim, REF, &cap(NatType::Random), false), Decision::None);
        assert_eq!(
            b.punched_by(t0 + CHALLENGE_AGAIN, NatType::Consistent, victim, REF, &cap(NatType::Random), false),
            Decision::PunchBack(Some(Check::Challenge(nonce)))
        );
        // A guessed echo, or the echo from another IP: nothing.
        let other = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 67), 4000);
        assert_eq!(b.punched_by(t0, NatType::Consistent, victim, REF, &with(NatType::Random, Check::Echo(nonce ^ 1)), false), Decision::None);
        assert!(matches!(b.punched_by(t0, NatType::Consistent, other, REF, &with(NatType::Random, Check::Echo(nonce)), false), Decision::PunchBack(Some(Check::Challenge(_)))));
        assert!(b.machine.running().is_none());
        // Past its time the echo no longer counts.
        assert!(matches!(
            b.punched_by(t0 + CHALLENGE_FOR, NatType::Consistent, victim, REF, &with(NatType::Random, Check::Echo(nonce)), false),
            Decision::PunchBack(Some(Check::Challenge(_)))
        ));
        assert!(b.machine.running().is_none());
        assert_eq!(b.stats().machine.started, 0);
    }

    #[test]
    fn the_challenge_round_trip_starts_both_halves_in_either_order() {
        let t0 = Instant::now();
        let (c_addr, r_addr) = (SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 20), 4000), SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 21), 5000));
        // The random side R dials the consistent side C, which does not dial R.
        let (mut c, mut r) = (BirthdayIo::new(10, UtpConfig::default()), BirthdayIo::new(11, UtpConfig::default()));
        let Decision::PunchBack(Some(challenge @ Check::Challenge(nonce))) = c.punched_by(t0, NatType::Consistent, r_addr, REF, &cap(NatType::Random), false) else {
            panic!("C challenges")
        };
        // R, dialling C, trusts C's address, starts and echoes.
        assert_eq!(r.punched_by(t0, NatType::Random, c_addr, REF, &with(NatType::Consistent, challenge), true), Decision::PunchBack(Some(Check::Echo(nonce))));
        assert_eq!(r.machine.running().map(|x| x.1), Some(Role::Spray));
        // C gets the echo: proved, it starts and says nothing more.
        assert_eq!(c.punched_by(t0, NatType::Consistent, r_addr, REF, &with(NatType::Random, Check::Echo(nonce)), false), Decision::None);
        assert_eq!(c.machine.running().map(|x| x.1), Some(Role::Probe));
        // The other way: C dials R, which does not dial C.
        let (mut c, mut r) = (BirthdayIo::new(12, UtpConfig::default()), BirthdayIo::new(13, UtpConfig::default()));
        let Decision::PunchBack(Some(challenge @ Check::Challenge(nonce))) = r.punched_by(t0, NatType::Random, c_addr, REF, &cap(NatType::Consistent), false) else {
            panic!("R challenges")
        };
        assert!(r.machine.running().is_none(), "no openers to an unproved address either");
        assert_eq!(c.punched_by(t0, NatType::Consistent, r_addr, REF, &with(NatType::Random, challenge), true), Decision::PunchBack(Some(Check::Echo(nonce))));
        assert_eq!(r.punched_by(t0, NatType::Random, c_addr, REF, &with(NatType::Consistent, Check::Echo(nonce)), false), Decision::None);
        assert_eq!((c.machine.running().map(|x| x.1), r.machine.running().map(|x| x.1)), (Some(Role::Probe), Some(Role::Spray)));
        // A punch kept while our class was unknown is challenged once it is known.
        let mut c = BirthdayIo::new(14, UtpConfig::default());
        assert_eq!(c.punched_by(t0, NatType::Unknown, r_addr, REF, &cap(NatType::Random), false), Decision::None);
        assert!(matches!(c.nat_known(t0, NatType::Consistent), Some((o, REF, Some(Check::Challenge(_)))) if o == r_addr));
        assert!(c.machine.running().is_none());
    }

    #[test]
    fn starts_only_for_random_against_consistent_and_never_twice_for_a_connected_peer() {
        let t0 = Instant::now();
        let peer = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 12), 4000);
        let mut b = BirthdayIo::new(1, UtpConfig::default());
        assert_eq!(b.punched_by(t0, NatType::Consistent, peer, REF, &cap(NatType::Consistent), true), Decision::None);
        assert_eq!(b.punched_by(t0, NatType::Unknown, peer, REF, &cap(NatType::Unknown), true), Decision::None);
        assert_eq!(b.punched_by(t0, NatType::Open, peer, REF, &cap(NatType::Random), true), Decision::None);
        assert_eq!(b.punched_by(t0, NatType::Random, peer, REF, &cap(NatType::Consistent), true), Decision::PunchBack(None));
        // The peer's punch back (or a retry) while it runs: nothing more.
        assert_eq!(b.punched_by(t0, NatType::Random, peer, REF, &cap(NatType::Consistent), true), Decision::None);
        // A connection with the peer's IP on the main socket ends it, and
        // is the punch's.
        b.connected_to(t0, *peer.ip(), 7);
        assert!(b.machine.running().is_none());
        assert_eq!((b.stats().connections, b.stats().via_main), (1, 1));
        // Past REPEAT_AFTER, while that connection lives, no new session.
        let later = t0 + REPEAT_AFTER + Duration::from_secs(1);
        assert_eq!(b.punched_by(later, NatType::Random, peer, REF, &cap(NatType::Consistent), true), Decision::None);
        b.closed(7);
        assert_eq!(b.punched_by(later, NatType::Random, peer, REF, &cap(NatType::Consistent), true), Decision::PunchBack(None));
        // Another IP's connection leaves the running session alone.
        b.connected_to(later, Ipv4Addr::new(198, 51, 100, 1), 8);
        assert!(b.machine.running().is_some());
        b.shut(later);
        assert!(b.machine.running().is_none());
        assert_eq!(b.stats().sockets_open, 0);
    }

    #[test]
    fn a_half_started_on_a_hint_still_echoes_the_peers_challenge() {
        let t0 = Instant::now();
        let c_addr = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 30), 4000);
        // R (random) dials C. C, its own class unknown to R yet, hinted; R
        // started spraying on the hint. C then challenges R's address.
        let mut r = BirthdayIo::new(21, UtpConfig::default());
        assert_eq!(r.punched_by(t0, NatType::Random, c_addr, REF, &cap(NatType::Consistent), true), Decision::PunchBack(None));
        assert_eq!(r.machine.running().map(|x| x.1), Some(Role::Spray));
        let challenge = Check::Challenge(77);
        assert_eq!(
            r.punched_by(t0 + Duration::from_millis(500), NatType::Random, c_addr, REF, &with(NatType::Consistent, challenge), true),
            Decision::PunchBack(Some(Check::Echo(77))),
            "the running half echoes, or C's half never starts"
        );
        assert_eq!(r.stats().machine.started, 1, "no second session");
        // A plain punch again while it runs: nothing.
        assert_eq!(r.punched_by(t0 + Duration::from_secs(1), NatType::Random, c_addr, REF, &cap(NatType::Consistent), true), Decision::None);
        // C, once its half runs, answers R's further punches (plain, or a
        // retried echo) with nothing: no new challenge to echo, no loop.
        let mut c = BirthdayIo::new(22, UtpConfig::default());
        let r_addr = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 31), 5000);
        let Decision::PunchBack(Some(Check::Challenge(n))) = c.punched_by(t0, NatType::Consistent, r_addr, REF, &cap(NatType::Random), false) else { panic!() };
        assert_eq!(c.punched_by(t0, NatType::Consistent, r_addr, REF, &with(NatType::Random, Check::Echo(n)), false), Decision::None);
        assert!(c.machine.running().is_some());
        for k in 1..20u64 {
            let at = t0 + Duration::from_millis(300 * k);
            assert_eq!(c.punched_by(at, NatType::Consistent, r_addr, REF, &cap(NatType::Random), false), Decision::None);
            assert_eq!(c.punched_by(at, NatType::Consistent, r_addr, REF, &with(NatType::Random, Check::Echo(n)), false), Decision::None);
        }
        assert_eq!((c.stats().challenges_sent, c.stats().challenges_echoed), (1, 1));
    }

    #[test]
    fn an_unknown_class_waits_for_ours_or_hears_a_hint() {
        let t0 = Instant::now();
        let peer = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 11), 4000);
        // Ours unknown, theirs random: kept, and started once ours is
        // known to be consistent, punching back through the same referrer.
        let mut b = BirthdayIo::new(2, UtpConfig::default());
        assert_eq!(b.punched_by(t0, NatType::Unknown, peer, REF, &cap(NatType::Random), true), Decision::None);
        assert!(b.has_pending());
        assert_eq!(b.nat_known(t0 + Duration::from_secs(1), NatType::Unknown), None);
        assert_eq!(b.nat_known(t0 + Duration::from_secs(2), NatType::Consistent), Some((peer, REF, None)));
        assert_eq!(b.machine.running().map(|r| r.1), Some(crate::swarm::birthday::Role::Probe));
        assert!(!b.has_pending());
        // Kept too long, or classes that do not pair: nothing.
        let mut b = BirthdayIo::new(3, UtpConfig::default());
        b.punched_by(t0, NatType::Unknown, peer, REF, &cap(NatType::Random), true);
        assert_eq!(b.nat_known(t0 + PENDING_FOR, NatType::Consistent), None);
        b.punched_by(t0, NatType::Unknown, peer, REF, &cap(NatType::Random), true);
        assert_eq!(b.nat_known(t0, NatType::Random), None);
        assert!(b.machine.running().is_none());
        // Ours known, theirs unknown: one hint per IP, no session yet.
        let mut b = BirthdayIo::new(4, UtpConfig::default());
        assert_eq!(b.punched_by(t0, NatType::Random, peer, REF, &cap(NatType::Unknown), true), Decision::PunchBack(None));
        assert!(b.machine.running().is_none());
        assert_eq!(b.punched_by(t0, NatType::Random, peer, REF, &cap(NatType::Unknown), true), Decision::None, "one hint");
        // Its punch back, once it knows: the session starts.
        assert_eq!(b.punched_by(t0, NatType::Random, peer, REF, &cap(NatType::Consistent), true), Decision::PunchBack(None));
        assert!(b.machine.running().is_some());
    }
}
