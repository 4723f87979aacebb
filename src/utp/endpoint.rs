//! The uTP endpoint: every connection on one UDP socket, demultiplexed by
//! (remote address, connection id); accepting and connecting; RESET for
//! packets that match nothing (spec/wire-utp.md §2, §3, §6).
//!
//! Sans-IO, quinn-proto style: feed `handle_datagram`/`handle_timeout` and
//! commands with the current `Instant`, then drain `poll_transmit` and
//! `poll_event`, and wake up at `poll_timeout`. Acks are produced lazily in
//! `poll_transmit`, so one ack covers every datagram handled since the
//! last drain.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::config::{Slot, UtpConfig};
use super::connection::{Connection, Ctx};
use super::event::{ConnId, UtpEvent, UtpStats};
use super::packet::{decode, encode, Header, PacketType};

/// Remembered RESETs (spec §6): a repeat gets no second RESET…
pub const RESET_MEMO_TTL: Duration = Duration::from_secs(10);
/// …and beyond this many remembered, no RESET is sent at all.
pub const RESET_MEMO_MAX: usize = 1000;

/// splitmix64: a small deterministic generator for ids and sequence numbers.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u16(&mut self) -> u16 {
        self.next_u64() as u16
    }
}

type ResetKey = (SocketAddrV4, u16, u16);

/// Every uTP connection of one UDP socket: demultiplexes datagrams by
/// connection id and peer, and owns the budgets (connections, half-open
/// ones, per IP) that keep a flood of SYNs from taking the room of real
/// connections. Sans-IO: see the module docs for how to drive it.
pub struct Endpoint {
    config: UtpConfig,
    rng: Rng,
    epoch: Option<Instant>,
    ts_offset: u32,
    last_now: Option<Instant>,
    conns: HashMap<ConnId, Connection>,
    by_key: HashMap<(SocketAddrV4, u16), ConnId>,
    next_id: ConnId,
    timers: BTreeSet<(Instant, ConnId)>,
    transmits: VecDeque<(SocketAddrV4, Vec<u8>)>,
    events: VecDeque<UtpEvent>,
    ack_queue: VecDeque<ConnId>,
    reset_memo: HashMap<ResetKey, Instant>,
    reset_order: VecDeque<(Instant, ResetKey)>,
    accepting: bool,
    stats: UtpStats,
    /// Connections per slot (see [`Slot`]).
    half_open: usize,
    incoming: usize,
    outgoing: usize,
    /// Per source IP: (half-open, incoming including half-open).
    per_ip: HashMap<Ipv4Addr, (usize, usize)>,
    /// Half-open ids, oldest first; entries that left the slot are skipped
    /// lazily and swept when the queue grows past twice the table.
    half_open_order: VecDeque<ConnId>,
}

/// A connection's view of the endpoint. A macro rather than a method: it
/// borrows only the fields it names, so a connection taken out of
/// `self.conns` can be driven with it at the same time.
macro_rules! ctx {
    ($ep:ident, $now:expr, $ts:expr) => {
        Ctx { now: $now, ts: $ts, cfg: &$ep.config, out: &mut $ep.transmits, events: &mut $ep.events, stats: &mut $ep.stats }
    };
}

impl Endpoint {
    /// An endpoint with no connections. `seed` feeds its ids, initial
    /// sequence numbers and clock origin: give each endpoint a random one
    /// (tests give fixed ones, to replay).
    pub fn new(config: UtpConfig, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let ts_offset = rng.next_u64() as u32;
        Endpoint {
            config,
            rng,
            epoch: None,
            ts_offset,
            last_now: None,
            conns: HashMap::new(),
            by_key: HashMap::new(),
            next_id: 1,
            timers: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            ack_queue: VecDeque::new(),
            reset_memo: HashMap::new(),
            reset_order: VecDeque::new(),
            accepting: true,
            stats: UtpStats::default(),
            half_open: 0,
            incoming: 0,
            outgoing: 0,
            per_ip: HashMap::new(),
            half_open_order: VecDeque::new(),
        }
    }

    /// The limits it was made with.
    pub fn config(&self) -> &UtpConfig {
        &self.config
    }

    /// The wire clock: microseconds, wrapping, from a random origin.
    fn ts(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        self.last_now = Some(self.last_now.map_or(now, |t| t.max(now)));
        (now.saturating_duration_since(epoch).as_micros() as u32).wrapping_add(self.ts_offset)
    }

