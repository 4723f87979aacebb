//! Attacks on one sans-IO DHT node, with figures (issue 10). Each test
//! plays an attacker that can forge source addresses, on a virtual clock;
//! nothing here opens a socket. Run with `--nocapture` to see the figures.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::dht::query::MAX_REQUESTS;
use hyperswarm_native::dht::routing_table::K;
use hyperswarm_native::dht::{Dht, DhtConfig, DhtEvent, NodeId};
use hyperswarm_native::discovery::{Discovery, DiscoveryConfig, DiscoveryEvent, Transmit, ROUND_MAX};
use hyperswarm_native::wire::dht::{
    decode_nodes, decode_peers, encode_nodes, encode_peer, Holepunch, Message, MessageType, NodeRecord, PeersInput,
    PeersOutput, CMD_FIND_NODE, CMD_HOLEPUNCH, CMD_PEERS, CMD_PING,
};

const ME: [u8; 32] = [0x42; 32];

fn node(now: Instant) -> Dht {
    Dht::new(now, DhtConfig { id: Some(ME), ephemeral: false, adaptive: false, bootstrap: vec![], seed: 9 })
}

/// Contact `i`: a /24 of its own in public space.
fn contact(i: u32) -> (NodeId, SocketAddrV4) {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9)).to_be_bytes());
    id[4] = i as u8;
    (id, SocketAddrV4::new(Ipv4Addr::new(203, (i >> 8) as u8 + 1, i as u8, 10), 40000 + i as u16))
}

fn drain(d: &mut Dht) -> Vec<(SocketAddrV4, Vec<u8>)> {
    std::iter::from_fn(|| d.poll_transmit()).collect()
}

fn events(d: &mut Dht) -> Vec<DhtEvent> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn table(d: &Dht) -> HashMap<NodeId, SocketAddrV4> {
    d.table().iter().map(|c| (c.id, c.addr)).collect()
}

fn request(kind: MessageType, rid: u64, command: &str) -> Message {
    let mut m = Message::new(kind, rid);
    m.command = Some(command.into());
    m
}

/// A node with 40 contacts from 40 /24s.
fn populated(now: Instant) -> Dht {
    let mut d = node(now);
    for i in 0..40 {
        let (id, a) = contact(i);
        d.add_node(id, a);
    }
    d
}

#[test]
fn forged_responses_complete_nothing_and_move_no_contact() {
    let now = Instant::now();
    let mut d = populated(now);
    let before = table(&d);
    // Requests in flight: a ping to every contact, and a lookup.
    let mut pings = 0;
    for (id, a) in before.clone() {
        d.ping(now, a, Some(id));
        pings += 1;
    }
    d.lookup(now, [0x11; 32], None);
    let sent = drain(&mut d);
    assert!(sent.len() >= pings, "positive control: requests went out ({})", sent.len());
    let forger = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 66), 6666);
    let ids: Vec<NodeId> = before.keys().copied().collect();
    // Every possible rid, each carrying a known contact's id, from the forger.
    for rid in 0..=u16::MAX {
        let mut r = Message::new(MessageType::Response, rid as u64);
        r.id = Some(ids[rid as usize % ids.len()]);
        r.to = Some(encode_peer(forger).to_vec());
        r.closer_nodes = Some(encode_nodes(&[NodeRecord { id: [rid as u8; 32], addr: forger }]));
        d.handle_datagram(now, forger, &r.encode());
    }
    let evs = events(&mut d);
    let completed = evs.iter().filter(|e| matches!(e, DhtEvent::Pong { .. } | DhtEvent::Peers(_))).count();
    let after = table(&d);
    let moved = before.iter().filter(|(id, a)| after.get(*id) != Some(a)).count();
    println!(
        "forged responses: 65536 sent, {completed} requests completed, {moved} contacts moved, unmatched {}",
        d.stats().unmatched_responses
    );
    assert_eq!(completed, 0);
    assert_eq!(moved, 0);
    assert_eq!(d.stats().unmatched_responses, 65536);
    // Positive control: the real contact's answer does complete its ping.
    let (id, a) = contact(3);
    let rid = sent.iter().find(|(to, _)| *to == a).map(|(_, b)| Message::decode(b).unwrap().rid).unwrap();
    let mut r = Message::new(MessageType::Response, rid);
    r.id = Some(id);
    d.handle_datagram(now, a, &r.encode());
    assert!(events(&mut d).iter().any(|e| matches!(e, DhtEvent::Pong { from, .. } if *from == a)));
}

