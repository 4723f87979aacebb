//! The process's one mDNS socket (src/io/mdns_hub.rs): datagrams reach the
//! swarms in creation order, each after the one before has handled it; a
//! stalled swarm holds the others up for at most HANDOFF_TIMEOUT; a swarm
//! is not handed what arrived before it joined; a swarm that never reads
//! holds at most MEMBER_QUEUE datagrams.
//!
//! Multicasts on the loopback interface, so it refuses to run anywhere but
//! a loopback-only network namespace (`npm test` runs cargo in one; by hand:
//! `unshare -rn sh -c 'ip link set lo up && cargo test --test mdns_hub'`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyperswarm_native::io::mdns_hub::{self, Datagram, Member, HANDOFF_TIMEOUT};
use hyperswarm_native::io::runtime;

fn assert_loopback_only() {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    let others: Vec<&str> =
        dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).filter(|n| *n != "lo").collect();
    assert!(others.is_empty(), "this test multicasts: run it in a loopback-only namespace (found {others:?})");
}

type Log = Arc<Mutex<Vec<(&'static str, Vec<u8>, Instant)>>>;

/// Runs a member: logs each datagram with its name, then lets the next
/// swarm have it after `hold`.
fn serve(mut m: Member, name: &'static str, hold: Duration, log: Log) {
    tokio::spawn(async move {
        while let Some(Datagram { bytes, done, .. }) = m.recv().await {
            log.lock().unwrap().push((name, bytes.to_vec(), Instant::now()));
            tokio::time::sleep(hold).await;
            let _ = done.send(());
        }
    });
}

async fn wait_for(log: &Log, payload: &[u8], n: usize, within: Duration) -> Vec<(&'static str, Instant)> {
    let end = Instant::now() + within;
    loop {
        let got: Vec<_> = log.lock().unwrap().iter().filter(|(_, b, _)| b == payload).map(|(n, _, at)| (*n, *at)).collect();
        if got.len() >= n || Instant::now() >= end {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn datagrams_reach_swarms_in_creation_order_one_after_the_other() {
    assert_loopback_only();
    runtime::handle().block_on(async {
        let log: Log = Arc::default();
        let hold = Duration::from_millis(5);
        let a = mdns_hub::join().unwrap();
        let socket = a.socket().clone();
        serve(a, "a", hold, log.clone());
        serve(mdns_hub::join().unwrap(), "b", hold, log.clone());
        serve(mdns_hub::join().unwrap(), "c", hold, log.clone());

        // In order, and each only after the one before let go of it.
        let one = b"hub-test-one".to_vec();
        assert!(socket.send_via(&one, None) > 0, "sent on some interface");
        let got = wait_for(&log, &one, 3, Duration::from_secs(2)).await;
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(got[1].1 - got[0].1 >= hold && got[2].1 - got[1].1 >= hold, "handed on before the one before was done");

        // A swarm that stalls holds the next one up for HANDOFF_TIMEOUT, no
        // longer. A swarm created while a datagram waits unread (the hub is
        // held up by the stalled one) is not handed it, as its own socket
        // would not have held it, but gets the next one.
        let stalled = mdns_hub::join().unwrap();
        let (two, three, four) = (b"hub-test-two".to_vec(), b"hub-test-three".to_vec(), b"hub-test-four".to_vec());
        let t0 = Instant::now();
        socket.send_via(&two, None);
        socket.send_via(&three, None);
        tokio::time::sleep(Duration::from_millis(10)).await;
        serve(mdns_hub::join().unwrap(), "late", Duration::ZERO, log.clone());
        let got = wait_for(&log, &three, 3, Duration::from_secs(2)).await;
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["a", "b", "c"]);
        let waited = got[0].1 - t0;
        assert!(waited >= HANDOFF_TIMEOUT && waited < HANDOFF_TIMEOUT + Duration::from_secs(1), "{waited:?}");
        let t1 = Instant::now();
        socket.send_via(&four, None);
        let got = wait_for(&log, &four, 4, Duration::from_secs(2)).await;
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["a", "b", "c", "late"]);
        assert!(got[3].1 - t1 >= HANDOFF_TIMEOUT, "the stalled swarm was skipped without waiting");
        // Three never reached the late swarm (it came in before it joined).
        tokio::time::sleep(HANDOFF_TIMEOUT).await;
        assert!(!log.lock().unwrap().iter().any(|(n, b, _)| *n == "late" && (b == &three || b == &two)));
        drop(stalled);

        // Past MEMBER_QUEUE: a swarm that never reads holds exactly that
        // many datagrams and misses the rest; the live swarms get them all.
        let mut never = mdns_hub::join().unwrap();
        let n = mdns_hub::MEMBER_QUEUE + 20;
        for i in 0..n {
            socket.send_via(format!("hub-test-flood-{i}").as_bytes(), None);
        }
        let last = format!("hub-test-flood-{}", n - 1).into_bytes();
        let got = wait_for(&log, &last, 4, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 4, "every live swarm got the last datagram");
        // The stalled swarm is last in creation order: let the hub offer it
        // the last datagram before reading frees a place.
        tokio::time::sleep(2 * HANDOFF_TIMEOUT).await;
        let mut held = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), never.recv()).await {
            held += 1;
        }
        assert_eq!(held, mdns_hub::MEMBER_QUEUE, "the stalled swarm's queue is bounded");
    });
}
