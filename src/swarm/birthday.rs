//! Birthday punching: how two of our peers get through when exactly one of
//! them is behind a NAT that maps every destination to a fresh random port
//! (`NatType::Random`) and the other keeps one mapping for all
//! (`Consistent`; an `Open` peer needs none of this, see [`role_for`]).
//! Not in the 2019 stack; Rust↔Rust only, started only from a capability
//! record (`dht::capability`), so a JS peer never sees a byte of it.
//!
//! # Why it works
//!
//! The random side cannot tell anyone which port its router will pick, but
//! it can make the router pick many: it opens up to [`MAX_SOCKETS`] extra
//! UDP sockets and sends one opener from each to the consistent side's
//! address. Each opener leaves a mapping `random IP:p_i → peer` in the
//! random side's router (the openers themselves are dropped by the peer's
//! router, or reach it, which is fine too). The consistent side meanwhile
//! sends probes from its one socket to random ports of the random side's
//! IP, one every [`PROBE_INTERVAL`]. A probe that hits one of the `p_i`
//! matches that mapping and is delivered to socket `i`; with 256 of the
//! 64512 ports a router hands out open, one probe in 252 hits, so about
//! 175 probes (3.5 s) for even odds: the birthday paradox, one-sided.
//!
//! # The session
//!
//! [`Birthday`] is a sans-IO state machine in the style of the other cores:
//! `(now, input) -> outputs + next deadline`, no socket or clock inside. It
//! runs at most one session at a time ([`Birthday::start`] refuses a second
//! one: the sockets and probes are a budget of the whole swarm, and two
//! sessions would halve each other's odds), in one of two roles:
//!
//! - [`Role::Spray`] (our NAT is random): [`Output::OpenSocket`] up to
//!   [`MAX_SOCKETS`] times, one every [`OPEN_INTERVAL`], each followed by an
//!   opener sent from it ([`Output::Send`] via [`Via::Extra`]), refreshed
//!   every [`OPENER_REFRESH`]. A probe from the peer arriving on socket `i`
//!   wins: `i` is handed to the driver to carry uTP ([`Output::Won`]), an
//!   ack goes back from it, and every other socket is closed.
//! - [`Role::Probe`] (our NAT is consistent): probes to distinct
//!   random ports in [`PORT_MIN`]`..=65535` of the peer's IP, from the main
//!   socket. An opener or ack from the peer's IP names the port that got
//!   through; the probes then go to that port alone, [`CONFIRM_SENDS`]
//!   times at the same rate (so the random side hears one even if the
//!   first is lost), and the session ends won.
//!
//! Every session ends with exactly one [`Output::Ended`], after a
//! [`Output::CloseSocket`] for every extra socket it still holds; the only
//! socket that outlives it is the winner, which the driver owns from
//! [`Output::Won`] on. A session that has not won within [`BUDGET`] ends
//! timed out.
//!
//! # Who connects
//!
//! The random side, always: it is the one that learns first that a path
//! works (a probe reached its socket `i`), and the uTP SYN it sends from
//! `i` to the consistent side's address passes the consistent side's
//! router, which holds the flow its probe opened. The consistent side
//! takes it as any incoming uTP connection on its main socket.
//!
//! # Trust
//!
//! Packets count only from the peer: the exact address for the random
//! side (the consistent side's one mapping), the IP for the probing side
//! (the random side's ports are unknown by design). A forged packet from
//! that IP can at worst end the session with a port that does not answer:
//! the uTP dial then fails, as a failed punch would.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Extra sockets the random side opens per session: hyperdht's birthday
/// punch opens 256 (issue 11, item 3), and so do we.
pub const MAX_SOCKETS: usize = 256;

/// Pause between two extra sockets: 256 open within about a second, and
/// a router sees a burst of at most 250 new flows per second, not 256 at
/// once. The probing side starts at the same time, so its first second
/// of probes meets a growing set of ports; that costs about 0.5 s of the
/// expected time, against a burst that home routers' flow-rate limits
/// might throttle.
pub const OPEN_INTERVAL: Duration = Duration::from_millis(4);

