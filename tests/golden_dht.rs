//! Golden tests for `wire::dht` against datagrams captured from the JS
//! reference (dht-rpc 4.9.6, @hyperswarm/dht 4.0.1) by
//! `scripts/capture-dht.js`. The expected fields in the fixtures come from
//! the reference's own protobuf modules, not from this codec.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddrV4;
use std::sync::OnceLock;

mod common;

use common::fixtures::{self, hex, unhex};
use hyperswarm_native::wire::dht::*;
use proptest::prelude::*;
use serde_json::Value;

/// Scenario fixtures (everything but crafted.json), name + parsed JSON.
fn scenarios() -> &'static Vec<(String, Value)> {
    static S: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    S.get_or_init(|| fixtures::load("dht", &["crafted.json"]))
}

fn crafted() -> Value {
    serde_json::from_str(&fs::read_to_string(fixtures::dir("dht").join("crafted.json")).unwrap()).unwrap()
}

/// Every captured datagram's bytes, for the mutation proptest.
fn all_datagrams() -> &'static Vec<Vec<u8>> {
    static D: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    D.get_or_init(|| {
        let mut out = Vec::new();
        for (_, s) in scenarios() {
            for d in s["datagrams"].as_array().unwrap() {
                out.push(unhex(d["hex"].as_str().unwrap()));
            }
        }
        out
    })
}

