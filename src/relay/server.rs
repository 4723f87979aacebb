//! The relay core, sans-IO: `handle_datagram(now, from, bytes)` and
//! `handle_timeout(now)` in, `poll_transmit()` and `poll_timeout()` out.
//! No socket, clock or runtime inside (`src/io/relay.rs` drives it).
//!
//! A session goes: join without a cookie → challenge (stateless) → join
//! with the cookie → waiting (state kept, the sender's address verified)
//! → the partner's join → paired, both told → data forwarded between the
//! two registered addresses under the pair's rate → ended (a close, the
//! lifetime, idleness), both told. Everything the relay sends goes either
//! to a verified address or in answer to a join no smaller than it.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::bucket::Bucket;
use super::config::{RelayConfig, MAX_QUEUED};
use super::cookie::Cookies;
use super::message::{EndReason, Message, Refusal, Token, MAX_DATAGRAM};
use super::session::{Lifetimes, Party, Sessions};
use super::stats::RelayStats;

#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    cookies: Cookies,
    sessions: Sessions,
    rng: StdRng,
    transmits: VecDeque<(SocketAddrV4, Vec<u8>)>,
    stats: RelayStats,
}

impl Relay {
    /// A relay whose cookie secret and party ids come from `seed` (random
    /// in a real relay; fixed for a reproducible test).
    pub fn new(config: RelayConfig, now: Instant, seed: [u8; 32]) -> Self {
        let mut rng = StdRng::from_seed(seed);
        let cookies = Cookies::new(rng.random(), now);
        Relay { config, cookies, sessions: Sessions::default(), rng, transmits: VecDeque::new(), stats: RelayStats::default() }
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats { pairs: self.sessions.pairs() as u64, waiting: self.sessions.waiting() as u64, ..self.stats }
    }

    /// Entries in the deadline heap (a test checks its bound).
    pub fn deadline_entries(&self) -> usize {
        self.sessions.deadline_entries()
    }

    fn lifetimes(&self) -> Lifetimes {
        Lifetimes { wait: self.config.wait_lifetime, pair: self.config.pair_lifetime, idle: self.config.idle_timeout }
    }

    fn send(&mut self, to: SocketAddrV4, msg: &Message<'_>) {
        if self.transmits.len() >= MAX_QUEUED {
            self.stats.transmit_overflow += 1;
            return;
        }
        let bytes = msg.encode();
        self.stats.sent += 1;
        self.stats.sent_bytes += bytes.len() as u64;
        self.transmits.push_back((to, bytes));
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// When [`Relay::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions.next_deadline()
    }

    /// Seconds from `now` to `at`, rounded down (what the peer is told).
    fn secs_until(now: Instant, at: Instant) -> u32 {
        at.saturating_duration_since(now).as_secs().min(u32::MAX as u64) as u32
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        self.stats.received += 1;
        self.stats.received_bytes += bytes.len() as u64;
        if bytes.len() > MAX_DATAGRAM {
            self.stats.dropped_oversized += 1;
            return;
        }
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::trace!(%from, ?e, "relay: malformed datagram");
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        match msg {
            Message::Join { token, cookie } => {
                if self.cookies.verify(now, from, &token, &cookie) {
                    self.stats.joins += 1;
                    self.join(now, from, token);
                } else {
                    // Stateless, and the same size as the join.
                    self.stats.challenges += 1;
                    let cookie = self.cookies.make(now, from, &token);
                    self.send(from, &Message::Challenge { token, cookie });
                }
            }
            Message::Data { id, payload } => self.data(now, from, id, payload),
            Message::Close { id } => {
                if let Some(key) = self.owned(from, id) {
                    self.end(key, Some(from), EndReason::Closed);
                }
            }
            Message::Challenge { .. } | Message::Waiting { .. } | Message::Paired { .. } | Message::Refused { .. } | Message::Ended { .. } => {
                self.stats.dropped_unexpected += 1;
            }
        }
    }

    /// The session of id `id`, if `from` is the address that registered
    /// it; counts the drop otherwise.
    fn owned(&mut self, from: SocketAddrV4, id: u64) -> Option<u64> {
        let Some(key) = self.sessions.by_id(id) else {
            self.stats.dropped_unknown_id += 1;
            return None;
        };
        let s = self.sessions.get(key)?;
        if s.parties().any(|p| p.id == id && p.addr == from) {
            Some(key)
        } else {
            tracing::debug!(%from, "relay: a known id from another address");
            self.stats.dropped_spoofed += 1;
            None
        }
    }

    fn fresh_id(&mut self) -> u64 {
        loop {
            let id: u64 = self.rng.random();
            if id != 0 && !self.sessions.id_taken(id) {
                return id;
            }
        }
    }

    fn refuse(&mut self, from: SocketAddrV4, token: Token, reason: Refusal) {
        tracing::debug!(%from, %reason, "relay: join refused");
        self.stats.refused(reason);
        self.send(from, &Message::Refused { token, reason });
    }

