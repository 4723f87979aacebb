//! A panic in the engine task is reported, not silent (issue 10): the
//! owner hears `Failed` and then `Closed`, and the handle refuses new work.
//! Opens no socket (the swarm never binds), so it runs anywhere.

use std::sync::mpsc;
use std::time::Duration;

use hyperswarm_native::swarm::{Swarm, SwarmConfig, SwarmError, SwarmEvent};

#[test]
fn an_engine_panic_reports_failed_then_closed() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let config = SwarmConfig { multicast: false, bootstrap: Some(vec![]), ..SwarmConfig::default() };
    let swarm = Swarm::spawn(config, Box::new(move |ev| {
        let _ = tx.lock().unwrap().send(ev);
    }));
    // Control: the engine is alive and answers commands before the panic.
    assert!(swarm.ping_bootstrap(1).is_ok());
    swarm.inject_panic();
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(SwarmEvent::Failed(m)) => seen.push(format!("failed: {m}")),
            Ok(SwarmEvent::Closed) => {
                seen.push("closed".into());
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no Closed within 5 s ({e}); saw {seen:?}"),
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].starts_with("failed: swarm engine failed: injected test panic"), "{seen:?}");
    assert_eq!(seen[1], "closed");
    // The dead engine takes no more commands.
    let err = swarm.join([1; 32], true, true).unwrap_err();
    assert!(matches!(err, SwarmError::Destroyed), "{err}");
}
