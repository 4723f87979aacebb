//! The peer's side of a relay, sans-IO: joins sessions (answering the
//! cookie challenge, retrying lost joins), keeps their NAT mappings alive,
//! wraps and unwraps data, and turns a refusal, an ending or a join that
//! never got an answer into an error the peer can report. The swarm
//! drives it (`swarm::relay_io`); `tests/relay_client.rs` runs it against
//! [`super::Relay`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::message::{EndReason, Message, Refusal, Token, COOKIE_LEN, DATA_HEADER_LEN, MAX_DATAGRAM};

/// A join unanswered this long is sent again. Ours: a few round trips on a
/// long path, and well inside the 35 s a relay session may take to form.
pub const JOIN_RETRY: Duration = Duration::from_millis(500);

/// A session that is neither waiting nor paired this long after `join`
/// fails with [`RelayError::Unanswered`]. Ours: 10 retries; a relay that
/// answers none of them is down or unreachable.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A session sends something at least this often: a repeated join while it
/// waits, an empty data datagram once paired. Linux forgets an unreplied
/// UDP mapping after 30 s (`nf_conntrack_udp_timeout`); half of that keeps
/// a NAT in front of us open, and the relay's idle timeout (60 s) far off.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Sessions one client holds at most. Ours: the relay's own per-IP cap
/// (16 by default) is the real limit; this only bounds the table.
pub const MAX_SESSIONS: usize = 64;

/// Why a relayed session could not be had, or was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayError {
    /// The relay refused the join.
    Refused(Refusal),
    /// The relay ended the session.
    Ended(EndReason),
    /// The relay answered no join within [`JOIN_TIMEOUT`].
    Unanswered,
    /// No such session, or it is not paired yet.
    NotPaired,
    /// [`MAX_SESSIONS`] are open, or the token is in use already.
    Busy,
    /// The payload does not fit one relayed datagram.
    TooLarge,
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Refused(r) => write!(f, "relay refused: {r}"),
            RelayError::Ended(r) => write!(f, "relay session ended: {r:?}"),
            RelayError::Unanswered => f.write_str("the relay did not answer"),
            RelayError::NotPaired => f.write_str("the relay session is not paired"),
            RelayError::Busy => f.write_str("too many relay sessions, or the token is in use"),
            RelayError::TooLarge => f.write_str("too large for a relayed datagram"),
        }
    }
}

impl std::error::Error for RelayError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Registered; the partner has not joined yet.
    Waiting { token: Token },
    /// Both joined: data can flow.
    Paired { token: Token },
    /// A datagram from the partner.
    Data { token: Token, payload: Vec<u8> },
    /// The session is over (refused, ended, unanswered); it is forgotten.
    Failed { token: Token, error: RelayError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Joining,
    Waiting,
    Paired,
}

#[derive(Debug)]
struct Session {
    relay: SocketAddrV4,
    state: State,
    cookie: [u8; COOKIE_LEN],
    id: u64,
    started: Instant,
    /// When the next join or keep-alive is due.
    next_send: Instant,
}

#[derive(Debug, Default)]
pub struct RelayClient {
    sessions: HashMap<Token, Session>,
    by_id: HashMap<u64, Token>,
    transmits: VecDeque<(SocketAddrV4, Vec<u8>)>,
    events: VecDeque<ClientEvent>,
}

