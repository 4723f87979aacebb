//! Wire codec for the 2019 Hyperswarm DHT: dht-rpc 4 (`Message`,
//! `Holepunch`) and @hyperswarm/dht 4 (`PeersInput`, `PeersOutput`,
//! `Mutable`), plus the fixed-size address records they carry.
//!
//! Everything here follows `shared/spec/wire-dht.md` and is golden-tested
//! byte for byte against datagrams captured from the JS reference
//! (`tests/golden_dht.rs`, fixtures made by `scripts/capture-dht.js`).
//!
//! Encoding reproduces the reference exactly: its field order (not numeric,
//! see [`Message::encode`]) and its habit of writing zero-length fields.
//! To make that possible every optional field is an `Option`, so "absent"
//! and "present but empty" survive a decode/encode round trip.
//!
//! Decoding never panics. It is stricter than the reference in a few places
//! where the reference is sloppy rather than deliberate (truncated fields,
//! wire types of known fields, over-long varints, huge datagrams); each such
//! spot is marked in a comment and listed in `tests/fixtures/dht/crafted.json`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Protocol version every dht-rpc 4.x sender puts in field 11
/// (wire-dht.md §1.1). A message whose `version` is missing or below this
/// has its `id` ignored by receivers (§1.3 step 4).
pub const VERSION: u64 = 1;

/// Length of node ids and targets: 32 bytes, XOR metric (INDEX.md constants,
/// wire-dht.md §8.1).
pub const ID_LEN: usize = 32;

/// IPv4 address record: 4 octets + big-endian port (wire-dht.md §4.1).
pub const PEER_RECORD_LEN: usize = 6;
/// The longest `_holepunch` target a relay of ours carries over (see
/// [`Message::relay_holepunch`]): the size of a usual target, and room for
/// a capability record (`dht::capability`).
pub const MAX_RELAYED_TARGET: usize = 32;

/// Node record in `closerNodes`: 32-byte id + address record (wire-dht.md §4.2).
pub const NODE_RECORD_LEN: usize = ID_LEN + PEER_RECORD_LEN;

/// LAN record in `localPeers`: last two octets + big-endian port; the first
/// two octets come from the asker's own `localAddress` (wire-dht.md §4.3).
pub const LAN_RECORD_LEN: usize = 4;

/// Largest datagram the decoders accept.
///
/// The reference has no limit of its own: dht-rpc decodes whatever the UDP
/// socket delivers (up to 65 507 bytes over IPv4). The largest message the
/// reference produces through its public API is about 2.1 KB: a
/// `mutable-store` reply with 20 closer nodes (760 B), a token, and a record
/// whose value is capped at 1000 B plus a 64 B signature and a 64 B salt
/// (wire-dht.md §10.5). Anything past 4 KiB can only come from a custom
/// command this crate does not serve, or from an attacker, so it is dropped
/// like any undecodable datagram, keeping per-datagram work small.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// A protobuf varint never needs more than 10 bytes for 64 bits.
const MAX_VARINT_LEN: usize = 10;

/// Command names the reference registers (wire-dht.md §2, §10).
pub const CMD_PING: &str = "_ping";
/// See [`CMD_PING`].
pub const CMD_FIND_NODE: &str = "_find_node";
/// See [`CMD_PING`].
pub const CMD_HOLEPUNCH: &str = "_holepunch";
/// See [`CMD_PING`].
pub const CMD_PEERS: &str = "peers";
/// See [`CMD_PING`].
pub const CMD_MUTABLE_STORE: &str = "mutable-store";
/// See [`CMD_PING`].
pub const CMD_IMMUTABLE_STORE: &str = "immutable-store";

// Protobuf wire types used here.
const WT_VARINT: u8 = 0;
const WT_FIXED64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_FIXED32: u8 = 5;

