//! The multicast DNS records of `@hyperswarm/discovery` (spec/wire-mdns.md).
//!
//! The reference speaks a narrow, non-DNS-SD dialect: a bare SRV question for
//! `<40 hex>.<domain>`, answered with an SRV record whose target is the name
//! `0.0.0.0`, a TXT record `id=<32 bytes>` and an `A` record naming the
//! querier. `simple-dns` parses and writes the packets; this module only knows
//! which records the reference sends and what they mean.

use std::fmt;
use std::net::Ipv4Addr;

use simple_dns::rdata::{RData, A, SRV, TXT};
use simple_dns::{CharacterString, Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QCLASS, QTYPE, TYPE};

/// IPv4 mDNS group (RFC 6762 §3), the only address the reference sends to.
pub const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// mDNS port (RFC 6762 §3); the reference binds and sends from it.
pub const MDNS_PORT: u16 = 5353;
/// Default `domain` option of `@hyperswarm/discovery` (wire-mdns.md §2).
pub const DEFAULT_DOMAIN: &str = "hyperswarm.local";
/// Topic bytes that make up the mDNS label (wire-mdns.md §2: the first 20).
pub const NAME_TOPIC_BYTES: usize = 20;
/// `id=` plus 32 random bytes: the TXT string that marks one topic instance
/// (wire-mdns.md §4.1).
pub const INSTANCE_ID_LEN: usize = 35;
/// Largest datagram we parse. RFC 6762 §17 caps mDNS messages at 9000 bytes;
/// anything bigger is not a packet we need and is dropped unread.
pub const MAX_PACKET: usize = 9000;
/// Multicast TTL of every packet (wire-mdns.md §1).
pub const MULTICAST_TTL: u32 = 255;

/// The 35-byte TXT value that identifies one announcing topic instance.
pub type InstanceId = [u8; INSTANCE_ID_LEN];

/// The mDNS name of a topic: lowercase hex of its first 20 bytes, then the domain.
pub fn topic_name(topic: &[u8; 32], domain: &str) -> String {
    let mut s = String::with_capacity(NAME_TOPIC_BYTES * 2 + 1 + domain.len());
    for b in &topic[..NAME_TOPIC_BYTES] {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('.');
    s.push_str(domain);
    s
}

/// Makes an instance id from 32 random bytes.
pub fn instance_id(random: [u8; 32]) -> InstanceId {
    let mut id = [0u8; INSTANCE_ID_LEN];
    id[..3].copy_from_slice(b"id=");
    id[3..].copy_from_slice(&random);
    id
}

/// One announcing topic instance, as written into a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    pub name: &'a str,
    pub port: u16,
    pub id: &'a InstanceId,
}

/// An SRV answer found in a received response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvAnswer {
    pub name: String,
    pub port: u16,
    /// `None` when the target is `0.0.0.0`, which means "the packet's source".
    pub target: Option<String>,
    /// First string of the first TXT answer with the same name.
    pub id: Option<Vec<u8>>,
}

/// A received packet, reduced to what discovery acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// SRV questions, with the TXT ids the querier listed as known answers.
    Query { names: Vec<String>, known_ids: Vec<(String, Vec<u8>)> },
    Response { answers: Vec<SrvAnswer> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdnsError {
    TooLarge(usize),
    Malformed(String),
    Encode(String),
}

impl fmt::Display for MdnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MdnsError::TooLarge(n) => write!(f, "mDNS packet of {n} bytes is over {MAX_PACKET}"),
            MdnsError::Malformed(e) => write!(f, "malformed mDNS packet: {e}"),
            MdnsError::Encode(e) => write!(f, "cannot encode mDNS packet: {e}"),
        }
    }
}

impl std::error::Error for MdnsError {}

fn enc(e: simple_dns::SimpleDnsError) -> MdnsError {
    MdnsError::Encode(e.to_string())
}

/// The SRV query the reference multicasts for a lookup (wire-mdns.md §3):
/// id 0, flags 0, one IN SRV question per name, no compression.
pub fn encode_query(names: &[&str]) -> Result<Vec<u8>, MdnsError> {
    let mut packet = Packet::new_query(0);
    for name in names {
        let qname = Name::new(name).map_err(enc)?;
        packet
            .questions
            .push(Question::new(qname, QTYPE::TYPE(TYPE::SRV), QCLASS::CLASS(CLASS::IN), false));
    }
    packet.build_bytes_vec().map_err(enc)
}

