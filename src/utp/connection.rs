//! One uTP connection: handshake, ordered delivery with a reorder buffer,
//! acks with selective acks, retransmission (timer, duplicate acks, holes
//! in selective acks), flow control both ways, half-close and reset
//! (spec/wire-utp.md §3, §4, §6, §7).
//!
//! Sans-IO: the endpoint feeds packets and timeouts in with the current
//! time; datagrams and events come out through the [`Ctx`] it lends.
//!
//! Sequence numbers: `seq_nr` is the next number to use. DATA and FIN
//! consume one, STATE reuses the current one ("next seq", spec §10), and a
//! SYN consumes the initiator's first. `inflight` holds every DATA/FIN sent
//! and not yet cumulatively acked, oldest first, so its front has sequence
//! number `seq_nr - inflight.len()`.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::config::{Slot, UtpConfig};
use super::event::{ConnId, UtpEvent, UtpStats};
use super::ledbat::Ledbat;
use super::packet::{encode, seq_lt, Header, Packet, PacketType, HEADER_LEN};

/// Retransmission timeout before the first RTT sample (spec §7).
pub const INITIAL_RTO: Duration = Duration::from_secs(3);
/// Ceiling of the retransmission timeout (doubling included).
pub const MAX_RTO: Duration = Duration::from_secs(60);
/// Floor of the computed retransmission timeout (spec §7).
pub const MIN_RTO: Duration = Duration::from_millis(1000);
/// A SYN is sent 3 times (0, 3, 9 s); the connect fails at the third
/// timeout, 21 s (spec §7).
pub const SYN_TIMEOUTS: u32 = 2;
/// Established connections die on the 5th consecutive timeout (spec §7).
pub const MAX_TIMEOUTS: u32 = 4;
/// Duplicate acks (or packets selectively acked past a hole) before a fast
/// resend (spec §4).
pub const DUP_ACKS: u32 = 3;
/// Floor of the tail-loss probe timeout; utp-native delays acks up to
/// 20 ms (spec §4).
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(30);
/// Floor of the time before a retransmitted packet counts as lost again.
const MIN_RESEND_GUARD: Duration = Duration::from_millis(50);
/// Packets buffered ahead of `ack_nr + 1`; further ones are dropped (spec §4).
pub const REORDER_WINDOW: usize = 1023;
/// A zero window from the peer is overridden after this long (spec §4)…
pub const ZERO_WINDOW_PROBE: Duration = Duration::from_secs(15);
/// …to this many bytes (libutp's PACKET_SIZE, spec §4).
pub const ZERO_WINDOW_PROBE_SIZE: u32 = 1435;
/// Keep-alive STATE after this long without sending (spec §7).
pub const KEEPALIVE: Duration = Duration::from_secs(29);
/// Most selective-ack bytes we send (1024 packets, the whole reorder
/// window; libutp sends 4 and accepts any length, spec §1).
pub const MAX_SACK_BYTES: usize = 128;
/// Packets in flight at most, below libutp's 1024-slot outgoing buffer and
/// the peer's reorder window.
pub const MAX_INFLIGHT_PACKETS: usize = 1000;
/// In-order data is accepted this far past a full receive buffer, so that a
/// peer's zero-window probe is acked instead of retransmitted to death.
const RECV_SLACK: usize = 64 * 1024;
/// How far behind the acceptable range a DATA's ack_nr may lag (packets)
/// for its payload still to be taken.
const STALE_ACK_SLACK: usize = 256;
/// A RESET must ack one of our last this-many sequence numbers.
const RESET_WINDOW: u16 = 2048;

/// What the endpoint lends a connection for one call.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    /// `now` on the wire clock (µs, wrapping).
    pub ts: u32,
    pub cfg: &'a UtpConfig,
    pub out: &'a mut VecDeque<(SocketAddrV4, Vec<u8>)>,
    pub events: &'a mut VecDeque<UtpEvent>,
    pub stats: &'a mut UtpStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Our SYN is out, no STATE back yet.
    SynSent,
    /// We acked a SYN; the peer has not sent DATA or FIN yet, so we may not
    /// send data (spec §3 step 4).
    SynRecv,
    Connected,
    /// Closed cleanly and reported; lingers to re-ack a repeated FIN.
    TimeWait,
    /// To be removed by the endpoint.
    Dead,
}

#[derive(Debug)]
struct OutPacket {
    seq: u16,
    fin: bool,
    payload: Vec<u8>,
    transmissions: u32,
    sent_at: Instant,
    /// Order of the latest transmission among all of this connection's.
    tx_order: u64,
    /// Declared lost (timer, or holes in selective acks): not counted in
    /// flight until resent.
    need_resend: bool,
    /// Selectively acked: the peer holds it.
    sacked: bool,
}

#[derive(Debug)]
struct InPacket {
    fin: bool,
    payload: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Connection {
    pub id: ConnId,
    pub peer: SocketAddrV4,
    pub recv_id: u16,
    pub send_id: u16,
    pub state: State,
    initiator: bool,
    /// Which of the endpoint's budgets this connection counts against.
    pub slot: Slot,
    /// The endpoint's bookkeeping: deadline currently registered, and
    /// whether the id sits in the ack queue.
    pub timer: Option<Instant>,
    pub ack_queued: bool,

    // Send side.
    seq_nr: u16,
    syn_seq: u16,
    syn_sent_at: Instant,
    send_queue: VecDeque<u8>,
    inflight: VecDeque<OutPacket>,
    /// Payload bytes held in `inflight` (acked selectively or not).
    inflight_payload: usize,
    /// Payload bytes sent, not acked, not declared lost.
    cur_window: usize,
    resend_pending: usize,
    /// Transmissions so far, and the latest `tx_order` known delivered: a
    /// hole is only declared lost when something sent after its latest
    /// transmission got through (so a fresh retransmission is not resent
    /// again on the next selective ack).
    tx_counter: u64,
    delivered_tx: u64,
    /// A retransmission was just acked: check what was sent before it.
    rack_check: bool,
    /// The newest packet acked by the ack being processed: (tx_order,
    /// transmissions, sent_at).
    rtt_candidate: Option<(u64, u32, Instant)>,
    cc: Ledbat,
    peer_wnd: u32,
    zero_wnd_until: Option<Instant>,
    shutdown: bool,
    fin_seq: Option<u16>,
    fin_acked: bool,
    write_blocked: bool,
    rtt: Option<Duration>,
    rtt_var: Duration,
    rto: Duration,
    retransmit_timeout: Duration,
    rto_deadline: Option<Instant>,
    /// Tail-loss probe: without ack progress for a few round trips,
    /// resend the oldest packet to draw an ack (see `probe_timeout`).
    probe_deadline: Option<Instant>,
    probes: u32,
    timeouts: u32,
    dup_acks: u32,
    last_ack_seen: u16,
    fast_resend_seq: u16,
    last_send: Instant,
    last_recv: Instant,

    // Receive side.
    ack_nr: u16,
    /// Slot `i` holds packet `ack_nr + 1 + i` if it arrived early.
    ooo: VecDeque<Option<InPacket>>,
    ooo_bytes: usize,
    ooo_count: usize,
    recv_buf: VecDeque<u8>,
    eof_seq: Option<u16>,
    fin_reached: bool,
    end_emitted: bool,
    readable_signalled: bool,
    reply_micro: u32,
    ack_pending: bool,
    last_adv_wnd: u32,
    time_wait_until: Option<Instant>,
}

impl Connection {
    fn blank(id: ConnId, peer: SocketAddrV4, recv_id: u16, send_id: u16, state: State, cfg: &UtpConfig, now: Instant) -> Self {
        Connection {
            id,
            peer,
            recv_id,
            send_id,
            state,
            initiator: state == State::SynSent,
            slot: if state == State::SynSent { Slot::Outgoing } else { Slot::HalfOpen },
            timer: None,
            ack_queued: false,
            seq_nr: 0,
            syn_seq: 0,
            syn_sent_at: now,
            send_queue: VecDeque::new(),
            inflight: VecDeque::new(),
            inflight_payload: 0,
            cur_window: 0,
            resend_pending: 0,
            tx_counter: 0,
            delivered_tx: 0,
            rack_check: false,
            rtt_candidate: None,
            cc: Ledbat::new(cfg.max_payload + HEADER_LEN, cfg.send_buffer, cfg.target_delay),
            peer_wnd: ZERO_WINDOW_PROBE_SIZE,
            zero_wnd_until: None,
            shutdown: false,
            fin_seq: None,
            fin_acked: false,
            write_blocked: false,
            rtt: None,
            rtt_var: Duration::ZERO,
            rto: INITIAL_RTO,
            retransmit_timeout: INITIAL_RTO,
            rto_deadline: None,
            probe_deadline: None,
            probes: 0,
            timeouts: 0,
            dup_acks: 0,
            last_ack_seen: 0,
            fast_resend_seq: 0,
            last_send: now,
            last_recv: now,
            ack_nr: 0,
            ooo: VecDeque::new(),
            ooo_bytes: 0,
            ooo_count: 0,
            recv_buf: VecDeque::new(),
            eof_seq: None,
            fin_reached: false,
            end_emitted: false,
            readable_signalled: false,
            reply_micro: 0,
            ack_pending: false,
            last_adv_wnd: cfg.recv_buffer as u32,
            time_wait_until: None,
        }
    }

