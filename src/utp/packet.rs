//! The uTP packet: the 20-byte BEP 29 header, the extension chain and the
//! payload (spec/wire-utp.md §1), and the demultiplexing test that decides
//! whether a datagram on the shared socket is uTP at all (§5).

use std::fmt;

/// Length of the fixed header (spec §1).
pub const HEADER_LEN: usize = 20;
/// The only protocol version (spec §1).
pub const VERSION: u8 = 1;
/// Extension type: selective ACK (spec §1).
pub const EXT_SACK: u8 = 1;
/// Extension type: libutp's "extension bits", 8 bytes (spec §1).
pub const EXT_BITS: u8 = 2;
/// Length libutp insists on for extension 2; another length drops the packet.
pub const EXT_BITS_LEN: usize = 8;

/// Packet types (BEP 29, spec §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Data = 0,
    Fin = 1,
    /// Ack only; does not consume a sequence number.
    State = 2,
    Reset = 3,
    Syn = 4,
}

impl PacketType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// The fixed header, host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ptype: PacketType,
    pub conn_id: u16,
    /// Sender's clock, low 32 bits of microseconds.
    pub timestamp: u32,
    /// Receive time minus the peer's timestamp for the last packet received.
    pub timestamp_diff: u32,
    /// Advertised receive window in bytes.
    pub wnd_size: u32,
    pub seq_nr: u16,
    pub ack_nr: u16,
}

/// A decoded packet borrowing the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    /// Selective-ACK bitmask (extension 1), if present: bit `i` (LSB first
    /// in each byte, bytes in order) set means `ack_nr + 2 + i` arrived.
    pub sack: Option<&'a [u8]>,
    /// libutp's extension bits (extension 2), if present.
    pub ext_bits: Option<[u8; EXT_BITS_LEN]>,
    pub payload: &'a [u8],
}

/// Why a claimed datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fails the demultiplexing test of spec §5 (not uTP at all).
    NotUtp,
    /// An extension header or body runs past the end of the datagram.
    Truncated,
    /// Extension 2 with a length other than 8 (libutp drops these).
    BadExtensionBits,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::NotUtp => "not a uTP packet",
            DecodeError::Truncated => "extension overruns the datagram",
            DecodeError::BadExtensionBits => "extension 2 with a length other than 8",
        })
    }
}

impl std::error::Error for DecodeError {}

/// The demultiplexing rule of spec §5: a datagram on the shared socket is
/// uTP iff it is at least 20 bytes long, its version nibble is 1, its type
/// nibble is at most 4 and its first extension type is at most 2. Anything
/// else (dht-rpc messages start with 0x58 or 0x08) belongs to the DHT.
pub fn looks_like_utp(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[0] & 0x0f == VERSION && bytes[0] >> 4 <= 4 && bytes[1] <= 2
}

/// Decodes a datagram. Fails on anything `looks_like_utp` rejects and on the
/// extension errors libutp drops packets for (spec §1).
pub fn decode(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
    if !looks_like_utp(bytes) {
        return Err(DecodeError::NotUtp);
    }
    let ptype = PacketType::from_u8(bytes[0] >> 4).ok_or(DecodeError::NotUtp)?;
    let be16 = |o: usize| u16::from_be_bytes([bytes[o], bytes[o + 1]]);
    let be32 = |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let header = Header {
        ptype,
        conn_id: be16(2),
        timestamp: be32(4),
        timestamp_diff: be32(8),
        wnd_size: be32(12),
        seq_nr: be16(16),
        ack_nr: be16(18),
    };
    let mut sack = None;
    let mut ext_bits = None;
    let mut ext = bytes[1];
    let mut pos = HEADER_LEN;
    // Each step consumes at least two bytes, so the loop ends.
    while ext != 0 {
        if pos + 2 > bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let next = bytes[pos];
        let len = bytes[pos + 1] as usize;
        pos += 2;
        if pos + len > bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let body = &bytes[pos..pos + len];
        match ext {
            EXT_SACK => sack = Some(body),
            EXT_BITS => {
                if len != EXT_BITS_LEN {
                    return Err(DecodeError::BadExtensionBits);
                }
                let mut b = [0u8; EXT_BITS_LEN];
                b.copy_from_slice(body);
                ext_bits = Some(b);
            }
            // Unknown extensions after the first are skipped by length.
            _ => {}
        }
        pos += len;
        ext = next;
    }
    Ok(Packet { header, sack, ext_bits, payload: &bytes[pos..] })
}

