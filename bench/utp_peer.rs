//! A uTP peer on a real UDP socket, for interop tests and throughput
//! figures against utp-native (`__test__/utp.test.js`,
//! `bench/utp-throughput.js`). Runs our sans-IO `Endpoint` on a tokio
//! socket: one connection, sends N pseudo-random bytes, shuts down its
//! write side, SHA-256s what it sends and receives, and prints one JSON
//! line when the connection closes.
//!
//! ```text
//! utp_peer server <bind ip:port> <send bytes> [timeout s] [--after-end]
//! utp_peer client <peer ip:port> <send bytes> [timeout s] [--after-end]
//! ```
//! `--after-end`: start sending only once the peer has finished sending
//! (tests half-close: all our data flows after the peer's FIN).
//! The server prints `{"listening":port}` first. Exit 0 on a clean close
//! with everything sent, 1 on a connection error, 2 on timeout, 3 when the
//! process sees a network interface other than `lo` (it only runs inside
//! the test's loopback-only namespace).

use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::utp::{looks_like_utp, ConnId, Endpoint, UtpConfig, UtpEvent};
use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Refuse to run where a real interface is visible (as bench/lib/guard.js).
fn only_loopback() -> bool {
    match std::fs::read_to_string("/proc/net/dev") {
        Ok(s) => s.lines().skip(2).filter_map(|l| l.split(':').next()).all(|n| n.trim() == "lo" || n.trim().is_empty()),
        Err(_) => false,
    }
}

struct Source {
    state: u64,
    buf: Vec<u8>,
    pos: usize,
    left: usize,
}

impl Source {
    fn new(total: usize, seed: u64) -> Self {
        Source { state: seed | 1, buf: Vec::new(), pos: 0, left: total }
    }

    /// The unsent part of the current chunk, refilled when used up.
    fn chunk(&mut self) -> &[u8] {
        if self.pos == self.buf.len() && self.left > 0 {
            let n = self.left.min(256 * 1024);
            self.buf.clear();
            while self.buf.len() < n {
                // xorshift64*
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                let v = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
                let k = (n - self.buf.len()).min(8);
                self.buf.extend_from_slice(&v[..k]);
            }
            self.left -= n;
            self.pos = 0;
        }
        &self.buf[self.pos..]
    }
}

struct App {
    id: Option<ConnId>,
    /// Hold our data until the peer's End.
    hold: bool,
    src: Source,
    to_send: usize,
    sent: usize,
    sent_hash: Sha256,
    recv_hash: Sha256,
    received: usize,
    shut: bool,
    started: Option<Instant>,
    sent_all_at: Option<Instant>,
    end_at: Option<Instant>,
    closed: Option<Option<String>>,
}

impl App {
    fn pump_writes(&mut self, ep: &mut Endpoint, now: Instant) {
        let Some(id) = self.id else { return };
        if self.hold {
            return;
        }
        while self.sent < self.to_send {
            let chunk = self.src.chunk();
            let n = ep.write(now, id, chunk);
            if n == 0 {
                return;
            }
            self.sent_hash.update(&chunk[..n]);
            self.src.pos += n;
            self.sent += n;
        }
        if !self.shut {
            self.shut = true;
            self.sent_all_at = Some(now);
            ep.shutdown(now, id);
        }
    }

    fn pump_reads(&mut self, ep: &mut Endpoint, buf: &mut Vec<u8>) {
        let Some(id) = self.id else { return };
        loop {
            buf.clear();
            let n = ep.read(id, buf, 1 << 20);
            if n == 0 {
                return;
            }
            self.recv_hash.update(&buf[..]);
            self.received += n;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let after_end = args.iter().any(|a| a == "--after-end");
    args.retain(|a| a != "--after-end");
    if args.len() < 4 || !matches!(args[1].as_str(), "server" | "client") {
        eprintln!("usage: utp_peer server|client <ip:port> <send bytes> [timeout s] [--after-end]");
        std::process::exit(64);
    }
    if !only_loopback() {
        eprintln!("refusing to run: this process sees interfaces other than lo; run it inside a loopback-only namespace");
        std::process::exit(3);
    }
    hyperswarm_native::log::init();
    let server = args[1] == "server";
    let target: SocketAddrV4 = args[2].parse().expect("ip:port");
    let to_send: usize = args[3].parse().expect("byte count");
    let timeout = Duration::from_secs(args.get(4).map_or(120, |s| s.parse().expect("seconds")));

    let bind: SocketAddr = if server { target.into() } else { "127.0.0.1:0".parse().unwrap() };
    let sock = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).unwrap();
        // Deep socket buffers: bursts of a 1 MiB window must not overflow
        // the kernel's default ~200 KiB (the kernel caps these at rmem_max).
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.set_nonblocking(true).unwrap();
        s.bind(&bind.into()).expect("bind");
        UdpSocket::from_std(s.into()).unwrap()
    };
    let local = sock.local_addr().unwrap();
    if server {
        println!("{{\"listening\":{}}}", local.port());
    }