    /// Starts an outgoing connection and sends the SYN (spec §3 step 1).
    pub fn connect(ctx: &mut Ctx, id: ConnId, peer: SocketAddrV4, recv_id: u16, seq: u16) -> Self {
        let mut c = Self::blank(id, peer, recv_id, recv_id.wrapping_add(1), State::SynSent, ctx.cfg, ctx.now);
        c.syn_seq = seq;
        c.seq_nr = seq.wrapping_add(1);
        c.last_ack_seen = seq;
        c.fast_resend_seq = c.seq_nr;
        c.send_syn(ctx);
        c.rto_deadline = Some(ctx.now + c.retransmit_timeout);
        c
    }

    /// Accepts a SYN and sends the SYN-ACK (spec §3 step 2).
    pub fn accept(ctx: &mut Ctx, id: ConnId, peer: SocketAddrV4, syn: &Header, seq: u16) -> Self {
        let mut c = Self::blank(id, peer, syn.conn_id.wrapping_add(1), syn.conn_id, State::SynRecv, ctx.cfg, ctx.now);
        c.syn_seq = syn.seq_nr;
        c.seq_nr = seq;
        c.ack_nr = syn.seq_nr;
        c.last_ack_seen = seq.wrapping_sub(1);
        c.fast_resend_seq = seq;
        c.peer_wnd = syn.wnd_size;
        c.reply_micro = ctx.ts.wrapping_sub(syn.timestamp);
        c.send_state(ctx);
        c
    }

    fn send_syn(&mut self, ctx: &mut Ctx) {
        let h = Header {
            ptype: PacketType::Syn,
            conn_id: self.recv_id,
            timestamp: ctx.ts,
            timestamp_diff: 0,
            wnd_size: self.adv_wnd(ctx.cfg),
            seq_nr: self.syn_seq,
            ack_nr: 0,
        };
        ctx.out.push_back((self.peer, encode(&h, None, &[])));
        ctx.stats.packets_sent += 1;
        self.syn_sent_at = ctx.now;
        self.last_send = ctx.now;
    }

    // ---------------------------------------------------------------------
    // Queries.

    fn adv_wnd(&self, cfg: &UtpConfig) -> u32 {
        cfg.recv_buffer.saturating_sub(self.recv_buf.len() + self.ooo_bytes).min(u32::MAX as usize) as u32
    }

    fn send_room(&self, cfg: &UtpConfig) -> usize {
        cfg.send_buffer.saturating_sub(self.send_queue.len() + self.inflight_payload)
    }

    pub fn is_dead(&self) -> bool {
        self.state == State::Dead
    }

    /// Whether the application may still use this id.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Dead | State::TimeWait)
    }

    /// An accepted connection whose dialler has not sent DATA or FIN yet:
    /// nobody outside the endpoint knows of it.
    pub fn is_half_open(&self) -> bool {
        !self.initiator && self.state == State::SynRecv
    }

    /// Whether a SYN with this connection's key (same address, same id)
    /// starts a new connection that replaces this one. Only when nothing
    /// established is lost by it: this one lingers after a clean close, or
    /// it is half-open and the SYN's seq differs from the one we acked
    /// (utp-native never seeds rand(), so a restarted peer reuses its ids
    /// and its seq, spec §2). An established connection is never replaced:
    /// a SYN can be spoofed, and replacing on silence let anyone close an
    /// idle connection. A restarted peer whose old connection is still
    /// established fails that one connect (its next one uses new ids).
    pub fn superseded_by_syn(&self, syn: &Header) -> bool {
        if self.initiator {
            return false;
        }
        match self.state {
            State::TimeWait | State::Dead => true,
            State::SynRecv => syn.seq_nr != self.syn_seq,
            State::Connected | State::SynSent => false,
        }
    }

    /// Drops a half-open connection without a word (the endpoint needs its
    /// slot; the dialler's next packet gets a RESET).
    pub fn discard(&mut self) {
        self.die();
    }

    /// Ends this connection because a new SYN replaced it.
    pub fn supersede(&mut self, ctx: &mut Ctx) {
        self.fail(ctx, "connection reset");
    }

    pub fn wants_ack(&self) -> bool {
        self.ack_pending && self.state != State::Dead && self.state != State::SynSent
    }

    /// Whether `id` (a RESET's connection id) names this connection, the
    /// way libutp matches (spec §6): our recv_id, or our send_id when the
    /// recv_id is one off it.
    pub fn reset_matches(&self, id: u16) -> bool {
        self.recv_id == id
            || (self.send_id == id && (self.recv_id == id.wrapping_add(1) || self.recv_id == id.wrapping_sub(1)))
    }

