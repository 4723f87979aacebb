//! A standalone DHT node, e.g. a bootstrap node for a private network:
//!
//!     hyperswarm-dht --host 0.0.0.0 --port 49737 [--bootstrap host:port ...] [--ephemeral]
//!
//! With `--relay` it also runs a relay of last resort on a UDP port of
//! its own (`--relay-port`, default the DHT port + 1; see
//! `hyperswarm_native::relay`), and prints the relay's counters as one
//! JSON line (`relay stats {...}`) on SIGUSR1 and when it stops.
//!
//! Persistent by default (it stores announcements and appears in routing
//! tables). Logs to stderr (HYPERSWARM_NATIVE_LOG=debug for more); exits
//! cleanly (0) on SIGINT or SIGTERM, and with status 1 if the node task
//! dies, so that a supervisor restarts it rather than keep a dead node.
//! (HYPERSWARM_NATIVE_TEST_PANIC=node makes the node task panic at start:
//! a test hook.)

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;

use hyperswarm_native::dht::ops::Command;
use hyperswarm_native::dht::{DhtConfig, Limits};
use hyperswarm_native::io::{dht_node::DhtNode, relay::RelayServer, resolve};
use hyperswarm_native::relay::RelayConfig;

/// The `--help` text; the relay's defaults come from `RelayConfig`.
fn usage() -> String {
    let d = RelayConfig::default();
    format!(
        "usage: hyperswarm-dht [--host ADDR] [--port PORT] [--bootstrap HOST:PORT]... [--ephemeral] [--limit-scale N]
                     [--relay [--relay-port PORT] [--relay-max-pairs N] [--relay-max-waiting N] [--relay-max-per-ip N]
                      [--relay-max-per-subnet N] [--relay-rate BYTES_PER_S] [--relay-lifetime S] [--relay-wait S] [--relay-idle S]]

  --relay               also run a relay of last resort (it sees the bytes it carries, as a TURN server does)
  --relay-port PORT     its UDP port (default: --port + 1; 0 picks one)
  --relay-max-pairs N   paired sessions at most (default {})
  --relay-max-waiting N sessions waiting for their partner at most (default {})
  --relay-max-per-ip N  sessions one IP may be a party to (default {})
  --relay-max-per-subnet N  sessions the IPs of one /24 may be parties to (default {})
  --relay-rate B        bytes a second per pair, both ways together (default {})
  --relay-lifetime S    a pair ends after S seconds (default {})
  --relay-wait S        a session without a partner ends after S seconds (default {})
  --relay-idle S        a pair with no traffic ends after S seconds (default {})
  SIGUSR1 prints the relay's counters as `relay stats {{json}}` on stderr",
        d.max_pairs,
        d.max_waiting,
        d.max_per_ip,
        d.max_per_subnet,
        d.rate,
        d.pair_lifetime.as_secs(),
        d.wait_lifetime.as_secs(),
        d.idle_timeout.as_secs()
    )
}

struct Args {
    host: Ipv4Addr,
    port: u16,
    bootstrap: Vec<String>,
    ephemeral: bool,
    /// Multiplies the per-source limits (`Limits::scaled`): for testnets.
    limit_scale: u32,
    /// `--relay`: the relay's caps (and `relay_port`), or no relay.
    relay: Option<RelayConfig>,
    relay_port: Option<u16>,
}

/// A number of a `--relay-*` flag, at least 1.
fn positive<T: std::str::FromStr + PartialEq + Default>(name: &str, v: String) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n != T::default() => Ok(n),
        _ => Err(format!("{name} needs a whole number of at least 1")),
    }
}

