//! Connect racing (spec/api-network.md §2.5): TCP at once and, when the peer
//! came with a referrer, a hole punch then uTP; the first to connect wins,
//! the others are dropped; 10 s overall.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::peer::Peer;
use super::peer_queue::CONNECT_TIMEOUT;

/// How long TCP runs alone before the punch starts. On a LAN or loopback
/// TCP connects in well under this, and should win: it is the faster path
/// and Node owns it. Behind a NAT the TCP SYN is dropped and the punch
/// starts this much later than the reference's (which starts at once).
pub const UDP_LEG_DELAY: Duration = Duration::from_millis(30);

/// The error of a dial whose hole punch failed last: the message dht-rpc
/// 4.9.6 gives a request that got no answer, which network 2.1.0's connect
/// passes on as is.
pub const PUNCH_FAILED: &str = "Request timed out";

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
    pub tcp_task: Option<tokio::task::AbortHandle>,
    /// The UDP leg not started yet: (peer, referrer) and when to start it.
    pub udp_pending: Option<(SocketAddrV4, SocketAddrV4)>,
    pub udp_at: Option<Instant>,
    /// The punch is the caller's ([`super::Swarm::connect_with_caller_punch`]),
    /// and whether the engine is waiting for its answer.
    pub caller_punch: bool,
    pub awaiting_caller: bool,
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
            tcp_task: None,
            udp_pending: None,
            udp_at: None,
            caller_punch: false,
            awaiting_caller: false,
        }
    }

    /// Every leg has failed.
    pub fn lost(&self) -> bool {
        self.tcp != Leg::Running && self.utp != Leg::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer { host: "10.0.0.1".into(), port: 1, local: false, referrer: None, topic: None, to: None }
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
}