/// A response (wire-mdns.md §4.1): SRV + TXT per answer, then, when it answers
/// a received query, an `A` record `referrer.<domain>` naming the querier.
pub fn encode_response(
    answers: &[Answer<'_>],
    referrer: Option<(Ipv4Addr, &str)>,
) -> Result<Vec<u8>, MdnsError> {
    let zero = Name::new("0.0.0.0").map_err(enc)?;
    let mut packet = Packet::new_reply(0);
    packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    for a in answers {
        let name = Name::new(a.name).map_err(enc)?;
        let srv = SRV { priority: 0, weight: 0, port: a.port, target: zero.clone() };
        packet.answers.push(ResourceRecord::new(name.clone(), CLASS::IN, 0, RData::SRV(srv)));
        let txt = TXT::new().with_char_string(CharacterString::new(a.id).map_err(enc)?);
        packet.answers.push(ResourceRecord::new(name, CLASS::IN, 0, RData::TXT(txt)));
    }
    let referrer_name;
    if let Some((ip, domain)) = referrer {
        referrer_name = format!("referrer.{domain}");
        let name = Name::new(&referrer_name).map_err(enc)?;
        packet.answers.push(ResourceRecord::new(name, CLASS::IN, 0, RData::A(A::from(ip))));
    }
    packet.build_bytes_vec().map_err(enc)
}

/// Parses a datagram. Anything that is not a well-formed DNS message is an
/// error; a well-formed message with nothing of interest decodes to an empty
/// query or response.
pub fn decode(bytes: &[u8]) -> Result<Message, MdnsError> {
    if bytes.len() > MAX_PACKET {
        return Err(MdnsError::TooLarge(bytes.len()));
    }
    let packet = Packet::parse(bytes).map_err(|e| MdnsError::Malformed(e.to_string()))?;
    let first_txt = |name: &str| {
        packet.answers.iter().find_map(|rr| match &rr.rdata {
            RData::TXT(txt) if rr.name.to_string() == name => {
                txt.iter_raw().next().map(|(k, v)| raw_txt_string(k, v))
            }
            _ => None,
        })
    };
    if packet.has_flags(PacketFlag::RESPONSE) {
        let mut answers = Vec::new();
        for rr in &packet.answers {
            if let RData::SRV(srv) = &rr.rdata {
                let name = rr.name.to_string();
                let target = srv.target.to_string();
                let id = first_txt(&name);
                answers.push(SrvAnswer {
                    name,
                    port: srv.port,
                    target: if target == "0.0.0.0" { None } else { Some(target) },
                    id,
                });
            }
        }
        Ok(Message::Response { answers })
    } else {
        let names: Vec<String> = packet
            .questions
            .iter()
            .filter(|q| q.qtype == QTYPE::TYPE(TYPE::SRV))
            .map(|q| q.qname.to_string())
            .collect();
        let known_ids = names
            .iter()
            .filter_map(|n| first_txt(n).map(|id| (n.clone(), id)))
            .collect();
        Ok(Message::Query { names, known_ids })
    }
}

/// `iter_raw` splits a character-string at its first `=`; the reference
/// compares the whole string, so put it back together.
fn raw_txt_string(key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut s = key.to_vec();
    if let Some(v) = value {
        s.push(b'=');
        s.extend_from_slice(v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(b"hello").into()
    }

    #[test]
    fn name_is_lowercase_hex_of_first_20_bytes() {
        assert_eq!(
            topic_name(&hello(), DEFAULT_DOMAIN),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c.hyperswarm.local"
        );
    }

    #[test]
    fn response_round_trips() {
        let name = topic_name(&hello(), DEFAULT_DOMAIN);
        let id = instance_id([7; 32]);
        let bytes = encode_response(
            &[Answer { name: &name, port: 30001, id: &id }],
            Some((Ipv4Addr::LOCALHOST, DEFAULT_DOMAIN)),
        )
        .unwrap();
        assert_eq!(bytes.len(), 242);
        match decode(&bytes).unwrap() {
            Message::Response { answers } => {
                assert_eq!(answers, vec![SrvAnswer { name, port: 30001, target: None, id: Some(id.to_vec()) }])
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn txt_id_with_equals_inside_survives() {
        let name = topic_name(&hello(), DEFAULT_DOMAIN);
        let id = instance_id([b'='; 32]);
        let bytes = encode_response(&[Answer { name: &name, port: 1, id: &id }], None).unwrap();
        let Message::Response { answers } = decode(&bytes).unwrap() else { panic!() };
        assert_eq!(answers[0].id.as_deref(), Some(&id[..]));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[0xff; 7]).is_err());
        assert!(decode(&vec![0; MAX_PACKET + 1]).is_err());
    }
}
