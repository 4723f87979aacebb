//! Capability exchange end to end (README, "Capability exchange"): two
//! swarms of ours, a DHT of ours between them, TCP off so that the dial is
//! punch-then-uTP through the referrer. The dialler learns the peer is ours
//! and its NAT class; the accepted side's connection details stay the
//! seed's. Loopback only (127.0.0.1, inside `unshare -n`).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::swarm::wait_for;
use hyperswarm_native::dht::{DhtConfig, Limits};
use hyperswarm_native::io::dht_node::DhtNode;
use hyperswarm_native::swarm::{ConnStream, SwarmConfig, SwarmEvent};

fn assert_isolated() {
    let dev = std::fs::read_to_string("/proc/net/dev").expect("read /proc/net/dev");
    let real: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).filter(|n| *n != "lo").collect();
    assert!(real.is_empty(), "refusing to run next to real interfaces {real:?}: run inside `unshare -n`");
}

/// `cond` holds within 5 s.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn a_punched_peer_of_ours_tells_its_nat_class() {
    assert_isolated();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _guard = rt.enter();
    let config = |ephemeral, bootstrap, seed| DhtConfig { id: None, ephemeral, adaptive: false, bootstrap, seed };
    let boot = DhtNode::spawn_with_limits(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), config(true, vec![], 1), Limits::scaled(16)).unwrap();
    let boot_addr = boot.local_addr();
    let members: Vec<DhtNode> = (0..3)
        .map(|i| DhtNode::spawn_with_limits(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), config(false, vec![boot_addr], 10 + i), Limits::scaled(16)).unwrap())
        .collect();
    let end = Instant::now() + Duration::from_secs(10);
    while members.iter().any(|n| n.info().nodes < 2) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }

    let swarm_config = |dial_tcp| SwarmConfig {
        multicast: false,
        bootstrap: Some(vec![boot_addr.to_string()]),
        ephemeral: Some(true),
        dial_tcp,
        dht_limit_scale: 16,
        ..SwarmConfig::default()
    };
    let topic = [0xca; 32];
    let (b, b_rx) = common::swarm::spawn(swarm_config(true));
    b.bind(None).unwrap();
    b.join(topic, true, false).unwrap();
    let announced = wait_for(&b_rx, Duration::from_secs(20), |ev| match ev {
        SwarmEvent::Update { error, .. } => Some(error),
        _ => None,
    });
    assert_eq!(announced, Some(None), "B's first round ended and announced");

    let (a, a_rx) = common::swarm::spawn(swarm_config(false));
    a.bind(None).unwrap();
    a.join(topic, false, true).unwrap();
    let dialled = wait_for(&a_rx, Duration::from_secs(20), |ev| match ev {
        SwarmEvent::Connection { stream: ConnStream::Utp { peer_nat, .. }, client: true, .. } => Some(peer_nat),
        _ => None,
    });
    let peer_nat = dialled.expect("A dials B over punched uTP");
    // B's class as B computes it (loopback: its own address and port).
    let peer_nat = peer_nat.expect("B told its class");
    assert_eq!(peer_nat, b.stats().nat_type);
    eprintln!("B's NAT class as A learned it: {}", peer_nat.as_str());
    assert!(a.stats().peers_ours_seen >= 1);
    // Counters are copied from the DHT on the engine's stats clock.
    assert!(eventually(|| a.stats().dht.capabilities_learned >= 1));
    assert_eq!(a.stats().dht.capabilities_malformed, 0);

    let accepted = wait_for(&b_rx, Duration::from_secs(10), |ev| match ev {
        SwarmEvent::Connection { stream: ConnStream::Utp { peer_nat, .. }, client: false, .. } => Some(peer_nat),
        _ => None,
    });
    // B's connection is reported once A has sent (or B waits on data): the
    // record is learned either way.
    if let Some(peer_nat) = accepted {
        assert_eq!(peer_nat, None, "accepted details stay the seed's");
    }
    // (B's answer carried its record only because A's punch carried one.)
    assert!(eventually(|| b.stats().dht.capabilities_learned >= 1), "B learned A's record from the relayed punch");
    drop((a, b, members, boot));
}