fn parse() -> Result<Args, String> {
    let mut args = Args { host: Ipv4Addr::UNSPECIFIED, port: 49737, bootstrap: Vec::new(), ephemeral: false, limit_scale: 1, relay: None, relay_port: None };
    let mut relay = RelayConfig::default();
    let mut relay_flags = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let secs = |n: u64| std::time::Duration::from_secs(n);
        relay_flags |= a.starts_with("--relay-");
        match a.as_str() {
            "--relay" => args.relay = Some(RelayConfig::default()),
            "--relay-port" => args.relay_port = Some(value(&a)?.parse().map_err(|e| format!("--relay-port: {e}"))?),
            "--relay-max-pairs" => relay.max_pairs = positive(&a, value(&a)?)?,
            "--relay-max-waiting" => relay.max_waiting = positive(&a, value(&a)?)?,
            "--relay-max-per-ip" => relay.max_per_ip = positive(&a, value(&a)?)?,
            "--relay-max-per-subnet" => relay.max_per_subnet = positive(&a, value(&a)?)?,
            "--relay-rate" => relay.rate = positive(&a, value(&a)?)?,
            "--relay-lifetime" => relay.pair_lifetime = secs(positive(&a, value(&a)?)?),
            "--relay-wait" => relay.wait_lifetime = secs(positive(&a, value(&a)?)?),
            "--relay-idle" => relay.idle_timeout = secs(positive(&a, value(&a)?)?),
            "--host" => args.host = value("--host")?.parse().map_err(|e| format!("--host: {e}"))?,
            "--port" => args.port = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--bootstrap" => args.bootstrap.push(value("--bootstrap")?),
            "--ephemeral" => args.ephemeral = true,
            "--limit-scale" => {
                args.limit_scale = value("--limit-scale")?.parse().map_err(|e| format!("--limit-scale: {e}"))?;
                if args.limit_scale == 0 {
                    return Err("--limit-scale must be at least 1".into());
                }
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    match args.relay {
        Some(_) => args.relay = Some(relay),
        None if relay_flags || args.relay_port.is_some() => return Err("the --relay-* options need --relay".into()),
        None => {}
    }
    Ok(args)
}

fn main() -> ExitCode {
    if std::env::var_os(hyperswarm_native::log::LOG_ENV).is_none() {
        std::env::set_var(hyperswarm_native::log::LOG_ENV, "info");
    }
    hyperswarm_native::log::init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let bootstrap = match resolve::bootstrap(&args.bootstrap).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot resolve bootstrap nodes: {e}");
                return ExitCode::FAILURE;
            }
        };
        let config = DhtConfig { id: None, ephemeral: args.ephemeral, adaptive: false, bootstrap, seed: rand::random() };
        let node = match DhtNode::spawn_with_limits(SocketAddrV4::new(args.host, args.port), config, Limits::scaled(args.limit_scale)) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("cannot bind {}:{}: {e}", args.host, args.port);
                return ExitCode::FAILURE;
            }
        };
        let mut node = node;
        let mut relay = match args.relay.clone() {
            None => None,
            Some(config) => {
                // The DHT port's neighbour by default: one fixed port to
                // open in a firewall and to announce, next to the node's.
                let port = args.relay_port.unwrap_or(if args.port == 0 { 0 } else { args.port.wrapping_add(1) });
                match RelayServer::spawn(SocketAddrV4::new(args.host, port), config) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        eprintln!("cannot bind the relay on {}:{port}: {e}", args.host);
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        // Signal handlers go in before the line that says we run, so that a
        // supervisor that stops us as soon as it reads it gets a clean exit.
        use tokio::signal::unix::{signal, SignalKind};
        let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot watch SIGINT/SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot watch SIGUSR1: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(r) = &relay {
            eprintln!("hyperswarm-dht relay on {}", r.local_addr());
        }
        eprintln!("hyperswarm-dht listening on {}", node.local_addr());
        if std::env::var("HYPERSWARM_NATIVE_TEST_PANIC").as_deref() == Ok("node") {
            node.inject_panic();
        }
        let stats = relay.as_ref().map(|r| r.stats_reader());
        // A relay announces its relay port on the relay topic, where swarms
        // of ours look (`relay::rendezvous`): soon after the start, again
        // as the routing table fills, then within the records' lifetime.
        let relay_port = relay.as_ref().map(|r| r.local_addr().port());
        let mut announces = 0u32;
        let announce_at = |n: u32| tokio::time::Instant::now() + hyperswarm_native::relay::rendezvous::announce_delay(n);
        let announce = tokio::time::sleep_until(announce_at(0));
        tokio::pin!(announce);
        let outcome = {
            let relay_died = async {
                match relay.as_mut() {
                    Some(r) => r.died().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(relay_died);
            loop {
                tokio::select! {
                    _ = int.recv() => break Ok(()),
                    _ = term.recv() => break Ok(()),
                    _ = usr1.recv() => {
                        if let Some(s) = &stats {
                            eprintln!("relay stats {}", s.get().to_json());
                        }
                    }
                    _ = &mut announce, if relay_port.is_some() => {
                        let topic = hyperswarm_native::relay::rendezvous::relay_topic();
                        let port = relay_port.unwrap_or(0);
                        if let Err(e) = node.command(Command::Announce { request: announces, topic, port, local_address: None }) {
                            eprintln!("cannot announce the relay: {e}");
                        }
                        announces = announces.saturating_add(1);
                        announce.as_mut().reset(announce_at(announces));
                    }
                    _ = node.died() => break Err("the DHT node task"),
                    _ = &mut relay_died => break Err("the relay task"),
                }
            }
        };
        if let Err(what) = outcome {
            eprintln!("hyperswarm-dht: {what} died; exiting");
            return ExitCode::FAILURE;
        }
        if let Some(r) = relay.take() {
            eprintln!("relay stats {}", r.stats().to_json());
            r.shutdown().await;
        }
        let info = node.info();
        node.shutdown().await;
        eprintln!("hyperswarm-dht stopped ({} nodes known, {} datagrams received)", info.nodes, info.stats.received);
        ExitCode::SUCCESS
    })
}
