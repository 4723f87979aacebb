//! Golden tests for `wire::mdns` against datagrams captured from the JS
//! reference (@hyperswarm/discovery 2.0.1 and the 1.x copy nested under
//! @hyperswarm/network 0.0.4, both on multicast-dns 7 / dns-packet 5) by
//! `scripts/capture-mdns.js`. The recorded inputs (topic, port, TXT id,
//! querier address, domain) were read from the packets by that script's own
//! DNS reader and cross-checked there against the topics it created.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

mod common;

use common::fixtures::{self, hex, unhex};
use hyperswarm_native::wire::mdns::*;
use proptest::prelude::*;
use serde_json::Value;

/// Every fixture file, name + parsed JSON, sorted by name.
fn fixtures() -> &'static Vec<(String, Value)> {
    static F: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    F.get_or_init(|| fixtures::load("mdns", &[]))
}

/// (fixture file, packet index, domain, packet JSON, bytes) for every packet.
fn packets() -> Vec<(String, u64, String, &'static Value, Vec<u8>)> {
    let mut out = Vec::new();
    for (file, fx) in fixtures() {
        let domain = fx["domain"].as_str().unwrap().to_string();
        for p in fx["packets"].as_array().unwrap() {
            let bytes = unhex(p["hex"].as_str().unwrap());
            assert_eq!(bytes.len() as u64, p["len"].as_u64().unwrap(), "{file}");
            out.push((
                file.clone(),
                p["index"].as_u64().unwrap(),
                domain.clone(),
                p,
                bytes,
            ));
        }
    }
    out
}

fn all_packet_bytes() -> &'static Vec<Vec<u8>> {
    static B: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    B.get_or_init(|| packets().into_iter().map(|p| p.4).collect())
}

fn topic_key(v: &Value) -> [u8; 32] {
    unhex(v.as_str().unwrap())
        .try_into()
        .expect("32-byte topic")
}

fn instance(v: &Value) -> InstanceId {
    unhex(v.as_str().unwrap())
        .try_into()
        .expect("35-byte TXT id")
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Where two byte strings first differ, for a readable failure report.
fn first_difference(ours: &[u8], theirs: &[u8]) -> String {
    let i = ours
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    format!(
        "lengths ours {} / reference {}; first difference at byte {i}: ours {} / reference {}",
        ours.len(),
        theirs.len(),
        hex(&ours[i.min(ours.len())..(i + 16).min(ours.len())]),
        hex(&theirs[i.min(theirs.len())..(i + 16).min(theirs.len())]),
    )
}

#[test]
fn fixtures_cover_every_kind_and_both_reference_versions() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut versions = std::collections::BTreeSet::new();
    for (_, fx) in fixtures() {
        versions.insert(
            fx["reference"]["@hyperswarm/discovery"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        for p in fx["packets"].as_array().unwrap() {
            kinds.insert(p["kind"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        kinds,
        ["answer", "query", "unsolicited"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert!(versions.contains("2.0.1"), "{versions:?}");
    assert!(versions.iter().any(|v| v.starts_with("1.")), "{versions:?}");
    assert!(packets().len() >= 20);
}

#[test]
fn names_match_topic_name() {
    for (file, fx) in fixtures() {
        let domain = fx["domain"].as_str().unwrap();
        for t in fx["topics"].as_array().unwrap() {
            assert_eq!(
                topic_name(&topic_key(&t["key"]), domain),
                t["name"].as_str().unwrap(),
                "{file}"
            );
        }
    }
}

#[test]
fn reencoding_is_byte_identical() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, index, domain, p, bytes) in packets() {
        if !p["reencodable"].as_bool().unwrap() {
            continue; // a query with known answers; encode_query has no such input
        }
        let ours = match p["kind"].as_str().unwrap() {
            "query" => {
                let names = str_list(&p["names"]);
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                encode_query(&refs)
            }
            kind @ ("unsolicited" | "answer") => {
                let recs = p["answers"].as_array().unwrap();
                let names: Vec<String> = recs
                    .iter()
                    .map(|a| topic_name(&topic_key(&a["topic"]), &domain))
                    .collect();
                for (n, a) in names.iter().zip(recs) {
                    assert_eq!(n, a["name"].as_str().unwrap(), "{file} #{index}");
                }
                let ids: Vec<InstanceId> = recs.iter().map(|a| instance(&a["id"])).collect();
                let answers: Vec<Answer<'_>> = recs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Answer {
                        name: &names[i],
                        port: a["port"].as_u64().unwrap() as u16,
                        id: &ids[i],
                    })
                    .collect();
                let referrer = p["referrer"]
                    .as_str()
                    .map(|ip| ip.parse::<Ipv4Addr>().unwrap());
                assert_eq!(referrer.is_some(), kind == "answer", "{file} #{index}");
                encode_response(&answers, referrer.map(|ip| (ip, domain.as_str())))
            }
            k => panic!("{file} #{index}: unknown kind {k}"),
        };
        checked += 1;
        match ours {
            Ok(ours) if ours == bytes => {}
            Ok(ours) => failures.push(format!(
                "{file} #{index} ({}): {}\n  ours      {}\n  reference {}",
                p["kind"],
                first_difference(&ours, &bytes),
                hex(&ours),
                hex(&bytes)
            )),
            Err(e) => failures.push(format!("{file} #{index}: encode error {e}")),
        }
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} packets differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn decoding_reference_packets_gives_recorded_fields() {
    for (file, index, _domain, p, bytes) in packets() {
        let msg = decode(&bytes).unwrap_or_else(|e| panic!("{file} #{index}: {e}"));
        match p["kind"].as_str().unwrap() {
            "query" => {
                let known: Vec<(String, Vec<u8>)> = p["known_answers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| {
                        (
                            k["name"].as_str().unwrap().to_string(),
                            unhex(k["id"].as_str().unwrap()),
                        )
                    })
                    .collect();
                assert_eq!(
                    msg,
                    Message::Query {
                        names: str_list(&p["names"]),
                        known_ids: known
                    },
                    "{file} #{index}"
                );
            }
            "unsolicited" | "answer" => {
                let recs = p["answers"].as_array().unwrap();
                // The id reported with an SRV is the first TXT of that name in
                // the packet (wire-mdns.md §5), which is not the paired TXT when
                // two topic objects of one key answer together.
                let first_id = |name: &str| {
                    recs.iter()
                        .find(|a| a["name"].as_str().unwrap() == name)
                        .map(|a| unhex(a["id"].as_str().unwrap()))
                };
                let expected: Vec<SrvAnswer> = recs
                    .iter()
                    .map(|a| {
                        let name = a["name"].as_str().unwrap().to_string();
                        assert_eq!(a["target"].as_str().unwrap(), "0.0.0.0");
                        SrvAnswer {
                            id: first_id(&name),
                            port: a["port"].as_u64().unwrap() as u16,
                            target: None,
                            name,
                        }
                    })
                    .collect();
                assert_eq!(
                    msg,
                    Message::Response { answers: expected },
                    "{file} #{index}"
                );
            }
            k => panic!("{file} #{index}: unknown kind {k}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_random_dns_like_bytes(
        counts in proptest::array::uniform4(0u16..4),
        flags in any::<u16>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![0, 0];
        bytes.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            bytes.extend_from_slice(&c.to_be_bytes());
        }
        bytes.extend_from_slice(&body);
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_fixtures(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let all = all_packet_bytes();
        let mut bytes = all[which.index(all.len())].clone();
        for (at, b) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        bytes.extend_from_slice(&tail);
        let _ = decode(&bytes);
    }
}
