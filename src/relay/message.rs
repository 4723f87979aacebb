//! The relay's datagrams: our own format, spoken only between peers of
//! this package and a relay's port (never to a DHT node, so no JS node
//! reads it). The layout is in the README ("Relay wire format").
//!
//! Every datagram starts with a 4-byte header: the magic `0xFF 'R'`, the
//! version ([`VERSION`]) and the type. The magic's first byte can be
//! neither uTP (whose low nibble is its version, 1) nor a dht-rpc message
//! (`0xFF 0x52` read as a protobuf tag has wire type 7, which no decoder
//! accepts), so a peer's one UDP socket can tell relay datagrams from the
//! other two by their first byte.
//!
//! Sizes are chosen against amplification: a [`Message::Join`] is the
//! largest control message, and every answer to it is no larger, so an
//! unverified source never gets more bytes back than it sent.

use std::fmt;

/// The first two bytes of every relay datagram.
pub const MAGIC: [u8; 2] = [0xFF, b'R'];

/// The layout described here. Another version is dropped as malformed.
pub const VERSION: u8 = 1;

/// Magic, version, type.
pub const HEADER_LEN: usize = 4;

/// A session token: 32 random bytes the two peers share (see the module
/// doc of [`crate::relay`] for why random and not derived).
pub const TOKEN_LEN: usize = 32;

/// A cookie: a truncated keyed BLAKE2b (see [`super::cookie`]). 128 bits
/// cannot be guessed within a cookie's minute of life.
pub const COOKIE_LEN: usize = 16;

/// The size of a join and of a challenge; every other answer is smaller.
pub const JOIN_LEN: usize = HEADER_LEN + TOKEN_LEN + COOKIE_LEN;

/// Bytes before a data datagram's payload: header and the 8-byte id.
pub const DATA_HEADER_LEN: usize = HEADER_LEN + 8;

/// The largest datagram a relay reads or forwards: the UDP payload of a
/// 1500-byte Ethernet frame (1500 − 20 IPv4 − 8 UDP). A relayed uTP packet
/// (at most 1402 bytes, spec/wire-utp.md §4) plus our 12 bytes fits.
pub const MAX_DATAGRAM: usize = 1472;

/// Type codes (the header's fourth byte).
mod kind {
    pub const JOIN: u8 = 1;
    pub const CHALLENGE: u8 = 2;
    pub const WAITING: u8 = 3;
    pub const PAIRED: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const DATA: u8 = 6;
    pub const CLOSE: u8 = 7;
    pub const ENDED: u8 = 8;
}

pub type Token = [u8; TOKEN_LEN];
pub type Cookie = [u8; COOKIE_LEN];

/// Why a relay refused a join. Codes the peer does not know read as
/// [`Refusal::Other`], so a later relay can add reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `max_pairs` sessions are paired already.
    Full,
    /// `max_waiting` sessions wait for their partner already.
    WaitingFull,
    /// The joiner's IP is a party to `max_per_ip` sessions already.
    PerIp,
    /// The token is paired already, between two other addresses.
    Taken,
    /// The joiner's /24 is a party to `max_per_subnet` sessions already.
    Subnet,
    Other(u8),
}

impl Refusal {
    pub fn code(self) -> u8 {
        match self {
            Refusal::Full => 1,
            Refusal::WaitingFull => 2,
            Refusal::PerIp => 3,
            Refusal::Taken => 4,
            Refusal::Subnet => 5,
            Refusal::Other(c) => c,
        }
    }

    pub fn from_code(c: u8) -> Refusal {
        match c {
            1 => Refusal::Full,
            2 => Refusal::WaitingFull,
            3 => Refusal::PerIp,
            4 => Refusal::Taken,
            5 => Refusal::Subnet,
            c => Refusal::Other(c),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Full => f.write_str("the relay carries as many pairs as it may"),
            Refusal::WaitingFull => f.write_str("the relay holds as many waiting sessions as it may"),
            Refusal::PerIp => f.write_str("this address has as many relay sessions as it may"),
            Refusal::Taken => f.write_str("the relay session is paired with other peers"),
            Refusal::Subnet => f.write_str("this address's /24 has as many relay sessions as it may"),
            Refusal::Other(c) => write!(f, "the relay refused (reason {c})"),
        }
    }
}

