//! Answers to punches from peers that just reached us over TCP, held back
//! a moment.
//!
//! A hyperswarm 2.x dialler races TCP and a hole punch through the
//! referrer. When it can reach us over TCP (we are public), its TCP
//! handshake is done long before its punch comes back round through the
//! referrer, but our answer can still reach it before its event loop has
//! handled that handshake. It then starts a uTP dial it throws away a
//! moment later, and handles its TCP connection only after that work: in
//! the NAT lab a reference dialler reported the connection to us about
//! 3 ms later whenever that happened (half the runs; the reference, slower
//! to answer punches, set it off in one run of eight). So an answer to a
//! punch from an IP whose TCP connection we accepted within
//! [`PUNCH_HOLD`] waits until [`PUNCH_HOLD`] after that accept. Anyone
//! else's punch is answered at once, as before; a held answer is sent in
//! full, only later.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How long after we accept a TCP connection from an IP an answer to a
/// punch from that IP waits. Ours: the dialler's event loop handles its
/// TCP handshake within a few ms (3–8 ms seen under the lab's load).
pub const PUNCH_HOLD: Duration = Duration::from_millis(25);
/// Accepted IPs remembered (the oldest goes first).
pub const MAX_TCP_SEEN: usize = 64;
/// Answers held at once; past it an answer goes at once.
pub const MAX_HELD: usize = 64;

/// A held answer: when it goes, whose budget pays it, where, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub at: Instant,
    pub source: Ipv4Addr,
    pub to: SocketAddrV4,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct PunchHold {
    tcp_seen: VecDeque<(Ipv4Addr, Instant)>,
    held: Vec<Held>,
}

impl PunchHold {
    /// We accepted a TCP connection from `ip`.
    pub fn tcp_accepted(&mut self, now: Instant, ip: Ipv4Addr) {
        self.tcp_seen.retain(|(seen, _)| *seen != ip);
        if self.tcp_seen.len() >= MAX_TCP_SEEN {
            self.tcp_seen.pop_front();
        }
        self.tcp_seen.push_back((ip, now));
    }

    /// Holds the answer `bytes` to a punch from `to` if its IP reached us
    /// over TCP within [`PUNCH_HOLD`]; otherwise (or when full) gives it
    /// back to be sent now.
    pub fn hold(&mut self, now: Instant, source: Ipv4Addr, to: SocketAddrV4, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let at = self.tcp_seen.iter().find(|(ip, _)| ip == to.ip()).map(|(_, t)| *t + PUNCH_HOLD);
        match at {
            Some(at) if at > now && self.held.len() < MAX_HELD => {
                self.held.push(Held { at, source, to, bytes });
                None
            }
            _ => Some(bytes),
        }
    }

    /// The answers whose time has come.
    pub fn due(&mut self, now: Instant) -> Vec<Held> {
        let (due, keep): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held).into_iter().partition(|h| h.at <= now);
        self.held = keep;
        due
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 11), 40000);
    const REFERRER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    #[test]
    fn an_answer_waits_only_for_an_ip_that_just_connected_over_tcp() {
        let now = Instant::now();
        let mut h = PunchHold::default();
        // Nobody connected: at once.
        assert_eq!(h.hold(now, REFERRER, PEER, vec![1]), Some(vec![1]));
        h.tcp_accepted(now, *PEER.ip());
        // Another port of that IP is the same host (its UDP socket).
        assert_eq!(h.hold(now + Duration::from_millis(3), REFERRER, PEER, vec![2]), None);
        assert_eq!(h.poll_timeout(), Some(now + PUNCH_HOLD));
        assert!(h.due(now + PUNCH_HOLD - Duration::from_millis(1)).is_empty());
        let due = h.due(now + PUNCH_HOLD);
        assert_eq!(due, vec![Held { at: now + PUNCH_HOLD, source: REFERRER, to: PEER, bytes: vec![2] }]);
        assert_eq!(h.poll_timeout(), None);
        // Once the hold has passed, answers go at once again.
        assert_eq!(h.hold(now + PUNCH_HOLD, REFERRER, PEER, vec![3]), Some(vec![3]));
        // Another IP is never held.
        let other = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 12), 40000);
        h.tcp_accepted(now + PUNCH_HOLD, *PEER.ip());
        assert_eq!(h.hold(now + PUNCH_HOLD, REFERRER, other, vec![4]), Some(vec![4]));
    }

    #[test]
    fn held_answers_and_remembered_ips_are_bounded() {
        let now = Instant::now();
        let mut h = PunchHold::default();
        for i in 0..(MAX_TCP_SEEN as u32 + 10) {
            h.tcp_accepted(now, Ipv4Addr::from(0x0a00_0000 + i));
        }
        assert_eq!(h.tcp_seen.len(), MAX_TCP_SEEN);
        // The oldest were forgotten: their punches are answered at once.
        assert!(h.hold(now, REFERRER, SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000), 1), vec![0]).is_some());
        h.tcp_accepted(now, *PEER.ip());
        for i in 0..MAX_HELD {
            assert_eq!(h.hold(now, REFERRER, PEER, vec![i as u8]), None);
        }
        // Full: the next goes at once rather than waiting or being dropped.
        assert_eq!(h.hold(now, REFERRER, PEER, vec![0xff]), Some(vec![0xff]));
        assert_eq!(h.due(now + PUNCH_HOLD).len(), MAX_HELD);
    }
}