#[test]
fn a_spoofed_query_with_a_known_id_leaves_the_table_unchanged() {
    let now = Instant::now();
    let mut d = populated(now);
    let before = table(&d);
    let spoofed = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 99), 9999);
    for (i, id) in before.keys().enumerate() {
        let mut q = request(MessageType::Query, i as u64, CMD_PING);
        q.id = Some(*id);
        q.to = Some(encode_peer(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1)).to_vec());
        d.handle_datagram(now, spoofed, &q.encode());
    }
    let answered = drain(&mut d).len();
    let after = table(&d);
    println!("spoofed queries with known ids: {} sent, {answered} answered, table changed: {}", before.len(), before != after);
    assert!(answered > 0, "positive control: the queries were handled");
    assert_eq!(before, after);
    assert_eq!(d.stats().id_conflicts, before.len() as u64);
    assert_eq!(d.remote_address(), None, "a request's `to` is not a vote");
}

/// A responder that answers every request at its IP (any port) at once,
/// always naming 20 fresh nodes at its own IP, each closer to the target
/// than any before.
struct EndlessWalker {
    ip: Ipv4Addr,
    next: u128,
    requests: usize,
}

impl EndlessWalker {
    fn answer(&mut self, to: SocketAddrV4, from: SocketAddrV4, bytes: &[u8]) -> Option<Vec<u8>> {
        let m = Message::decode(bytes).ok()?;
        if m.kind == MessageType::Response {
            return None;
        }
        self.requests += 1;
        let target: NodeId = m.target.as_deref().and_then(|t| t.try_into().ok()).unwrap_or([0; 32]);
        let mut nodes = Vec::new();
        for _ in 0..20 {
            self.next += 1;
            // Distance u128::MAX - n in the low half, 0 in the high half:
            // strictly closer each time.
            let mut d = [0u8; 32];
            d[16..].copy_from_slice(&(u128::MAX - self.next).to_be_bytes());
            let mut id = target;
            for (x, y) in id.iter_mut().zip(d) {
                *x ^= y;
            }
            let port = 1024 + (self.next % 60000) as u16;
            nodes.push(NodeRecord { id, addr: SocketAddrV4::new(self.ip, port) });
        }
        let mut r = Message::new(MessageType::Response, m.rid);
        let mut me = target;
        me[31] ^= 0xff;
        me[0] ^= (to.port() & 0xff) as u8;
        r.id = Some(me);
        r.to = Some(encode_peer(from).to_vec());
        r.roundtrip_token = Some(vec![7; 32]);
        r.closer_nodes = Some(encode_nodes(&nodes));
        Some(r.encode())
    }
}

