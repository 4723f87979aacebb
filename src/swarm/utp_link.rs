//! uTP connections of a swarm: the sans-IO endpoint on the shared UDP
//! socket, and the flow control between it and the owner's streams.
//!
//! Reads are credit-based: the owner grants up to [`READ_CREDIT`] bytes at a
//! time (Node's `_read`), so a slow reader stops the flow and the uTP
//! receive window closes. Writes complete when the endpoint has taken the
//! whole chunk into its (bounded) send buffer.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Instant;

use crate::utp::{ConnId, Endpoint, UtpConfig, UtpEvent, UtpStats};

/// Bytes handed to the owner per grant.
pub const READ_CREDIT: usize = 1024 * 1024;
/// Largest chunk handed to the owner at once.
const CHUNK: usize = 64 * 1024;
/// Bytes a connection may hand over before the owner's first grant. Ours:
/// the peer's first message (a hello, a protocol handshake) then reaches
/// the owner with the connection, not a round trip to Node and back after
/// it (about 1 ms in the NAT lab). The owner holds at most this plus
/// [`READ_CREDIT`] unread.
pub const FIRST_CREDIT: usize = CHUNK;

struct Link {
    utp: ConnId,
    credit: usize,
    readable: bool,
    /// A write the endpoint has not taken whole yet: (write id, bytes, offset).
    pending: Option<(u32, Vec<u8>, usize)>,
}

#[derive(Debug)]
pub enum LinkEvent {
    /// A dialler's connection carried its first data; nobody owns it yet.
    Incoming { utp: ConnId, from: SocketAddrV4 },
    /// An outgoing attempt (not yet adopted) connected or failed.
    Connected { utp: ConnId },
    Failed { utp: ConnId, error: String },
    Data { conn: u64, data: Vec<u8> },
    Written { conn: u64, write: u32 },
    End { conn: u64 },
    Closed { conn: u64, error: Option<String> },
}

pub struct UtpLink {
    ep: Endpoint,
    conns: HashMap<u64, Link>,
    by_utp: HashMap<ConnId, u64>,
}

impl UtpLink {
    pub fn new(config: UtpConfig, seed: u64) -> Self {
        UtpLink { ep: Endpoint::new(config, seed), conns: HashMap::new(), by_utp: HashMap::new() }
    }

    /// Half-open connections held (SYN acked, no data yet).
    pub fn half_open(&self) -> usize {
        self.ep.half_open_count()
    }

    pub fn stats(&self) -> UtpStats {
        self.ep.stats()
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.ep.handle_datagram(now, from, bytes);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ep.poll_timeout()
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.ep.poll_transmit()
    }

    pub fn connect(&mut self, now: Instant, to: SocketAddrV4) -> ConnId {
        self.ep.connect(now, to)
    }