    /// The per-IP or per-/24 cap `from` has reached, if any.
    fn address_cap(&self, from: SocketAddrV4) -> Option<Refusal> {
        if self.sessions.on_ip(*from.ip()) >= self.config.max_per_ip {
            Some(Refusal::PerIp)
        } else if self.sessions.on_subnet(*from.ip()) >= self.config.max_per_subnet {
            Some(Refusal::Subnet)
        } else {
            None
        }
    }

    /// A join from a verified address.
    fn join(&mut self, now: Instant, from: SocketAddrV4, token: Token) {
        let l = self.lifetimes();
        let Some(key) = self.sessions.by_token(&token) else {
            // A new session.
            if self.sessions.pairs() >= self.config.max_pairs {
                return self.refuse(from, token, Refusal::Full);
            }
            if self.sessions.waiting() >= self.config.max_waiting {
                return self.refuse(from, token, Refusal::WaitingFull);
            }
            if let Some(r) = self.address_cap(from) {
                return self.refuse(from, token, r);
            }
            let id = self.fresh_id();
            let key = self.sessions.insert(now, token, Party { addr: from, id }, l);
            let expires_in = Self::secs_until(now, self.sessions.get(key).map_or(now, |s| s.hard_end(l)));
            tracing::debug!(%from, "relay: session waiting");
            return self.send(from, &Message::Waiting { token, id, expires_in });
        };
        let Some(s) = self.sessions.get_mut(key) else { return };
        if let Some((me, other)) = s.sides(from) {
            // A repeated join (a lost answer, or a keep-alive of the NAT
            // mapping): the same answer again.
            let expires_in = Self::secs_until(now, s.hard_end(l));
            let msg = if other.is_some() {
                s.last_seen = now;
                Message::Paired { token, id: me.id, expires_in }
            } else {
                Message::Waiting { token, id: me.id, expires_in }
            };
            return self.send(from, &msg);
        }
        if s.second.is_some() {
            return self.refuse(from, token, Refusal::Taken);
        }
        let first = s.first;
        if self.sessions.pairs() >= self.config.max_pairs {
            return self.refuse(from, token, Refusal::Full);
        }
        if let Some(r) = self.address_cap(from) {
            return self.refuse(from, token, r);
        }
        let id = self.fresh_id();
        let second = Party { addr: from, id };
        // One second's worth, and at least one largest datagram so that
        // any rate lets a datagram through now and then.
        let bucket = Bucket::new(now, self.config.rate, (self.config.rate as usize).max(MAX_DATAGRAM));
        self.sessions.pair(key, now, second, bucket);
        self.stats.pairs_formed += 1;
        let expires_in = Self::secs_until(now, self.sessions.get(key).map_or(now, |s| s.hard_end(l)));
        tracing::debug!(a = %first.addr, b = %from, "relay: paired");
        // Both sides are verified: `first` by its own join's cookie.
        self.send(first.addr, &Message::Paired { token, id: first.id, expires_in });
        self.send(from, &Message::Paired { token, id, expires_in });
    }

    fn data(&mut self, now: Instant, from: SocketAddrV4, id: u64, payload: &[u8]) {
        let Some(key) = self.owned(from, id) else { return };
        let Some(s) = self.sessions.get_mut(key) else { return };
        let Some((_, Some(other))) = s.sides(from) else {
            self.stats.dropped_unpaired += 1;
            return;
        };
        s.last_seen = now;
        if payload.is_empty() {
            // A keep-alive: it only moved `last_seen`.
            return;
        }
        let allowed = s.bucket.as_mut().is_some_and(|b| b.take(now, payload.len()));
        if !allowed {
            self.stats.dropped_throttled += 1;
            self.stats.throttled_bytes += payload.len() as u64;
            return;
        }
        self.stats.forwarded += 1;
        self.stats.forwarded_bytes += payload.len() as u64;
        // Same size as what came in: only the id differs.
        self.send(other.addr, &Message::Data { id: other.id, payload });
    }

    /// Ends session `key`, telling every party but `except` why.
    fn end(&mut self, key: u64, except: Option<SocketAddrV4>, reason: EndReason) {
        let Some(s) = self.sessions.remove(key) else { return };
        tracing::debug!(?reason, "relay: session ended");
        self.stats.ended(reason);
        for p in s.parties() {
            if Some(p.addr) != except {
                self.send(p.addr, &Message::Ended { token: s.token, reason });
            }
        }
    }

    /// Ends every session whose lifetime is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        let l = self.lifetimes();
        while let Some(key) = self.sessions.pop_due(now, l) {
            let Some(s) = self.sessions.get(key) else { continue };
            let reason = match s.paired_at {
                None => EndReason::NoPartner,
                Some(at) if at + l.pair <= now => EndReason::Lifetime,
                Some(_) => EndReason::Idle,
            };
            self.end(key, None, reason);
        }
    }
}