/// Why a datagram or value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Input longer than [`MAX_MESSAGE_LEN`].
    Oversized {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Input ended inside a tag, varint or field.
    Truncated,
    /// Varint longer than 10 bytes or not fitting in 64 bits.
    BadVarint,
    /// A known field arrived with a wire type other than its declared one.
    WrongWireType {
        /// The field number.
        field: u64,
        /// The wire type it came with.
        wire_type: u8,
    },
    /// Wire types 3/4 (groups, which the reference refuses too) and 6/7
    /// (undefined).
    UnsupportedWireType(u8),
    /// A `required` field (`type` or `rid`) is missing.
    MissingField(&'static str),
    /// `type` is not QUERY (1), UPDATE (2) or RESPONSE (3).
    UnknownMessageType(u64),
    /// `id` present with a length other than 32: the reference drops the
    /// whole datagram (wire-dht.md §1.3 step 3).
    WrongIdLength(usize),
    /// A record list whose length is not a multiple of the record size.
    BadRecordLength {
        /// The list's length.
        len: usize,
        /// The record size it must be a multiple of.
        record: usize,
    },
    /// An address record with port 0.
    ZeroPort,
    /// An address record with host 0.0.0.0.
    UnspecifiedHost,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Oversized { len, max } => {
                write!(f, "message of {len} bytes exceeds the {max}-byte limit")
            }
            DecodeError::Truncated => f.write_str("message truncated"),
            DecodeError::BadVarint => f.write_str("malformed varint"),
            DecodeError::WrongWireType { field, wire_type } => {
                write!(f, "field {field} has unexpected wire type {wire_type}")
            }
            DecodeError::UnsupportedWireType(wt) => write!(f, "unsupported wire type {wt}"),
            DecodeError::MissingField(name) => write!(f, "required field `{name}` missing"),
            DecodeError::UnknownMessageType(t) => write!(f, "unknown message type {t}"),
            DecodeError::WrongIdLength(len) => write!(f, "node id is {len} bytes, expected 32"),
            DecodeError::BadRecordLength { len, record } => {
                write!(
                    f,
                    "record list of {len} bytes is not a multiple of {record}"
                )
            }
            DecodeError::ZeroPort => f.write_str("address record with port 0"),
            DecodeError::UnspecifiedHost => f.write_str("address record with host 0.0.0.0"),
        }
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------------------
// Low-level protobuf reading and writing

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::Oversized {
                len: buf.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        Ok(Reader { buf, pos: 0 })
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let byte = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            let low = u64::from(byte & 0x7f);
            // The 10th byte may only carry the single remaining bit.
            if i == MAX_VARINT_LEN - 1 && low > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        // Stricter than the reference, whose varint reader has no length cap.
        Err(DecodeError::BadVarint)
    }

    fn tag(&mut self) -> Result<(u64, u8), DecodeError> {
        let tag = self.varint()?;
        Ok((tag >> 3, (tag & 7) as u8))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        // The reference quietly returns a shorter slice here; a datagram that
        // lies about its own length is garbage, so we reject it.
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        self.take(len)
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), DecodeError> {
        match wire_type {
            WT_VARINT => self.varint().map(drop),
            WT_FIXED64 => self.take(8).map(drop),
            WT_LEN => self.bytes().map(drop),
            WT_FIXED32 => self.take(4).map(drop),
            other => Err(DecodeError::UnsupportedWireType(other)),
        }
    }
}

