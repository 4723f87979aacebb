//! The birthday punch machine (`swarm::birthday`) on a virtual clock: its
//! schedule and bounds (issue 11, acceptance 4: at most 256 extra sockets,
//! all closed afterwards, probes at most 50/s, one random punch at a time,
//! the budget), and two machines against a simulated random-port NAT.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::swarm::birthday::{
    decode, encode, Birthday, Kind, Outcome, Output, Refused, Report, Role, SockId, Via, BUDGET, CONFIRM_SENDS, MAX_SOCKETS,
    OPEN_INTERVAL, PORT_MIN, PROBE_INTERVAL, REPEAT_AFTER,
};

const CONSISTENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 12), 40000);
const RANDOM_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);

/// Everything a machine did, with the time it did it.
#[derive(Default)]
struct Log {
    out: Vec<(Instant, Output)>,
}

impl Log {
    fn take(&mut self, now: Instant, b: &mut Birthday) {
        while let Some(o) = b.poll_output() {
            self.out.push((now, o));
        }
    }
    fn sends(&self) -> impl Iterator<Item = (Instant, Via, SocketAddrV4, Kind)> + '_ {
        self.out.iter().filter_map(|(t, o)| match o {
            Output::Send { via, to, payload } => Some((*t, *via, *to, decode(payload).unwrap())),
            _ => None,
        })
    }
    fn opened(&self) -> Vec<(Instant, SockId)> {
        self.out.iter().filter_map(|(t, o)| matches!(o, Output::OpenSocket { .. }).then(|| (*t, sock_of(o)))).collect()
    }
    fn closed(&self) -> HashSet<SockId> {
        self.out.iter().filter_map(|(_, o)| matches!(o, Output::CloseSocket { .. }).then(|| sock_of(o))).collect()
    }
    fn ended(&self) -> Vec<(Instant, Outcome, Report)> {
        self.out
            .iter()
            .filter_map(|(t, o)| match o {
                Output::Ended { outcome, report, .. } => Some((*t, *outcome, *report)),
                _ => None,
            })
            .collect()
    }
}

fn sock_of(o: &Output) -> SockId {
    match o {
        Output::OpenSocket { sock } | Output::CloseSocket { sock } => *sock,
        _ => unreachable!(),
    }
}

/// Runs `b` from `now` to `until` (or until its session ends), waking at
/// each deadline it asks for.
fn run(b: &mut Birthday, log: &mut Log, mut now: Instant, until: Instant) -> Instant {
    log.take(now, b);
    while let Some(at) = b.poll_timeout() {
        if at > until {
            return until;
        }
        now = now.max(at);
        b.handle_timeout(now);
        log.take(now, b);
    }
    now
}

/// The most sends in any window of `window` (sorted times).
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[test]
fn the_random_side_opens_at_most_256_sockets_at_a_bounded_pace_and_closes_them_at_the_budget() {
    let t0 = Instant::now();
    let mut b = Birthday::new(1);
    let mut log = Log::default();
    b.start(t0, Role::Spray, CONSISTENT).unwrap();
    let end = run(&mut b, &mut log, t0, t0 + Duration::from_secs(120));

    let opened = log.opened();
    assert_eq!(opened.len(), MAX_SOCKETS, "exactly the cap");
    for w in opened.windows(2) {
        assert!(w[1].0 - w[0].0 >= OPEN_INTERVAL, "sockets open at most one per {OPEN_INTERVAL:?}");
    }
    // Every socket's first act is an opener to the consistent address.
    let sends: Vec<_> = log.sends().collect();
    for (_, sock) in &opened {
        assert!(sends.iter().any(|(_, via, to, kind)| *via == Via::Extra(*sock) && *to == CONSISTENT && *kind == Kind::Opener));
    }
    assert!(sends.iter().all(|(_, via, to, kind)| matches!(via, Via::Extra(_)) && *to == CONSISTENT && *kind == Kind::Opener), "the random side never probes");
    // Openers are refreshed before a Linux conntrack entry (30 s) expires,
    // and the refreshes never exceed one per socket per interval.
    let per_sock = sends.len() as f64 / MAX_SOCKETS as f64;
    assert!((1.0..=2.0).contains(&per_sock), "{per_sock} openers per socket over the budget");

    // The budget: the session ended timed out at BUDGET, every socket closed.
    let ended = log.ended();
    assert_eq!(ended.len(), 1);
    let (at, outcome, report) = ended[0];
    assert_eq!(outcome, Outcome::TimedOut);
    assert_eq!(at, t0 + BUDGET);
    assert_eq!(end, at);
    assert!(BUDGET <= Duration::from_secs(35), "issue 11 caps birthday punching at 35 s");
    assert_eq!(log.closed(), opened.iter().map(|(_, s)| *s).collect::<HashSet<_>>(), "every socket closed");
    assert_eq!(b.sockets_open(), 0);
    assert!(b.running().is_none());
    assert_eq!((report.sockets_opened, report.probes_sent), (MAX_SOCKETS as u32, 0));
    // Nothing happens after the end.
    assert_eq!(b.poll_timeout(), None);
    assert!(log.out.iter().all(|(t, _)| *t <= at));
}