    /// Runs `f` on connection `id` with a context, then updates the
    /// endpoint's bookkeeping for it (timer, ack queue, removal).
    fn with_conn<R>(&mut self, now: Instant, id: ConnId, f: impl FnOnce(&mut Connection, &mut Ctx) -> R) -> Option<R> {
        let ts = self.ts(now);
        let conn = self.conns.get_mut(&id)?;
        let mut ctx = ctx!(self, now, ts);
        let r = f(conn, &mut ctx);
        self.after(id);
        Some(r)
    }

    fn after(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        if conn.slot == Slot::HalfOpen && !conn.is_half_open() && !conn.is_dead() {
            // Promoted by the dialler's first DATA/FIN.
            conn.slot = Slot::Incoming;
            self.half_open -= 1;
            self.incoming += 1;
            self.stats.accepted += 1;
            if let Some(e) = self.per_ip.get_mut(conn.peer.ip()) {
                e.0 -= 1;
            }
        }
        if conn.is_dead() {
            let conn = self.conns.remove(&id).unwrap();
            if let Some(t) = conn.timer {
                self.timers.remove(&(t, id));
            }
            if self.by_key.get(&(conn.peer, conn.recv_id)) == Some(&id) {
                self.by_key.remove(&(conn.peer, conn.recv_id));
            }
            self.release(conn.slot, *conn.peer.ip());
            return;
        }
        let next = conn.next_deadline(&self.config);
        if next != conn.timer {
            if let Some(t) = conn.timer {
                self.timers.remove(&(t, id));
            }
            if let Some(t) = next {
                self.timers.insert((t, id));
            }
            conn.timer = next;
        }
        if conn.wants_ack() && !conn.ack_queued {
            conn.ack_queued = true;
            self.ack_queue.push_back(id);
        }
    }