/// Pause between two probes to random ports: hyperdht sends one every
/// 20 ms; 50 per second is also the cap issue 11 sets (acceptance 4).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// How often an extra socket sends its opener again: below Linux's 30 s
/// timeout of an unreplied UDP flow (`nf_conntrack_udp_timeout`), so the
/// mapping stays open for the whole [`BUDGET`].
pub const OPENER_REFRESH: Duration = Duration::from_secs(20);

/// Longest a session runs. Issue 11 caps birthday punching at 35 s
/// (hyperdht's own limit); 30 s leaves the odds of no hit at
/// (1 - 256/64512)^1500 < 0.3 % and stays inside the cap.
pub const BUDGET: Duration = Duration::from_secs(30);

/// Lowest port probed: Linux's fully random masquerade picks from
/// 1024..=65535 for a source port above 1023 (`nf_nat_l4proto_unique_tuple`),
/// and so do the carrier NATs we know of.
pub const PORT_MIN: u16 = 1024;

/// How long a peer's IP waits for another session after one ended: a
/// relayed punch is cheap to forge, and each session sends up to 1500
/// probes to the IP it names; this caps that at one session per IP per
/// minute (and keeps a dial queue's retries of a peer reached by birthday
/// punching from starting another one).
pub const REPEAT_AFTER: Duration = Duration::from_secs(60);

/// IPs remembered for [`REPEAT_AFTER`] (the oldest is forgotten past it).
pub const MAX_RECENT: usize = 64;

/// Probes sent to the port that got through, once it is known: enough for
/// one to arrive on a path that loses a few, at the probe rate.
pub const CONFIRM_SENDS: u32 = 5;

/// The first bytes of every birthday packet. `H` (0x48) is no uTP header
/// (version nibble 8, not 1), and a dht-rpc decoder rejects the datagram;
/// they only ever go to a peer whose capability record says it is ours.
pub const MAGIC: [u8; 4] = *b"HSNB";

/// Packet layout version (the byte after [`MAGIC`]).
pub const PACKET_VERSION: u8 = 1;

/// Length of a birthday packet: magic, version, kind.
pub const PACKET_LEN: usize = 6;

/// What a birthday packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// From the probing (consistent) side, to a port that may be mapped.
    Probe = 1,
    /// From one of the random side's extra sockets, to open its mapping.
    Opener = 2,
    /// From the random side's winning socket, on hearing a probe.
    Ack = 3,
}

/// A birthday packet of `kind`.
pub fn encode(kind: Kind) -> [u8; PACKET_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], PACKET_VERSION, kind as u8]
}

/// The kind of a birthday packet, or None for any other datagram.
pub fn decode(bytes: &[u8]) -> Option<Kind> {
    if bytes.len() != PACKET_LEN || bytes[..4] != MAGIC || bytes[4] != PACKET_VERSION {
        return None;
    }
    match bytes[5] {
        1 => Some(Kind::Probe),
        2 => Some(Kind::Opener),
        3 => Some(Kind::Ack),
        _ => None,
    }
}

/// Which side of the punch we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Our NAT is random: open extra sockets toward the peer.
    Spray,
    /// Our NAT is consistent: probe random ports of the peer's IP.
    Probe,
}

/// The role our NAT and the peer's call for: `Some` only when one side is
/// random and the other consistent. Not for an open peer: the random
/// side's plain punch already reaches it (its direct query opens the one
/// flow the answer needs; the NAT lab connects symmetric × public without
/// this), so 256 sockets would buy nothing. An unknown class decides
/// nothing; two random NATs need a relay.
pub fn role_for(ours: crate::dht::nat::NatType, theirs: crate::dht::nat::NatType) -> Option<Role> {
    use crate::dht::nat::NatType::*;
    match (ours, theirs) {
        (Random, Consistent) => Some(Role::Spray),
        (Consistent, Random) => Some(Role::Probe),
        _ => None,
    }
}

/// An extra socket, numbered by the machine.
pub type SockId = u32;

/// A session, numbered by the machine.
pub type SessionId = u64;