    let seed = if server { 0x5e7e_2000 } else { 0xc11e_1000 };
    let mut ep = Endpoint::new(UtpConfig::default(), seed ^ std::process::id() as u64);
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let mut app = App {
        id: None,
        hold: after_end,
        src: Source::new(to_send, seed),
        to_send,
        sent: 0,
        sent_hash: Sha256::new(),
        recv_hash: Sha256::new(),
        received: 0,
        shut: false,
        started: None,
        sent_all_at: None,
        end_at: None,
        closed: None,
    };
    if !server {
        app.id = Some(ep.connect(Instant::now(), target));
    }
    if !server {
        ep.set_accepting(false);
    }

    let mut rbuf = vec![0u8; 65536];
    let mut readbuf = Vec::with_capacity(1 << 20);
    let mut pending: Option<(SocketAddrV4, Vec<u8>)> = None;
    let mut datagrams_in = 0u64;
    let mut datagrams_out = 0u64;
    'main: loop {
        // Send everything queued.
        loop {
            let next = match pending.take() {
                Some(t) => t,
                None => match ep.poll_transmit() {
                    Some(t) => t,
                    None => break,
                },
            };
            match sock.try_send_to(&next.1, next.0.into()) {
                Ok(_) => datagrams_out += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    pending = Some(next);
                    break;
                }
                Err(e) => {
                    eprintln!("send: {e}");
                }
            }
        }
        // Events.
        let now = Instant::now();
        while let Some(ev) = ep.poll_event() {
            match ev {
                UtpEvent::Incoming { id, from } if app.id.is_none() => {
                    app.id = Some(id);
                    app.started = Some(now);
                    ep.set_accepting(false);
                    eprintln!("incoming from {from}");
                    app.pump_writes(&mut ep, now);
                }
                UtpEvent::Connected { id } if Some(id) == app.id => {
                    app.started = Some(now);
                    app.pump_writes(&mut ep, now);
                }
                UtpEvent::Writable { id } if Some(id) == app.id => app.pump_writes(&mut ep, now),
                UtpEvent::Readable { id } if Some(id) == app.id => app.pump_reads(&mut ep, &mut readbuf),
                UtpEvent::End { id } if Some(id) == app.id => {
                    app.end_at = Some(now);
                    app.hold = false;
                    app.pump_writes(&mut ep, now);
                }
                UtpEvent::Closed { id, error } if Some(id) == app.id => {
                    app.closed = Some(error);
                    break 'main;
                }
                _ => {}
            }
        }
        if pending.is_some() {
            // Socket full: wait until writable (or a datagram arrives).
            tokio::select! {
                _ = sock.writable() => {}
                _ = sock.readable() => {}
            }
        } else {
            let wake = ep.poll_timeout().map_or(deadline, |t| t.min(deadline));
            if Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                r = sock.readable() => { r.unwrap(); }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        // Drain the socket.
        let now = Instant::now();
        let mut got = 0;
        while got < 4096 {
            match sock.try_recv_from(&mut rbuf) {
                Ok((n, SocketAddr::V4(from))) => {
                    got += 1;
                    datagrams_in += 1;
                    if looks_like_utp(&rbuf[..n]) {
                        ep.handle_datagram(now, from, &rbuf[..n]);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("recv: {e}");
                    break;
                }
            }
        }
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
        if now >= deadline {
            break;
        }
    }
    // Flush what the close produced (final acks).
    while let Some((to, b)) = ep.poll_transmit() {
        let _ = sock.try_send_to(&b, to.into());
    }

    let end = Instant::now();
    let started = app.started.unwrap_or(t0);
    let secs = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(started).as_secs_f64());
    let error = match &app.closed {
        None => Some("timeout".to_string()),
        Some(e) => e.clone(),
    };
    let json_opt = |x: Option<f64>| x.map_or("null".to_string(), |v| format!("{v:.4}"));
    println!(
        "{{\"done\":true,\"sent\":{},\"received\":{},\"shaSent\":\"{}\",\"shaRecv\":\"{}\",\"secs\":{:.4},\"endSecs\":{},\"sentAllSecs\":{},\"error\":{},\"datagramsIn\":{},\"datagramsOut\":{},\"stats\":\"{:?}\"}}",
        app.sent,
        app.received,
        hex(&app.sent_hash.finalize()),
        hex(&app.recv_hash.finalize()),
        end.saturating_duration_since(started).as_secs_f64(),
        json_opt(secs(app.end_at)),
        json_opt(secs(app.sent_all_at)),
        error.as_ref().map_or("null".to_string(), |e| format!("\"{e}\"")),
        datagrams_in,
        datagrams_out,
        ep.stats(),
    );
    std::process::exit(match (&app.closed, app.sent == to_send) {
        (Some(None), true) => 0,
        (None, _) => 2,
        _ => 1,
    });
}
