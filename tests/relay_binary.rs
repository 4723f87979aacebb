//! The Rust relay client against the real `hyperswarm-dht --relay` over
//! loopback UDP (run inside `unshare -n`, as `npm test` runs every Rust
//! test): two clients pair and exchange data both ways, a third pair beyond
//! `--relay-max-pairs 1` is refused with its reason, and the relay's
//! closing `relay stats` line counts all three.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hyperswarm_native::relay::{ClientEvent, Refusal, RelayClient, RelayError};

/// A client on its own loopback socket.
struct Peer {
    socket: UdpSocket,
    client: RelayClient,
    events: Vec<ClientEvent>,
}

impl Peer {
    fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Peer { socket, client: RelayClient::new(), events: Vec::new() }
    }

    /// Sends what is queued, reads what arrived, runs the timers.
    fn step(&mut self) {
        let now = Instant::now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        while let Some((to, bytes)) = self.client.poll_transmit() {
            self.socket.send_to(&bytes, to).unwrap();
        }
        let mut buf = [0u8; 2048];
        while let Ok((n, SocketAddr::V4(from))) = self.socket.recv_from(&mut buf) {
            self.client.handle_datagram(Instant::now(), from, &buf[..n]);
        }
        self.events.extend(std::iter::from_fn(|| self.client.poll_event()));
    }
}

/// Steps every peer until `done` holds, for at most 5 s.
fn until(peers: &mut [&mut Peer], what: &str, mut done: impl FnMut(&[&mut Peer]) -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !done(peers) {
        assert!(Instant::now() < end, "no {what} within 5 s");
        for p in peers.iter_mut() {
            p.step();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn two_rust_clients_pair_through_the_binary_and_a_pair_beyond_the_cap_is_refused() {
    let mut relay = Command::new(env!("CARGO_BIN_EXE_hyperswarm-dht"))
        .args(["--host", "127.0.0.1", "--port", "0", "--ephemeral", "--relay", "--relay-port", "0", "--relay-max-pairs", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("hyperswarm-dht runs");
    let (lines_tx, lines) = mpsc::channel();
    let stderr = relay.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut at: Option<SocketAddrV4> = None;
    let mut log = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        if let Some(a) = line.strip_prefix("hyperswarm-dht relay on ") {
            at = Some(a.parse().unwrap());
        }
        let listening = line.contains("listening on");
        log.push(line);
        if listening {
            break;
        }
    }
    let at = at.unwrap_or_else(|| panic!("no relay address in {log:?}"));

    let (mut a, mut b, mut c) = (Peer::new(), Peer::new(), Peer::new());
    let t = [7u8; 32];
    a.client.join(Instant::now(), at, t).unwrap();
    b.client.join(Instant::now(), at, t).unwrap();
    until(&mut [&mut a, &mut b], "pair", |p| p.iter().all(|p| p.events.contains(&ClientEvent::Paired { token: t })));
    a.client.send(Instant::now(), &t, b"over the relay, a to b").unwrap();
    b.client.send(Instant::now(), &t, b"and b to a").unwrap();
    let got = |p: &Peer, text: &[u8]| p.events.contains(&ClientEvent::Data { token: t, payload: text.to_vec() });
    until(&mut [&mut a, &mut b], "data both ways", |p| got(p[1], b"over the relay, a to b") && got(p[0], b"and b to a"));

    c.client.join(Instant::now(), at, [8u8; 32]).unwrap();
    until(&mut [&mut c], "refusal", |p| !p[0].events.is_empty());
    assert_eq!(c.events, vec![ClientEvent::Failed { token: [8; 32], error: RelayError::Refused(Refusal::Full) }]);

    // SIGTERM: the relay prints its counters and exits cleanly.
    unsafe { libc::kill(relay.id() as i32, libc::SIGTERM) };
    let status = relay.wait().unwrap();
    let rest: Vec<String> = lines.iter().collect();
    assert!(status.success(), "{status:?} {rest:?}");
    let stats = rest.iter().find_map(|l| l.strip_prefix("relay stats ")).unwrap_or_else(|| panic!("no stats in {rest:?}"));
    let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
    assert_eq!((stats["pairsFormed"].as_u64(), stats["refusedFull"].as_u64(), stats["forwarded"].as_u64()), (Some(1), Some(1), Some(2)));
}