impl RelayClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts joining session `token` at `relay`.
    pub fn join(&mut self, now: Instant, relay: SocketAddrV4, token: Token) -> Result<(), RelayError> {
        if self.sessions.len() >= MAX_SESSIONS || self.sessions.contains_key(&token) {
            return Err(RelayError::Busy);
        }
        let s = Session { relay, state: State::Joining, cookie: [0; COOKIE_LEN], id: 0, started: now, next_send: now + JOIN_RETRY };
        self.transmits.push_back((relay, Message::Join { token, cookie: s.cookie }.encode()));
        self.sessions.insert(token, s);
        Ok(())
    }

    /// Sends `payload` to the partner of paired session `token`.
    pub fn send(&mut self, now: Instant, token: &Token, payload: &[u8]) -> Result<(), RelayError> {
        if payload.len() > MAX_DATAGRAM - DATA_HEADER_LEN {
            return Err(RelayError::TooLarge);
        }
        let s = self.sessions.get_mut(token).filter(|s| s.state == State::Paired).ok_or(RelayError::NotPaired)?;
        s.next_send = now + KEEPALIVE;
        self.transmits.push_back((s.relay, Message::Data { id: s.id, payload }.encode()));
        Ok(())
    }

    /// Ends session `token` (the relay tells the partner).
    pub fn close(&mut self, token: &Token) {
        if let Some(s) = self.sessions.remove(token) {
            self.by_id.remove(&s.id);
            if s.state != State::Joining {
                self.transmits.push_back((s.relay, Message::Close { id: s.id }.encode()));
            }
        }
    }

    fn fail(&mut self, token: Token, error: RelayError) {
        if let Some(s) = self.sessions.remove(&token) {
            self.by_id.remove(&s.id);
        }
        tracing::debug!(%error, "relay session failed");
        self.events.push_back(ClientEvent::Failed { token, error });
    }

    /// A datagram that [`super::looks_like_relay`]. Only what comes from the
    /// relay a session joined counts for it.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddrV4, bytes: &[u8]) {
        let Ok(msg) = Message::decode(bytes) else { return };
        if let Message::Data { id, payload } = msg {
            let Some(token) = self.by_id.get(&id).copied() else { return };
            if self.sessions.get(&token).is_some_and(|s| s.relay == from && s.state == State::Paired) {
                self.events.push_back(ClientEvent::Data { token, payload: payload.to_vec() });
            }
            return;
        }
        let token = match &msg {
            Message::Challenge { token, .. }
            | Message::Waiting { token, .. }
            | Message::Paired { token, .. }
            | Message::Refused { token, .. }
            | Message::Ended { token, .. } => *token,
            _ => return,
        };
        let Some(s) = self.sessions.get_mut(&token).filter(|s| s.relay == from) else { return };
        match msg {
            Message::Challenge { cookie, .. } => {
                s.cookie = cookie;
                self.transmits.push_back((from, Message::Join { token, cookie }.encode()));
            }
            Message::Waiting { id, .. } | Message::Paired { id, .. } => {
                let paired = matches!(msg, Message::Paired { .. });
                let state = if paired { State::Paired } else { State::Waiting };
                if s.state == state && s.id == id {
                    return;
                }
                // Once paired, a late Waiting does not step back.
                if s.state == State::Paired && !paired {
                    return;
                }
                if s.id != id {
                    self.by_id.remove(&s.id);
                    s.id = id;
                    self.by_id.insert(id, token);
                }
                s.state = state;
                s.next_send = now + KEEPALIVE;
                self.events.push_back(if paired { ClientEvent::Paired { token } } else { ClientEvent::Waiting { token } });
            }
            Message::Refused { reason, .. } => self.fail(token, RelayError::Refused(reason)),
            Message::Ended { reason, .. } => self.fail(token, RelayError::Ended(reason)),
            _ => {}
        }
    }

    /// Retries joins, sends keep-alives, gives up on unanswered joins.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut unanswered = Vec::new();
        for (token, s) in self.sessions.iter_mut() {
            if s.state == State::Joining && now >= s.started + JOIN_TIMEOUT {
                unanswered.push(*token);
                continue;
            }
            if now < s.next_send {
                continue;
            }
            let msg = match s.state {
                // A lost challenge or answer: join again. Waiting: the same
                // join again is the keep-alive (the relay answers Waiting).
                State::Joining | State::Waiting => Message::Join { token: *token, cookie: s.cookie },
                State::Paired => Message::Data { id: s.id, payload: &[] },
            };
            s.next_send = now + if s.state == State::Joining { JOIN_RETRY } else { KEEPALIVE };
            self.transmits.push_back((s.relay, msg.encode()));
        }
        for token in unanswered {
            self.fail(token, RelayError::Unanswered);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddrV4, Vec<u8>)> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .map(|s| if s.state == State::Joining { s.next_send.min(s.started + JOIN_TIMEOUT) } else { s.next_send })
            .min()
    }
}