/// The socket a packet leaves from or arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// The swarm's one UDP socket (DHT and uTP).
    Main,
    /// Extra socket `SockId`.
    Extra(SockId),
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Won,
    TimedOut,
    Cancelled,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bind a fresh UDP socket (any port) as `sock`; report a failure with
    /// [`Birthday::socket_failed`]. Sends via it follow.
    OpenSocket { sock: SockId },
    /// Send `payload` from `via` to `to` (dropped if `via` failed to open).
    Send { via: Via, to: SocketAddrV4, payload: [u8; PACKET_LEN] },
    /// Close extra socket `sock`.
    CloseSocket { sock: SockId },
    /// A path got through. Spray: `via` is the extra socket that heard the
    /// probe, now the driver's, to carry uTP to `peer`. Probe: `via` is
    /// [`Via::Main`] and `peer` the random side's port that answered; it
    /// will connect to us.
    Won { session: SessionId, via: Via, peer: SocketAddrV4 },
    /// The session is over; every extra socket but a winner is closed.
    Ended { session: SessionId, outcome: Outcome, report: Report },
}

/// What a session cost, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    pub role: Option<Role>,
    pub sockets_opened: u32,
    /// Probes to random ports (and, once known, to the port that answered).
    pub probes_sent: u32,
    /// Openers and acks sent from extra sockets.
    pub openers_sent: u32,
    pub elapsed: Duration,
}

/// Counters over every session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BirthdayStats {
    pub started: u64,
    /// Starts refused because a session was running.
    pub refused_busy: u64,
    /// Starts refused for an IP seen within [`REPEAT_AFTER`].
    pub refused_recent: u64,
    pub won: u64,
    pub timed_out: u64,
    pub sockets_opened: u64,
    pub probes_sent: u64,
}

/// Why [`Birthday::start`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A session is running: one at a time.
    Busy,
    /// This IP had one less than [`REPEAT_AFTER`] ago.
    Recent,
}

struct Extra {
    sock: SockId,
    open: bool,
    next_opener: Instant,
}

struct Session {
    id: SessionId,
    role: Role,
    peer: SocketAddrV4,
    started: Instant,
    deadline: Instant,
    /// Spray: sockets opened so far (closed or not), and when the next opens.
    extras: Vec<Extra>,
    next_open: Option<Instant>,
    /// Probe: when the next probe leaves, ports already probed, and the
    /// port that answered with the confirmations left to send.
    next_probe: Option<Instant>,
    probed: Vec<u64>,
    confirm: Option<(SocketAddrV4, u32)>,
    /// A path got through ([`Output::Won`] went out): the session counts
    /// as won however it ends.
    won: bool,
    report: Report,
}

/// At most one birthday punch at a time, as a sans-IO machine.
pub struct Birthday {
    session: Option<Session>,
    outputs: VecDeque<Output>,
    rng: StdRng,
    next_sock: SockId,
    next_session: SessionId,
    /// Peer IPs and when their last session started.
    recent: Vec<(std::net::Ipv4Addr, Instant)>,
    stats: BirthdayStats,
}

impl Birthday {
    pub fn new(seed: u64) -> Self {
        Birthday {
            session: None,
            outputs: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            next_sock: 1,
            next_session: 1,
            recent: Vec::new(),
            stats: BirthdayStats::default(),
        }
    }

    /// Starts a session with `peer` (Spray: its consistent address; Probe:
    /// any address of its IP, the port is ignored), unless one runs.
    pub fn start(&mut self, now: Instant, role: Role, peer: SocketAddrV4) -> Result<SessionId, Refused> {
        if self.session.is_some() {
            self.stats.refused_busy += 1;
            return Err(Refused::Busy);
        }
        self.recent.retain(|(_, at)| now.saturating_duration_since(*at) < REPEAT_AFTER);
        if self.recent.iter().any(|(ip, _)| ip == peer.ip()) {
            self.stats.refused_recent += 1;
            return Err(Refused::Recent);
        }
        if self.recent.len() >= MAX_RECENT {
            self.recent.remove(0);
        }
        self.recent.push((*peer.ip(), now));
        let id = self.next_session;
        self.next_session += 1;
        self.stats.started += 1;
        tracing::debug!(?role, %peer, "birthday punch started");
        self.session = Some(Session {
            id,
            role,
            peer,
            started: now,
            deadline: now + BUDGET,
            extras: Vec::new(),
            next_open: (role == Role::Spray).then_some(now),
            next_probe: (role == Role::Probe).then_some(now),
            probed: vec![0; 1024],
            confirm: None,
            won: false,
            report: Report { role: Some(role), ..Report::default() },
        });
        self.handle_timeout(now);
        Ok(id)
    }