/// Why a session ended. Unknown codes read as [`EndReason::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The other side sent a close.
    Closed,
    /// The pair reached `pair_lifetime`.
    Lifetime,
    /// Neither side sent anything for `idle_timeout`.
    Idle,
    /// No partner joined within `wait_lifetime`.
    NoPartner,
    Other(u8),
}

impl EndReason {
    pub fn code(self) -> u8 {
        match self {
            EndReason::Closed => 1,
            EndReason::Lifetime => 2,
            EndReason::Idle => 3,
            EndReason::NoPartner => 4,
            EndReason::Other(c) => c,
        }
    }

    pub fn from_code(c: u8) -> EndReason {
        match c {
            1 => EndReason::Closed,
            2 => EndReason::Lifetime,
            3 => EndReason::Idle,
            4 => EndReason::NoPartner,
            c => EndReason::Other(c),
        }
    }
}

/// One relay datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Peer → relay: join the session `token`. A cookie the relay did not
    /// make for this address (all zeros on the first try) is answered with
    /// a [`Message::Challenge`]; a valid one registers the sender.
    Join { token: Token, cookie: Cookie },
    /// Relay → peer: join again with this cookie.
    Challenge { token: Token, cookie: Cookie },
    /// Relay → peer: registered under `id`; the partner has not joined
    /// yet. The session ends in `expires_in` seconds without one.
    Waiting { token: Token, id: u64, expires_in: u32 },
    /// Relay → peer: both sides joined. Send data under `id`; the pair
    /// ends in `expires_in` seconds at the latest.
    Paired { token: Token, id: u64, expires_in: u32 },
    /// Relay → peer: the join was refused, and why.
    Refused { token: Token, reason: Refusal },
    /// Both ways: one datagram of the relayed flow. A peer sends it under
    /// its own id; the relay forwards the payload under the other side's
    /// id. An empty payload only keeps the pair from idling out.
    Data { id: u64, payload: &'a [u8] },
    /// Peer → relay: end the session registered under `id`.
    Close { id: u64 },
    /// Relay → peer: the session ended, and why.
    Ended { token: Token, reason: EndReason },
}

/// Why a datagram is not a relay message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not our magic.
    NotRelay,
    /// Our magic, another version.
    Version(u8),
    /// An unknown type code.
    Type(u8),
    /// The wrong size for its type.
    Length { kind: u8, len: usize },
}

/// Whether `bytes` starts like a relay datagram (for a socket that also
/// carries uTP and the DHT).
pub fn looks_like_relay(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[..2] == MAGIC
}

