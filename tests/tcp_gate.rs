//! The swarm's TCP listener stopped and restarted from the caller's thread
//! (`Swarm::set_tcp_listening`, used by `close()` and `nw.tcp.close()`):
//! refused from the moment the call returns, accepted again after, on the
//! same port, over several cycles. Loopback only (127.0.0.1, inside the
//! test namespace `npm test` makes).

mod common;

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::swarm::{spawn, wait_for};
use hyperswarm_native::swarm::{SwarmConfig, SwarmEvent};

fn accepted(rx: &mpsc::Receiver<SwarmEvent>) -> bool {
    wait_for(rx, Duration::from_secs(5), |ev| matches!(ev, SwarmEvent::Connection { client: false, .. }).then_some(())).is_some()
}

#[test]
fn tcp_listening_stops_at_once_and_comes_back_on_the_same_port() {
    let (swarm, rx) = spawn(SwarmConfig { multicast: false, bootstrap: Some(vec![]), ..SwarmConfig::default() });
    assert_eq!(swarm.set_tcp_listening(false).map_err(|e| e.to_string()), Ok(false), "nothing to stop before bind");
    let port = swarm.bind(None).unwrap();
    let _first = TcpStream::connect(("127.0.0.1", port)).expect("control: listening");
    assert!(accepted(&rx), "control: the engine accepts");
    for cycle in 0..3 {
        assert_eq!(swarm.set_tcp_listening(false).map_err(|e| e.to_string()), Ok(true));
        let err = TcpStream::connect(("127.0.0.1", port)).expect_err("refused while stopped");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "cycle {cycle}");
        assert_eq!(swarm.set_tcp_listening(false).map_err(|e| e.to_string()), Ok(false), "already stopped");
        assert_eq!(swarm.set_tcp_listening(true).map_err(|e| e.to_string()), Ok(true));
        assert_eq!(swarm.port(), Some(port));
        let _c = TcpStream::connect(("127.0.0.1", port)).expect("listening again");
        assert!(accepted(&rx), "cycle {cycle}: accepted again");
    }
    // A command the engine handles just before it hears of a restart (here
    // a connection's end, as JS sends when a socket closes and a slot
    // frees): the loop must not poll the stale registration meanwhile.
    for _ in 0..5 {
        assert_eq!(swarm.set_tcp_listening(false).map_err(|e| e.to_string()), Ok(true));
        swarm.connection_closed(u64::MAX);
        assert_eq!(swarm.set_tcp_listening(true).map_err(|e| e.to_string()), Ok(true));
    }
    // Stops and restarts faster than the engine can keep up: some land
    // between an accept's creation and its poll, which must not leave it
    // spinning on the stop's read-closed mark (src/swarm/engine.rs `accept`).
    for _ in 0..300 {
        assert_eq!(swarm.set_tcp_listening(false).map_err(|e| e.to_string()), Ok(true));
        assert_eq!(swarm.set_tcp_listening(true).map_err(|e| e.to_string()), Ok(true));
    }
    let _c = TcpStream::connect(("127.0.0.1", port)).expect("listening after the fast cycles");
    assert!(accepted(&rx), "accepted after the fast cycles");
    std::thread::sleep(Duration::from_millis(100));
    // Idle after the cycles: the engine must be waiting, not spinning on a
    // listener it polls for accepts (a spin would use the whole half second).
    let before = cpu_ms();
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ms() - before;
    assert!(used < 200, "the idle engine used {used} ms of CPU in 500 ms");
    drop(swarm);
}

/// This process's CPU time (user + system), from /proc/self/stat, in ms.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks * 10
}