// The reference never checks the wire type of a field it knows; we do, so a
// mangled datagram is not half-read as something else.
fn expect_wire_type(field: u64, got: u8, want: u8) -> Result<(), DecodeError> {
    if got == want {
        Ok(())
    } else {
        Err(DecodeError::WrongWireType {
            field,
            wire_type: got,
        })
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

// All field numbers used here are < 16, so every tag is a single byte.
fn tag_byte(field: u8, wire_type: u8) -> u8 {
    (field << 3) | wire_type
}

fn put_varint_field(out: &mut Vec<u8>, field: u8, v: u64) {
    out.push(tag_byte(field, WT_VARINT));
    put_varint(out, v);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(tag_byte(field, WT_LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint_field_len(v: u64) -> usize {
    1 + varint_len(v)
}

fn bytes_field_len(b: &[u8]) -> usize {
    1 + varint_len(b.len() as u64) + b.len()
}

// The reference decodes strings with replacement characters rather than
// failing, so a command with bad UTF-8 is simply an unknown command.
fn lossy_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------
// Message

/// dht-rpc's `TYPE` enum (wire-dht.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A request that expects a response (`_ping`, `_find_node`, `peers`…).
    Query = 1,
    /// A request that stores or changes state (announce, unannounce,
    /// holepunch relay); answered like a query.
    Update = 2,
    /// The answer to a query or an update, matched by `rid`.
    Response = 3,
}

impl MessageType {
    /// Maps the wire value; `None` for anything but 1..=3.
    pub fn from_u64(v: u64) -> Option<Self> {
        match v {
            1 => Some(MessageType::Query),
            2 => Some(MessageType::Update),
            3 => Some(MessageType::Response),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_u64(self) -> u64 {
        self as u64
    }
}

/// One dht-rpc datagram (wire-dht.md §1.1).
///
/// Byte fields are kept raw so that decode/encode is the identity on what
/// the reference sends; use the accessors and record helpers to interpret
/// them. `None` means "field absent", `Some(empty)` "present, zero length";
/// the reference writes the latter (`2a 00`, `42 00`, `4a 00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Field 11. Senders set `Some(VERSION)`.
    pub version: Option<u64>,
    /// Field 1, required.
    pub kind: MessageType,
    /// Field 2, required; 16-bit in practice but any u64 decodes.
    pub rid: u64,
    /// Field 10: the receiver's address as the sender sees it (normally a
    /// 6-byte record; not length-checked here, see [`Message::to_addr`]).
    pub to: Option<Vec<u8>>,
    /// Field 3: the sender's id; absent for ephemeral senders.
    pub id: Option<[u8; ID_LEN]>,
    /// Field 4.
    pub target: Option<Vec<u8>>,
    /// Field 5: concatenated node records, see [`decode_nodes`].
    pub closer_nodes: Option<Vec<u8>>,
    /// Field 6.
    pub roundtrip_token: Option<Vec<u8>>,
    /// Field 7.
    pub command: Option<String>,
    /// Field 8: empty means no error (wire-dht.md gotcha 2).
    pub error: Option<String>,
    /// Field 9: command payload in the command's own encoding.
    pub value: Option<Vec<u8>>,
}

impl Message {
    /// A message with `version = 1` and nothing but the required fields.
    pub fn new(kind: MessageType, rid: u64) -> Self {
        Message {
            version: Some(VERSION),
            kind,
            rid,
            to: None,
            id: None,
            target: None,
            closer_nodes: None,
            roundtrip_token: None,
            command: None,
            error: None,
            value: None,
        }
    }

    /// Decodes one datagram.
    ///
    /// Rejects what the reference drops (missing `type`/`rid`, undecodable
    /// protobuf, an `id` that is not 32 bytes, a `type` no handler takes)
    /// and, more strictly than the reference, truncated fields, wrong wire
    /// types of known fields, over-long varints and inputs over
    /// [`MAX_MESSAGE_LEN`]. Unknown fields are skipped. For repeated fields
    /// the last occurrence wins, as in protobuf.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(buf)?;
        let mut version = None;
        let mut kind = None;
        let mut rid = None;
        let mut to = None;
        let mut id: Option<&[u8]> = None;
        let mut target = None;
        let mut closer_nodes = None;
        let mut roundtrip_token = None;
        let mut command = None;
        let mut error = None;
        let mut value = None;

        while !r.done() {
            let (field, wt) = r.tag()?;
            match field {
                11 => {
                    expect_wire_type(field, wt, WT_VARINT)?;
                    version = Some(r.varint()?);
                }
                1 => {
                    expect_wire_type(field, wt, WT_VARINT)?;
                    kind = Some(r.varint()?);
                }
                2 => {
                    expect_wire_type(field, wt, WT_VARINT)?;
                    rid = Some(r.varint()?);
                }
                3..=10 => {
                    expect_wire_type(field, wt, WT_LEN)?;
                    let b = r.bytes()?;
                    match field {
                        3 => id = Some(b),
                        4 => target = Some(b.to_vec()),
                        5 => closer_nodes = Some(b.to_vec()),
                        6 => roundtrip_token = Some(b.to_vec()),
                        7 => command = Some(lossy_string(b)),
                        8 => error = Some(lossy_string(b)),
                        9 => value = Some(b.to_vec()),
                        _ => to = Some(b.to_vec()),
                    }
                }
                _ => r.skip(wt)?,
            }
        }

        let kind = kind.ok_or(DecodeError::MissingField("type"))?;
        let kind = MessageType::from_u64(kind).ok_or(DecodeError::UnknownMessageType(kind))?;
        let rid = rid.ok_or(DecodeError::MissingField("rid"))?;
        let id = match id {
            None => None,
            Some(b) => {
                Some(<[u8; ID_LEN]>::try_from(b).map_err(|_| DecodeError::WrongIdLength(b.len()))?)
            }
        };

        Ok(Message {
            version,
            kind,
            rid,
            to,
            id,
            target,
            closer_nodes,
            roundtrip_token,
            command,
            error,
            value,
        })
    }

    /// Exact encoded size.
    pub fn encoded_len(&self) -> usize {
        let mut n = varint_field_len(self.kind.as_u64()) + varint_field_len(self.rid);
        if let Some(v) = self.version {
            n += varint_field_len(v);
        }
        if let Some(id) = &self.id {
            n += bytes_field_len(id);
        }
        for b in [
            &self.to,
            &self.target,
            &self.closer_nodes,
            &self.roundtrip_token,
            &self.value,
        ]
        .into_iter()
        .flatten()
        {
            n += bytes_field_len(b);
        }
        for s in [&self.command, &self.error].into_iter().flatten() {
            n += bytes_field_len(s.as_bytes());
        }
        n
    }

    /// Appends the encoding to `out`.
    ///
    /// Field order is the reference's generated-encoder order, not numeric:
    /// version(11), type(1), rid(2), to(10), id(3), target(4),
    /// closerNodes(5), roundtripToken(6), command(7), error(8), value(9)
    /// (wire-dht.md §1.1 and gotcha 1). Every `Some` is written, even when
    /// empty. Nothing here enforces [`MAX_MESSAGE_LEN`]; that is the
    /// caller's business.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        if let Some(v) = self.version {
            put_varint_field(out, 11, v);
        }
        put_varint_field(out, 1, self.kind.as_u64());
        put_varint_field(out, 2, self.rid);
        if let Some(b) = &self.to {
            put_bytes_field(out, 10, b);
        }
        if let Some(b) = &self.id {
            put_bytes_field(out, 3, b);
        }
        if let Some(b) = &self.target {
            put_bytes_field(out, 4, b);
        }
        if let Some(b) = &self.closer_nodes {
            put_bytes_field(out, 5, b);
        }
        if let Some(b) = &self.roundtrip_token {
            put_bytes_field(out, 6, b);
        }
        if let Some(s) = &self.command {
            put_bytes_field(out, 7, s.as_bytes());
        }
        if let Some(s) = &self.error {
            put_bytes_field(out, 8, s.as_bytes());
        }
        if let Some(b) = &self.value {
            put_bytes_field(out, 9, b);
        }
    }

    /// The encoding as a fresh buffer. See [`Message::encode_into`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// The sender's id as receivers honour it: only when `version >= 1`
    /// (wire-dht.md §1.3 step 4); otherwise the sender counts as ephemeral.
    pub fn sender_id(&self) -> Option<&[u8; ID_LEN]> {
        match self.version {
            Some(v) if v >= VERSION => self.id.as_ref(),
            _ => None,
        }
    }

    /// The command name, `""` when absent (the reference's decoded default).
    pub fn command_str(&self) -> &str {
        self.command.as_deref().unwrap_or("")
    }

    /// The error text if there is one; an empty `error` is no error
    /// (wire-dht.md §1.1 decoder facts).
    pub fn error_text(&self) -> Option<&str> {
        self.error.as_deref().filter(|e| !e.is_empty())
    }

    /// `to` as an address, when it is exactly one valid record (the same
    /// check the reference applies before using it, wire-dht.md §7).
    pub fn to_addr(&self) -> Option<SocketAddrV4> {
        self.to.as_deref().and_then(|b| decode_peer(b).ok())
    }

    /// The message a `_holepunch` relay forwards (wire-dht.md §6.1 step 3).
    ///
    /// `self` is the punch request as received from the asker, `from` its
    /// datagram source, `to` the address from its `Holepunch.to`, `relay_id`
    /// the relay's own id (`None` when the relay is ephemeral). Byte for
    /// byte what the reference relays for an honest request: type and rid
    /// carry over, `version` becomes 1, and `command`/`error` are written
    /// even when empty because the reference's decoder filled them with
    /// `""` (hence the `42 00` in captured relays). `target` carries over
    /// as the reference carries it, when it is at most
    /// [`MAX_RELAYED_TARGET`] bytes: that is where our peers put their
    /// capability record (`dht::capability`), and a JS target never gets
    /// here (dht-rpc sends `_holepunch` without one). Unlike the reference,
    /// which re-encodes everything it decoded, nothing else the asker put
    /// in (a longer target, closer nodes, token, another command's text) is
    /// carried: a relay forwards no more attacker-chosen bytes than that.
    pub fn relay_holepunch(
        &self,
        relay_id: Option<[u8; ID_LEN]>,
        from: SocketAddrV4,
        to: SocketAddrV4,
    ) -> Message {
        let mut m = Message::new(self.kind, self.rid);
        m.id = relay_id;
        m.to = Some(encode_peer(to).to_vec());
        m.target = self.target.clone().filter(|t| t.len() <= MAX_RELAYED_TARGET);
        m.command = Some(CMD_HOLEPUNCH.to_string());
        m.error = Some(String::new());
        m.value = Some(
            Holepunch {
                from: Some(encode_peer(from).to_vec()),
                to: None,
            }
            .encode(),
        );
        m
    }
}

// ---------------------------------------------------------------------------
// Values carried in Message.value

/// `_holepunch` value (dht-rpc `Holepunch`, wire-dht.md §1.2). Field 1 is
/// unused; fields are written from, then to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holepunch {
    /// Field 2: the asker's address, set by the relay.
    pub from: Option<Vec<u8>>,
    /// Field 3: the address to punch, set by the asker.
    pub to: Option<Vec<u8>>,
}

impl Holepunch {
    /// Decodes a `Holepunch`; unknown fields are skipped.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf)?;
        let mut out = Holepunch::default();
        while !r.done() {
            let (field, wt) = r.tag()?;
            match field {
                2 | 3 => {
                    expect_wire_type(field, wt, WT_LEN)?;
                    let b = Some(r.bytes()?.to_vec());
                    if field == 2 {
                        out.from = b;
                    } else {
                        out.to = b;
                    }
                }
                _ => r.skip(wt)?,
            }
        }
        Ok(out)
    }

    /// Encodes in the reference's order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(b) = &self.from {
            put_bytes_field(&mut out, 2, b);
        }
        if let Some(b) = &self.to {
            put_bytes_field(&mut out, 3, b);
        }
        out
    }
}