    /// The running session's peer and role.
    pub fn running(&self) -> Option<(SessionId, Role, SocketAddrV4)> {
        self.session.as_ref().map(|s| (s.id, s.role, s.peer))
    }

    /// Extra sockets open now (the driver's count should match).
    pub fn sockets_open(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.extras.iter().filter(|e| e.open).count())
    }

    pub fn stats(&self) -> BirthdayStats {
        self.stats
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self.session.as_ref()?;
        let refresh = s.extras.iter().filter(|e| e.open).map(|e| e.next_opener).min();
        [Some(s.deadline), s.next_open, s.next_probe, refresh].into_iter().flatten().min()
    }

    /// Extra socket `sock` could not be bound (out of descriptors, say):
    /// it counts as closed, and no more are opened this session.
    pub fn socket_failed(&mut self, sock: SockId) {
        let Some(s) = self.session.as_mut() else { return };
        if let Some(e) = s.extras.iter_mut().find(|e| e.sock == sock && e.open) {
            e.open = false;
            s.next_open = None;
            tracing::debug!(sock, "birthday socket failed to open; no more this session");
        }
    }

    /// Ends the running session now (the swarm is closing).
    pub fn cancel(&mut self, now: Instant) {
        self.end(now, Outcome::Cancelled);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(s) = self.session.as_mut() else { return };
        if now >= s.deadline {
            self.end(now, Outcome::TimedOut);
            return;
        }
        // Spray: open the next socket due, with its opener. One per call
        // and at least OPEN_INTERVAL apart, whatever the clock did: a late
        // wake-up never turns into a burst.
        if s.next_open.is_some_and(|at| at <= now) {
            let sock = self.next_sock;
            self.next_sock = self.next_sock.wrapping_add(1).max(1);
            s.extras.push(Extra { sock, open: true, next_opener: now + OPENER_REFRESH });
            s.report.sockets_opened += 1;
            s.report.openers_sent += 1;
            self.stats.sockets_opened += 1;
            self.outputs.push_back(Output::OpenSocket { sock });
            self.outputs.push_back(Output::Send { via: Via::Extra(sock), to: s.peer, payload: encode(Kind::Opener) });
            s.next_open = (s.extras.len() < MAX_SOCKETS).then_some(now + OPEN_INTERVAL);
        }
        for e in s.extras.iter_mut().filter(|e| e.open && e.next_opener <= now) {
            e.next_opener = now + OPENER_REFRESH;
            s.report.openers_sent += 1;
            self.outputs.push_back(Output::Send { via: Via::Extra(e.sock), to: s.peer, payload: encode(Kind::Opener) });
        }
        // Probe: one packet per call, PROBE_INTERVAL after the last one
        // at the earliest (a late wake-up sends one, not a burst).
        if s.next_probe.is_some_and(|at| at <= now) {
            let to = match s.confirm.as_mut() {
                Some((addr, left)) => {
                    *left -= 1;
                    *addr
                }
                None => SocketAddrV4::new(*s.peer.ip(), Self::fresh_port(&mut self.rng, &mut s.probed)),
            };
            s.report.probes_sent += 1;
            self.stats.probes_sent += 1;
            self.outputs.push_back(Output::Send { via: Via::Main, to, payload: encode(Kind::Probe) });
            s.next_probe = Some(now + PROBE_INTERVAL);
            if s.confirm.is_some_and(|(_, left)| left == 0) {
                self.end(now, Outcome::Won);
            }
        }
    }

    /// A port of the peer's IP not probed this session (all 64512 probed:
    /// any port; at 50 per second that takes 21 minutes, past [`BUDGET`]).
    fn fresh_port(rng: &mut StdRng, probed: &mut [u64]) -> u16 {
        for _ in 0..64 {
            let p: u16 = rng.random_range(PORT_MIN..=u16::MAX);
            let (w, b) = (p as usize / 64, p as usize % 64);
            if probed[w] & (1 << b) == 0 {
                probed[w] |= 1 << b;
                return p;
            }
        }
        rng.random_range(PORT_MIN..=u16::MAX)
    }

    /// A datagram arrived on `via` from `from`. Returns whether it was a
    /// birthday packet (the driver then drops it; anything else goes on
    /// to uTP or the DHT).
    pub fn handle_datagram(&mut self, now: Instant, via: Via, from: SocketAddrV4, bytes: &[u8]) -> bool {
        let Some(kind) = decode(bytes) else { return false };
        let Some(s) = self.session.as_mut() else { return true };
        match (s.role, kind, via) {
            (Role::Spray, Kind::Probe, Via::Extra(sock)) if from == s.peer => {
                let Some(e) = s.extras.iter_mut().find(|e| e.sock == sock && e.open) else { return true };
                // The winner leaves the session's hands: not closed at the end.
                e.open = false;
                s.report.openers_sent += 1;
                s.won = true;
                let (id, peer) = (s.id, s.peer);
                self.outputs.push_back(Output::Send { via, to: peer, payload: encode(Kind::Ack) });
                self.outputs.push_back(Output::Won { session: id, via, peer });
                self.end(now, Outcome::Won);
            }
            (Role::Probe, Kind::Opener | Kind::Ack, Via::Main) if from.ip() == s.peer.ip() && s.confirm.is_none() => {
                s.confirm = Some((from, CONFIRM_SENDS));
                s.won = true;
                // The next probe (at the usual rate) goes to `from`.
                let id = s.id;
                tracing::debug!(%from, probes = s.report.probes_sent, "birthday punch: a port got through");
                self.outputs.push_back(Output::Won { session: id, via: Via::Main, peer: from });
            }
            _ => {}
        }
        true
    }

    fn end(&mut self, now: Instant, outcome: Outcome) {
        let Some(mut s) = self.session.take() else { return };
        // Cancelled once through (the connection came): still won.
        let outcome = if s.won { Outcome::Won } else { outcome };
        for e in s.extras.iter_mut().filter(|e| e.open) {
            e.open = false;
            self.outputs.push_back(Output::CloseSocket { sock: e.sock });
        }
        match outcome {
            Outcome::Won => self.stats.won += 1,
            Outcome::TimedOut => self.stats.timed_out += 1,
            Outcome::Cancelled => {}
        }
        s.report.elapsed = now.saturating_duration_since(s.started);
        tracing::debug!(?outcome, report = ?s.report, "birthday punch ended");
        self.outputs.push_back(Output::Ended { session: s.id, outcome, report: s.report });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_are_neither_utp_nor_anything_else() {
        for k in [Kind::Probe, Kind::Opener, Kind::Ack] {
            assert_eq!(decode(&encode(k)), Some(k));
            assert!(!crate::utp::looks_like_utp(&encode(k)));
        }
        assert_eq!(decode(b"HSNB\x01\x09"), None);
        assert_eq!(decode(b"HSNB\x02\x01"), None);
        assert_eq!(decode(b"HSNB\x01\x01\x00"), None);
        assert_eq!(decode(&[0x5a; 6]), None);
    }

    #[test]
    fn roles_only_for_exactly_one_random_side() {
        use crate::dht::nat::NatType::*;
        assert_eq!(role_for(Random, Consistent), Some(Role::Spray));
        assert_eq!(role_for(Consistent, Random), Some(Role::Probe));
        for (a, b) in [(Random, Random), (Consistent, Consistent), (Unknown, Random), (Random, Unknown), (Open, Consistent), (Random, Open), (Open, Random)] {
            assert_eq!(role_for(a, b), None, "{a:?} × {b:?}");
        }
    }
}