impl<'a> Message<'a> {
    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        match self {
            Message::Join { token, cookie } | Message::Challenge { token, cookie } => {
                out.push(if matches!(self, Message::Join { .. }) { kind::JOIN } else { kind::CHALLENGE });
                out.extend_from_slice(token);
                out.extend_from_slice(cookie);
            }
            Message::Waiting { token, id, expires_in } | Message::Paired { token, id, expires_in } => {
                out.push(if matches!(self, Message::Waiting { .. }) { kind::WAITING } else { kind::PAIRED });
                out.extend_from_slice(token);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&expires_in.to_be_bytes());
            }
            Message::Refused { token, reason } => {
                out.push(kind::REFUSED);
                out.extend_from_slice(token);
                out.push(reason.code());
            }
            Message::Ended { token, reason } => {
                out.push(kind::ENDED);
                out.extend_from_slice(token);
                out.push(reason.code());
            }
            Message::Data { id, payload } => {
                out.push(kind::DATA);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(payload);
            }
            Message::Close { id } => {
                out.push(kind::CLOSE);
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// The size [`Message::encode`] gives.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Message::Join { .. } | Message::Challenge { .. } => TOKEN_LEN + COOKIE_LEN,
                Message::Waiting { .. } | Message::Paired { .. } => TOKEN_LEN + 8 + 4,
                Message::Refused { .. } | Message::Ended { .. } => TOKEN_LEN + 1,
                Message::Data { payload, .. } => 8 + payload.len(),
                Message::Close { .. } => 8,
            }
    }

    /// Reads a datagram. Fixed-size messages must have exactly their size;
    /// a data message borrows its payload from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        if !looks_like_relay(bytes) {
            return Err(DecodeError::NotRelay);
        }
        if bytes[2] != VERSION {
            return Err(DecodeError::Version(bytes[2]));
        }
        let k = bytes[3];
        let body = &bytes[HEADER_LEN..];
        let want = |n: usize| if body.len() == n { Ok(()) } else { Err(DecodeError::Length { kind: k, len: bytes.len() }) };
        let token = |b: &[u8]| -> Token { b[..TOKEN_LEN].try_into().expect("length checked") };
        let be64 = |b: &[u8]| u64::from_be_bytes(b[..8].try_into().expect("length checked"));
        Ok(match k {
            kind::JOIN | kind::CHALLENGE => {
                want(TOKEN_LEN + COOKIE_LEN)?;
                let (token, cookie) = (token(body), body[TOKEN_LEN..].try_into().expect("length checked"));
                if k == kind::JOIN {
                    Message::Join { token, cookie }
                } else {
                    Message::Challenge { token, cookie }
                }
            }
            kind::WAITING | kind::PAIRED => {
                want(TOKEN_LEN + 12)?;
                let (token, id) = (token(body), be64(&body[TOKEN_LEN..]));
                let expires_in = u32::from_be_bytes(body[TOKEN_LEN + 8..].try_into().expect("length checked"));
                if k == kind::WAITING {
                    Message::Waiting { token, id, expires_in }
                } else {
                    Message::Paired { token, id, expires_in }
                }
            }
            kind::REFUSED => {
                want(TOKEN_LEN + 1)?;
                Message::Refused { token: token(body), reason: Refusal::from_code(body[TOKEN_LEN]) }
            }
            kind::ENDED => {
                want(TOKEN_LEN + 1)?;
                Message::Ended { token: token(body), reason: EndReason::from_code(body[TOKEN_LEN]) }
            }
            kind::DATA => {
                if body.len() < 8 {
                    return Err(DecodeError::Length { kind: k, len: bytes.len() });
                }
                Message::Data { id: be64(body), payload: &body[8..] }
            }
            kind::CLOSE => {
                want(8)?;
                Message::Close { id: be64(body) }
            }
            other => return Err(DecodeError::Type(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_to_a_join_is_no_larger_than_the_join() {
        let token = [1; TOKEN_LEN];
        for m in [
            Message::Challenge { token, cookie: [2; COOKIE_LEN] },
            Message::Waiting { token, id: 3, expires_in: 4 },
            Message::Paired { token, id: 3, expires_in: 4 },
            Message::Refused { token, reason: Refusal::Full },
            Message::Ended { token, reason: EndReason::Idle },
        ] {
            assert!(m.encode().len() <= JOIN_LEN, "{m:?}");
        }
        assert_eq!(Message::Join { token, cookie: [0; COOKIE_LEN] }.encode().len(), JOIN_LEN);
    }

    #[test]
    fn the_magic_is_neither_utp_nor_a_protobuf_tag() {
        let bytes = Message::Data { id: 1, payload: &[0x01; 40] }.encode();
        assert!(!crate::utp::looks_like_utp(&bytes));
        assert!(crate::wire::dht::Message::decode(&bytes).is_err());
    }
}
