//! Joins a topic, announcing and looking it up, and echoes every byte it
//! receives back on every connection, until interrupted.
//!
//! ```text
//! cargo run --release --example echo -- --topic <64 hex digits> \
//!     --bootstrap <host:port> [--bootstrap <host:port> ...] [--no-multicast]
//! ```
//!
//! One line per connection goes to stderr. SIGINT or SIGTERM destroys the
//! swarm and exits with status 0. Without `--bootstrap` the swarm uses the
//! reference's public bootstrap nodes.

use std::process::ExitCode;
use std::time::Duration;

use hyperswarm_native::{Connection, Event, JoinOptions, Swarm, SwarmConfig, Topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: echo --topic <64 hex digits> [--bootstrap <host:port>]... [--no-multicast]";

fn parse_topic(hex: &str) -> Result<Topic, String> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("--topic takes 64 hex digits, got {}", bytes.len()));
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8).ok_or_else(|| format!("--topic: not a hex digit: {:?}", c as char));
    let mut topic = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        topic[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(topic)
}

fn parse_args() -> Result<(Topic, SwarmConfig), String> {
    let mut topic = None;
    let mut bootstrap = Vec::new();
    let mut config = SwarmConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--topic" => topic = Some(parse_topic(&args.next().ok_or("--topic needs a value")?)?),
            "--bootstrap" => bootstrap.push(args.next().ok_or("--bootstrap needs host:port")?),
            "--no-multicast" => config.multicast = false,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if !bootstrap.is_empty() {
        config.bootstrap = Some(bootstrap);
    }
    Ok((topic.ok_or(USAGE)?, config))
}

/// Writes back what comes in until the peer ends, then ends too.
async fn echo(mut conn: Connection) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n]).await?;
        total += n as u64;
    }
    conn.shutdown().await?;
    Ok(total)
}

#[tokio::main]
async fn main() -> ExitCode {
    let (topic, config) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut swarm = Swarm::new(config);
    if let Err(e) = swarm.join(topic, JoinOptions::BOTH) {
        eprintln!("cannot join: {e}");
        return ExitCode::FAILURE;
    }
    let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            eprintln!("cannot listen for signals");
            return ExitCode::FAILURE;
        }
    };
    let mut count = 0u64;
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            event = swarm.next_event() => match event {
                Some(Event::Connection(conn)) => {
                    count += 1;
                    let side = if conn.is_client() { "dialled" } else { "accepted" };
                    eprintln!("connection {count}: {side} {:?} {}", conn.transport(), conn.peer_addr());
                    tokio::spawn(echo(conn));
                }
                Some(Event::Error(e)) => eprintln!("error: {e}"),
                Some(Event::Closed) | None => return ExitCode::FAILURE,
                Some(_) => {}
            },
        }
    }
    swarm.destroy();
    // Wait for the sockets to close, briefly: exiting closes them anyway.
    let closed = async { while !matches!(swarm.next_event().await, Some(Event::Closed) | None) {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
    ExitCode::SUCCESS
}