#[test]
fn the_consistent_side_probes_distinct_ports_at_most_50_per_second_within_the_budget() {
    let t0 = Instant::now();
    let mut b = Birthday::new(2);
    let mut log = Log::default();
    // The port of the address given is not used: the random side's ports
    // are what is unknown.
    b.start(t0, Role::Probe, SocketAddrV4::new(RANDOM_IP, 5555)).unwrap();
    run(&mut b, &mut log, t0, t0 + Duration::from_secs(120));

    let sends: Vec<_> = log.sends().collect();
    assert!(sends.iter().all(|(_, via, to, kind)| *via == Via::Main && *to.ip() == RANDOM_IP && to.port() >= PORT_MIN && *kind == Kind::Probe));
    let times: Vec<Instant> = sends.iter().map(|s| s.0).collect();
    assert!(max_in_window(&times, Duration::from_secs(1)) <= 50, "at most 50 probes in any second");
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= PROBE_INTERVAL);
    }
    let ports: HashSet<u16> = sends.iter().map(|s| s.2.port()).collect();
    assert_eq!(ports.len(), sends.len(), "no port probed twice");
    // 50/s for the whole budget, and nothing after it.
    let expected = (BUDGET.as_millis() / PROBE_INTERVAL.as_millis()) as usize;
    assert!((expected - 1..=expected).contains(&sends.len()), "{} probes", sends.len());
    assert!(times.iter().all(|t| *t < t0 + BUDGET));
    assert!(log.opened().is_empty(), "the consistent side opens no socket");
    let ended = log.ended();
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].0, ended[0].1), (t0 + BUDGET, Outcome::TimedOut));
    assert_eq!(ended[0].2.probes_sent as usize, sends.len());
}

#[test]
fn late_wakeups_never_burst() {
    // A driver that wakes late (a busy runtime) and calls twice at one
    // instant still sends one probe per PROBE_INTERVAL.
    let t0 = Instant::now();
    let mut b = Birthday::new(3);
    let mut log = Log::default();
    b.start(t0, Role::Probe, SocketAddrV4::new(RANDOM_IP, 1)).unwrap();
    log.take(t0, &mut b);
    let mut now = t0;
    for k in 0..500u64 {
        now += Duration::from_millis(if k % 7 == 0 { 95 } else { 3 });
        b.handle_timeout(now);
        b.handle_timeout(now);
        log.take(now, &mut b);
    }
    let times: Vec<Instant> = log.sends().map(|s| s.0).collect();
    assert!(times.len() > 10);
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= PROBE_INTERVAL, "{:?}", w[1] - w[0]);
    }
    let mut s = Birthday::new(3);
    let mut log = Log::default();
    s.start(t0, Role::Spray, CONSISTENT).unwrap();
    log.take(t0, &mut s);
    let mut now = t0;
    for _ in 0..100 {
        now += Duration::from_millis(50);
        s.handle_timeout(now);
        s.handle_timeout(now);
        log.take(now, &mut s);
    }
    let opened: Vec<Instant> = log.opened().into_iter().map(|o| o.0).collect();
    for w in opened.windows(2) {
        assert!(w[1] - w[0] >= OPEN_INTERVAL);
    }
}

#[test]
fn one_random_punch_at_a_time() {
    let t0 = Instant::now();
    let mut b = Birthday::new(4);
    let mut log = Log::default();
    let first = b.start(t0, Role::Spray, CONSISTENT).unwrap();
    assert_eq!(b.start(t0, Role::Probe, SocketAddrV4::new(RANDOM_IP, 1)), Err(Refused::Busy));
    assert_eq!(b.start(t0 + Duration::from_secs(1), Role::Spray, CONSISTENT), Err(Refused::Busy));
    assert_eq!(b.stats().refused_busy, 2);
    let end = run(&mut b, &mut log, t0, t0 + Duration::from_secs(60));
    assert_eq!(log.ended().len(), 1);
    // Once it ended, the next one may start, though not with the same IP
    // within REPEAT_AFTER of the last one's start.
    assert_eq!(b.start(end, Role::Spray, SocketAddrV4::new(*CONSISTENT.ip(), 9)), Err(Refused::Recent));
    let second = b.start(end, Role::Probe, SocketAddrV4::new(RANDOM_IP, 1)).unwrap();
    assert_ne!(first, second);
    assert_eq!(b.running().map(|r| r.1), Some(Role::Probe));
    assert_eq!(b.stats().started, 2);
    b.cancel(end);
    assert!(b.start(t0 + REPEAT_AFTER, Role::Spray, CONSISTENT).is_ok(), "the same IP again after REPEAT_AFTER");
    assert_eq!((b.stats().refused_busy, b.stats().refused_recent), (2, 1));
}

