//! A standalone DHT node, e.g. a bootstrap node for a private network:
//!
//!     hyperswarm-dht --host 0.0.0.0 --port 49737 [--bootstrap host:port ...] [--ephemeral]
//!
//! Persistent by default (it stores announcements and appears in routing
//! tables). Logs to stderr (HYPERSWARM_NATIVE_LOG=debug for more); exits
//! cleanly (0) on SIGINT or SIGTERM, and with status 1 if the node task
//! dies, so that a supervisor restarts it rather than keep a dead node.
//! (HYPERSWARM_NATIVE_TEST_PANIC=node makes the node task panic at start:
//! a test hook.)

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;

use hyperswarm_native::dht::{DhtConfig, Limits};
use hyperswarm_native::io::{dht_node::DhtNode, resolve};

const USAGE: &str = "usage: hyperswarm-dht [--host ADDR] [--port PORT] [--bootstrap HOST:PORT]... [--ephemeral] [--limit-scale N]";

struct Args {
    host: Ipv4Addr,
    port: u16,
    bootstrap: Vec<String>,
    ephemeral: bool,
    /// Multiplies the per-source limits (`Limits::scaled`): for testnets.
    limit_scale: u32,
}

fn parse() -> Result<Args, String> {
    let mut args = Args { host: Ipv4Addr::UNSPECIFIED, port: 49737, bootstrap: Vec::new(), ephemeral: false, limit_scale: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
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
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
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
        eprintln!("hyperswarm-dht listening on {}", node.local_addr());
        if std::env::var("HYPERSWARM_NATIVE_TEST_PANIC").as_deref() == Ok("node") {
            node.inject_panic();
        }
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = node.died() => {
                eprintln!("hyperswarm-dht: the DHT node task died; exiting");
                return ExitCode::FAILURE;
            }
        }
        let info = node.info();
        node.shutdown().await;
        eprintln!("hyperswarm-dht stopped ({} nodes known, {} datagrams received)", info.nodes, info.stats.received);
        ExitCode::SUCCESS
    })
}