#[test]
fn an_endless_walk_ends_within_the_cap_and_the_topic_is_reannounced_on_schedule() {
    let t0 = Instant::now();
    let attacker = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 49737);
    let us = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 50), 5000);
    let dht = DhtConfig { id: Some(ME), ephemeral: true, adaptive: false, bootstrap: vec![attacker], seed: 5 };
    let mut disc = Discovery::new(t0, DiscoveryConfig { lan_domain: None, dht: Some(dht), seed: 5 });
    disc.bootstrap(t0, vec![attacker]);
    let topic = [0x33; 32];
    disc.join(t0, topic, true, true, 5000);
    let mut walker = EndlessWalker { ip: *attacker.ip(), next: 0, requests: 0 };
    let mut now = t0;
    let (mut rounds_started, mut rounds_ended) = (Vec::new(), Vec::new());
    let mut requests_at_first_end = None;
    // 15 virtual minutes, bounded in steps.
    for _ in 0..2_000_000 {
        let mut inbox = Vec::new();
        while let Some(t) = disc.poll_transmit() {
            if let Transmit::Udp(to, bytes) = t {
                if *to.ip() == walker.ip {
                    if let Some(reply) = walker.answer(to, us, &bytes) {
                        inbox.push((to, reply));
                    }
                }
            }
        }
        for (from, bytes) in inbox {
            disc.handle_udp(now, from, &bytes);
        }
        while let Some(e) = disc.poll_event() {
            match e {
                DiscoveryEvent::Updating { topic: t } if t == topic => rounds_started.push(now - t0),
                DiscoveryEvent::Update { topic: t, .. } if t == topic => {
                    rounds_ended.push(now - t0);
                    requests_at_first_end.get_or_insert(walker.requests);
                }
                _ => {}
            }
        }
        if rounds_started.len() >= 2 && !rounds_ended.is_empty() {
            break;
        }
        let Some(at) = disc.poll_timeout() else { break };
        if at > t0 + Duration::from_secs(15 * 60) {
            break;
        }
        now = at.max(now);
        disc.handle_timeout(now);
    }
    let first = requests_at_first_end.expect("the round ended");
    println!(
        "endless walk: first round ended at {:?} after {first} requests to the attacker (cap {MAX_REQUESTS} per walk); \
         next round started at {:?}; walks capped: {}",
        rounds_ended[0],
        rounds_started.get(1),
        disc.dht_stats().queries_capped
    );
    // The bootstrap walk and the round's walk, each capped, plus the
    // round's updates (at most K).
    assert!(first <= 2 * MAX_REQUESTS + K + 4, "{first} requests");
    assert!(disc.dht_stats().queries_capped >= 1);
    assert_eq!(rounds_started.len(), 2, "re-announced");
    assert!(rounds_started[1] <= rounds_ended[0] + ROUND_MAX, "on schedule: {:?}", rounds_started);
}

#[test]
fn a_relay_request_to_a_non_peer_sends_nothing() {
    let now = Instant::now();
    let mut d = populated(now);
    let asker = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 5), 5555);
    let mut bytes_out = 0;
    // Relay targets the node must refuse; sans-IO, so nothing is ever sent to them.
    for (i, target) in ["127.0.0.1:53", "0.0.0.0:53", "8.8.8.8:53", "198.51.100.200:1900", "224.0.0.251:5353"].iter().enumerate() {
        let target: SocketAddrV4 = target.parse().unwrap();
        let mut q = request(MessageType::Query, i as u64, CMD_HOLEPUNCH);
        q.value = Some(Holepunch { from: None, to: Some(encode_peer(target).to_vec()) }.encode());
        d.handle_datagram(now, asker, &q.encode());
        bytes_out += drain(&mut d).iter().map(|(_, b)| b.len()).sum::<usize>();
    }
    // Positive control: a contact that answered us is a valid target.
    let (id, a) = contact(1);
    d.ping(now, a, Some(id));
    let rid = Message::decode(&drain(&mut d)[0].1).unwrap().rid;
    let mut r = Message::new(MessageType::Response, rid);
    r.id = Some(id);
    d.handle_datagram(now, a, &r.encode());
    let mut q = request(MessageType::Query, 99, CMD_HOLEPUNCH);
    q.value = Some(Holepunch { from: None, to: Some(encode_peer(a).to_vec()) }.encode());
    d.handle_datagram(now, asker, &q.encode());
    let relayed = drain(&mut d);
    println!("relay to non-peers: {bytes_out} bytes sent; to a verified contact: {} datagram(s)", relayed.len());
    assert_eq!(bytes_out, 0);
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].0, a);
}