fn opt_hex(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn addr_of(v: &Value) -> SocketAddrV4 {
    format!(
        "{}:{}",
        v["host"].as_str().unwrap(),
        v["port"].as_u64().unwrap()
    )
    .parse()
    .unwrap()
}

/// Compares a decoded message with the reference decoder's view. The
/// reference fills absent fields with defaults (version 0, "" for strings,
/// null for bytes), so the comparison goes through the same defaults.
fn assert_fields(ctx: &str, m: &Message, want: &Value) {
    assert_eq!(
        m.version.unwrap_or(0),
        want["version"].as_u64().unwrap(),
        "{ctx}: version"
    );
    assert_eq!(
        m.kind.as_u64(),
        want["type"].as_u64().unwrap(),
        "{ctx}: type"
    );
    assert_eq!(m.rid, want["rid"].as_u64().unwrap(), "{ctx}: rid");
    assert_eq!(m.to.as_deref().map(hex), opt_hex(&want["to"]), "{ctx}: to");
    assert_eq!(
        m.id.as_ref().map(|i| hex(i)),
        opt_hex(&want["id"]),
        "{ctx}: id"
    );
    assert_eq!(
        m.target.as_deref().map(hex),
        opt_hex(&want["target"]),
        "{ctx}: target"
    );
    assert_eq!(
        m.closer_nodes.as_deref().map(hex),
        opt_hex(&want["closerNodes"]),
        "{ctx}: closerNodes"
    );
    assert_eq!(
        m.roundtrip_token.as_deref().map(hex),
        opt_hex(&want["roundtripToken"]),
        "{ctx}: roundtripToken"
    );
    assert_eq!(
        m.command_str(),
        want["command"].as_str().unwrap(),
        "{ctx}: command"
    );
    assert_eq!(
        m.error.as_deref().unwrap_or(""),
        want["error"].as_str().unwrap(),
        "{ctx}: error"
    );
    assert_eq!(
        m.value.as_deref().map(hex),
        opt_hex(&want["value"]),
        "{ctx}: value"
    );
}

fn check_value(ctx: &str, m: &Message, vd: &Value) {
    let value = m.value.as_deref().expect("value_decoded without value");
    let kind = vd["kind"].as_str().unwrap();
    let f = &vd["fields"];
    assert!(
        f.get("decode_error").is_none(),
        "{ctx}: reference failed to decode the value"
    );
    match kind {
        "raw" => {}
        "peer" => assert_eq!(decode_peer(value).unwrap(), addr_of(f), "{ctx}: ping reply"),
        "holepunch" => {
            let h = Holepunch::decode(value).unwrap();
            assert_eq!(
                h.from.as_deref().map(hex),
                opt_hex(&f["from"]),
                "{ctx}: holepunch.from"
            );
            assert_eq!(
                h.to.as_deref().map(hex),
                opt_hex(&f["to"]),
                "{ctx}: holepunch.to"
            );
            if !f["from_peer"].is_null() {
                assert_eq!(
                    decode_peer(h.from.as_deref().unwrap()).unwrap(),
                    addr_of(&f["from_peer"])
                );
            }
            if !f["to_peer"].is_null() {
                assert_eq!(
                    decode_peer(h.to.as_deref().unwrap()).unwrap(),
                    addr_of(&f["to_peer"])
                );
            }
            assert_eq!(h.encode(), value, "{ctx}: holepunch re-encode");
        }
        "peers_input" => {
            let p = PeersInput::decode(value).unwrap();
            assert_eq!(
                p.port.unwrap_or(0),
                f["port"].as_u64().unwrap(),
                "{ctx}: port"
            );
            assert_eq!(
                p.local_address.as_deref().map(hex),
                opt_hex(&f["localAddress"]),
                "{ctx}: localAddress"
            );
            assert_eq!(
                p.unannounce.unwrap_or(false),
                f["unannounce"].as_bool().unwrap(),
                "{ctx}: unannounce"
            );
            assert_eq!(p.encode(), value, "{ctx}: PeersInput re-encode");
        }
        "peers_output" => {
            let p = PeersOutput::decode(value).unwrap();
            assert_eq!(
                p.peers.as_deref().map(hex),
                opt_hex(&f["peers"]),
                "{ctx}: peers"
            );
            assert_eq!(
                p.local_peers.as_deref().map(hex),
                opt_hex(&f["localPeers"]),
                "{ctx}: localPeers"
            );
            if let Some(list) = f["peers_decoded"].as_array() {
                let want: Vec<SocketAddrV4> = list.iter().map(addr_of).collect();
                assert_eq!(
                    decode_peers(p.peers.as_deref().unwrap()).unwrap(),
                    want,
                    "{ctx}: peers list"
                );
            }
            if let Some(list) = f["localPeers_decoded"].as_array() {
                // The capture decodes LAN records behind a 0.0 prefix.
                let want: Vec<SocketAddrV4> = list.iter().map(addr_of).collect();
                assert_eq!(
                    decode_lan_peers([0, 0], p.local_peers.as_deref().unwrap()).unwrap(),
                    want,
                    "{ctx}: LAN list"
                );
            }
            assert_eq!(p.encode(), value, "{ctx}: PeersOutput re-encode");
        }
        "mutable" => {
            let mu = Mutable::decode(value).unwrap();
            assert_eq!(
                mu.value.as_deref().map(hex),
                opt_hex(&f["value"]),
                "{ctx}: mutable.value"
            );
            assert_eq!(
                mu.signature.as_deref().map(hex),
                opt_hex(&f["signature"]),
                "{ctx}: mutable.signature"
            );
            assert_eq!(
                mu.seq.unwrap_or(0),
                f["seq"].as_u64().unwrap(),
                "{ctx}: mutable.seq"
            );
            assert_eq!(
                mu.salt.as_deref().map(hex),
                opt_hex(&f["salt"]),
                "{ctx}: mutable.salt"
            );
            assert_eq!(mu.encode(), value, "{ctx}: Mutable re-encode");
        }
        other => panic!("{ctx}: unknown value kind {other}"),
    }
}

#[test]
fn golden_datagrams_decode_and_reencode_byte_for_byte() {
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for (file, s) in scenarios() {
        let datagrams = s["datagrams"].as_array().unwrap();
        for d in datagrams {
            let ctx = format!("{file}#{} ({} -> {})", d["index"], d["src"], d["dst"]);
            let bytes = unhex(d["hex"].as_str().unwrap());
            assert_eq!(bytes.len() as u64, d["len"].as_u64().unwrap(), "{ctx}: len");
            if d.get("reference_decode_error").is_some() {
                assert!(
                    Message::decode(&bytes).is_err(),
                    "{ctx}: reference rejected it"
                );
                continue;
            }
            let m = Message::decode(&bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_fields(&ctx, &m, &d["decoded"]);
            assert_eq!(m.encoded_len(), bytes.len(), "{ctx}: encoded_len");
            assert_eq!(hex(&m.encode()), hex(&bytes), "{ctx}: re-encode");

            if let Some(to) = d["to_decoded"].as_object() {
                assert_eq!(
                    m.to_addr(),
                    Some(addr_of(&Value::Object(to.clone()))),
                    "{ctx}: to"
                );
            }
            if let Some(nodes) = d["closer_nodes_decoded"].as_array() {
                let got = decode_nodes(m.closer_nodes.as_deref().unwrap()).unwrap();
                assert_eq!(got.len(), nodes.len(), "{ctx}: closerNodes count");
                for (g, w) in got.iter().zip(nodes) {
                    assert_eq!(hex(&g.id), w["id"].as_str().unwrap(), "{ctx}: node id");
                    assert_eq!(g.addr, addr_of(w), "{ctx}: node addr");
                }
                assert_eq!(
                    encode_nodes(&got),
                    m.closer_nodes.clone().unwrap(),
                    "{ctx}: closerNodes re-encode"
                );
            }
            if !d["value_decoded"].is_null() {
                check_value(&ctx, &m, &d["value_decoded"]);
            }
            if let Some(relay) = d["relay_of"].as_object() {
                let idx = relay["index"].as_u64().unwrap() as usize;
                let orig = datagrams
                    .iter()
                    .find(|x| x["index"].as_u64() == Some(idx as u64))
                    .unwrap();
                let orig = Message::decode(&unhex(orig["hex"].as_str().unwrap())).unwrap();
                let relay_id = relay["relay_id"]
                    .as_str()
                    .map(|h| <[u8; 32]>::try_from(unhex(h)).unwrap());
                let relayed =
                    orig.relay_holepunch(relay_id, addr_of(&relay["from"]), addr_of(&relay["to"]));
                assert_eq!(
                    hex(&relayed.encode()),
                    hex(&bytes),
                    "{ctx}: relayed holepunch"
                );
                seen.insert("relay".to_string());
            }

            // Coverage bookkeeping.
            count += 1;
            let ctx_cmd = d["context_command"].as_str().unwrap_or("");
            seen.insert(format!("{:?} {}", m.kind, ctx_cmd));
            seen.insert(format!("{:?}", m.kind));
            seen.insert(if m.id.is_some() { "with id" } else { "no id" }.to_string());
            if m.error_text().is_some() {
                seen.insert(format!("error {}", m.error_text().unwrap()));
                if m.value.is_some() {
                    seen.insert("error with value".into());
                }
            }
            if m.closer_nodes.as_ref().is_some_and(|c| !c.is_empty()) {
                seen.insert("closerNodes".into());
            }
            if m.kind == MessageType::Update && m.roundtrip_token.is_some() {
                seen.insert("update with token".into());
            }
            if m.error.as_deref() == Some("") {
                seen.insert("empty error present".into());
            }
            if let (Some(v), "peers") = (&m.value, ctx_cmd) {
                if m.kind == MessageType::Response && m.error_text().is_none() {
                    let p = PeersOutput::decode(v).unwrap();
                    if p.peers.is_some() {
                        seen.insert("peers".into());
                    }
                    if p.local_peers.is_some() {
                        seen.insert("localPeers".into());
                    }
                } else if m.kind != MessageType::Response
                    && PeersInput::decode(v).unwrap().unannounce == Some(true)
                {
                    seen.insert("unannounce".into());
                }
            }
        }
    }
    // Guard against a regenerated fixture set silently losing coverage.
    for need in [
        "Query",
        "Update",
        "Response",
        "with id",
        "no id",
        "closerNodes",
        "update with token",
        "Query _ping",
        "Response _ping",
        "Query _find_node",
        "Response _find_node",
        "Query _holepunch",
        "Response _holepunch",
        "Query peers",
        "Update peers",
        "Response peers",
        "peers",
        "localPeers",
        "unannounce",
        "relay",
        "empty error present",
        "error Unsupported command",
        "error Invalid port",
        "error Update not supported",
        "error with value",
        "Update mutable-store",
        "Query mutable-store",
        "Update immutable-store",
        "Query immutable-store",
    ] {
        assert!(
            seen.contains(need),
            "fixtures lack coverage of {need:?}; seen: {seen:?}"
        );
    }
    assert!(count > 100, "only {count} datagrams");
}

#[test]
fn crafted_datagrams_match_reference_verdict() {
    let c = crafted();
    let cases = c["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bytes = unhex(case["hex"].as_str().unwrap());
        let got = Message::decode(&bytes);
        let expect_ok = case["expect_ok"].as_bool().unwrap();
        assert_eq!(got.is_ok(), expect_ok, "{name}: got {got:?}");
        let Ok(m) = got else { continue };
        assert_fields(name, &m, &case["decoded"]);
        assert_eq!(
            m.sender_id().map(|i| hex(i)),
            opt_hex(&case["reference_sender_id"]),
            "{name}: sender_id"
        );
        // Re-encoding is canonical (reference order, unknown fields gone),
        // and decodes back to the same message.
        let again = Message::decode(&m.encode()).unwrap();
        assert_eq!(again, m, "{name}: round trip");
    }
}

#[test]
fn every_strict_prefix_of_a_datagram_is_rejected_or_a_valid_shorter_message() {
    // Cutting a datagram at a field boundary after `rid` leaves a valid
    // message; anywhere else must be an error, never a panic.
    for b in all_datagrams() {
        for cut in 0..b.len() {
            if let Ok(m) = Message::decode(&b[..cut]) {
                assert_eq!(m.encode(), &b[..cut]);
            }
        }
    }
    // A length prefix promising more than is left.
    let m = Message::decode(&[0x58, 0x01, 0x08, 0x01, 0x10, 0x01, 0x4a, 0x10, 0x01, 0x02]);
    assert_eq!(m, Err(DecodeError::Truncated));
    assert_eq!(Message::decode(&[0x58]), Err(DecodeError::Truncated));
    assert_eq!(Message::decode(&[0x58, 0x81]), Err(DecodeError::Truncated));
    assert_eq!(Message::decode(&[]), Err(DecodeError::MissingField("type")));
    assert_eq!(
        Message::decode(&[0x08, 0x01]),
        Err(DecodeError::MissingField("rid"))
    );
    assert_eq!(
        Holepunch::decode(&[0x1a, 0x06, 0x7f]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(PeersInput::decode(&[0x08]), Err(DecodeError::Truncated));
    assert_eq!(
        PeersOutput::decode(&[0x0a, 0x06, 1, 2]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(Mutable::decode(&[0x22, 0x40]), Err(DecodeError::Truncated));
}

#[test]
fn wrong_length_id_rejects_the_whole_message() {
    for len in [0usize, 1, 20, 31, 33, 64] {
        let mut b = vec![0x58, 0x01, 0x08, 0x03, 0x10, 0x07, 0x1a, len as u8];
        b.extend(std::iter::repeat(0x5a).take(len));
        b.extend_from_slice(&[0x4a, 0x02, 0xab, 0xcd]);
        assert_eq!(
            Message::decode(&b),
            Err(DecodeError::WrongIdLength(len)),
            "len {len}"
        );
    }
    // A 32-byte id is fine, and honoured only with version >= 1.
    let mut m = Message::new(MessageType::Query, 9);
    m.id = Some([0x5a; 32]);
    let d = Message::decode(&m.encode()).unwrap();
    assert_eq!(d.sender_id(), Some(&[0x5a; 32]));
    m.version = None;
    let d = Message::decode(&m.encode()).unwrap();
    assert_eq!(d.id, Some([0x5a; 32]));
    assert_eq!(d.sender_id(), None);
    m.version = Some(0);
    assert_eq!(Message::decode(&m.encode()).unwrap().sender_id(), None);
}

#[test]
fn oversized_input_is_rejected() {
    let mut m = Message::new(MessageType::Query, 1);
    m.command = Some("echo".into());
    m.target = Some(vec![1]);
    m.value = Some(vec![0xee; MAX_MESSAGE_LEN]);
    let b = m.encode();
    assert!(b.len() > MAX_MESSAGE_LEN);
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::Oversized {
            len: b.len(),
            max: MAX_MESSAGE_LEN
        })
    );
    // Exactly at the limit still decodes.
    let over = b.len() - MAX_MESSAGE_LEN;
    m.value = Some(vec![0xee; MAX_MESSAGE_LEN - over]);
    let b = m.encode();
    assert_eq!(b.len(), MAX_MESSAGE_LEN);
    assert_eq!(Message::decode(&b).unwrap(), m);
    let big = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert!(Holepunch::decode(&big).is_err());
    assert!(PeersInput::decode(&big).is_err());
    assert!(PeersOutput::decode(&big).is_err());
    assert!(Mutable::decode(&big).is_err());
}

#[test]
fn wire_type_and_varint_errors() {
    // rid as length-delimited
    assert_eq!(
        Message::decode(&[0x08, 0x01, 0x12, 0x01, 0x05]),
        Err(DecodeError::WrongWireType {
            field: 2,
            wire_type: 2
        })
    );
    // id as varint
    assert_eq!(
        Message::decode(&[0x08, 0x01, 0x10, 0x01, 0x18, 0x01]),
        Err(DecodeError::WrongWireType {
            field: 3,
            wire_type: 0
        })
    );
    // groups and undefined wire types
    assert_eq!(
        Message::decode(&[0x08, 0x01, 0x10, 0x01, 0x63]),
        Err(DecodeError::UnsupportedWireType(3))
    );
    assert_eq!(
        Message::decode(&[0x08, 0x01, 0x10, 0x01, 0x67]),
        Err(DecodeError::UnsupportedWireType(7))
    );
    // 11-byte varint
    let mut b = vec![0x08, 0x01, 0x10];
    b.extend([0xff; 10]);
    b.push(0x01);
    assert_eq!(Message::decode(&b), Err(DecodeError::BadVarint));
    // unknown type
    assert_eq!(
        Message::decode(&[0x08, 0x04, 0x10, 0x01]),
        Err(DecodeError::UnknownMessageType(4))
    );
    // PeersInput.port as bytes
    assert_eq!(
        PeersInput::decode(&[0x0a, 0x00]),
        Err(DecodeError::WrongWireType {
            field: 1,
            wire_type: 2
        })
    );
}

#[test]
fn builder_defaults_match_reference_shapes() {
    // A lookup without options: empty PeersInput, still sent as `4a 00`.
    let mut m = Message::new(MessageType::Query, 0);
    m.command = Some(CMD_PEERS.into());
    m.target = Some(vec![0x2c; 32]);
    m.value = Some(PeersInput::default().encode());
    let b = m.encode();
    assert_eq!(&b[..6], &[0x58, 0x01, 0x08, 0x01, 0x10, 0x00]);
    assert_eq!(&b[b.len() - 2..], &[0x4a, 0x00]);
    // An explicit port 0 is written.
    assert_eq!(
        PeersInput {
            port: Some(0),
            ..Default::default()
        }
        .encode(),
        vec![0x08, 0x00]
    );
    // Empty error means no error.
    m.error = Some(String::new());
    assert_eq!(Message::decode(&m.encode()).unwrap().error_text(), None);
}

fn mutate(base: &[u8], ops: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(op, pos, byte) in ops {
        let at = if b.is_empty() { 0 } else { pos % (b.len() + 1) };
        match op % 5 {
            0 if at < b.len() => b[at] ^= byte | 1,
            1 => b.insert(at, byte),
            2 if at < b.len() => {
                b.remove(at);
            }
            3 => b.truncate(at),
            4 if at < b.len() => b[at] = byte,
            _ => {}
        }
    }
    b
}

fn decode_everything(b: &[u8]) {
    if let Ok(m) = Message::decode(b) {
        // Whatever decodes must re-encode to something that decodes the same.
        let again = Message::decode(&m.encode()).expect("re-encoded message must decode");
        assert_eq!(again, m);
        let _ = m.to_addr();
        let _ = m.sender_id();
        if let Some(c) = &m.closer_nodes {
            let _ = decode_nodes(c);
        }
        if let Some(v) = &m.value {
            let _ = Holepunch::decode(v);
            let _ = PeersInput::decode(v);
            let _ = PeersOutput::decode(v);
            let _ = Mutable::decode(v);
        }
    }
    if let Ok(h) = Holepunch::decode(b) {
        assert_eq!(Holepunch::decode(&h.encode()).unwrap(), h);
    }
    if let Ok(p) = PeersInput::decode(b) {
        assert_eq!(PeersInput::decode(&p.encode()).unwrap(), p);
    }
    if let Ok(p) = PeersOutput::decode(b) {
        assert_eq!(PeersOutput::decode(&p.encode()).unwrap(), p);
    }
    if let Ok(mu) = Mutable::decode(b) {
        assert_eq!(Mutable::decode(&mu.encode()).unwrap(), mu);
    }
    let _ = decode_peer(b);
    let _ = decode_peers(b);
    let _ = decode_nodes(b);
    let _ = decode_lan_peers([192, 168], b);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&b);
    }

    #[test]
    fn random_large_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 3500..4600)) {
        decode_everything(&b);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<usize>(),
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let all = all_datagrams();
        let base = &all[pick % all.len()];
        let b = mutate(base, &ops);
        decode_everything(&b);
    }

    #[test]
    fn mutated_values_never_panic(
        pick in any::<usize>(),
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
    ) {
        // Mutate the inner value so the nested decoders see near-valid input.
        let all = all_datagrams();
        let m = Message::decode(&all[pick % all.len()]).unwrap();
        let v = m.value.unwrap_or_default();
        decode_everything(&mutate(&v, &ops));
    }
}