/// `peers` request value (@hyperswarm/dht `PeersInput`, wire-dht.md §10.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeersInput {
    /// Field 1 (`uint32` in the schema). Kept as u64 because the reference
    /// does not truncate: an out-of-range port must reach the handler so it
    /// can answer `Invalid port`. 0 or absent means "my UDP source port";
    /// the reference writes an explicit 0 as `08 00`.
    pub port: Option<u64>,
    /// Field 2: 6-byte address record of the sender's LAN address.
    pub local_address: Option<Vec<u8>>,
    /// Field 3: true removes the record.
    pub unannounce: Option<bool>,
}

impl PeersInput {
    /// Decodes a `PeersInput`; unknown fields are skipped.
    ///
    /// `unannounce` is read as a proper varint (any non-zero is true); the
    /// reference reads a single byte, which only differs for non-canonical
    /// encodings nobody sends.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf)?;
        let mut out = PeersInput::default();
        while !r.done() {
            let (field, wt) = r.tag()?;
            match field {
                1 => {
                    expect_wire_type(field, wt, WT_VARINT)?;
                    out.port = Some(r.varint()?);
                }
                2 => {
                    expect_wire_type(field, wt, WT_LEN)?;
                    out.local_address = Some(r.bytes()?.to_vec());
                }
                3 => {
                    expect_wire_type(field, wt, WT_VARINT)?;
                    out.unannounce = Some(r.varint()? != 0);
                }
                _ => r.skip(wt)?,
            }
        }
        Ok(out)
    }

    /// Encodes in field-number order, as the reference does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(p) = self.port {
            put_varint_field(&mut out, 1, p);
        }
        if let Some(b) = &self.local_address {
            put_bytes_field(&mut out, 2, b);
        }
        if let Some(u) = self.unannounce {
            put_varint_field(&mut out, 3, u64::from(u));
        }
        out
    }
}