/// The smallest honest-looking request of each kind, plus what it may
/// need to be answered fully.
fn kinds() -> Vec<(&'static str, Message)> {
    let target = Some(vec![0x55; 32]);
    let mut ping = request(MessageType::Query, 0, CMD_PING);
    ping.to = Some(encode_peer(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1)).to_vec());
    let mut find = request(MessageType::Query, 0, CMD_FIND_NODE);
    find.target = target.clone();
    let mut peers = request(MessageType::Query, 0, CMD_PEERS);
    peers.target = target.clone();
    peers.value = Some(PeersInput::default().encode());
    let mut announce = request(MessageType::Update, 0, CMD_PEERS);
    announce.target = target.clone();
    announce.value = Some(PeersInput { port: Some(4000), local_address: None, unannounce: None }.encode());
    announce.roundtrip_token = Some(vec![1; 32]);
    let mut unannounce = announce.clone();
    unannounce.value = Some(PeersInput { port: Some(4000), local_address: None, unannounce: Some(true) }.encode());
    let mut holepunch = request(MessageType::Query, 0, CMD_HOLEPUNCH);
    holepunch.value = Some(Holepunch { from: None, to: Some(encode_peer(contact(2).1).to_vec()) }.encode());
    let mut holepunch_from = request(MessageType::Query, 0, CMD_HOLEPUNCH);
    holepunch_from.value = Some(Holepunch { from: Some(encode_peer(contact(2).1).to_vec()), to: None }.encode());
    let mut unknown = request(MessageType::Query, 0, "");
    unknown.version = None;
    unknown.target = Some(vec![0]);
    let mut bad_target = request(MessageType::Query, 0, CMD_FIND_NODE);
    bad_target.target = Some(vec![0x55; 31]);
    let mut bad_target_peers = request(MessageType::Query, 0, CMD_PEERS);
    bad_target_peers.target = Some(vec![0x55; 33]);
    vec![
        ("ping", ping),
        ("find_node", find),
        ("peers (get)", peers),
        ("announce (update)", announce),
        ("unannounce", unannounce),
        ("holepunch relay", holepunch),
        ("holepunch from", holepunch_from),
        ("unknown command", unknown),
        ("bad target length", bad_target),
        ("bad target length (peers)", bad_target_peers),
    ]
}

#[test]
fn two_hundred_requests_from_an_unverified_source_get_at_most_three_times_their_bytes() {
    let victim = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 53);
    println!("{:<28} {:>6} {:>8} {:>8} {:>6}", "kind", "req B", "in", "out", "ratio");
    for (name, msg) in kinds() {
        let now = Instant::now();
        let mut d = populated(now);
        // The relay target announced through us, so relays are possible,
        // and the topic holds records, so `peers` replies carry some.
        let target = contact(2).1;
        for (i, peer) in [target].into_iter().chain((0..60).map(|i| contact(100 + i).1)).enumerate() {
            d.handle_datagram(now, peer, &request(MessageType::Query, i as u64, CMD_PING).encode());
            let token = Message::decode(&drain(&mut d)[0].1).unwrap().roundtrip_token;
            let mut u = request(MessageType::Update, 1, CMD_PEERS);
            u.target = Some(vec![0x55; 32]);
            u.value = Some(PeersInput::default().encode());
            u.roundtrip_token = token;
            d.handle_datagram(now, peer, &u.encode());
            drain(&mut d);
        }
        let (mut bytes_in, mut bytes_out, mut replies) = (0, 0, 0);
        for i in 0..200u64 {
            let mut m = msg.clone();
            m.rid = i;
            let b = m.encode();
            bytes_in += b.len();
            d.handle_datagram(now + Duration::from_millis(i), victim, &b);
            for (_, out) in drain(&mut d) {
                bytes_out += out.len();
                replies += 1;
            }
        }
        let ratio = bytes_out as f64 / bytes_in as f64;
        println!("{name:<28} {:>6} {bytes_in:>8} {bytes_out:>8} {ratio:>6.2} ({replies} datagrams)", bytes_in / 200);
        assert!(bytes_out <= 3 * bytes_in, "{name}: {bytes_out} > 3 × {bytes_in}");
    }
}