/// `scripts/capture-dht-capability.js`: a dht-rpc 4.9.6 relay handed a
/// `_holepunch` whose target is our capability record forwards it byte for
/// byte; our relay forwards the same datagram; a dht-rpc asker answered
/// with a record in the response's target completes its punch as usual.
#[test]
fn capability_record_survives_a_reference_relay() {
    use hyperswarm_native::dht::capability::Capability;
    use hyperswarm_native::dht::{Dht, DhtConfig};
    use hyperswarm_native::NatType;
    use std::time::Instant;

    let path = fixtures::dir("dht").join("capability/holepunch_capability.json");
    let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("{} missing; run scripts/capture-dht-capability.js", path.display())
    }))
    .unwrap();
    let consistent = Capability {
        nat: NatType::Consistent,
        candidates: vec!["203.0.113.7:4000".parse().unwrap(), "192.168.1.20:4000".parse().unwrap()],
        check: None,
    };
    // The punch back that starts a relay session (`swarm::relay_io`).
    let relay_nonce = Capability {
        nat: NatType::Random,
        candidates: vec!["198.51.100.9:5000".parse().unwrap()],
        check: Some(hyperswarm_native::dht::capability::Check::Relay(*b"0123456789abcdef")),
    };
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let ctx = c["name"].as_str().unwrap();
        let want = if ctx.contains("relay nonce") { &relay_nonce } else { &consistent };
        let record = unhex(c["record"].as_str().unwrap());
        assert_eq!(Capability::decode(&record).as_ref(), Some(want), "{ctx}: our decoder reads the record");
        assert_eq!(want.encode(), record, "{ctx}: and writes it");
        let sent_bytes = unhex(c["sent"].as_str().unwrap());
        let relayed_bytes = unhex(c["relayed"].as_str().unwrap());
        let relayed = Message::decode(&relayed_bytes).unwrap();
        assert_eq!(relayed.target.as_deref(), Some(&record[..]), "{ctx}: the reference carries target whole");
        assert_eq!(Capability::decode(relayed.target.as_deref().unwrap()).as_ref(), Some(want), "{ctx}");

        // The codec's relay helper, then a whole node acting as the relay.
        let relay_id = c["relay_id"].as_str().map(|h| <[u8; 32]>::try_from(unhex(h)).unwrap());
        let (asker, punched) = (addr_of(&c["asker"]), addr_of(&c["punched"]));
        let sent = Message::decode(&sent_bytes).unwrap();
        assert_eq!(hex(&sent.relay_holepunch(relay_id, asker, punched).encode()), hex(&relayed_bytes), "{ctx}: helper");

        let now = Instant::now();
        let mut relay = Dht::new(
            now,
            DhtConfig { id: Some(relay_id.unwrap_or([0x5a; 32])), ephemeral: relay_id.is_none(), adaptive: false, bootstrap: vec![], seed: 3 },
        );
        // Ours relays only to a peer announced through it (a reference
        // relay does not check): the punched peer announces first.
        let mut ping = Message::new(MessageType::Query, 1);
        ping.command = Some(CMD_PING.into());
        relay.handle_datagram(now, punched, &ping.encode());
        let token = Message::decode(&relay.poll_transmit().unwrap().1).unwrap().roundtrip_token;
        let mut update = Message::new(MessageType::Update, 2);
        update.command = Some(CMD_PEERS.into());
        update.target = Some(vec![3; 32]);
        update.value = Some(PeersInput::default().encode());
        update.roundtrip_token = token;
        relay.handle_datagram(now, punched, &update.encode());
        while relay.poll_transmit().is_some() {}
        relay.handle_datagram(now, asker, &sent_bytes);
        let out: Vec<_> = std::iter::from_fn(|| relay.poll_transmit()).collect();
        assert_eq!(out.len(), 1, "{ctx}: one relayed datagram");
        assert_eq!(out[0].0, punched, "{ctx}");
        assert_eq!(hex(&out[0].1), hex(&relayed_bytes), "{ctx}: our relay sends the reference's bytes");
    }

    // A dht-rpc asker: its punches carry no target, and an answer with a
    // record in target completes the punch (no error) and breaks nothing.
    let js = &v["js_asker"];
    let received = js["received_by_peer"].as_array().unwrap();
    assert_eq!(received.len(), 2, "direct and relayed");
    for d in received {
        assert_eq!(Message::decode(&unhex(d["hex"].as_str().unwrap())).unwrap().target, None);
    }
    assert_eq!(js["holepunch_callback"]["error"], Value::Null);
    assert_eq!(js["ping_after_error"], Value::Null);
    let answer = Message::decode(&unhex(js["answer"].as_str().unwrap())).unwrap();
    let theirs = Capability::decode(answer.target.as_deref().unwrap()).unwrap();
    assert_eq!((theirs.nat, theirs.candidates.len()), (NatType::Random, 1));
}
