//! A LAN peer that refuses TCP is dialled over uTP directly (ours only; the
//! reference dials LAN peers over TCP alone): a swarm whose TCP is stopped,
//! as hyperswarm's `maxServerSockets` stops it when TCP is full, is still
//! reached. A peer off the LAN is not tried this way, and a LAN peer that
//! is gone costs about a second and fails with TCP's refusal. Loopback only
//! (127.0.0.1, inside the test namespace `npm test` makes).

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::swarm::wait_for;
use hyperswarm_native::swarm::{ConnStream, ConnectError, Peer, Swarm, SwarmConfig, SwarmEvent};

fn swarm() -> (Swarm, mpsc::Receiver<SwarmEvent>) {
    common::swarm::spawn(SwarmConfig { multicast: false, bootstrap: Some(vec![]), ..SwarmConfig::default() })
}

fn peer(port: u16, local: bool) -> Peer {
    Peer { host: "127.0.0.1".into(), port, local, referrer: None, topic: None, to: None }
}

/// The answer to dial `request`, and how long it took to come.
fn answer(rx: &mpsc::Receiver<SwarmEvent>, request: u32, started: Instant) -> (Result<(u64, ConnStream), ConnectError>, Duration) {
    let within = Duration::from_secs(12).saturating_sub(started.elapsed());
    let result = wait_for(rx, within, |ev| match ev {
        SwarmEvent::Connected { request: r, result, .. } if r == request => Some(result),
        _ => None,
    });
    (result.unwrap_or_else(|| panic!("no answer to dial {request} within 12 s")), started.elapsed())
}

fn accepted_utp(rx: &mpsc::Receiver<SwarmEvent>) -> bool {
    let utp = |ev| matches!(ev, SwarmEvent::Connection { stream: ConnStream::Utp { .. }, client: false, .. }).then_some(());
    wait_for(rx, Duration::from_secs(5), utp).is_some()
}

#[test]
fn a_lan_peer_refusing_tcp_is_reached_over_utp_and_no_other_peer_is() {
    let (a, a_rx) = swarm();
    let (b, b_rx) = swarm();
    a.bind(None).unwrap();
    let port = b.bind(None).unwrap();

    // Control: with TCP listening, the dial is TCP.
    let t = Instant::now();
    a.connect(1, peer(port, true)).unwrap();
    let (result, _) = answer(&a_rx, 1, t);
    assert!(matches!(result, Ok((_, ConnStream::Tcp(_)))), "control: TCP while B listens: {result:?}");

    assert_eq!(b.set_tcp_listening(false).ok(), Some(true));
    let t = Instant::now();
    a.connect(2, peer(port, true)).unwrap();
    let (result, took) = answer(&a_rx, 2, t);
    assert!(matches!(result, Ok((_, ConnStream::Utp { .. }))), "a LAN peer refusing TCP: {result:?}");
    assert!(took < Duration::from_secs(1), "over uTP in {took:?}");
    // Before A sends anything: our dialer proves its address with a STATE.
    assert!(accepted_utp(&b_rx), "B reports the uTP connection");

    // Off the LAN there may be a NAT to punch first: no direct uTP dial.
    let t = Instant::now();
    a.connect(3, peer(port, false)).unwrap();
    let (result, took) = answer(&a_rx, 3, t);
    let err = result.expect_err("a public peer refusing TCP, with no referrer");
    assert!(matches!(err, ConnectError::Failed { errno: Some(libc::ECONNREFUSED), .. }), "TCP's error: {err}");
    assert_eq!(err.code(), "ECONNFAILED");
    assert!(took < Duration::from_millis(500), "at once: {took:?}");
    drop((a, b));
}

#[test]
fn a_gone_lan_peer_fails_with_tcp_refusal_after_about_a_second() {
    let (a, a_rx) = swarm();
    a.bind(None).unwrap();
    // A port with nothing on it: TCP refuses, and no uTP answers.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = Instant::now();
    a.connect(1, peer(port, true)).unwrap();
    let (result, took) = answer(&a_rx, 1, t);
    let err = result.expect_err("nobody is there");
    assert!(matches!(err, ConnectError::Failed { errno: Some(libc::ECONNREFUSED), .. }), "the dial fails with TCP's refusal: {err}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "one uTP try of about 1 s: {took:?}");
    drop(a);
}