#[test]
fn a_verified_client_keeps_being_answered_and_its_first_lookup_is_full() {
    // A JS client bootstraps through us and looks up: its first replies are
    // full; it answers our verification ping and is never throttled after.
    let now = Instant::now();
    let mut d = populated(now);
    let client = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 20), 20000);
    let mut find = request(MessageType::Query, 1, CMD_FIND_NODE);
    find.target = Some(vec![0x99; 32]);
    let mut peers = request(MessageType::Query, 2, CMD_PEERS);
    peers.target = Some(vec![0x99; 32]);
    let mut answered = 0;
    for m in [&find, &peers, &find, &peers] {
        d.handle_datagram(now, client, &m.encode());
        for (to, b) in drain(&mut d) {
            let r = Message::decode(&b).unwrap();
            if r.kind == MessageType::Response {
                assert_eq!(r.closer_nodes.as_ref().map(|n| decode_nodes(n).unwrap().len()), Some(K));
                answered += 1;
            } else {
                // Our verification ping: the client answers it.
                let mut pong = Message::new(MessageType::Response, r.rid);
                pong.value = Some(encode_peer(client).to_vec());
                d.handle_datagram(now, to, &pong.encode());
            }
        }
    }
    assert_eq!(answered, 4, "the first lookup is fully answered");
    for i in 0..500 {
        find.rid = i;
        d.handle_datagram(now + Duration::from_millis(i), client, &find.encode());
        answered += drain(&mut d).len();
    }
    assert_eq!(answered, 504, "verified: every request answered");
    assert_eq!(d.stats().amplification_dropped, 0);
}

#[test]
fn peer_store_poisoning_from_one_ip_and_one_subnet_leaves_honest_records() {
    let t0 = Instant::now();
    let mut d = node(t0);
    let topic = vec![0x77; 32];
    let announce = |d: &mut Dht, now: Instant, peer: SocketAddrV4, topic: &[u8], port: u64| {
        d.handle_datagram(now, peer, &request(MessageType::Query, 1, CMD_PING).encode());
        let token = drain(d).into_iter().find_map(|(_, b)| Message::decode(&b).unwrap().roundtrip_token);
        let mut u = request(MessageType::Update, 2, CMD_PEERS);
        u.target = Some(topic.to_vec());
        u.value = Some(PeersInput { port: Some(port), local_address: None, unannounce: None }.encode());
        u.roundtrip_token = token;
        d.handle_datagram(now, peer, &u.encode());
        drain(d);
    };
    let honest: Vec<SocketAddrV4> = (0..40).map(|i| contact(500 + i).1).collect();
    for a in &honest {
        announce(&mut d, t0, *a, &topic, a.port() as u64);
    }
    let mut now = t0;
    let mut refused_before = d.stats().store_refused;
    for (label, hosts) in [("one IP", 1u8), ("one /24", 255u8)] {
        for i in 0..30_000u32 {
            now += Duration::from_millis(2);
            let host = 1 + (i % hosts as u32) as u8;
            let attacker = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, host), 7000);
            let t = if i % 2 == 0 { topic.clone() } else { (i as u64).to_be_bytes().repeat(4) };
            announce(&mut d, now, attacker, &t, 1 + (i % 60000) as u64);
        }
        let refused = d.stats().store_refused - refused_before;
        refused_before = d.stats().store_refused;
        let mut q = request(MessageType::Query, 3, CMD_PEERS);
        q.target = Some(topic.clone());
        let looker = contact(900).1;
        d.handle_datagram(now, looker, &q.encode());
        let reply = drain(&mut d).into_iter().map(|(_, b)| Message::decode(&b).unwrap()).find(|m| m.kind == MessageType::Response).unwrap();
        let out = PeersOutput::decode(reply.value.as_deref().unwrap()).unwrap();
        let peers = decode_peers(out.peers.as_deref().unwrap()).unwrap();
        let found = honest.iter().filter(|a| peers.contains(a)).count();
        println!("peer-store poisoning from {label}: 30000 announces, {refused} refused; a lookup returns {found}/40 honest records among {}", peers.len());
        assert_eq!(found, honest.len(), "{label}");
        assert!(refused > 25_000, "{label}: {refused}");
    }
}