    /// The next instant `on_timeout` has something to do.
    pub fn next_deadline(&self, cfg: &UtpConfig) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        match self.state {
            State::Dead => return None,
            State::TimeWait => {
                if let Some(t) = self.time_wait_until {
                    at(t);
                }
                return d;
            }
            State::SynSent => {
                if let Some(t) = self.rto_deadline {
                    at(t);
                }
                return d;
            }
            State::SynRecv => at(self.last_recv + cfg.syn_recv_timeout),
            State::Connected => {
                if let Some(t) = self.rto_deadline {
                    at(t);
                }
                if let Some(t) = self.probe_deadline {
                    at(t);
                }
                if self.fin_seq.is_none() {
                    at(self.last_send + KEEPALIVE);
                }
                if let Some(t) = self.zero_wnd_until {
                    if self.peer_wnd == 0 && self.cur_window == 0 && self.has_unsent() {
                        at(t);
                    }
                }
                if let Some(idle) = cfg.idle_timeout {
                    at(self.last_recv + idle);
                }
            }
        }
        d
    }

    fn has_unsent(&self) -> bool {
        !self.send_queue.is_empty() || self.resend_pending > 0 || (self.shutdown && self.fin_seq.is_none())
    }

    // ---------------------------------------------------------------------
    // Application commands.

    pub fn write(&mut self, ctx: &mut Ctx, data: &[u8]) -> usize {
        if !self.is_open() || self.shutdown {
            return 0;
        }
        let n = self.send_room(ctx.cfg).min(data.len());
        self.send_queue.extend(&data[..n]);
        if n < data.len() {
            self.write_blocked = true;
        }
        self.flush(ctx);
        n
    }

    pub fn read(&mut self, ctx: &mut Ctx, out: &mut Vec<u8>, max: usize) -> usize {
        if self.state == State::Dead {
            return 0;
        }
        let n = max.min(self.recv_buf.len());
        let (a, b) = self.recv_buf.as_slices();
        let na = a.len().min(n);
        out.extend_from_slice(&a[..na]);
        out.extend_from_slice(&b[..n - na]);
        self.recv_buf.drain(..n);
        self.readable_signalled = false;
        if n > 0 && self.is_open() {
            // Window update once enough room opened (the peer may be
            // waiting on a closed window).
            let wnd = self.adv_wnd(ctx.cfg) as usize;
            let last = self.last_adv_wnd as usize;
            let big = 2 * (ctx.cfg.max_payload + HEADER_LEN);
            if (last < big && wnd >= big) || wnd >= last + ctx.cfg.recv_buffer / 4 {
                self.ack_pending = true;
            }
        }
        self.check_end(ctx);
        self.maybe_close(ctx);
        n
    }

    pub fn shutdown(&mut self, ctx: &mut Ctx) {
        if !self.is_open() || self.shutdown {
            return;
        }
        self.shutdown = true;
        self.flush(ctx);
    }

    /// Abort: RESET to the peer, report Closed.
    pub fn abort(&mut self, ctx: &mut Ctx) {
        if self.is_open() {
            let h = Header {
                ptype: PacketType::Reset,
                conn_id: self.send_id,
                timestamp: ctx.ts,
                timestamp_diff: self.reply_micro,
                wnd_size: 0,
                seq_nr: self.seq_nr,
                ack_nr: self.ack_nr,
            };
            ctx.out.push_back((self.peer, encode(&h, None, &[])));
            ctx.stats.packets_sent += 1;
            ctx.stats.resets_sent += 1;
            ctx.events.push_back(UtpEvent::Closed { id: self.id, error: None });
        }
        self.die();
    }

    fn die(&mut self) {
        self.state = State::Dead;
        self.ack_pending = false;
        self.send_queue = VecDeque::new();
        self.inflight = VecDeque::new();
        self.ooo = VecDeque::new();
        self.recv_buf = VecDeque::new();
    }

    fn fail(&mut self, ctx: &mut Ctx, why: &str) {
        // A half-open connection was never reported: it goes silently.
        if self.is_open() && !self.is_half_open() {
            ctx.events.push_back(UtpEvent::Closed { id: self.id, error: Some(why.to_string()) });
        }
        self.die();
    }

    // ---------------------------------------------------------------------
    // Packets in.

    /// A RESET whose id `reset_matches`. Ignored unless it acks one of our
    /// recent sequence numbers (an off-path forgery must guess those).
    pub fn on_reset(&mut self, ctx: &mut Ctx, h: &Header) -> bool {
        let behind = self.seq_nr.wrapping_sub(h.ack_nr);
        if behind > RESET_WINDOW {
            ctx.stats.resets_ignored += 1;
            return false;
        }
        ctx.stats.resets_received += 1;
        self.fail(ctx, "connection reset");
        true
    }

    /// Any packet but RESET addressed to this connection.
    pub fn on_packet(&mut self, ctx: &mut Ctx, pkt: &Packet) {
        let h = &pkt.header;
        match self.state {
            State::Dead => return,
            State::TimeWait => {
                // Our ack of their last data or FIN was lost: ack again.
                if matches!(h.ptype, PacketType::Fin | PacketType::Data) {
                    self.ack_pending = true;
                }
                return;
            }
            State::SynSent => {
                // Only a STATE acking our SYN completes the handshake; its
                // seq_nr is the peer's first DATA number (spec §3 step 3).
                if h.ptype == PacketType::State && h.ack_nr == self.syn_seq {
                    self.last_recv = ctx.now;
                    self.state = State::Connected;
                    self.ack_nr = h.seq_nr.wrapping_sub(1);
                    self.reply_micro = ctx.ts.wrapping_sub(h.timestamp);
                    self.set_peer_wnd(ctx, h.wnd_size);
                    if self.timeouts == 0 {
                        self.rtt_sample(ctx.now.saturating_duration_since(self.syn_sent_at));
                    }
                    self.timeouts = 0;
                    self.retransmit_timeout = self.rto;
                    self.rto_deadline = None;
                    self.last_ack_seen = self.syn_seq;
                    // Ours only: a STATE back proves our address to the
                    // acceptor, so that one of ours reports the connection
                    // before we send data (libutp reports it at the SYN; we
                    // wait for proof, see SynRecv below). libutp takes it as
                    // an ack of nothing new.
                    self.ack_pending = true;
                    ctx.events.push_back(UtpEvent::Connected { id: self.id });
                    self.flush(ctx);
                    self.maybe_close(ctx);
                } else {
                    ctx.stats.invalid += 1;
                }
                return;
            }
            State::SynRecv | State::Connected => {}
        }

        if h.ptype == PacketType::Syn {
            // A repeated SYN. libutp ignores it (spec §3); we re-send the
            // SYN-ACK while nothing else has happened, so a lost SYN-ACK
            // does not kill the attempt.
            if self.state == State::SynRecv && h.seq_nr == self.syn_seq {
                self.ack_pending = true;
            }
            return;
        }

        // Ack sanity (spec §4): not acking the future, nor too far behind.
        // libutp drops such packets whole. A DATA or FIN merely overtaken
        // by a later ack (reordering) still has good data: we keep it and
        // ignore its stale ack, within a bound an off-path forger must hit.
        let newest = self.seq_nr.wrapping_sub(1);
        let behind = newest.wrapping_sub(h.ack_nr) as usize;
        let is_data = matches!(h.ptype, PacketType::Data | PacketType::Fin);
        let stale = behind > self.inflight.len() + 3;
        if seq_lt(newest, h.ack_nr) || (stale && is_data && behind > self.inflight.len() + STALE_ACK_SLACK) {
            ctx.stats.invalid += 1;
            return;
        }
        if stale && !is_data {
            ctx.stats.stale_acks += 1;
            return;
        }
        // The dialler's first DATA/FIN acks our SYN-ACK exactly (spec §3
        // step 3). Only that makes a half-open connection real, so a blind
        // forger must guess our random 16-bit seq.
        if self.state == State::SynRecv && is_data && h.ack_nr != newest {
            ctx.stats.invalid += 1;
            return;
        }

        self.last_recv = ctx.now;
        self.reply_micro = ctx.ts.wrapping_sub(h.timestamp);
        if !stale {
            self.set_peer_wnd(ctx, h.wnd_size);
            if h.timestamp_diff != 0 {
                self.cc.on_delay_sample(ctx.now, h.timestamp_diff);
            }
            self.process_ack(ctx, pkt);
        }

        if h.ptype == PacketType::State && self.state == State::SynRecv && h.ack_nr == newest {
            // The dialler's STATE acks our SYN-ACK exactly: its address is
            // proven as by its first DATA (our dialers send one; libutp's
            // do not, and their connections are reported with their data).
            self.state = State::Connected;
            ctx.events.push_back(UtpEvent::Incoming { id: self.id, from: self.peer });
        }
        if matches!(h.ptype, PacketType::Data | PacketType::Fin) {
            if self.state == State::SynRecv {
                // The dialler proved its address: the connection is
                // reported now, before its first data.
                self.state = State::Connected;
                ctx.events.push_back(UtpEvent::Incoming { id: self.id, from: self.peer });
            }
            self.receive(ctx, pkt);
        }
        self.flush(ctx);
        self.maybe_close(ctx);
    }

    fn set_peer_wnd(&mut self, ctx: &mut Ctx, wnd: u32) {
        if wnd == 0 {
            if self.peer_wnd != 0 || self.zero_wnd_until.is_none() {
                self.zero_wnd_until = Some(ctx.now + ZERO_WINDOW_PROBE);
            }
        } else {
            self.zero_wnd_until = None;
        }
        self.peer_wnd = wnd;
    }

    /// Tail-loss probe timeout: two round trips plus variance, at least
    /// `MIN_PROBE_TIMEOUT`, doubling per unanswered probe; None before an
    /// RTT sample or when it would not beat the retransmission timer.
    fn probe_timeout(&self) -> Option<Duration> {
        let rtt = self.rtt?;
        let pto = (rtt * 2 + self.rtt_var * 4).max(MIN_PROBE_TIMEOUT) * (1u32 << self.probes.min(8));
        (pto < self.retransmit_timeout).then_some(pto)
    }

    /// How long after a (re)transmission the packet may be declared lost
    /// again: its ack should have come back by then.
    fn resend_guard(&self) -> Duration {
        let rtt = self.rtt.unwrap_or(INITIAL_RTO);
        (rtt + self.rtt_var * 4).max(MIN_RESEND_GUARD)
    }

    fn note_rtt_candidate(&mut self, p: &OutPacket) {
        if self.rtt_candidate.map_or(true, |c| c.0 < p.tx_order) {
            self.rtt_candidate = Some((p.tx_order, p.transmissions, p.sent_at));
        }
    }

    fn rtt_sample(&mut self, sample: Duration) {
        match self.rtt {
            None => {
                self.rtt = Some(sample);
                self.rtt_var = sample / 2;
            }
            Some(rtt) => {
                let delta = if rtt > sample { rtt - sample } else { sample - rtt };
                self.rtt_var = (self.rtt_var * 3 + delta) / 4;
                self.rtt = Some((rtt * 7 + sample) / 8);
            }
        }
        self.rto = (self.rtt.unwrap_or_default() + self.rtt_var * 4).clamp(MIN_RTO, MAX_RTO);
    }

    fn process_ack(&mut self, ctx: &mut Ctx, pkt: &Packet) {
        let h = &pkt.header;
        let flight = self.cur_window;
        let mut bytes_acked = 0usize;
        let base = self.seq_nr.wrapping_sub(self.inflight.len() as u16);
        let n = h.ack_nr.wrapping_add(1).wrapping_sub(base) as i16;
        if n > 0 {
            for _ in 0..n {
                let Some(p) = self.inflight.pop_front() else { break };
                self.inflight_payload -= p.payload.len();
                if p.need_resend {
                    self.resend_pending -= 1;
                } else if !p.sacked {
                    self.cur_window -= p.payload.len();
                }
                self.delivered_tx = self.delivered_tx.max(p.tx_order);
                self.rack_check |= p.transmissions > 1;
                if !p.sacked {
                    bytes_acked += p.payload.len();
                    self.note_rtt_candidate(&p);
                }
                if p.fin {
                    self.fin_acked = true;
                }
            }
            self.timeouts = 0;
            self.retransmit_timeout = self.rto;
            self.rto_deadline = if self.inflight.is_empty() { None } else { Some(ctx.now + self.retransmit_timeout) };
            self.probes = 0;
            self.probe_deadline = self.probe_timeout().filter(|_| !self.inflight.is_empty()).map(|d| ctx.now + d);
            self.dup_acks = 0;
            if seq_lt(self.fast_resend_seq, h.ack_nr.wrapping_add(1)) {
                self.fast_resend_seq = h.ack_nr.wrapping_add(1);
            }
        } else if h.ptype == PacketType::State && h.ack_nr == self.last_ack_seen && !self.inflight.is_empty() {
            self.dup_acks += 1;
            if self.dup_acks >= DUP_ACKS {
                self.dup_acks = 0;
                let front = &self.inflight[0];
                let again = ctx.now.saturating_duration_since(front.sent_at) >= self.resend_guard();
                if !front.sacked && (!seq_lt(front.seq, self.fast_resend_seq) || again) {
                    self.fast_resend_seq = front.seq.wrapping_add(1);
                    ctx.stats.fast_retransmits += 1;
                    self.resend(ctx, 0);
                    self.cc.on_loss(ctx.now);
                }
            }
        }
        self.last_ack_seen = h.ack_nr;

        if let Some(mask) = pkt.sack {
            bytes_acked += self.process_sack(ctx, h.ack_nr, mask);
        }
        // One RTT sample per ack, from the newest packet it acknowledged,
        // and only if that was sent once (Karn). Older packets covered by
        // the same ack may have lost their own acks: their age is not a
        // round trip.
        if let Some((_, transmissions, sent_at)) = self.rtt_candidate.take() {
            if transmissions == 1 {
                self.rtt_sample(ctx.now.saturating_duration_since(sent_at));
            }
        }
        if std::mem::take(&mut self.rack_check) {
            self.rack_mark(ctx);
        }
        self.cc.on_ack(bytes_acked, flight);
        if self.write_blocked && self.send_room(ctx.cfg) >= (ctx.cfg.send_buffer / 4).max(1) {
            self.write_blocked = false;
            ctx.events.push_back(UtpEvent::Writable { id: self.id });
        }
    }

    /// Applies a selective ack; returns newly acked bytes. Marks holes
    /// lost (see below); libutp instead resends up to 4 at once.
    fn process_sack(&mut self, ctx: &mut Ctx, ack_nr: u16, mask: &[u8]) -> usize {
        if self.inflight.is_empty() {
            return 0;
        }
        let base = self.seq_nr.wrapping_sub(self.inflight.len() as u16);
        let first = ack_nr.wrapping_add(2);
        let mut acked = 0;
        let mut highest: Option<usize> = None;
        for (byte_i, &byte) in mask.iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8 {
                if byte & (1 << bit) == 0 {
                    continue;
                }
                let seq = first.wrapping_add((byte_i * 8 + bit) as u16);
                let idx = seq.wrapping_sub(base) as usize;
                if idx >= self.inflight.len() {
                    continue;
                }
                highest = Some(highest.map_or(idx, |h| h.max(idx)));
                let p = &mut self.inflight[idx];
                if p.sacked {
                    continue;
                }
                p.sacked = true;
                let len = p.payload.len();
                let tx = p.tx_order;
                self.rack_check |= p.transmissions > 1;
                let cand = (p.tx_order, p.transmissions, p.sent_at);
                if p.need_resend {
                    p.need_resend = false;
                    self.resend_pending -= 1;
                } else {
                    self.cur_window -= len;
                }
                self.delivered_tx = self.delivered_tx.max(tx);
                acked += len;
                self.rtt_candidate = Some(match self.rtt_candidate {
                    Some(c) if c.0 > cand.0 => c,
                    _ => cand,
                });
            }
        }
        let Some(highest) = highest else { return acked };
        // Walk down from the highest selectively acked packet, counting
        // acked ones. A packet with DUP_ACKS acked after it is lost (spec
        // §4), unless its latest transmission is newer than anything known
        // delivered. Lost packets leave the flight count and are resent by
        // flush() as the window allows, oldest first.
        let guard = self.resend_guard();
        let mut count = 0u32;
        let mut lost = 0;
        for idx in (0..=highest).rev() {
            let p = &mut self.inflight[idx];
            if p.sacked {
                count += 1;
            } else if count >= DUP_ACKS
                && !p.need_resend
                && (p.tx_order < self.delivered_tx || ctx.now.saturating_duration_since(p.sent_at) >= guard)
            {
                p.need_resend = true;
                self.resend_pending += 1;
                self.cur_window -= p.payload.len();
                lost += 1;
            }
        }
        if lost > 0 {
            tracing::trace!(id = self.id, lost, cwnd = self.cc.window(), "utp: holes in selective ack");
            ctx.stats.fast_retransmits += lost;
            self.cc.on_loss(ctx.now);
        }
        acked
    }

    /// After a retransmission got through: packets sent before it, not
    /// acked, and older than a round trip and a quarter are lost (RACK,
    /// RFC 8985). This recovers a burst lost whole, which leaves no
    /// selective acks behind: the tail-loss probe's ack lands here.
    fn rack_mark(&mut self, ctx: &mut Ctx) {
        let Some(rtt) = self.rtt else { return };
        let reo = rtt + rtt / 4;
        let mut lost = 0;
        for p in self.inflight.iter_mut() {
            if !p.sacked
                && !p.need_resend
                && p.tx_order < self.delivered_tx
                && ctx.now.saturating_duration_since(p.sent_at) >= reo
            {
                p.need_resend = true;
                self.resend_pending += 1;
                self.cur_window -= p.payload.len();
                lost += 1;
            }
        }
        if lost > 0 {
            tracing::trace!(id = self.id, lost, "utp: lost before a delivered retransmission");
            ctx.stats.fast_retransmits += lost;
            self.cc.on_loss(ctx.now);
        }
    }

    /// Delivers a DATA or FIN in order, or buffers it (spec §4).
    fn receive(&mut self, ctx: &mut Ctx, pkt: &Packet) {
        let h = &pkt.header;
        let fin = h.ptype == PacketType::Fin;
        if let Some(eof) = self.eof_seq {
            if seq_lt(eof, h.seq_nr) {
                ctx.stats.invalid += 1;
                return;
            }
        }
        let d = h.seq_nr.wrapping_sub(self.ack_nr.wrapping_add(1));
        if d >= 0x8000 {
            // Already delivered: our ack was lost, re-ack.
            self.ack_pending = true;
            return;
        }
        let d = d as usize;
        if d >= REORDER_WINDOW {
            ctx.stats.invalid += 1;
            return;
        }
        let len = pkt.payload.len();
        if d == 0 {
            if self.recv_buf.len() + len > ctx.cfg.recv_buffer + RECV_SLACK {
                // No room even with slack: the peer ignored our window.
                // Not acked, so it comes back later.
                ctx.stats.dropped_no_room += 1;
                return;
            }
            if fin && self.eof_seq.is_none() {
                self.eof_seq = Some(h.seq_nr);
            }
            self.deliver(ctx, fin, pkt.payload);
            if !self.ooo.is_empty() {
                self.ooo.pop_front();
            }
            while !self.fin_reached {
                match self.ooo.front_mut() {
                    Some(Some(_)) => {
                        let p = self.ooo.pop_front().unwrap().unwrap();
                        self.ooo_bytes -= p.payload.len();
                        self.ooo_count -= 1;
                        self.deliver(ctx, p.fin, &p.payload);
                    }
                    _ => break,
                }
            }
            if self.fin_reached {
                // Anything buffered past the FIN is void.
                self.ooo.clear();
                self.ooo_bytes = 0;
                self.ooo_count = 0;
            }
        } else {
            if self.ooo.get(d).is_some_and(|s| s.is_some()) {
                self.ack_pending = true;
                return;
            }
            if self.recv_buf.len() + self.ooo_bytes + len > ctx.cfg.recv_buffer {
                ctx.stats.dropped_no_room += 1;
                return;
            }
            if fin && self.eof_seq.is_none() {
                self.eof_seq = Some(h.seq_nr);
                // Drop anything buffered past the FIN.
                while self.ooo.len() > d {
                    if let Some(Some(p)) = self.ooo.pop_back() {
                        self.ooo_bytes -= p.payload.len();
                        self.ooo_count -= 1;
                    }
                }
            }
            if self.ooo.len() <= d {
                self.ooo.resize_with(d + 1, || None);
            }
            self.ooo[d] = Some(InPacket { fin, payload: pkt.payload.to_vec() });
            self.ooo_bytes += len;
            self.ooo_count += 1;
        }
        self.ack_pending = true;
    }

    fn deliver(&mut self, ctx: &mut Ctx, fin: bool, payload: &[u8]) {
        self.ack_nr = self.ack_nr.wrapping_add(1);
        if fin {
            self.fin_reached = true;
            self.check_end(ctx);
            return;
        }
        if payload.is_empty() {
            return;
        }
        self.recv_buf.extend(payload);
        ctx.stats.bytes_received += payload.len() as u64;
        if !self.readable_signalled {
            self.readable_signalled = true;
            ctx.events.push_back(UtpEvent::Readable { id: self.id });
        }
    }

    fn check_end(&mut self, ctx: &mut Ctx) {
        if self.fin_reached && !self.end_emitted && self.recv_buf.is_empty() && self.is_open() {
            self.end_emitted = true;
            ctx.events.push_back(UtpEvent::End { id: self.id });
        }
    }

    /// Both directions done: report and linger for the peer's repeated FIN.
    fn maybe_close(&mut self, ctx: &mut Ctx) {
        if self.state == State::Connected && self.fin_acked && self.end_emitted {
            ctx.events.push_back(UtpEvent::Closed { id: self.id, error: None });
            self.state = State::TimeWait;
            self.time_wait_until = Some(ctx.now + ctx.cfg.time_wait);
            self.send_queue = VecDeque::new();
            self.inflight = VecDeque::new();
            self.ooo = VecDeque::new();
            self.recv_buf = VecDeque::new();
            self.rto_deadline = None;
            self.probe_deadline = None;
        }
    }

    // ---------------------------------------------------------------------
    // Packets out.

    fn effective_peer_wnd(&self, now: Instant) -> usize {
        if self.peer_wnd == 0 {
            if let Some(t) = self.zero_wnd_until {
                if now >= t {
                    return ZERO_WINDOW_PROBE_SIZE as usize;
                }
            }
        }
        self.peer_wnd as usize
    }

    fn window_allows(&self, now: Instant, len: usize) -> bool {
        let peer = self.effective_peer_wnd(now);
        if peer == 0 {
            return false;
        }
        // One packet may always be in flight, so a window below a packet
        // never stalls the connection.
        self.cur_window == 0 || self.cur_window + len <= self.cc.window().min(peer)
    }

    /// Sends what the windows allow: lost packets first, then new data,
    /// then the FIN once everything queued is packetized.
    fn flush(&mut self, ctx: &mut Ctx) {
        if self.state != State::Connected {
            return;
        }
        let probing = self.peer_wnd == 0 && self.effective_peer_wnd(ctx.now) > 0;
        let mut sent_any = false;
        if self.resend_pending > 0 {
            for idx in 0..self.inflight.len() {
                if self.resend_pending == 0 {
                    break;
                }
                if !self.inflight[idx].need_resend {
                    continue;
                }
                // The oldest packet holds up the cumulative ack: resend it
                // whatever the window says. The window may be full of
                // packets that arrived but that libutp's 32-packet
                // selective ack cannot report.
                if idx != 0 && !self.window_allows(ctx.now, self.inflight[idx].payload.len()) {
                    break;
                }
                self.resend(ctx, idx);
                sent_any = true;
            }
        }
        while self.resend_pending == 0 && self.inflight.len() < MAX_INFLIGHT_PACKETS {
            if !self.send_queue.is_empty() {
                let len = self.send_queue.len().min(ctx.cfg.max_payload);
                // Nagle (spec §4): hold a partial packet while others fly,
                // unless the write side is shut.
                if len < ctx.cfg.max_payload && self.cur_window > 0 && !self.shutdown {
                    break;
                }
                if !self.window_allows(ctx.now, len) {
                    break;
                }
                let mut payload = Vec::with_capacity(len);
                let (a, b) = self.send_queue.as_slices();
                let na = a.len().min(len);
                payload.extend_from_slice(&a[..na]);
                payload.extend_from_slice(&b[..len - na]);
                self.send_queue.drain(..len);
                self.push_packet(ctx, false, payload);
                sent_any = true;
            } else if self.shutdown && self.fin_seq.is_none() {
                self.fin_seq = Some(self.seq_nr);
                self.push_packet(ctx, true, Vec::new());
                sent_any = true;
            } else {
                break;
            }
            if probing {
                break;
            }
        }
        if probing && sent_any {
            self.zero_wnd_until = Some(ctx.now + ZERO_WINDOW_PROBE);
        }
        if self.write_blocked && self.send_room(ctx.cfg) >= (ctx.cfg.send_buffer / 4).max(1) {
            self.write_blocked = false;
            ctx.events.push_back(UtpEvent::Writable { id: self.id });
        }
    }

    fn push_packet(&mut self, ctx: &mut Ctx, fin: bool, payload: Vec<u8>) {
        let seq = self.seq_nr;
        self.seq_nr = seq.wrapping_add(1);
        self.inflight_payload += payload.len();
        self.inflight.push_back(OutPacket {
            seq,
            fin,
            payload,
            transmissions: 0,
            sent_at: ctx.now,
            tx_order: 0,
            need_resend: false,
            sacked: false,
        });
        let idx = self.inflight.len() - 1;
        self.transmit(ctx, idx);
        self.cur_window += self.inflight[idx].payload.len();
        ctx.stats.bytes_sent += self.inflight[idx].payload.len() as u64;
    }

    /// Retransmits `inflight[idx]` now (fast resend or after a timeout).
    fn resend(&mut self, ctx: &mut Ctx, idx: usize) {
        if self.inflight[idx].need_resend {
            self.inflight[idx].need_resend = false;
            self.resend_pending -= 1;
            self.cur_window += self.inflight[idx].payload.len();
        }
        ctx.stats.retransmits += 1;
        self.transmit(ctx, idx);
    }

    fn transmit(&mut self, ctx: &mut Ctx, idx: usize) {
        let wnd = self.adv_wnd(ctx.cfg);
        let p = &mut self.inflight[idx];
        let h = Header {
            ptype: if p.fin { PacketType::Fin } else { PacketType::Data },
            conn_id: self.send_id,
            timestamp: ctx.ts,
            timestamp_diff: self.reply_micro,
            wnd_size: wnd,
            seq_nr: p.seq,
            ack_nr: self.ack_nr,
        };
        ctx.out.push_back((self.peer, encode(&h, None, &p.payload)));
        p.transmissions += 1;
        p.sent_at = ctx.now;
        self.tx_counter += 1;
        p.tx_order = self.tx_counter;
        ctx.stats.packets_sent += 1;
        self.last_send = ctx.now;
        self.last_adv_wnd = wnd;
        // The cumulative ack rode along; a selective ack still needs a STATE.
        if self.ooo_count == 0 {
            self.ack_pending = false;
        }
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(ctx.now + self.retransmit_timeout);
        }
        if self.probe_deadline.is_none() {
            self.probe_deadline = self.probe_timeout().map(|d| ctx.now + d);
        }
    }

    fn sack_mask(&self) -> Option<Vec<u8>> {
        if self.ooo_count == 0 {
            return None;
        }
        // Slot d holds ack_nr + 1 + d; bit i stands for ack_nr + 2 + i.
        let last = self.ooo.iter().rposition(|s| s.is_some())?;
        if last == 0 {
            return None;
        }
        let bytes = (((last - 1) / 32 + 1) * 4).min(MAX_SACK_BYTES);
        let mut mask = vec![0u8; bytes];
        for (d, slot) in self.ooo.iter().enumerate().skip(1) {
            let i = d - 1;
            if i >= bytes * 8 {
                break;
            }
            if slot.is_some() {
                mask[i / 8] |= 1 << (i % 8);
            }
        }
        Some(mask)
    }

    fn state_header(&self, ctx_ts: u32, cfg: &UtpConfig, ack_nr: u16) -> Header {
        Header {
            ptype: PacketType::State,
            conn_id: self.send_id,
            timestamp: ctx_ts,
            timestamp_diff: self.reply_micro,
            wnd_size: self.adv_wnd(cfg),
            seq_nr: self.seq_nr,
            ack_nr,
        }
    }

    /// An ack (with a selective ack when data is buffered out of order).
    pub fn make_ack(&mut self, now: Instant, ts: u32, cfg: &UtpConfig, stats: &mut UtpStats) -> Vec<u8> {
        let h = self.state_header(ts, cfg, self.ack_nr);
        let sack = self.sack_mask();
        self.ack_pending = false;
        self.last_adv_wnd = h.wnd_size;
        self.last_send = now;
        stats.packets_sent += 1;
        encode(&h, sack.as_deref(), &[])
    }

    fn send_state(&mut self, ctx: &mut Ctx) {
        let bytes = self.make_ack(ctx.now, ctx.ts, ctx.cfg, ctx.stats);
        ctx.out.push_back((self.peer, bytes));
    }

    // ---------------------------------------------------------------------
    // Timers.

    pub fn on_timeout(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        match self.state {
            State::Dead => {}
            State::TimeWait => {
                if self.time_wait_until.map_or(true, |t| now >= t) {
                    self.die();
                }
            }
            State::SynRecv => {
                if now >= self.last_recv + ctx.cfg.syn_recv_timeout {
                    ctx.stats.timed_out += 1;
                    self.fail(ctx, "timed out");
                }
            }
            State::SynSent => {
                if self.rto_deadline.is_some_and(|t| now >= t) {
                    if self.timeouts >= SYN_TIMEOUTS {
                        ctx.stats.timed_out += 1;
                        self.fail(ctx, "timed out");
                        return;
                    }
                    self.timeouts += 1;
                    self.retransmit_timeout *= 2;
                    self.rto_deadline = Some(now + self.retransmit_timeout);
                    ctx.stats.retransmits += 1;
                    self.send_syn(ctx);
                }
            }
            State::Connected => {
                if let Some(idle) = ctx.cfg.idle_timeout {
                    if now >= self.last_recv + idle {
                        ctx.stats.timed_out += 1;
                        self.fail(ctx, "idle timeout");
                        return;
                    }
                }
                if self.probe_deadline.is_some_and(|t| now >= t) {
                    self.probe_deadline = None;
                    if let Some(idx) = self.inflight.iter().position(|p| !p.sacked) {
                        ctx.stats.probes += 1;
                        self.probes += 1;
                        self.resend(ctx, idx);
                        self.probe_deadline = self.probe_timeout().map(|d| now + d);
                    }
                }
                if self.rto_deadline.is_some_and(|t| now >= t) {
                    if self.inflight.is_empty() {
                        self.rto_deadline = None;
                    } else {
                        if self.timeouts >= MAX_TIMEOUTS {
                            ctx.stats.timed_out += 1;
                            self.fail(ctx, "timed out");
                            return;
                        }
                        ctx.stats.timeouts += 1;
                        self.probes = 0;
                        self.probe_deadline = None;
                        tracing::debug!(
                            id = self.id,
                            inflight = self.inflight.len(),
                            cur_window = self.cur_window,
                            cwnd = self.cc.window(),
                            peer_wnd = self.peer_wnd,
                            resend_pending = self.resend_pending,
                            rto = ?self.retransmit_timeout,
                            front_tx = self.inflight.front().map(|p| p.transmissions),
                            front_sacked = self.inflight.front().map(|p| p.sacked),
                            sacked = self.inflight.iter().filter(|p| p.sacked).count(),
                            "utp: retransmission timeout"
                        );
                        self.timeouts += 1;
                        self.retransmit_timeout = (self.retransmit_timeout * 2).min(MAX_RTO);
                        self.rto_deadline = Some(now + self.retransmit_timeout);
                        self.dup_acks = 0;
                        self.cc.on_timeout();
                        // Everything in flight is lost; resend the oldest
                        // now, the rest as the (reset) window opens.
                        for p in self.inflight.iter_mut() {
                            if !p.sacked && !p.need_resend {
                                p.need_resend = true;
                                self.resend_pending += 1;
                            }
                        }
                        self.cur_window = 0;
                        if let Some(idx) = self.inflight.iter().position(|p| p.need_resend) {
                            self.resend(ctx, idx);
                        }
                    }
                }
                if self.fin_seq.is_none() && now >= self.last_send + KEEPALIVE {
                    tracing::debug!(
                        id = self.id,
                        queued = self.send_queue.len(),
                        inflight = self.inflight.len(),
                        cur_window = self.cur_window,
                        cwnd = self.cc.window(),
                        peer_wnd = self.peer_wnd,
                        resend_pending = self.resend_pending,
                        rto = ?self.rto_deadline.map(|t| t.saturating_duration_since(now)),
                        "utp: keep-alive"
                    );
                    // Keep-alive: a STATE acking ack_nr - 1 (spec §7).
                    let h = self.state_header(ctx.ts, ctx.cfg, self.ack_nr.wrapping_sub(1));
                    ctx.out.push_back((self.peer, encode(&h, None, &[])));
                    ctx.stats.packets_sent += 1;
                    ctx.stats.keepalives += 1;
                    self.last_send = now;
                }
                self.flush(ctx);
                if self.zero_wnd_until.is_some_and(|t| t <= now) {
                    self.zero_wnd_until = Some(now + ZERO_WINDOW_PROBE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::utp::config::MAX_PAYLOAD;
    use crate::utp::packet::decode;

    struct Harness {
        cfg: UtpConfig,
        out: VecDeque<(SocketAddrV4, Vec<u8>)>,
        events: VecDeque<UtpEvent>,
        stats: UtpStats,
        now: Instant,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                cfg: UtpConfig::default(),
                out: VecDeque::new(),
                events: VecDeque::new(),
                stats: UtpStats::default(),
                now: Instant::now(),
            }
        }

        fn ctx(&mut self) -> Ctx<'_> {
            Ctx {
                now: self.now,
                ts: 1000,
                cfg: &self.cfg,
                out: &mut self.out,
                events: &mut self.events,
                stats: &mut self.stats,
            }
        }

        fn sent(&mut self) -> Vec<Vec<u8>> {
            self.out.drain(..).map(|(_, b)| b).collect()
        }

        fn events(&mut self) -> Vec<UtpEvent> {
            self.events.drain(..).collect()
        }

        fn feed(&mut self, c: &mut Connection, h: Header, payload: &[u8]) {
            let bytes = encode(&h, None, payload);
            let p = decode(&bytes).unwrap();
            c.on_packet(&mut self.ctx(), &p);
        }
    }

    fn peer() -> SocketAddrV4 {
        SocketAddrV4::new([127, 0, 0, 1].into(), 9)
    }

    fn hdr(ptype: PacketType, conn_id: u16, seq_nr: u16, ack_nr: u16) -> Header {
        Header { ptype, conn_id, timestamp: 5, timestamp_diff: 0, wnd_size: 1 << 20, seq_nr, ack_nr }
    }

    /// An accepted connection: SYN id 1000 seq 100, our seq 17767.
    fn accepted(t: &mut Harness) -> Connection {
        let syn = hdr(PacketType::Syn, 1000, 100, 0);
        let c = Connection::accept(&mut t.ctx(), 1, peer(), &syn, 17767);
        let out = t.sent();
        assert_eq!(out.len(), 1);
        let p = decode(&out[0]).unwrap();
        assert_eq!((p.header.ptype, p.header.conn_id, p.header.seq_nr, p.header.ack_nr), (PacketType::State, 1000, 17767, 100));
        c
    }

    #[test]
    fn initiator_handshake_and_first_data() {
        let mut t = Harness::new();
        let mut c = Connection::connect(&mut t.ctx(), 1, peer(), 17767, 9158);
        let syn = decode(&t.sent()[0]).unwrap().header;
        assert_eq!((syn.ptype, syn.conn_id, syn.seq_nr), (PacketType::Syn, 17767, 9158));
        // Written before the handshake completes: held.
        assert_eq!(c.write(&mut t.ctx(), &[1u8; 3000]), 3000);
        assert!(t.sent().is_empty());
        // A STATE not acking our SYN does nothing.
        t.feed(&mut c, hdr(PacketType::State, 17767, 39017, 9157), &[]);
        assert!(t.events().is_empty());
        // The SYN-ACK of spec §10 #3.
        t.feed(&mut c, hdr(PacketType::State, 17767, 39017, 9158), &[]);
        assert_eq!(t.events(), vec![UtpEvent::Connected { id: 1 }]);
        let out = t.sent();
        // One packet: the window starts at one packet.
        assert_eq!(out.len(), 1);
        let p = decode(&out[0]).unwrap();
        assert_eq!((p.header.ptype, p.header.conn_id, p.header.seq_nr, p.header.ack_nr), (PacketType::Data, 17768, 9159, 39016));
        assert_eq!(p.payload.len(), MAX_PAYLOAD);
    }

    #[test]
    fn acceptor_sends_only_after_data_arrived() {
        let mut t = Harness::new();
        let mut c = accepted(&mut t);
        assert_eq!(c.write(&mut t.ctx(), b"world"), 5);
        assert!(t.sent().is_empty(), "acceptor sent before receiving data");
        // A bare STATE (libutp's keep-alive acks one short) is not enough.
        t.feed(&mut c, hdr(PacketType::State, 1001, 101, 17765), &[]);
        assert!(t.sent().is_empty());
        assert!(t.events().is_empty());
        t.feed(&mut c, hdr(PacketType::Data, 1001, 101, 17766), b"hello");
        // Reported only now, with its first data.
        assert_eq!(t.events(), vec![UtpEvent::Incoming { id: 1, from: peer() }, UtpEvent::Readable { id: 1 }]);
        let out = t.sent();
        let p = decode(&out[0]).unwrap();
        assert_eq!((p.header.ptype, p.header.seq_nr, p.header.ack_nr, p.payload), (PacketType::Data, 17767, 101, &b"world"[..]));
        let mut got = Vec::new();
        assert_eq!(c.read(&mut t.ctx(), &mut got, 100), 5);
        assert_eq!(got, b"hello");
    }

    #[test]
    fn a_state_acking_the_syn_ack_exactly_proves_the_dialler() {
        let mut t = Harness::new();
        let mut c = accepted(&mut t);
        // Off by one either way (a keep-alive, a guess): still half-open.
        t.feed(&mut c, hdr(PacketType::State, 1001, 101, 17765), &[]);
        t.feed(&mut c, hdr(PacketType::State, 1001, 101, 17767), &[]);
        assert!(t.events().is_empty());
        assert!(c.is_half_open());
        t.feed(&mut c, hdr(PacketType::State, 1001, 101, 17766), &[]);
        assert_eq!(t.events(), vec![UtpEvent::Incoming { id: 1, from: peer() }]);
        assert!(!c.is_half_open());
        // Now it may speak first.
        assert_eq!(c.write(&mut t.ctx(), b"hi"), 2);
        let out = t.sent();
        assert_eq!(decode(&out[0]).unwrap().header.ptype, PacketType::Data);
    }

    #[test]
    fn selective_ack_like_libutp() {
        // Spec §10: SYN seq 100, then DATA 102 before 101: the STATE acks 100
        // with mask 01 00 00 00.
        let mut t = Harness::new();
        let mut c = accepted(&mut t);
        t.feed(&mut c, hdr(PacketType::Data, 1001, 102, 17766), b"second");
        let ack = c.make_ack(t.now, 0, &t.cfg, &mut t.stats);
        let p = decode(&ack).unwrap();
        assert_eq!(p.header.ack_nr, 100);
        assert_eq!(p.sack, Some(&[1u8, 0, 0, 0][..]));
        // Further out: 140 → bit 38, mask grows to 8 bytes.
        t.feed(&mut c, hdr(PacketType::Data, 1001, 140, 17766), b"far");
        let ack = c.make_ack(t.now, 0, &t.cfg, &mut t.stats);
        let p = decode(&ack).unwrap();
        assert_eq!(p.sack, Some(&[1u8, 0, 0, 0, 0x40, 0, 0, 0][..]));
        // The hole fills: both delivered in order, plain ack.
        t.feed(&mut c, hdr(PacketType::Data, 1001, 101, 17766), b"first");
        let mut got = Vec::new();
        c.read(&mut t.ctx(), &mut got, 100);
        assert_eq!(got, b"firstsecond");
        let p = decode(&c.make_ack(t.now, 0, &t.cfg, &mut t.stats)).unwrap().header;
        assert_eq!(p.ack_nr, 102);
        // Beyond the reorder window: dropped.
        t.feed(&mut c, hdr(PacketType::Data, 1001, 102 + 1 + REORDER_WINDOW as u16, 17766), b"x");
        assert_eq!(t.stats.invalid, 1);
    }

    #[test]
    fn fin_overtaking_data_and_end_after_read() {
        let mut t = Harness::new();
        let mut c = accepted(&mut t);
        t.feed(&mut c, hdr(PacketType::Data, 1001, 101, 17766), b"a");
        t.feed(&mut c, hdr(PacketType::Fin, 1001, 103, 17766), &[]);
        // Data past the FIN is void.
        t.feed(&mut c, hdr(PacketType::Data, 1001, 104, 17766), b"zzz");
        assert_eq!(t.stats.invalid, 1);
        assert_eq!(t.events(), vec![UtpEvent::Incoming { id: 1, from: peer() }, UtpEvent::Readable { id: 1 }]);
        t.feed(&mut c, hdr(PacketType::Data, 1001, 102, 17766), b"b");
        assert!(t.events().is_empty(), "End before the data was read");
        let mut got = Vec::new();
        c.read(&mut t.ctx(), &mut got, 1);
        assert!(t.events().is_empty());
        c.read(&mut t.ctx(), &mut got, 10);
        assert_eq!(got, b"ab");
        assert_eq!(t.events(), vec![UtpEvent::End { id: 1 }]);
        // We can still send (half-close), then our FIN closes it.
        c.write(&mut t.ctx(), b"reply");
        c.shutdown(&mut t.ctx());
        let out = t.sent();
        let types: Vec<_> = out.iter().map(|b| decode(b).unwrap().header.ptype).collect();
        assert_eq!(types, vec![PacketType::Data, PacketType::Fin]);
        let fin_seq = decode(&out[1]).unwrap().header.seq_nr;
        t.feed(&mut c, hdr(PacketType::State, 1001, 104, fin_seq), &[]);
        assert_eq!(t.events(), vec![UtpEvent::Closed { id: 1, error: None }]);
        assert_eq!(c.state, State::TimeWait);
        // A repeated FIN is re-acked while lingering.
        t.feed(&mut c, hdr(PacketType::Fin, 1001, 103, fin_seq), &[]);
        assert!(c.wants_ack());
    }

    #[test]
    fn window_shrinks_and_reopens() {
        let mut t = Harness::new();
        t.cfg.recv_buffer = 10_000;
        let mut c = accepted(&mut t);
        let mut seq = 101u16;
        for _ in 0..5 {
            t.feed(&mut c, hdr(PacketType::Data, 1001, seq, 17766), &[0u8; 1000]);
            seq += 1;
        }
        let h = decode(&c.make_ack(t.now, 0, &t.cfg, &mut t.stats)).unwrap().header;
        assert_eq!(h.wnd_size, 5_000);
        for _ in 0..5 {
            t.feed(&mut c, hdr(PacketType::Data, 1001, seq, 17766), &[0u8; 1000]);
            seq += 1;
        }
        let h = decode(&c.make_ack(t.now, 0, &t.cfg, &mut t.stats)).unwrap().header;
        assert_eq!(h.wnd_size, 0);
        assert!(!c.wants_ack());
        let mut got = Vec::new();
        c.read(&mut t.ctx(), &mut got, 6000);
        // Room reopened: a window update is due.
        assert!(c.wants_ack());
        let h = decode(&c.make_ack(t.now, 0, &t.cfg, &mut t.stats)).unwrap().header;
        assert_eq!(h.wnd_size, 6_000);
    }

    #[test]
    fn respects_peer_window() {
        let mut t = Harness::new();
        let mut c = accepted(&mut t);
        let mut h = hdr(PacketType::Data, 1001, 101, 17766);
        h.wnd_size = 0;
        t.feed(&mut c, h, b"x");
        t.sent();
        c.write(&mut t.ctx(), &[0u8; 5000]);
        assert!(t.sent().is_empty(), "sent into a zero window");
        // After 15 s a probe goes out.
        t.now += ZERO_WINDOW_PROBE;
        c.on_timeout(&mut t.ctx());
        let out = t.sent();
        assert_eq!(out.len(), 1);
        assert_eq!(decode(&out[0]).unwrap().header.ptype, PacketType::Data);
    }

    #[test]
    fn acks_from_the_future_are_dropped() {
        let mut t = Harness::new();
        let mut c = accepted(&mut t);
        t.feed(&mut c, hdr(PacketType::Data, 1001, 101, 17767), b"evil");
        assert_eq!(t.stats.invalid, 1);
        assert!(t.events().is_empty());
    }

    #[test]
    fn reset_matching_rule() {
        let mut t = Harness::new();
        let acc = accepted(&mut t); // recv 1001, send 1000
        assert!(acc.reset_matches(1001));
        assert!(acc.reset_matches(1000));
        assert!(!acc.reset_matches(1002));
        assert!(!acc.reset_matches(999));
        let ini = Connection::connect(&mut t.ctx(), 2, peer(), 500, 1); // recv 500, send 501
        assert!(ini.reset_matches(500));
        assert!(ini.reset_matches(501));
        assert!(!ini.reset_matches(499));
    }
}