    /// Drops an attempt nobody will own (it lost a race).
    /// Refuses new incoming connections while `false`.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.ep.set_accepting(accepting);
    }

    pub fn abandon(&mut self, now: Instant, utp: ConnId) {
        if !self.by_utp.contains_key(&utp) {
            self.ep.close(now, utp);
        }
    }

    /// Gives connection `utp` the owner's id `conn`.
    pub fn adopt(&mut self, conn: u64, utp: ConnId) {
        self.by_utp.insert(utp, conn);
        self.conns.insert(conn, Link { utp, credit: FIRST_CREDIT, readable: true, pending: None });
    }

    pub fn peer_addr(&self, utp: ConnId) -> Option<SocketAddrV4> {
        self.ep.peer_addr(utp)
    }

    pub fn write(&mut self, now: Instant, conn: u64, write: u32, data: Vec<u8>, out: &mut Vec<LinkEvent>) {
        let Some(link) = self.conns.get_mut(&conn) else { return };
        link.pending = Some((write, data, 0));
        Self::push_pending(&mut self.ep, now, conn, link, out);
    }

    fn push_pending(ep: &mut Endpoint, now: Instant, conn: u64, link: &mut Link, out: &mut Vec<LinkEvent>) {
        let Some((write, data, off)) = link.pending.as_mut() else { return };
        *off += ep.write(now, link.utp, &data[*off..]);
        if *off >= data.len() {
            out.push(LinkEvent::Written { conn, write: *write });
            link.pending = None;
        }
    }

    /// The owner wants more data.
    pub fn grant(&mut self, conn: u64) {
        if let Some(link) = self.conns.get_mut(&conn) {
            link.credit = READ_CREDIT;
        }
    }

    pub fn shutdown(&mut self, now: Instant, conn: u64) {
        if let Some(link) = self.conns.get(&conn) {
            self.ep.shutdown(now, link.utp);
        }
    }

    pub fn close(&mut self, now: Instant, conn: u64) {
        if let Some(link) = self.conns.remove(&conn) {
            self.by_utp.remove(&link.utp);
            self.ep.close(now, link.utp);
        }
    }

    /// Translates endpoint events and moves granted data to the owner.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<LinkEvent>) {
        while let Some(ev) = self.ep.poll_event() {
            match ev {
                UtpEvent::Incoming { id, from } => out.push(LinkEvent::Incoming { utp: id, from }),
                UtpEvent::Connected { id } => {
                    if !self.by_utp.contains_key(&id) {
                        out.push(LinkEvent::Connected { utp: id });
                    }
                }
                UtpEvent::Readable { id } => {
                    if let Some(link) = self.by_utp.get(&id).and_then(|c| self.conns.get_mut(c)) {
                        link.readable = true;
                    }
                }
                UtpEvent::Writable { id } => {
                    if let Some(&conn) = self.by_utp.get(&id) {
                        if let Some(link) = self.conns.get_mut(&conn) {
                            Self::push_pending(&mut self.ep, now, conn, link, out);
                        }
                    }
                }
                UtpEvent::End { id } => {
                    if let Some(&conn) = self.by_utp.get(&id) {
                        // Deliver what is left before the end.
                        self.drain(conn, out, true);
                        out.push(LinkEvent::End { conn });
                    }
                }
                UtpEvent::Closed { id, error } => match self.by_utp.remove(&id) {
                    Some(conn) => {
                        self.conns.remove(&conn);
                        out.push(LinkEvent::Closed { conn, error });
                    }
                    None => out.push(LinkEvent::Failed { utp: id, error: error.unwrap_or_else(|| "closed".into()) }),
                },
            }
        }
        let ready: Vec<u64> = self.conns.iter().filter(|(_, l)| l.readable && l.credit > 0).map(|(c, _)| *c).collect();
        for conn in ready {
            self.drain(conn, out, false);
        }
    }

    fn drain(&mut self, conn: u64, out: &mut Vec<LinkEvent>, all: bool) {
        let Some(link) = self.conns.get_mut(&conn) else { return };
        loop {
            let max = if all { CHUNK } else { CHUNK.min(link.credit) };
            if max == 0 {
                return;
            }
            let mut data = Vec::new();
            let n = self.ep.read(link.utp, &mut data, max);
            if n == 0 {
                link.readable = false;
                return;
            }
            link.credit = link.credit.saturating_sub(n);
            out.push(LinkEvent::Data { conn, data });
        }
    }

    pub fn is_utp(&self, conn: u64) -> bool {
        self.conns.contains_key(&conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const D: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1000);
    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 2000);

    /// Moves every queued datagram between the dialler `d` (at D) and the
    /// acceptor `a` (at A) until both are quiet.
    fn shuttle(now: Instant, d: &mut UtpLink, a: &mut UtpLink) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some((to, bytes)) = d.poll_transmit() {
                assert_eq!(to, A);
                a.handle_datagram(now, D, &bytes);
                moved = true;
            }
            while let Some((to, bytes)) = a.poll_transmit() {
                assert_eq!(to, D);
                d.handle_datagram(now, A, &bytes);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the links never went quiet");
    }

    fn data_bytes(out: &[LinkEvent], conn: u64) -> usize {
        out.iter()
            .map(|e| match e {
                LinkEvent::Data { conn: c, data } if *c == conn => data.len(),
                _ => 0,
            })
            .sum()
    }

    /// A dialler adopted as conn 1 and an acceptor adopted as conn 7, the
    /// dialler's `first` write having made the acceptor's connection.
    fn pair(now: Instant, first: &[u8]) -> (UtpLink, UtpLink, Vec<LinkEvent>) {
        let mut d = UtpLink::new(UtpConfig::default(), 1);
        let mut a = UtpLink::new(UtpConfig::default(), 2);
        let utp = d.connect(now, A);
        shuttle(now, &mut d, &mut a);
        let mut out = Vec::new();
        d.poll(now, &mut out);
        assert!(out.iter().any(|e| matches!(e, LinkEvent::Connected { utp: u } if *u == utp)), "{out:?}");
        d.adopt(1, utp);
        out.clear();
        d.write(now, 1, 1, first.to_vec(), &mut out);
        shuttle(now, &mut d, &mut a);
        out.clear();
        a.poll(now, &mut out);
        let Some(&LinkEvent::Incoming { utp: incoming, from }) = out.iter().find(|e| matches!(e, LinkEvent::Incoming { .. })) else {
            panic!("no incoming connection: {out:?}")
        };
        assert_eq!(from, D);
        a.adopt(7, incoming);
        (d, a, out)
    }

    #[test]
    fn the_first_data_reaches_the_owner_before_any_grant() {
        let now = Instant::now();
        let (_d, mut a, first) = pair(now, b"hello from d");
        // Nothing was granted: the poll that reported the connection had no
        // owner yet, the one after adoption hands the data over.
        assert_eq!(data_bytes(&first, 7), 0);
        let mut out = Vec::new();
        a.poll(now, &mut out);
        let got: Vec<u8> = out
            .iter()
            .flat_map(|e| match e {
                LinkEvent::Data { conn: 7, data } => data.clone(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(got, b"hello from d");
    }

    /// 5 ms pass: both sides' timers, the datagrams between them, and the
    /// bytes the acceptor handed its owner (conn 7) in that time.
    fn step(now: &mut Instant, d: &mut UtpLink, a: &mut UtpLink) -> usize {
        *now += Duration::from_millis(5);
        d.handle_timeout(*now);
        a.handle_timeout(*now);
        shuttle(*now, d, a);
        let mut out = Vec::new();
        a.poll(*now, &mut out);
        d.poll(*now, &mut Vec::new());
        data_bytes(&out, 7)
    }

    #[test]
    fn before_a_grant_at_most_the_first_credit_is_handed_over() {
        let mut now = Instant::now();
        let (mut d, mut a, _) = pair(now, b"x");
        // Far more than the first credit, from the dialler; the acceptor's
        // owner never reads.
        d.write(now, 1, 2, vec![7u8; 4 * FIRST_CREDIT], &mut Vec::new());
        let mut handed = 0;
        for _ in 0..3000 {
            handed += step(&mut now, &mut d, &mut a);
            if handed >= FIRST_CREDIT {
                break;
            }
        }
        // The 1-byte first write counts against the credit too.
        assert_eq!(handed, FIRST_CREDIT, "exactly the first credit, then nothing until a grant");
        for _ in 0..20 {
            assert_eq!(step(&mut now, &mut d, &mut a), 0, "no grant, no more data");
        }
        // A grant lets the rest flow.
        a.grant(7);
        let mut out = Vec::new();
        a.poll(now, &mut out);
        assert!(data_bytes(&out, 7) > 0);
    }
}