/// `peers` response value (@hyperswarm/dht `PeersOutput`, wire-dht.md §10.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeersOutput {
    /// Field 1: concatenated 6-byte records, see [`decode_peers`].
    pub peers: Option<Vec<u8>>,
    /// Field 2: concatenated 4-byte LAN records, see [`decode_lan_peers`].
    pub local_peers: Option<Vec<u8>>,
}

impl PeersOutput {
    /// Decodes a `PeersOutput`; unknown fields are skipped.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf)?;
        let mut out = PeersOutput::default();
        while !r.done() {
            let (field, wt) = r.tag()?;
            match field {
                1 | 2 => {
                    expect_wire_type(field, wt, WT_LEN)?;
                    let b = Some(r.bytes()?.to_vec());
                    if field == 1 {
                        out.peers = b;
                    } else {
                        out.local_peers = b;
                    }
                }
                _ => r.skip(wt)?,
            }
        }
        Ok(out)
    }

    /// Encodes in field-number order. The reference omits empty lists
    /// (`None` here); with both omitted the result is empty, and the
    /// reference still sends it as a zero-length `value` (`4a 00`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(b) = &self.peers {
            put_bytes_field(&mut out, 1, b);
        }
        if let Some(b) = &self.local_peers {
            put_bytes_field(&mut out, 2, b);
        }
        out
    }
}

/// `mutable-store` value, request and response alike (@hyperswarm/dht
/// `Mutable`, wire-dht.md §10.5). A lookup sends only `seq` (and `salt`);
/// a put and a reply carry the whole record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutable {
    /// Field 1.
    pub value: Option<Vec<u8>>,
    /// Field 2: ed25519 detached signature.
    pub signature: Option<Vec<u8>>,
    /// Field 3.
    pub seq: Option<u64>,
    /// Field 4.
    pub salt: Option<Vec<u8>>,
}

