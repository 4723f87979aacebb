//! The crate's `Connection`: tokio's AsyncRead + AsyncWrite over TCP and
//! over uTP (the adapter on the engine's credit protocol). Two swarms on
//! loopback, one dialling the other directly (`connect`, no discovery);
//! more than one read grant (1 MiB) goes each way, so the uTP adapter's
//! grants and its one-write-in-flight backpressure are both exercised.
//! Loopback only: the test refuses to run outside a fresh network
//! namespace (`unshare -n`, as `npm test` makes).

use std::time::Duration;

use hyperswarm_native::{Connection, Event, Peer, Swarm, SwarmConfig, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// Bytes sent each way: three of the engine's 1 MiB read grants.
const SIZE: usize = 3 * 1024 * 1024 + 12345;
const WAIT: Duration = Duration::from_secs(20);

/// Only `lo` in this network namespace (/proc/net is per namespace; /sys
/// is not, without a mount namespace of its own).
fn assert_isolated() {
    let dev = std::fs::read_to_string("/proc/net/dev").expect("read /proc/net/dev");
    let real: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).filter(|n| *n != "lo").collect();
    assert!(real.is_empty(), "refusing to run next to real interfaces {real:?}: run inside `unshare -n` (npm test does)");
}

fn swarm() -> Swarm {
    Swarm::new(SwarmConfig { multicast: false, bootstrap: Some(vec![]), ..SwarmConfig::default() })
}

fn local(port: u16) -> Peer {
    Peer { host: "127.0.0.1".into(), port, local: true, referrer: None, topic: None, to: None }
}

async fn accepted(swarm: &mut Swarm) -> Connection {
    let wait = async {
        loop {
            match swarm.next_event().await {
                Some(Event::Connection(c)) => return c,
                Some(_) => {}
                None => panic!("the swarm closed"),
            }
        }
    };
    timeout(WAIT, wait).await.expect("no incoming connection")
}

/// A dialled and an accepted connection over `transport`.
async fn pair(transport: Transport) -> (Swarm, Swarm, Connection, Connection) {
    assert_isolated();
    let mut server = swarm();
    let client = swarm();
    let port = server.bind().unwrap();
    client.bind().unwrap();
    if transport == Transport::Utp {
        // A LAN peer whose TCP refuses is dialled over uTP directly.
        assert_eq!(server.engine().set_tcp_listening(false).ok(), Some(true));
    }
    let dialled = timeout(WAIT, client.connect(local(port))).await.expect("dial timed out").expect("dial failed");
    let incoming = accepted(&mut server).await;
    assert_eq!(dialled.transport(), transport);
    assert_eq!(incoming.transport(), transport);
    assert!(dialled.is_client() && !incoming.is_client());
    assert_eq!(dialled.peer_addr().port(), port);
    (server, client, dialled, incoming)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7919) as u8).collect()
}

/// The server echoes until end-of-file, then ends too; the client writes
/// while it reads back, and must get its own bytes and then end-of-file.
async fn echo_round_trip(mut dialled: Connection, mut incoming: Connection) {
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            let n = incoming.read(&mut buf).await.expect("server read");
            if n == 0 {
                break;
            }
            total += n;
            incoming.write_all(&buf[..n]).await.expect("server write");
        }
        incoming.shutdown().await.expect("server shutdown");
        total
    });
    let sent = pattern(SIZE);
    let (mut rd, mut wr) = tokio::io::split(&mut dialled);
    let write = async {
        // Odd-sized writes, bigger than one uTP write chunk.
        for chunk in sent.chunks(100_003) {
            wr.write_all(chunk).await.expect("client write");
        }
        wr.shutdown().await.expect("client shutdown");
    };
    let read = async {
        let mut back = Vec::with_capacity(SIZE);
        rd.read_to_end(&mut back).await.expect("client read");
        back
    };
    let ((), back) = timeout(Duration::from_secs(60), async { tokio::join!(write, read) }).await.expect("echo timed out");
    assert_eq!(back.len(), SIZE, "all bytes came back");
    assert!(back == sent, "the bytes came back in order and intact");
    assert_eq!(timeout(WAIT, echo).await.expect("server end").unwrap(), SIZE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_echoes_and_ends() {
    let (_s, _c, dialled, incoming) = pair(Transport::Tcp).await;
    echo_round_trip(dialled, incoming).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utp_connection_echoes_and_ends() {
    let (_s, _c, dialled, incoming) = pair(Transport::Utp).await;
    echo_round_trip(dialled, incoming).await;
}

#[tokio::test(flavor = "current_thread")]
async fn utp_on_a_current_thread_runtime_too() {
    let (_s, _c, mut dialled, mut incoming) = pair(Transport::Utp).await;
    dialled.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    timeout(WAIT, incoming.read_exact(&mut got)).await.expect("read timed out").unwrap();
    assert_eq!(&got, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_utp_connection_ends_it_for_the_peer_after_its_data() {
    let (_s, _c, mut dialled, mut incoming) = pair(Transport::Utp).await;
    let sent = pattern(200_000);
    dialled.write_all(&sent).await.unwrap();
    // No flush, no shutdown: the last chunk may still be in flight.
    drop(dialled);
    let mut got = Vec::new();
    timeout(WAIT, incoming.read_to_end(&mut got)).await.expect("no end-of-file after the drop").unwrap();
    assert!(got == sent, "everything written before the drop arrived ({} of {} bytes)", got.len(), sent.len());
    // Writing back to a peer that dropped: ends in an error or is
    // discarded, never hangs.
    let _ = timeout(WAIT, incoming.write_all(b"late")).await.expect("write to a dropped peer hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroying_the_swarm_closes_its_utp_connections() {
    let (server, _c, _dialled, mut incoming) = pair(Transport::Utp).await;
    server.destroy();
    let mut buf = [0u8; 8];
    let r = timeout(WAIT, incoming.read(&mut buf)).await.expect("read hung after destroy");
    assert!(r.is_err(), "a read on a destroyed swarm's connection fails: {r:?}");
    assert!(incoming.write_all(b"x").await.is_err());
}