    /// A connection left the table: its slot is free.
    fn release(&mut self, slot: Slot, ip: Ipv4Addr) {
        let incoming = match slot {
            Slot::Outgoing => {
                self.outgoing -= 1;
                return;
            }
            Slot::HalfOpen => {
                self.half_open -= 1;
                true
            }
            Slot::Incoming => {
                self.incoming -= 1;
                false
            }
        };
        if let Some(e) = self.per_ip.get_mut(&ip) {
            if incoming {
                e.0 -= 1;
            }
            e.1 -= 1;
            if e.1 == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Drops the oldest half-open connection, silently; false if none.
    fn evict_half_open(&mut self, now: Instant) -> bool {
        while let Some(id) = self.half_open_order.pop_front() {
            if self.conns.get(&id).is_some_and(|c| c.slot == Slot::HalfOpen) {
                self.stats.half_open_evicted += 1;
                self.with_conn(now, id, |c, _| c.discard());
                return true;
            }
        }
        false
    }

    fn alloc_id(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Opens a connection to `to`. Over the connection limit the returned id
    /// gets a `Closed` event with an error at once.
    pub fn connect(&mut self, now: Instant, to: SocketAddrV4) -> ConnId {
        let id = self.alloc_id();
        // Outgoing connections have their own budget: no SYN flood and no
        // incoming connection can take it.
        if self.outgoing >= self.config.max_connections {
            self.ts(now);
            self.events.push_back(UtpEvent::Closed { id, error: Some("too many connections".into()) });
            return id;
        }
        // A recv_id no connection to this address uses (spec §2). The
        // table holds at most 2 × max_connections + max_half_open
        // entries, far below 65536, so this ends.
        let recv_id = loop {
            let r = self.rng.next_u16();
            if !self.by_key.contains_key(&(to, r)) {
                break r;
            }
        };
        let seq = self.rng.next_u16();
        let ts = self.ts(now);
        let mut ctx = ctx!(self, now, ts);
        let conn = Connection::connect(&mut ctx, id, to, recv_id, seq);
        self.outgoing += 1;
        self.by_key.insert((to, recv_id), id);
        self.conns.insert(id, conn);
        self.after(id);
        id
    }

    /// Feed a datagram that looks_like_utp(); anything malformed is dropped
    /// and counted.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.stats.received += 1;
        let ts = self.ts(now);
        let pkt = match decode(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let h = pkt.header;
        match h.ptype {
            PacketType::Syn => self.on_syn(now, ts, from, &h),
            PacketType::Reset => {
                // libutp's matching (spec §6): recv_id = id, or send_id = id
                // with recv_id = id ± 1.
                let candidates = [h.conn_id, h.conn_id.wrapping_add(1), h.conn_id.wrapping_sub(1)];
                let found = candidates
                    .iter()
                    .filter_map(|cid| self.by_key.get(&(from, *cid)).copied())
                    .find(|id| self.conns.get(id).is_some_and(|c| c.reset_matches(h.conn_id)));
                match found {
                    Some(id) => {
                        self.with_conn(now, id, |c, ctx| c.on_reset(ctx, &h));
                    }
                    None => self.stats.unknown_conn += 1,
                }
            }
            _ => match self.by_key.get(&(from, h.conn_id)).copied() {
                Some(id) => {
                    let promotes = matches!(h.ptype, PacketType::Data | PacketType::Fin)
                        && self.conns.get(&id).is_some_and(|c| c.is_half_open());
                    if promotes && self.incoming >= self.config.max_connections {
                        // No room for another established connection: the
                        // half-open one goes, and the dialler's next packet
                        // gets a RESET.
                        self.stats.syns_refused += 1;
                        self.with_conn(now, id, |c, _| c.discard());
                        return;
                    }
                    self.with_conn(now, id, |c, ctx| c.on_packet(ctx, &pkt));
                }
                None => {
                    self.stats.unknown_conn += 1;
                    self.send_reset(now, from, &h);
                }
            },
        }
    }

    fn on_syn(&mut self, now: Instant, ts: u32, from: SocketAddrV4, h: &Header) {
        let recv_id = h.conn_id.wrapping_add(1);
        if let Some(id) = self.by_key.get(&(from, recv_id)).copied() {
            if self.conns.get(&id).is_some_and(|c| c.superseded_by_syn(h)) {
                // Lingering or half-open, and the peer restarted with the
                // same ids: the old one goes.
                self.with_conn(now, id, |c, ctx| c.supersede(ctx));
                self.by_key.remove(&(from, recv_id));
            } else {
                // A repeated SYN, or one on an established connection's
                // key (which it never replaces): the connection decides.
                if self.conns.get(&id).is_some_and(|c| !c.is_half_open()) {
                    self.stats.syn_collisions += 1;
                }
                let pkt = super::packet::Packet { header: *h, sack: None, ext_bits: None, payload: &[] };
                self.with_conn(now, id, |c, ctx| c.on_packet(ctx, &pkt));
                return;
            }
        }
        if !self.accepting {
            self.stats.syns_refused += 1;
            if self.config.reset_refused_syns {
                self.send_reset(now, from, h);
            }
            return;
        }
        if self.incoming >= self.config.max_connections {
            self.stats.syns_refused += 1;
            return;
        }
        let (ip_half, ip_all) = self.per_ip.get(from.ip()).copied().unwrap_or((0, 0));
        if ip_half >= self.config.max_half_open_per_ip || ip_all >= self.config.max_incoming_per_ip {
            self.stats.syns_refused += 1;
            self.stats.refused_per_ip += 1;
            return;
        }
        while self.half_open >= self.config.max_half_open {
            if !self.evict_half_open(now) {
                self.stats.syns_refused += 1;
                return;
            }
        }
        let id = self.alloc_id();
        let seq = self.rng.next_u16();
        let mut ctx = ctx!(self, now, ts);
        let conn = Connection::accept(&mut ctx, id, from, h, seq);
        self.stats.half_opened += 1;
        self.half_open += 1;
        let e = self.per_ip.entry(*from.ip()).or_default();
        e.0 += 1;
        e.1 += 1;
        self.half_open_order.push_back(id);
        if self.half_open_order.len() > 2 * self.config.max_half_open + 16 {
            let conns = &self.conns;
            self.half_open_order.retain(|id| conns.get(id).is_some_and(|c| c.slot == Slot::HalfOpen));
        }
        self.by_key.insert((from, recv_id), id);
        self.conns.insert(id, conn);
        self.after(id);
    }

    /// RESET for a packet matching no connection (spec §6), at most once per
    /// (address, id, seq) in 10 s and not at all with 1000 remembered.
    fn send_reset(&mut self, now: Instant, to: SocketAddrV4, h: &Header) {
        while let Some(&(t, key)) = self.reset_order.front() {
            if now.saturating_duration_since(t) < RESET_MEMO_TTL {
                break;
            }
            self.reset_order.pop_front();
            if self.reset_memo.get(&key) == Some(&t) {
                self.reset_memo.remove(&key);
            }
        }
        let key = (to, h.conn_id, h.seq_nr);
        if self.reset_memo.contains_key(&key) || self.reset_memo.len() >= RESET_MEMO_MAX {
            self.stats.resets_suppressed += 1;
            return;
        }
        self.reset_memo.insert(key, now);
        self.reset_order.push_back((now, key));
        let reset = Header {
            ptype: PacketType::Reset,
            conn_id: h.conn_id,
            timestamp: 0,
            timestamp_diff: 0,
            wnd_size: 0,
            seq_nr: self.rng.next_u16(),
            ack_nr: h.seq_nr,
        };
        self.transmits.push_back((to, encode(&reset, None, &[])));
        self.stats.packets_sent += 1;
        self.stats.resets_sent += 1;
    }

    /// Runs the timers due at `now` (retransmission, keep-alive, SYN
    /// retries, lingering). Call it at [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ts(now);
        // Each due connection runs once per call, so a deadline that stays
        // due cannot loop here.
        let mut due = Vec::new();
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, id));
            if let Some(c) = self.conns.get_mut(&id) {
                c.timer = None;
            }
            due.push(id);
        }
        for id in due {
            self.with_conn(now, id, |c, ctx| c.on_timeout(ctx));
        }
    }

    /// The next datagram to send and where; `None` when there is nothing
    /// (acks are made here, one per connection for everything handled).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        let now = self.last_now?;
        while let Some(id) = self.ack_queue.pop_front() {
            let ts = self.ts(now);
            let Some(c) = self.conns.get_mut(&id) else { continue };
            c.ack_queued = false;
            if !c.wants_ack() {
                continue;
            }
            let bytes = c.make_ack(now, ts, &self.config, &mut self.stats);
            let peer = c.peer;
            self.after(id);
            return Some((peer, bytes));
        }
        None
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<UtpEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must run next; `None`: no timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(t, _)| t)
    }

    /// Queues up to the send-buffer room (1 MiB per connection); returns
    /// bytes accepted. 0 for unknown or closed ids and after shutdown().
    pub fn write(&mut self, now: Instant, id: ConnId, data: &[u8]) -> usize {
        self.with_conn(now, id, |c, ctx| c.write(ctx, data)).unwrap_or(0)
    }

    /// Moves up to `max` in-order received bytes into `out`; returns how many.
    pub fn read(&mut self, id: ConnId, out: &mut Vec<u8>, max: usize) -> usize {
        let Some(now) = self.last_now else { return 0 };
        self.with_conn(now, id, |c, ctx| c.read(ctx, out, max)).unwrap_or(0)
    }

    /// Half-close: FIN after all queued data (sent right behind the last
    /// data packet; the peer delivers everything before it first).
    pub fn shutdown(&mut self, now: Instant, id: ConnId) {
        self.with_conn(now, id, |c, ctx| c.shutdown(ctx));
    }

    /// Abort: RESET to the peer, Closed event.
    pub fn close(&mut self, now: Instant, id: ConnId) {
        self.with_conn(now, id, |c, ctx| c.abort(ctx));
    }

    /// Refuse new SYNs when false (maxConnections = -1): with a RESET, or
    /// silently when `reset_refused_syns` is off.
    pub fn set_accepting(&mut self, accept: bool) {
        self.accepting = accept;
    }

    /// The counters so far.
    pub fn stats(&self) -> UtpStats {
        self.stats.clone()
    }

    /// Where connection `id` goes; `None` once it is closed.
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddrV4> {
        self.conns.get(&id).filter(|c| c.is_open()).map(|c| c.peer)
    }

    /// Connections held (including half-open ones and ones lingering
    /// after a clean close).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Half-open connections held (a SYN acked, no data from the dialler).
    pub fn half_open_count(&self) -> usize {
        self.half_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::utp::config::{MAX_HALF_OPEN, MAX_HALF_OPEN_PER_IP, MAX_INCOMING_PER_IP};
    use crate::utp::packet::{decode, encode, PacketType};

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new([127, 0, 0, 1].into(), port)
    }

    fn drain(ep: &mut Endpoint) -> Vec<(SocketAddrV4, Vec<u8>)> {
        std::iter::from_fn(|| ep.poll_transmit()).collect()
    }

    fn events(ep: &mut Endpoint) -> Vec<UtpEvent> {
        std::iter::from_fn(|| ep.poll_event()).collect()
    }

    #[test]
    fn syn_shape_and_retries() {
        let mut ep = Endpoint::new(UtpConfig::default(), 1);
        let t0 = Instant::now();
        let id = ep.connect(t0, addr(2));
        let out = drain(&mut ep);
        assert_eq!(out.len(), 1);
        let p = decode(&out[0].1).unwrap();
        assert_eq!(p.header.ptype, PacketType::Syn);
        assert_eq!(p.header.ack_nr, 0);
        assert_eq!(p.header.timestamp_diff, 0);
        assert_eq!(p.header.wnd_size, 1 << 20);
        assert_eq!(out[0].1.len(), 20);
        let (cid, seq) = (p.header.conn_id, p.header.seq_nr);
        let mut sends = vec![0u64];
        let mut t = t0;
        while let Some(next) = ep.poll_timeout() {
            t = next;
            ep.handle_timeout(t);
            for (_, b) in drain(&mut ep) {
                let p = decode(&b).unwrap();
                assert_eq!((p.header.ptype, p.header.conn_id, p.header.seq_nr), (PacketType::Syn, cid, seq));
                sends.push((t - t0).as_secs());
            }
        }
        assert_eq!(sends, vec![0, 3, 9]);
        assert_eq!((t - t0).as_secs(), 21);
        assert_eq!(events(&mut ep), vec![UtpEvent::Closed { id, error: Some("timed out".into()) }]);
        assert_eq!(ep.connection_count(), 0);
    }

    #[test]
    fn accept_replies_like_libutp() {
        // The SYN from spec §10 (#2): the SYN-ACK is a STATE with the SYN's
        // connection id, acking its seq.
        let syn = [0x41, 0, 0x45, 0x67, 0xb2, 0x45, 0xd4, 0x0c, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x23, 0xc6, 0, 0];
        let mut ep = Endpoint::new(UtpConfig::default(), 7);
        let t0 = Instant::now();
        ep.handle_datagram(t0, addr(40002), &syn);
        // Half-open: nobody hears of it yet.
        assert!(events(&mut ep).is_empty());
        assert_eq!(ep.half_open_count(), 1);
        let out = drain(&mut ep);
        assert_eq!(out.len(), 1);
        let p = decode(&out[0].1).unwrap();
        assert_eq!(p.header.ptype, PacketType::State);
        assert_eq!(p.header.conn_id, 17767);
        assert_eq!(p.header.ack_nr, 9158);
        // A repeated SYN is answered again (libutp would ignore it).
        ep.handle_datagram(t0, addr(40002), &syn);
        let again = drain(&mut ep);
        assert_eq!(again.len(), 1);
        assert_eq!(decode(&again[0].1).unwrap().header.seq_nr, p.header.seq_nr);
        assert!(events(&mut ep).is_empty());
        // The dialler's first DATA, acking the SYN-ACK: now it is real.
        ep.handle_datagram(t0, addr(40002), &data(17768, 9159, p.header.seq_nr.wrapping_sub(1), b"hi"));
        let ev = events(&mut ep);
        assert!(matches!(ev[..], [UtpEvent::Incoming { from, .. }, UtpEvent::Readable { .. }] if from == addr(40002)), "{ev:?}");
        assert_eq!((ep.half_open_count(), ep.stats().accepted), (0, 1));
    }

    #[test]
    fn reset_for_unknown_matches_capture() {
        // DATA with connection_id 5555, seq 7 (spec §10).
        let data = [0x01, 0, 0x15, 0xb3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 7, 0, 0, b'x'];
        let mut ep = Endpoint::new(UtpConfig::default(), 9);
        let t0 = Instant::now();
        ep.handle_datagram(t0, addr(5), &data);
        let out = drain(&mut ep);
        assert_eq!(out.len(), 1);
        let b = &out[0].1;
        assert_eq!(&b[..16], &[0x31, 0, 0x15, 0xb3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[18..20], &[0, 7]);
        // The same triple within 10 s: no second RESET; after: again.
        ep.handle_datagram(t0 + Duration::from_secs(5), addr(5), &data);
        assert!(drain(&mut ep).is_empty());
        ep.handle_datagram(t0 + Duration::from_secs(11), addr(5), &data);
        assert_eq!(drain(&mut ep).len(), 1);
        // A RESET is never answered.
        ep.handle_datagram(t0, addr(5), b);
        assert!(drain(&mut ep).is_empty());
        let s = ep.stats();
        assert_eq!((s.resets_sent, s.resets_suppressed, s.unknown_conn), (2, 1, 4));
    }

    #[test]
    fn reset_memo_is_bounded() {
        let mut ep = Endpoint::new(UtpConfig::default(), 9);
        let t0 = Instant::now();
        for i in 0..1500u16 {
            let mut d = [0x01, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0];
            d[2..4].copy_from_slice(&i.to_be_bytes());
            ep.handle_datagram(t0, addr(5), &d);
        }
        assert_eq!(drain(&mut ep).len(), RESET_MEMO_MAX);
    }

    #[test]
    fn refusing_and_malformed() {
        let syn = [0x41, 0, 0x45, 0x67, 0xb2, 0x45, 0xd4, 0x0c, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x23, 0xc6, 0, 0];
        let mut ep = Endpoint::new(UtpConfig::default(), 7);
        ep.set_accepting(false);
        let t0 = Instant::now();
        ep.handle_datagram(t0, addr(1), &syn);
        let out = drain(&mut ep);
        assert_eq!(out.len(), 1);
        let p = decode(&out[0].1).unwrap();
        assert_eq!((p.header.ptype, p.header.conn_id, p.header.ack_nr), (PacketType::Reset, 17767, 9158));
        assert!(events(&mut ep).is_empty());
        ep.handle_datagram(t0, addr(1), b"not utp at all, definitely");
        let mut bad = syn;
        bad[1] = 2; // extension 2 without its 8 bytes
        ep.handle_datagram(t0, addr(1), &bad);
        assert_eq!(ep.stats().malformed, 2);
        assert_eq!(ep.connection_count(), 0);
    }

    fn hdr(ptype: PacketType, conn_id: u16, seq_nr: u16, ack_nr: u16) -> Header {
        Header { ptype, conn_id, timestamp: 1, timestamp_diff: 0, wnd_size: 1 << 20, seq_nr, ack_nr }
    }

    fn syn(conn_id: u16, seq: u16) -> Vec<u8> {
        encode(&hdr(PacketType::Syn, conn_id, seq, 0), None, &[])
    }

    fn data(conn_id: u16, seq: u16, ack: u16, payload: &[u8]) -> Vec<u8> {
        encode(&hdr(PacketType::Data, conn_id, seq, ack), None, payload)
    }

    fn ip(i: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + i), 5000)
    }

    /// SYN from `from` with id `cid` (seq 100), then the DATA that acks
    /// the SYN-ACK. Returns the connection reported.
    fn establish(ep: &mut Endpoint, now: Instant, from: SocketAddrV4, cid: u16) -> ConnId {
        ep.handle_datagram(now, from, &syn(cid, 100));
        let out = drain(ep);
        let synack = decode(&out.last().expect("SYN-ACK").1).unwrap().header;
        assert_eq!((synack.ptype, synack.conn_id), (PacketType::State, cid));
        ep.handle_datagram(now, from, &data(cid.wrapping_add(1), 101, synack.seq_nr.wrapping_sub(1), b"x"));
        drain(ep);
        let ev = events(ep);
        match ev.first() {
            Some(UtpEvent::Incoming { id, from: f }) if *f == from => *id,
            _ => panic!("not established: {ev:?}"),
        }
    }

    #[test]
    fn half_open_table_is_bounded_and_evicts_oldest() {
        let mut ep = Endpoint::new(UtpConfig::default(), 3);
        let t0 = Instant::now();
        let n = MAX_HALF_OPEN as u32 + 500;
        for i in 0..n {
            ep.handle_datagram(t0, ip(i), &syn(i as u16, 7));
        }
        assert_eq!(ep.half_open_count(), MAX_HALF_OPEN);
        assert_eq!(ep.connection_count(), MAX_HALF_OPEN);
        assert_eq!(ep.stats().half_open_evicted, 500);
        assert_eq!(ep.stats().half_opened, n as u64);
        assert!(events(&mut ep).is_empty(), "spoofed SYNs reach nobody");
        // The newest survived: its dialler can go on. The oldest was
        // dropped: its DATA gets a RESET.
        let acks: HashMap<SocketAddrV4, u16> = drain(&mut ep).into_iter().map(|(to, b)| (to, decode(&b).unwrap().header.seq_nr)).collect();
        let last = n - 1;
        ep.handle_datagram(t0, ip(last), &data(last as u16 + 1, 8, acks[&ip(last)] - 1, b"x"));
        assert!(matches!(events(&mut ep)[..], [UtpEvent::Incoming { from, .. }, ..] if from == ip(last)));
        ep.handle_datagram(t0, ip(0), &data(1, 8, acks[&ip(0)] - 1, b"x"));
        let out = drain(&mut ep);
        assert!(out.iter().any(|(to, b)| *to == ip(0) && decode(b).unwrap().header.ptype == PacketType::Reset));
        assert!(events(&mut ep).is_empty());
        // Half-open entries that time out leave without a word.
        let later = t0 + UtpConfig::default().syn_recv_timeout + Duration::from_secs(1);
        ep.handle_timeout(later);
        assert_eq!((ep.half_open_count(), ep.connection_count()), (0, 1));
        assert!(events(&mut ep).is_empty());
    }

    #[test]
    fn data_must_ack_the_syn_ack_to_promote() {
        let mut ep = Endpoint::new(UtpConfig::default(), 5);
        let t0 = Instant::now();
        ep.handle_datagram(t0, ip(1), &syn(10, 100));
        let synack = decode(&drain(&mut ep)[0].1).unwrap().header;
        // A blind forger's DATA with any other ack_nr is dropped.
        for wrong in [1u16, 2, 3, 200, 40000] {
            ep.handle_datagram(t0, ip(1), &data(11, 101, synack.seq_nr.wrapping_sub(1).wrapping_sub(wrong), b"x"));
        }
        assert!(events(&mut ep).is_empty());
        assert_eq!(ep.half_open_count(), 1);
        assert_eq!(ep.stats().invalid, 5);
    }

    #[test]
    fn syn_never_replaces_an_established_connection() {
        let mut ep = Endpoint::new(UtpConfig::default(), 11);
        let t0 = Instant::now();
        let id = establish(&mut ep, t0, ip(1), 500);
        // Long silent (the old rule replaced after 2 s), then SYNs on its
        // key: the seq it had, and others.
        let t1 = t0 + Duration::from_secs(30);
        for seq in [100u16, 101, 9999] {
            ep.handle_datagram(t1, ip(1), &syn(500, seq));
        }
        assert_eq!(ep.stats().syn_collisions, 3);
        let ev = events(&mut ep);
        assert!(!ev.iter().any(|e| matches!(e, UtpEvent::Closed { .. } | UtpEvent::Incoming { .. })), "{ev:?}");
        assert_eq!(ep.peer_addr(id), Some(ip(1)));
        drain(&mut ep);
        // Still carries data both ways.
        let mut buf = Vec::new();
        assert_eq!(ep.read(id, &mut buf, 100), 1);
        ep.write(t1, id, b"pong");
        let out = drain(&mut ep);
        let d = out.iter().map(|(_, b)| decode(b).unwrap().header).find(|h| h.ptype == PacketType::Data).expect("DATA sent");
        assert_eq!(d.conn_id, 500);
        ep.handle_datagram(t1, ip(1), &data(501, 102, d.seq_nr, b"yz"));
        buf.clear();
        assert_eq!(ep.read(id, &mut buf, 100), 2);
        assert_eq!(&buf, b"yz");
        assert_eq!(ep.connection_count(), 1);
    }

    #[test]
    fn syn_replaces_a_lingering_or_half_open_one() {
        // Restarted peers (same ids, spec §2) still get through where no
        // established connection is at stake.
        let mut ep = Endpoint::new(UtpConfig::default(), 12);
        let t0 = Instant::now();
        ep.handle_datagram(t0, ip(1), &syn(70, 100));
        ep.handle_datagram(t0, ip(1), &syn(70, 555));
        assert_eq!((ep.half_open_count(), ep.stats().half_opened, ep.stats().syn_collisions), (1, 2, 0));
        assert!(events(&mut ep).is_empty());
        let out = drain(&mut ep);
        let synack = decode(&out.last().unwrap().1).unwrap().header;
        assert_eq!(synack.ack_nr, 555);
        ep.handle_datagram(t0, ip(1), &data(71, 556, synack.seq_nr.wrapping_sub(1), b"x"));
        assert!(matches!(events(&mut ep)[..], [UtpEvent::Incoming { .. }, ..]));
    }

    #[test]
    fn outgoing_connects_have_room_whatever_arrives() {
        let cfg = UtpConfig { max_connections: 2, ..UtpConfig::default() };
        let mut ep = Endpoint::new(cfg, 3);
        let t0 = Instant::now();
        // Incoming established connections at their cap…
        establish(&mut ep, t0, ip(1), 10);
        establish(&mut ep, t0, ip(2), 20);
        // …a third dialler's data finds no room (refused, never reported)…
        ep.handle_datagram(t0, ip(3), &syn(30, 100));
        assert_eq!(ep.stats().syns_refused, 1);
        // …and the half-open table full of spoofed SYNs.
        let cfg = ep.config().clone();
        for i in 0..(MAX_HALF_OPEN as u32 * 2) {
            ep.handle_datagram(t0, ip(100 + i), &syn(i as u16, 1));
        }
        assert_eq!(ep.half_open_count(), 0, "no half-open state while established incoming is full");
        let mut ep2 = Endpoint::new(UtpConfig { max_connections: 2, ..cfg }, 4);
        for i in 0..(MAX_HALF_OPEN as u32 * 2) {
            ep2.handle_datagram(t0, ip(100 + i), &syn(i as u16, 1));
        }
        assert_eq!(ep2.half_open_count(), MAX_HALF_OPEN);
        drain(&mut ep);
        drain(&mut ep2);
        for ep in [&mut ep, &mut ep2] {
            events(ep);
            let id = ep.connect(t0, addr(9));
            let out = drain(ep);
            assert!(out.iter().any(|(to, b)| *to == addr(9) && decode(b).unwrap().header.ptype == PacketType::Syn));
            assert!(events(ep).is_empty(), "connect {id} was refused");
        }
        // Outgoing has a budget of its own.
        let id = ep.connect(t0, addr(9));
        drain(&mut ep);
        assert!(events(&mut ep).is_empty());
        let id3 = ep.connect(t0, addr(9));
        assert_eq!(events(&mut ep), vec![UtpEvent::Closed { id: id3, error: Some("too many connections".into()) }]);
        let _ = id;
    }

    #[test]
    fn per_ip_caps() {
        let cfg = UtpConfig { max_incoming_per_ip: 4, ..UtpConfig::default() };
        let mut ep = Endpoint::new(cfg, 13);
        let t0 = Instant::now();
        for cid in 0..4u16 {
            establish(&mut ep, t0, addr(1000 + cid), cid * 10);
        }
        // The same IP, any port: refused. Another IP: fine.
        ep.handle_datagram(t0, addr(2000), &syn(77, 1));
        assert_eq!((ep.stats().refused_per_ip, ep.half_open_count()), (1, 0));
        ep.handle_datagram(t0, ip(9), &syn(77, 1));
        assert_eq!(ep.half_open_count(), 1);
        // Half-open state per IP has its own, smaller cap (default).
        let mut ep = Endpoint::new(UtpConfig::default(), 14);
        for cid in 0..(MAX_HALF_OPEN_PER_IP as u16 + 50) {
            ep.handle_datagram(t0, addr(1), &syn(cid * 2, 1));
        }
        assert_eq!(ep.half_open_count(), MAX_HALF_OPEN_PER_IP);
        assert_eq!(ep.stats().refused_per_ip, 50);
        // Established connections from one IP stop at the default cap.
        let mut ep = Endpoint::new(UtpConfig::default(), 15);
        for i in 0..(MAX_INCOMING_PER_IP as u16) {
            establish(&mut ep, t0, SocketAddrV4::new([10, 9, 9, 9].into(), 1000 + i), 0);
        }
        ep.handle_datagram(t0, SocketAddrV4::new([10, 9, 9, 9].into(), 999), &syn(0, 1));
        assert_eq!((ep.stats().refused_per_ip, ep.half_open_count()), (1, 0));
        assert_eq!(ep.stats().accepted, MAX_INCOMING_PER_IP as u64);
        // A closed one frees its place.
        let id = ep.conns.keys().copied().next().unwrap();
        ep.close(t0, id);
        ep.handle_datagram(t0, SocketAddrV4::new([10, 9, 9, 9].into(), 999), &syn(0, 1));
        assert_eq!(ep.half_open_count(), 1);
    }
}