impl Mutable {
    /// Decodes a `Mutable`; unknown fields are skipped.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf)?;
        let mut out = Mutable::default();
        while !r.done() {
            let (field, wt) = r.tag()?;
            match field {
                3 => {
                    expect_wire_type(field, wt, WT_VARINT)?;
                    out.seq = Some(r.varint()?);
                }
                1 | 2 | 4 => {
                    expect_wire_type(field, wt, WT_LEN)?;
                    let b = Some(r.bytes()?.to_vec());
                    match field {
                        1 => out.value = b,
                        2 => out.signature = b,
                        _ => out.salt = b,
                    }
                }
                _ => r.skip(wt)?,
            }
        }
        Ok(out)
    }

    /// Encodes in field-number order, as the reference does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(b) = &self.value {
            put_bytes_field(&mut out, 1, b);
        }
        if let Some(b) = &self.signature {
            put_bytes_field(&mut out, 2, b);
        }
        if let Some(s) = self.seq {
            put_varint_field(&mut out, 3, s);
        }
        if let Some(b) = &self.salt {
            put_bytes_field(&mut out, 4, b);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Address records

/// One 6-byte address record (wire-dht.md §4.1).
pub fn encode_peer(addr: SocketAddrV4) -> [u8; PEER_RECORD_LEN] {
    let o = addr.ip().octets();
    let p = addr.port().to_be_bytes();
    [o[0], o[1], o[2], o[3], p[0], p[1]]
}

fn read_peer(b: &[u8]) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        u16::from_be_bytes([b[4], b[5]]),
    )
}

/// Exactly one 6-byte address record with a non-zero port: what `to`,
/// `Holepunch.from/to` and a `_ping` reply's value must be.
///
/// (The reference's `decodePeer` takes the first record of a longer buffer;
/// nothing it sends is longer, so we insist on exactly one.)
pub fn decode_peer(buf: &[u8]) -> Result<SocketAddrV4, DecodeError> {
    if buf.len() != PEER_RECORD_LEN {
        return Err(DecodeError::BadRecordLength {
            len: buf.len(),
            record: PEER_RECORD_LEN,
        });
    }
    let addr = read_peer(buf);
    if addr.port() == 0 {
        return Err(DecodeError::ZeroPort);
    }
    Ok(addr)
}

/// Concatenated address records, e.g. `PeersOutput.peers`.
pub fn encode_peers(addrs: &[SocketAddrV4]) -> Vec<u8> {
    addrs.iter().flat_map(|a| encode_peer(*a)).collect()
}

/// `PeersOutput.peers` as @hyperswarm/dht reads it (wire-dht.md §10.4): the
/// length must be a multiple of 6, and one record with port 0 or host
/// 0.0.0.0 rejects the whole list.
pub fn decode_peers(buf: &[u8]) -> Result<Vec<SocketAddrV4>, DecodeError> {
    if buf.len() % PEER_RECORD_LEN != 0 {
        return Err(DecodeError::BadRecordLength {
            len: buf.len(),
            record: PEER_RECORD_LEN,
        });
    }
    buf.chunks_exact(PEER_RECORD_LEN)
        .map(|c| {
            let a = read_peer(c);
            if a.port() == 0 {
                Err(DecodeError::ZeroPort)
            } else if a.ip().is_unspecified() {
                Err(DecodeError::UnspecifiedHost)
            } else {
                Ok(a)
            }
        })
        .collect()
}

/// One entry of `closerNodes` (wire-dht.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// The node's 32-byte DHT id.
    pub id: [u8; ID_LEN],
    /// Where it listens (UDP).
    pub addr: SocketAddrV4,
}

/// Concatenated 38-byte node records for `closerNodes`.
pub fn encode_nodes(nodes: &[NodeRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * NODE_RECORD_LEN);
    for n in nodes {
        out.extend_from_slice(&n.id);
        out.extend_from_slice(&encode_peer(n.addr));
    }
    out
}

/// `closerNodes` as the reference reads it (wire-dht.md §4.2): a trailing
/// partial record is ignored, a record with port 0 rejects the whole list
/// (the reference then proceeds as if the list were empty).
pub fn decode_nodes(buf: &[u8]) -> Result<Vec<NodeRecord>, DecodeError> {
    buf.chunks_exact(NODE_RECORD_LEN)
        .map(|c| {
            let (id, addr) = c.split_at(ID_LEN);
            let addr = read_peer(addr);
            if addr.port() == 0 {
                return Err(DecodeError::ZeroPort);
            }
            let mut idb = [0u8; ID_LEN];
            idb.copy_from_slice(id);
            Ok(NodeRecord { id: idb, addr })
        })
        .collect()
}

/// The 4-byte LAN record stored for a `localAddress` (wire-dht.md §4.3):
/// its last two octets and its port.
pub fn encode_lan_record(addr: SocketAddrV4) -> [u8; LAN_RECORD_LEN] {
    let r = encode_peer(addr);
    [r[2], r[3], r[4], r[5]]
}

