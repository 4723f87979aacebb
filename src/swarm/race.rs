//! Connect racing (spec/api-network.md §2.5): TCP at once and, when the peer
//! came with a referrer, a hole punch then uTP; the first to connect wins,
//! the others are dropped; 10 s overall. Ours only: a LAN peer that refuses
//! TCP is dialled over uTP directly (see [`LAN_UTP_TIMEOUT`]).

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::discovery::Peer;
use super::error::ConnectError;
use super::peer_queue::CONNECT_TIMEOUT;

/// How long TCP runs alone before the punch starts, for a peer at a
/// private address (a LAN, loopback, a testnet). There TCP connects in
/// well under this, and should win: it is the faster path and Node owns
/// it. A peer at a public address gets no head start ([`head_start`]).
pub const UDP_LEG_DELAY: Duration = Duration::from_millis(30);

/// TCP's head start for a peer at `addr`: [`UDP_LEG_DELAY`] at a private,
/// loopback, link-local or shared (100.64/10) address, none at a public
/// one. Across the internet the peer is usually behind a NAT that drops
/// our SYN, and a head start only delayed the punch: the NAT lab measured
/// cone × public 40 ms against the reference's 23 ms, which starts the
/// punch beside TCP as we now do. A public peer's TCP still wins (one round
/// trip against the punch's two through the referrer, then uTP's).
pub fn head_start(addr: SocketAddrV4) -> Duration {
    let ip = addr.ip();
    let shared = ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64;
    if ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || shared {
        UDP_LEG_DELAY
    } else {
        Duration::ZERO
    }
}

/// How long a direct uTP dial to a LAN peer that refused TCP may take.
/// The reference dials a LAN peer (no referrer, nothing to punch through)
/// over TCP alone, so a peer whose TCP is full or firewalled stays out of
/// reach though its uTP socket would answer. On a LAN the uTP handshake is
/// one round trip (loopback: under a millisecond); libutp resends a SYN
/// only after 3 s, so this allows one SYN and its answer, and a peer that
/// is simply gone costs the dial queue a second, not uTP's 9 s of retries.
pub const LAN_UTP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    Running,
    Failed,
    Absent,
}

/// Who asked for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialKind {
    Auto,
    Request(u32),
}

#[derive(Debug)]
pub struct Race {
    pub kind: DialKind,
    pub peer: Peer,
    pub deadline: Instant,
    pub tcp: Leg,
    pub utp: Leg,
    /// The DHT hole-punch request, then the uTP attempt, of the UDP leg.
    pub punch: Option<u64>,
    pub utp_id: Option<u64>,
    /// The UDP leg not started yet: (peer, referrer) and when to start it.
    pub udp_pending: Option<(SocketAddrV4, SocketAddrV4)>,
    pub udp_at: Option<Instant>,
    /// The punch is the caller's ([`super::Swarm::connect_with_caller_punch`]),
    /// and whether the engine is waiting for its answer.
    pub caller_punch: bool,
    pub awaiting_caller: bool,
    /// TCP's refusal, kept while the direct uTP dial to a LAN peer runs:
    /// if that fails too, the dial fails with TCP's error, as the
    /// reference's would.
    pub tcp_error: Option<ConnectError>,
    /// A longer path for this peer runs outside the race (a relay session,
    /// `swarm::relay_io`): the race waits for it past the direct legs.
    pub side: Leg,
}

impl Race {
    pub fn new(now: Instant, kind: DialKind, peer: Peer, with_udp: bool) -> Race {
        Race {
            kind,
            peer,
            deadline: now + CONNECT_TIMEOUT,
            tcp: Leg::Running,
            utp: if with_udp { Leg::Running } else { Leg::Absent },
            punch: None,
            utp_id: None,
            udp_pending: None,
            udp_at: None,
            caller_punch: false,
            awaiting_caller: false,
            tcp_error: None,
            side: Leg::Absent,
        }
    }

    /// Every leg has failed.
    pub fn lost(&self) -> bool {
        self.tcp != Leg::Running && self.utp != Leg::Running && self.side != Leg::Running
    }

    /// TCP was refused by a LAN peer and no uTP leg was planned: dial uTP
    /// straight at it, within [`LAN_UTP_TIMEOUT`]. Returns where to dial,
    /// or None when this race has no such fallback.
    pub fn lan_fallback(&mut self, now: Instant, refused: bool, error: &ConnectError) -> Option<SocketAddrV4> {
        if !refused || !self.peer.local || self.utp != Leg::Absent || self.udp_pending.is_some() || self.caller_punch {
            return None;
        }
        let addr = self.peer.addr_v4()?;
        self.utp = Leg::Running;
        self.tcp_error = Some(error.clone());
        self.deadline = self.deadline.min(now + LAN_UTP_TIMEOUT);
        Some(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer { host: std::net::Ipv4Addr::new(10, 0, 0, 1).into(), port: 1, local: false, referrer: None, topic: None, to: None }
    }

    #[test]
    fn lost_only_when_every_leg_failed() {
        let now = Instant::now();
        let mut r = Race::new(now, DialKind::Auto, peer(), true);
        r.tcp = Leg::Failed;
        assert!(!r.lost());
        r.utp = Leg::Failed;
        assert!(r.lost());
        let mut tcp_only = Race::new(now, DialKind::Auto, peer(), false);
        assert!(!tcp_only.lost());
        tcp_only.tcp = Leg::Failed;
        assert!(tcp_only.lost());
        assert_eq!(r.deadline, now + CONNECT_TIMEOUT);
    }

    #[test]
    fn only_a_lan_peer_that_refused_tcp_gets_a_direct_utp_dial() {
        let now = Instant::now();
        let lan = Peer { local: true, ..peer() };
        let refused = ConnectError::Failed { reason: "refused".into(), errno: Some(libc::ECONNREFUSED) };
        let mut r = Race::new(now, DialKind::Auto, lan.clone(), false);
        r.tcp = Leg::Failed;
        assert_eq!(r.lan_fallback(now, false, &ConnectError::TimedOut), None, "a timeout is not a refusal");
        let later = now + Duration::from_millis(5);
        assert_eq!(r.lan_fallback(later, true, &refused), Some("10.0.0.1:1".parse().unwrap()));
        assert_eq!(r.utp, Leg::Running);
        assert!(!r.lost());
        assert_eq!(r.deadline, later + LAN_UTP_TIMEOUT);
        assert_eq!(r.tcp_error, Some(refused.clone()));
        assert_eq!(r.lan_fallback(later, true, &refused), None, "once per race");

        let mut public = Race::new(now, DialKind::Auto, peer(), false);
        assert_eq!(public.lan_fallback(now, true, &refused), None, "not for a peer off the LAN");
        let mut punched = Race::new(now, DialKind::Auto, lan.clone(), true);
        assert_eq!(punched.lan_fallback(now, true, &refused), None, "a peer with a uTP leg already has one");
        let mut named = Race::new(now, DialKind::Auto, Peer { host: crate::discovery::Host::Name("lan-host".into()), ..lan }, false);
        assert_eq!(named.lan_fallback(now, true, &refused), None, "addresses only");
    }
}