#[test]
fn a_probe_on_an_extra_socket_wins_it_and_every_other_socket_closes() {
    let t0 = Instant::now();
    let mut b = Birthday::new(5);
    let mut log = Log::default();
    let session = b.start(t0, Role::Spray, CONSISTENT).unwrap();
    let now = run(&mut b, &mut log, t0, t0 + Duration::from_secs(2));
    let opened = log.opened();
    assert_eq!(opened.len(), MAX_SOCKETS);
    let winner = opened[100].1;
    // Forgeries first: a probe from elsewhere, or to the main socket, or a
    // stray kind, changes nothing (but is still a birthday packet).
    let elsewhere = SocketAddrV4::new(*CONSISTENT.ip(), 40001);
    assert!(b.handle_datagram(now, Via::Extra(winner), elsewhere, &encode(Kind::Probe)));
    assert!(b.handle_datagram(now, Via::Main, CONSISTENT, &encode(Kind::Probe)));
    assert!(b.handle_datagram(now, Via::Extra(winner), CONSISTENT, &encode(Kind::Opener)));
    assert!(!b.handle_datagram(now, Via::Extra(winner), CONSISTENT, b"not ours"), "other datagrams are not taken");
    log.take(now, &mut b);
    assert!(log.ended().is_empty());
    assert_eq!(b.sockets_open(), MAX_SOCKETS);

    assert!(b.handle_datagram(now, Via::Extra(winner), CONSISTENT, &encode(Kind::Probe)));
    let before = log.out.len();
    log.take(now, &mut b);
    let tail: Vec<&Output> = log.out[before..].iter().map(|(_, o)| o).collect();
    assert_eq!(tail[0], &Output::Send { via: Via::Extra(winner), to: CONSISTENT, payload: encode(Kind::Ack) });
    assert_eq!(tail[1], &Output::Won { session, via: Via::Extra(winner), peer: CONSISTENT });
    let closed = log.closed();
    assert_eq!(closed.len(), MAX_SOCKETS - 1, "all but the winner");
    assert!(!closed.contains(&winner), "the winner is the driver's now");
    assert!(matches!(tail.last(), Some(Output::Ended { outcome: Outcome::Won, .. })), "Ended comes last");
    assert_eq!(b.sockets_open(), 0);
    assert_eq!(b.poll_timeout(), None);
    // A late probe after the end is still swallowed, and does nothing.
    assert!(b.handle_datagram(now, Via::Extra(opened[3].1), CONSISTENT, &encode(Kind::Probe)));
    assert!(b.poll_output().is_none());
}

#[test]
fn an_opener_from_the_peers_ip_is_confirmed_at_the_probe_rate_then_the_session_ends() {
    let t0 = Instant::now();
    let mut b = Birthday::new(6);
    let mut log = Log::default();
    let session = b.start(t0, Role::Probe, SocketAddrV4::new(RANDOM_IP, 1)).unwrap();
    let now = run(&mut b, &mut log, t0, t0 + Duration::from_millis(500));
    let through = SocketAddrV4::new(RANDOM_IP, 31337);
    // Not from the peer's IP: ignored.
    assert!(b.handle_datagram(now, Via::Main, SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 9), 31337), &encode(Kind::Opener)));
    log.take(now, &mut b);
    assert!(!log.out.iter().any(|(_, o)| matches!(o, Output::Won { .. })));
    assert!(b.handle_datagram(now, Via::Main, through, &encode(Kind::Opener)));
    log.take(now, &mut b);
    assert!(log.out.iter().any(|(_, o)| *o == Output::Won { session, via: Via::Main, peer: through }));
    let before = log.sends().count();
    run(&mut b, &mut log, now, now + Duration::from_secs(5));
    let after: Vec<_> = log.sends().skip(before).collect();
    assert_eq!(after.len(), CONFIRM_SENDS as usize);
    assert!(after.iter().all(|s| s.2 == through && s.3 == Kind::Probe));
    let times: Vec<Instant> = log.sends().map(|s| s.0).collect();
    assert!(max_in_window(&times, Duration::from_secs(1)) <= 50, "confirmations stay within the rate");
    let ended = log.ended();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, Outcome::Won);
    assert_eq!(b.stats().won, 1);

    // Cancelled after a path got through (the connection came first): it
    // still counts as won, and nothing is sent after.
    let mut b = Birthday::new(8);
    let mut log = Log::default();
    b.start(t0, Role::Probe, SocketAddrV4::new(RANDOM_IP, 1)).unwrap();
    let now = run(&mut b, &mut log, t0, t0 + Duration::from_millis(100));
    assert!(b.handle_datagram(now, Via::Main, through, &encode(Kind::Ack)));
    b.cancel(now);
    log.take(now, &mut b);
    assert_eq!(log.ended()[0].1, Outcome::Won);
    assert_eq!((b.stats().won, b.poll_timeout()), (1, None));
}