/// `PeersOutput.localPeers` rebuilt the way the reference does
/// (wire-dht.md §10.4): each record's `c.d:port` behind the first two octets
/// of the asker's own `localAddress` (`prefix`). The length must be a
/// multiple of 4 and a port 0 rejects the whole list.
pub fn decode_lan_peers(prefix: [u8; 2], buf: &[u8]) -> Result<Vec<SocketAddrV4>, DecodeError> {
    if buf.len() % LAN_RECORD_LEN != 0 {
        return Err(DecodeError::BadRecordLength {
            len: buf.len(),
            record: LAN_RECORD_LEN,
        });
    }
    buf.chunks_exact(LAN_RECORD_LEN)
        .map(|c| {
            let port = u16::from_be_bytes([c[2], c[3]]);
            if port == 0 {
                return Err(DecodeError::ZeroPort);
            }
            Ok(SocketAddrV4::new(
                Ipv4Addr::new(prefix[0], prefix[1], c[0], c[1]),
                port,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn varint_boundaries() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            36240,
            65535,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut r = Reader { buf: &b, pos: 0 };
            assert_eq!(r.varint().unwrap(), v);
        }
        // rid 36240 from the spec's §1.1 example.
        let mut b = Vec::new();
        put_varint(&mut b, 36240);
        assert_eq!(b, [0x90, 0x9b, 0x02]);
        // 10th byte carrying more than one bit overflows u64.
        let mut r = Reader {
            buf: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            pos: 0,
        };
        assert_eq!(r.varint(), Err(DecodeError::BadVarint));
        let mut r = Reader {
            buf: &[0x80, 0x80],
            pos: 0,
        };
        assert_eq!(r.varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn spec_find_node_query() {
        // wire-dht.md §12.1
        let hex = "58 01 08 01 10 90 9b 02 52 06 7f 00 00 01 c2 49 22 20 \
                   aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
                   3a 0a 5f 66 69 6e 64 5f 6e 6f 64 65";
        let b = unhex(hex);
        let m = Message::decode(&b).unwrap();
        assert_eq!(m.kind, MessageType::Query);
        assert_eq!(m.rid, 36240);
        assert_eq!(m.to_addr(), Some("127.0.0.1:49737".parse().unwrap()));
        assert_eq!(m.id, None);
        assert_eq!(m.target.as_deref(), Some(&[0xaa; 32][..]));
        assert_eq!(m.command_str(), CMD_FIND_NODE);
        assert_eq!(m.encode(), b);
        assert_eq!(m.encoded_len(), b.len());
    }

    #[test]
    fn spec_relay_holepunch() {
        // wire-dht.md §12.6, messages 2 and 3.
        let asked = unhex("58 01 08 01 10 fe b2 02 52 06 7f 00 00 01 27 11 3a 0a 5f 68 6f 6c 65 70 75 6e 63 68 4a 08 1a 06 7f 00 00 01 27 12");
        let m = Message::decode(&asked).unwrap();
        let hp = Holepunch::decode(m.value.as_deref().unwrap()).unwrap();
        let to = decode_peer(hp.to.as_deref().unwrap()).unwrap();
        let relayed = m.relay_holepunch(Some([0x5a; 32]), "127.0.0.1:10003".parse().unwrap(), to);
        let mut want = unhex("58 01 08 01 10 fe b2 02 52 06 7f 00 00 01 27 12 1a 20");
        want.extend_from_slice(&[0x5a; 32]);
        want.extend_from_slice(&unhex(
            "3a 0a 5f 68 6f 6c 65 70 75 6e 63 68 42 00 4a 08 12 06 7f 00 00 01 27 13",
        ));
        assert_eq!(relayed.encode(), want);
        assert_eq!(relayed.error_text(), None);
    }

    #[test]
    fn relay_carries_a_short_target_as_the_reference_does() {
        // dht-rpc 4.9.6 `_onholepunch` re-encodes the whole message, so
        // `target` reaches the punched peer; ours carries it up to 32 bytes.
        let mut m = Message::new(MessageType::Query, 39294);
        m.command = Some(CMD_HOLEPUNCH.into());
        m.value = Some(Holepunch { from: None, to: Some(encode_peer("127.0.0.1:10002".parse().unwrap()).to_vec()) }.encode());
        m.target = Some(b"HSN\x01\x02\x01\x7f\x00\x00\x01\x27\x11".to_vec());
        let from = "127.0.0.1:10003".parse().unwrap();
        let relayed = m.relay_holepunch(None, from, "127.0.0.1:10002".parse().unwrap());
        assert_eq!(relayed.target, m.target);
        let mut want = unhex("58 01 08 01 10 fe b2 02 52 06 7f 00 00 01 27 12 22 0c");
        want.extend_from_slice(m.target.as_deref().unwrap());
        want.extend_from_slice(&unhex("3a 0a 5f 68 6f 6c 65 70 75 6e 63 68 42 00 4a 08 12 06 7f 00 00 01 27 13"));
        assert_eq!(relayed.encode(), want);
        m.target = Some(vec![0; MAX_RELAYED_TARGET]);
        assert_eq!(m.relay_holepunch(None, from, from).target.map(|t| t.len()), Some(MAX_RELAYED_TARGET));
        m.target = Some(vec![0; MAX_RELAYED_TARGET + 1]);
        assert_eq!(m.relay_holepunch(None, from, from).target, None, "longer: not carried");
    }

    #[test]
    fn peers_input_spec_value() {
        // wire-dht.md §12.3: port 12345 + localAddress 192.168.1.20:12345.
        let b = unhex("08 b9 60 12 06 c0 a8 01 14 30 39");
        let v = PeersInput::decode(&b).unwrap();
        assert_eq!(v.port, Some(12345));
        assert_eq!(
            decode_peer(v.local_address.as_deref().unwrap()).unwrap(),
            "192.168.1.20:12345".parse().unwrap()
        );
        assert_eq!(v.unannounce, None);
        assert_eq!(v.encode(), b);
    }

    #[test]
    fn lan_records() {
        let a: SocketAddrV4 = "192.168.1.20:12345".parse().unwrap();
        let rec = encode_lan_record(a);
        assert_eq!(rec, [0x01, 0x14, 0x30, 0x39]);
        assert_eq!(decode_lan_peers([192, 168], &rec).unwrap(), vec![a]);
        assert_eq!(
            decode_lan_peers([192, 168], &rec[..3]),
            Err(DecodeError::BadRecordLength { len: 3, record: 4 })
        );
        assert_eq!(
            decode_lan_peers([192, 168], &[1, 2, 0, 0]),
            Err(DecodeError::ZeroPort)
        );
    }

    #[test]
    fn node_records() {
        let n = NodeRecord {
            id: [7; 32],
            addr: "127.0.0.1:10001".parse().unwrap(),
        };
        let mut b = encode_nodes(&[n, n]);
        assert_eq!(b.len(), 2 * NODE_RECORD_LEN);
        b.extend_from_slice(&[1, 2, 3]); // trailing partial record: ignored
        assert_eq!(decode_nodes(&b).unwrap(), vec![n, n]);
        let zero = NodeRecord {
            id: [7; 32],
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        assert_eq!(
            decode_nodes(&encode_nodes(&[n, zero])),
            Err(DecodeError::ZeroPort)
        );
    }

    #[test]
    fn peer_lists() {
        let a: SocketAddrV4 = "127.0.0.1:12345".parse().unwrap();
        assert_eq!(decode_peers(&encode_peers(&[a, a])).unwrap(), vec![a, a]);
        assert!(decode_peers(&[0; 5]).is_err());
        assert_eq!(
            decode_peers(&encode_peer("0.0.0.0:1".parse().unwrap())),
            Err(DecodeError::UnspecifiedHost)
        );
        assert_eq!(
            decode_peer(&encode_peer("1.2.3.4:0".parse().unwrap())),
            Err(DecodeError::ZeroPort)
        );
        assert!(decode_peer(&[1, 2, 3, 4, 5, 6, 7]).is_err());
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            DecodeError::WrongIdLength(31).to_string(),
            "node id is 31 bytes, expected 32"
        );
        assert!(DecodeError::Oversized {
            len: 5000,
            max: MAX_MESSAGE_LEN
        }
        .to_string()
        .contains("4096"));
    }

    #[test]
    fn mutable_keeps_seq_zero_and_absent_versus_empty_salt() {
        // A get with the default seq is exactly `18 00` (notes dht4-stores §1.3).
        let ask = Mutable { seq: Some(0), ..Default::default() };
        assert_eq!(ask.encode(), [0x18, 0x00]);
        assert_eq!(Mutable::decode(&[0x18, 0x00]).unwrap(), ask);
        // Field order value, signature, seq, salt; an empty salt is written.
        let rec = Mutable { value: Some(b"v".to_vec()), signature: Some(vec![7; 2]), seq: Some(1), salt: Some(Vec::new()) };
        let bytes = unhex("0a 01 76 12 02 07 07 18 01 22 00");
        assert_eq!(rec.encode(), bytes);
        assert_eq!(Mutable::decode(&bytes).unwrap(), rec);
        let unsalted = Mutable { salt: None, ..rec };
        assert_eq!(unsalted.encode(), bytes[..bytes.len() - 2]);
        assert_eq!(Mutable::decode(&bytes[..bytes.len() - 2]).unwrap().salt, None);
    }
}