/// Encodes a packet into `out` (cleared first). `sack`, when given, is sent
/// as extension 1; its length must fit in a byte.
pub fn encode_into(header: &Header, sack: Option<&[u8]>, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let ext_len = sack.map_or(0, |s| 2 + s.len());
    out.reserve(HEADER_LEN + ext_len + payload.len());
    out.push(((header.ptype as u8) << 4) | VERSION);
    out.push(if sack.is_some() { EXT_SACK } else { 0 });
    out.extend_from_slice(&header.conn_id.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.timestamp_diff.to_be_bytes());
    out.extend_from_slice(&header.wnd_size.to_be_bytes());
    out.extend_from_slice(&header.seq_nr.to_be_bytes());
    out.extend_from_slice(&header.ack_nr.to_be_bytes());
    if let Some(s) = sack {
        debug_assert!(s.len() <= 255);
        out.push(0);
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }
    out.extend_from_slice(payload);
}

/// Encodes a packet into a fresh buffer.
pub fn encode(header: &Header, sack: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(header, sack, payload, &mut out);
    out
}

/// `a < b` in 16-bit sequence space (half the space ahead counts as later).
#[inline]
pub fn seq_lt(a: u16, b: u16) -> bool {
    (b.wrapping_sub(a) as i16) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    // Captured packets from spec §10.
    const SYN: &str = "41 00 45 67 b2 45 d4 0c 00 00 00 00 00 10 00 00 23 c6 00 00";
    const SYN_ACK: &str = "21 00 45 67 b2 45 e0 b0 00 00 00 00 00 10 00 00 98 69 23 c6";
    const DATA_C: &str = "01 00 45 68 b2 45 e4 75 00 00 01 c9 00 10 00 00 23 c7 98 68 68 65 6c 6c 6f";
    const DATA_S: &str = "01 00 45 67 b2 45 e6 01 00 00 00 74 00 10 00 00 98 69 23 c6 77 6f 72 6c 64";
    const STATE: &str = "21 00 45 67 b2 45 e7 29 00 00 00 74 00 10 00 00 98 6b 23 c7";
    const FIN_S: &str = "11 00 45 67 b2 45 e8 7a 00 00 00 50 00 10 00 00 98 6a 23 c7";
    const FIN_C: &str = "11 00 45 68 b2 45 e9 f7 00 00 00 42 00 10 00 00 23 c8 98 6a";
    const SACK: &str = "21 01 03 e8 be e5 46 0e be e3 63 c3 00 10 00 00 45 67 00 64 00 04 01 00 00 00";
    const RESET: &str = "31 00 15 b3 00 00 00 00 00 00 00 00 00 00 00 00 23 c6 00 07";

    fn roundtrip(s: &str) -> Header {
        let bytes = hex(s);
        assert!(looks_like_utp(&bytes));
        let p = decode(&bytes).unwrap();
        assert_eq!(encode(&p.header, p.sack, p.payload), bytes, "re-encoding {s}");
        p.header
    }

    #[test]
    fn golden_handshake_and_close() {
        let h = roundtrip(SYN);
        assert_eq!(
            h,
            Header {
                ptype: PacketType::Syn,
                conn_id: 17767,
                timestamp: 0xb245d40c,
                timestamp_diff: 0,
                wnd_size: 1_048_576,
                seq_nr: 9158,
                ack_nr: 0
            }
        );
        let h = roundtrip(SYN_ACK);
        assert_eq!((h.ptype, h.conn_id, h.timestamp_diff, h.seq_nr, h.ack_nr), (PacketType::State, 17767, 0, 39017, 9158));
        let bytes = hex(DATA_C);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.header.ptype, PacketType::Data);
        assert_eq!(p.header.conn_id, 17768);
        assert_eq!(p.header.timestamp_diff, 457);
        assert_eq!((p.header.seq_nr, p.header.ack_nr), (9159, 39016));
        assert_eq!(p.payload, b"hello");
        roundtrip(DATA_C);
        let bytes = hex(DATA_S);
        let p = decode(&bytes).unwrap();
        assert_eq!((p.header.seq_nr, p.header.ack_nr, p.payload), (39017, 9158, &b"world"[..]));
        roundtrip(DATA_S);
        let h = roundtrip(STATE);
        assert_eq!((h.ptype, h.seq_nr, h.ack_nr), (PacketType::State, 39019, 9159));
        let h = roundtrip(FIN_S);
        assert_eq!((h.ptype, h.seq_nr, h.ack_nr), (PacketType::Fin, 39018, 9159));
        let h = roundtrip(FIN_C);
        assert_eq!((h.ptype, h.conn_id, h.seq_nr, h.ack_nr), (PacketType::Fin, 17768, 9160, 39018));
    }

    #[test]
    fn golden_sack_and_reset() {
        let bytes = hex(SACK);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.header.ptype, PacketType::State);
        assert_eq!(p.header.conn_id, 1000);
        assert_eq!((p.header.seq_nr, p.header.ack_nr), (17767, 100));
        assert_eq!(p.sack, Some(&[1u8, 0, 0, 0][..]));
        assert!(p.payload.is_empty());
        roundtrip(SACK);
        let h = roundtrip(RESET);
        assert_eq!(
            h,
            Header {
                ptype: PacketType::Reset,
                conn_id: 5555,
                timestamp: 0,
                timestamp_diff: 0,
                wnd_size: 0,
                seq_nr: 9158,
                ack_nr: 7
            }
        );
    }

    #[test]
    fn demux_rule() {
        let syn = hex(SYN);
        assert!(looks_like_utp(&syn));
        assert!(!looks_like_utp(&syn[..19]), "too short");
        assert!(!looks_like_utp(b"hello, world"));
        let mut v = syn.clone();
        v[0] = 0x42; // version 2
        assert!(!looks_like_utp(&v));
        v[0] = 0x51; // type 5
        assert!(!looks_like_utp(&v));
        v[0] = 0x41;
        v[1] = 3; // first extension 3: the spec's "not uTP" case
        assert!(!looks_like_utp(&v));
        v[1] = 2;
        assert!(looks_like_utp(&v));
        // dht-rpc messages
        let mut d = vec![0x58u8; 40];
        assert!(!looks_like_utp(&d));
        d[0] = 0x08;
        assert!(!looks_like_utp(&d));
    }

    #[test]
    fn extensions() {
        let mut base = hex(SYN_ACK);
        // Extension 2 with the right length, then SACK, then unknown 7, then payload.
        base[1] = 2;
        base.extend_from_slice(&[1, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        base.extend_from_slice(&[7, 4, 0xff, 0, 0, 0]);
        base.extend_from_slice(&[0, 2, 9, 9]);
        base.extend_from_slice(b"xy");
        let p = decode(&base).unwrap();
        assert_eq!(p.ext_bits, Some([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(p.sack, Some(&[0xff, 0, 0, 0][..]));
        assert_eq!(p.payload, b"xy");

        // Extension 2 with a wrong length: dropped.
        let mut bad = hex(SYN_ACK);
        bad[1] = 2;
        bad.extend_from_slice(&[0, 4, 1, 2, 3, 4]);
        assert_eq!(decode(&bad), Err(DecodeError::BadExtensionBits));

        // Overrun.
        let mut over = hex(SYN_ACK);
        over[1] = 1;
        over.extend_from_slice(&[0, 8, 1, 2]);
        assert_eq!(decode(&over), Err(DecodeError::Truncated));
        let mut over = hex(SYN_ACK);
        over[1] = 1;
        over.push(0);
        assert_eq!(decode(&over), Err(DecodeError::Truncated));
    }

    #[test]
    fn seq_compare_wraps() {
        assert!(seq_lt(1, 2));
        assert!(seq_lt(65535, 0));
        assert!(!seq_lt(0, 65535));
        assert!(!seq_lt(5, 5));
    }

    #[test]
    fn decode_never_panics_on_prefixes() {
        let mut v = hex(SACK);
        v.extend_from_slice(b"payload");
        for n in 0..=v.len() {
            let _ = decode(&v[..n]);
        }
        for b in 0..=255u8 {
            let mut w = v.clone();
            w[21] = b;
            let _ = decode(&w);
        }
    }
}