#[test]
fn cancel_and_bind_failures_release_everything() {
    let t0 = Instant::now();
    let mut b = Birthday::new(7);
    let mut log = Log::default();
    b.start(t0, Role::Spray, CONSISTENT).unwrap();
    let now = run(&mut b, &mut log, t0, t0 + Duration::from_millis(100));
    let opened = log.opened();
    assert!(opened.len() > 10);
    // Out of descriptors: that socket counts as closed, and no more open.
    b.socket_failed(opened.last().unwrap().1);
    let now = run(&mut b, &mut log, now, now + Duration::from_millis(200));
    assert_eq!(log.opened().len(), opened.len());
    b.cancel(now);
    log.take(now, &mut b);
    let closed = log.closed();
    assert_eq!(closed.len(), opened.len() - 1, "every socket but the failed one is closed");
    assert!(!closed.contains(&opened.last().unwrap().1));
    assert_eq!(log.ended()[0].1, Outcome::Cancelled);
    assert_eq!(b.sockets_open(), 0);
    assert!(b.running().is_none());
}

/// Two machines against a simulated fully random NAT (each extra socket's
/// first packet maps it to a random port in 1024..=65535, as Linux's
/// `masquerade fully-random` does) and a consistent one with stateful
/// filtering: a probe reaches the random side only on a mapped port, and
/// an opener reaches the consistent side only from a port it probed
/// before. Time to a hit over many seeds: the birthday odds the budget is
/// built on.
#[test]
fn against_a_simulated_random_nat_most_punches_succeed_within_seconds() {
    let mut times = Vec::new();
    let mut failures = 0;
    for seed in 0..40u64 {
        let t0 = Instant::now();
        let mut spray = Birthday::new(seed * 2 + 100);
        let mut probe = Birthday::new(seed * 2 + 101);
        let mut nat = rand_port(seed);
        let mut mapped: HashMap<u16, SockId> = HashMap::new();
        let mut probed: HashSet<u16> = HashSet::new();
        spray.start(t0, Role::Spray, CONSISTENT).unwrap();
        probe.start(t0, Role::Probe, SocketAddrV4::new(RANDOM_IP, 1)).unwrap();
        let mut now = t0;
        let mut won = None;
        let mut probes = 0;
        while won.is_none() {
            let next = [spray.poll_timeout(), probe.poll_timeout()].into_iter().flatten().min();
            let Some(at) = next else { break };
            now = now.max(at);
            spray.handle_timeout(now);
            probe.handle_timeout(now);
            // Until both sides are quiet at this instant: a packet that
            // gets through causes an answer at once.
            loop {
                let mut quiet = true;
                while let Some(o) = spray.poll_output() {
                    quiet = false;
                    if let Output::Send { via: Via::Extra(sock), payload, .. } = o {
                        let port = match mapped.iter().find(|(_, s)| **s == sock) {
                            Some((p, _)) => *p,
                            None => {
                                let p = nat();
                                mapped.insert(p, sock);
                                p
                            }
                        };
                        if probed.contains(&port) {
                            assert!(probe.handle_datagram(now, Via::Main, SocketAddrV4::new(RANDOM_IP, port), &payload));
                        }
                    }
                    if let Output::Won { .. } = o {
                        won = Some(now);
                    }
                }
                while let Some(o) = probe.poll_output() {
                    quiet = false;
                    if let Output::Send { via: Via::Main, to, .. } = o {
                        probes += 1;
                        probed.insert(to.port());
                        if let Some(sock) = mapped.get(&to.port()) {
                            assert!(spray.handle_datagram(now, Via::Extra(*sock), CONSISTENT, &encode(Kind::Probe)));
                        }
                    }
                }
                if quiet {
                    break;
                }
            }
        }
        match won {
            Some(at) => times.push((at - t0, probes)),
            None => failures += 1,
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!("simulated birthday punches: median {:?} ({} probes), p90 {:?}, failures {failures}/40", median.0, median.1, times[times.len() * 9 / 10].0);
    assert!(median.0 <= Duration::from_secs(5), "median {:?}", median.0);
    assert!(failures <= 1, "{failures} of 40 found no port within the budget");
}

/// A NAT's port picker: distinct random ports in 1024..=65535.
fn rand_port(seed: u64) -> impl FnMut() -> u16 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut used = HashSet::new();
    move || loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = 1024 + (x % (65536 - 1024)) as u16;
        if used.insert(p) {
            return p;
        }
    }
}
