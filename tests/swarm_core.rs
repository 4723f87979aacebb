//! The swarm's dialling core (`swarm::core`) on a virtual clock: one race
//! with its outcomes arriving in every order, and 1,200 peers with churn.
//! No sockets: the tests play the driver, executing the core's actions on
//! a simulated network.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use hyperswarm_native::swarm::core::{
    Action, DialKind, RaceId, Refusal, SwarmCore, TcpError, Via, CONNECT_TIMEOUT, FORGET_UNRESPONSIVE, LAN_UTP_TIMEOUT, MAX_TRACKED, REQUEUE,
    UDP_LEG_DELAY,
};
use hyperswarm_native::swarm::{ConnectError, Peer, Referrer};

const MS: Duration = Duration::from_millis(1);

fn refused() -> TcpError {
    TcpError { error: ConnectError::Failed { reason: "refused".into(), errno: Some(libc::ECONNREFUSED) }, refused: true }
}

fn unreachable() -> TcpError {
    TcpError { error: ConnectError::Failed { reason: "unreachable".into(), errno: Some(libc::EHOSTUNREACH) }, refused: false }
}

fn public_peer() -> Peer {
    let referrer = Some(Referrer { host: "203.0.113.1".into(), port: 49737, id: None });
    Peer { host: "198.51.100.7".into(), port: 4000, local: false, referrer, topic: None, to: None }
}

/// A peer found through the DHT at a private address (a testnet, or a
/// LAN whose DHT node answered): TCP gets its head start there.
fn testnet_peer() -> Peer {
    let referrer = Some(Referrer { host: "10.0.0.1".into(), port: 49737, id: None });
    Peer { host: "10.0.0.7".into(), port: 4000, local: false, referrer, topic: None, to: None }
}

fn lan_peer() -> Peer {
    Peer { host: "192.168.1.7".into(), port: 4000, local: true, referrer: None, topic: None, to: None }
}

// ---------------------------------------------------------------------
// One race, outcomes in every order.
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tcp {
    Ok,
    Err,
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Tcp(Tcp),
    /// The punch (the DHT's, or the caller's) answered or failed.
    Punch(bool),
    Utp(bool),
    /// Time jumps past every deadline.
    Deadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A public peer with a referrer: TCP, then punch + uTP after 30 ms.
    Punch,
    /// The same, with the punch left to the caller.
    CallerPunch,
    /// A LAN peer: TCP alone, uTP directly if TCP is refused.
    Lan,
}

#[derive(Debug, PartialEq, Eq)]
enum Terminal {
    WonTcp,
    WonUtp,
    Failed(ConnectError),
}

/// Plays the driver for one `connect` race.
struct OneRace {
    core: SwarmCore<u32>,
    t0: Instant,
    now: Instant,
    race: RaceId,
    shape: Shape,
    /// What the core has asked for, and what is still running.
    tcp_started: bool,
    tcp_running: bool,
    tcp_reported: bool,
    punch: Option<u64>,
    punch_at: Option<Instant>,
    asked_caller: bool,
    punch_reported: bool,
    utp: Option<(u64, SocketAddrV4)>,
    utp_live: bool,
    utp_reported: bool,
    terminal: Option<Terminal>,
    /// Legs down, as the harness saw them: every leg down ends the race.
    tcp_down: bool,
    udp_down: bool,
    udp_leg: bool,
}

impl OneRace {
    fn new(shape: Shape) -> OneRace {
        let t0 = Instant::now();
        let mut core = SwarmCore::new(16, true);
        core.set_udp(true);
        let (peer, caller) = match shape {
            Shape::Punch => (testnet_peer(), false),
            Shape::CallerPunch => (testnet_peer(), true),
            Shape::Lan => (lan_peer(), false),
        };
        let race = core.dial(t0, DialKind::Request(7), peer, caller);
        let mut me = OneRace {
            core,
            t0,
            now: t0,
            race,
            shape,
            tcp_started: false,
            tcp_running: false,
            tcp_reported: false,
            punch: None,
            punch_at: None,
            asked_caller: false,
            punch_reported: false,
            utp: None,
            utp_live: false,
            utp_reported: false,
            terminal: None,
            tcp_down: false,
            udp_down: false,
            udp_leg: shape != Shape::Lan,
        };
        me.drain();
        assert!(me.tcp_started, "TCP starts at once");
        assert_eq!(me.core.poll_timeout(), Some(t0 + if shape == Shape::Lan { CONNECT_TIMEOUT } else { UDP_LEG_DELAY }));
        me
    }

    fn drain(&mut self) {
        while let Some(a) = self.core.poll_action() {
            let finished = self.terminal.is_some();
            match a {
                Action::StartTcp { race, .. } => {
                    assert!(!finished && race == self.race && !self.tcp_started);
                    self.tcp_started = true;
                    self.tcp_running = true;
                }
                Action::AbortTcp { race } => {
                    assert!(!finished && race == self.race && self.tcp_running, "abort of a TCP dial not running");
                    self.tcp_running = false;
                }
                Action::Punch { race, target, referrer } => {
                    assert!(!finished && race == self.race && self.punch.is_none() && self.shape == Shape::Punch);
                    assert_eq!((target, referrer), ("10.0.0.7:4000".parse().unwrap(), "10.0.0.1:49737".parse().unwrap()));
                    self.punch = Some(900 + race);
                    self.punch_at = Some(self.now);
                    self.core.punch_started(self.now, race, self.punch);
                }
                Action::PunchUnanswered { .. } => {
                    assert!(!finished && self.punch.is_none() && !self.asked_caller, "a punch sent once");
                }
                Action::AskCallerToPunch { race, request } => {
                    assert!(!finished && race == self.race && request == 7 && self.shape == Shape::CallerPunch && !self.asked_caller);
                    self.asked_caller = true;
                    self.punch_at = Some(self.now);
                }
                Action::UtpConnect { race, addr } => {
                    assert!(!finished && race == self.race && self.utp.is_none());
                    let utp = 500 + race;
                    self.utp = Some((utp, addr));
                    self.utp_live = true;
                    self.core.utp_started(race, utp);
                }
                Action::AbandonUtp { utp } => {
                    assert!(self.utp_live && self.utp.map(|u| u.0) == Some(utp), "abandon of a uTP attempt not running");
                    self.utp_live = false;
                }
                Action::Won { race, via, kind, .. } => {
                    assert!(!finished && race == self.race && kind == DialKind::Request(7), "one answer per race");
                    // Nothing of the race may stay running.
                    self.terminal = Some(match via {
                        Via::Tcp(42) => {
                            assert!(!self.utp_live || self.utp.is_none());
                            Terminal::WonTcp
                        }
                        Via::Tcp(other) => panic!("stream {other} is not the one given"),
                        Via::Utp(u) => {
                            assert_eq!(Some(u), self.utp.map(|u| u.0));
                            assert!(!self.tcp_running, "TCP aborted before the win is told");
                            self.utp_live = false;
                            Terminal::WonUtp
                        }
                        Via::Side => panic!("no path outside the race was started"),
                    });
                }
                Action::Failed { race, error, .. } => {
                    assert!(!finished && race == self.race, "one answer per race");
                    assert!(!self.tcp_running && !self.utp_live, "legs torn down before the failure is told");
                    self.terminal = Some(Terminal::Failed(error));
                }
            }
        }
    }

    /// Moves the clock to `to`, firing the core's timers on the way.
    fn advance(&mut self, to: Instant) {
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= to) {
            self.now = self.now.max(at);
            let udp_due = self.udp_leg && self.punch_at.is_none() && !self.tcp_down && self.terminal.is_none();
            self.core.handle_timeout(self.now);
            self.drain();
            if udp_due && at == self.t0 + UDP_LEG_DELAY {
                assert_eq!(self.punch_at, Some(self.t0 + UDP_LEG_DELAY), "the punch starts after the 30 ms head start");
            }
        }
        self.now = self.now.max(to);
    }

    /// Delivers `o` if what it answers exists; returns whether it did.
    fn deliver(&mut self, o: Outcome, step: Duration) -> bool {
        self.advance(self.now + step);
        let live = self.terminal.is_none();
        let before = self.terminal.is_some();
        let delivered = match o {
            Outcome::Tcp(t) if self.tcp_started && !self.tcp_reported => {
                self.tcp_reported = true;
                // A dial aborted after it finished still reports, as a
                // task's result may already be queued: the core drops it.
                self.tcp_running = false;
                let result = match t {
                    Tcp::Ok => Ok(42),
                    Tcp::Err => Err(unreachable()),
                    Tcp::Refused => Err(refused()),
                };
                self.core.tcp_result(self.now, self.race, result);
                if live && t != Tcp::Ok {
                    self.tcp_down = true;
                    if self.shape == Shape::Lan && t == Tcp::Refused {
                        self.udp_leg = true;
                    }
                }
                true
            }
            Outcome::Punch(ok) if !self.punch_reported && (self.punch.is_some() || self.asked_caller) => {
                self.punch_reported = true;
                match self.punch {
                    Some(req) => self.core.punch_result(self.now, req, ok.then(|| "10.0.0.7:4001".parse().unwrap())),
                    None => self.core.caller_punched(self.now, 7, ok),
                }
                if live && !ok {
                    self.udp_down = true;
                }
                true
            }
            Outcome::Utp(ok) if !self.utp_reported && self.utp.is_some() => {
                self.utp_reported = true;
                let utp = self.utp.unwrap().0;
                if !self.utp_live {
                    // Abandoned: the endpoint closed it and reports nothing.
                } else if ok {
                    self.core.utp_connected(self.now, utp);
                } else {
                    self.utp_live = false;
                    self.core.utp_failed(self.now, utp, "reset".into());
                    if live {
                        self.udp_down = true;
                    }
                }
                true
            }
            Outcome::Deadline => {
                self.advance(self.now + CONNECT_TIMEOUT + MS);
                true
            }
            _ => false,
        };
        self.drain();
        if !delivered || before {
            assert_eq!(before, self.terminal.is_some());
            return delivered;
        }
        // What ended the race, if anything, is what was just delivered.
        let all_down = self.tcp_down && (!self.udp_leg || self.udp_down);
        let lan_refused = self.shape == Shape::Lan && self.udp_leg;
        match (o, &self.terminal) {
            (Outcome::Tcp(Tcp::Ok), t) => assert_eq!(t, &Some(Terminal::WonTcp)),
            (Outcome::Utp(true), t) => assert_eq!(t, &Some(Terminal::WonUtp)),
            (Outcome::Deadline, Some(Terminal::Failed(e))) => {
                let want = if lan_refused { refused().error } else { ConnectError::TimedOut };
                assert_eq!(e, &want);
            }
            (Outcome::Deadline, t) => panic!("deadline passed, race {t:?}"),
            (_, None) => assert!(!all_down, "every leg down and the race goes on"),
            (o, Some(Terminal::Failed(e))) => {
                assert!(all_down, "failed with a leg still up");
                let want = match o {
                    _ if lan_refused => refused().error,
                    Outcome::Tcp(Tcp::Err) => unreachable().error,
                    Outcome::Tcp(Tcp::Refused) => refused().error,
                    Outcome::Punch(false) => ConnectError::PunchFailed,
                    Outcome::Utp(false) => ConnectError::Failed { reason: "reset".into(), errno: None },
                    o => panic!("{o:?} ended the race"),
                };
                assert_eq!(e, &want);
            }
            (o, t) => panic!("{o:?} gave {t:?}"),
        }
        if lan_refused && matches!(o, Outcome::Tcp(Tcp::Refused)) {
            // The direct uTP dial goes to the peer's own address, within 1 s.
            assert_eq!(self.utp.map(|u| u.1), Some("192.168.1.7:4000".parse().unwrap()));
            assert_eq!(self.core.poll_timeout(), Some(self.now + LAN_UTP_TIMEOUT));
        }
        true
    }

    /// After the last outcome: time runs out, and nothing may be left.
    fn finish(mut self) -> Terminal {
        self.advance(self.now + CONNECT_TIMEOUT + MS);
        // Late outcomes for the decided race produce nothing.
        if self.tcp_started && !self.tcp_reported {
            self.core.tcp_result(self.now, self.race, Ok(43));
        }
        if let Some(req) = self.punch {
            self.core.punch_result(self.now, req, None);
        }
        self.core.caller_punched(self.now, 7, true);
        if let Some((utp, _)) = self.utp.filter(|_| !self.utp_live) {
            self.core.utp_failed(self.now, utp, "late".into());
        }
        assert_eq!(self.core.poll_action(), None, "an action for a finished race");
        assert_eq!(self.core.races(), 0);
        assert_eq!(self.core.attempts(), (0, 0), "indexes empty afterwards");
        assert_eq!(self.core.poll_timeout(), None);
        assert!(!self.tcp_running && !self.utp_live, "a leg left running");
        self.terminal.expect("the race ended")
    }
}

fn permutations<T: Copy>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

/// Every subset of outcomes (at most one per leg), in every order.
fn outcome_orders(shape: Shape) -> Vec<Vec<Outcome>> {
    let tcp = [None, Some(Tcp::Ok), Some(Tcp::Err), Some(Tcp::Refused)];
    let punch: &[Option<bool>] = if shape == Shape::Lan { &[None] } else { &[None, Some(true), Some(false)] };
    let mut orders = Vec::new();
    for t in tcp {
        for &p in punch {
            for u in [None, Some(true), Some(false)] {
                for d in [false, true] {
                    let set: Vec<Outcome> = [t.map(Outcome::Tcp), p.map(Outcome::Punch), u.map(Outcome::Utp), d.then_some(Outcome::Deadline)]
                        .into_iter()
                        .flatten()
                        .collect();
                    orders.extend(permutations(&set));
                }
            }
        }
    }
    orders
}

#[test]
fn racing_outcomes_in_every_order() {
    let mut runs = 0;
    let mut ends: HashMap<String, usize> = HashMap::new();
    for shape in [Shape::Punch, Shape::CallerPunch, Shape::Lan] {
        for order in outcome_orders(shape) {
            // 1 ms apart: inside TCP's head start; 50 ms: after it.
            for step in [MS, 50 * MS] {
                let mut race = OneRace::new(shape);
                for &o in &order {
                    race.deliver(o, step);
                }
                let end = race.finish();
                runs += 1;
                *ends.entry(format!("{shape:?} {end:?}")).or_default() += 1;
            }
        }
    }
    eprintln!("{runs} races: {ends:#?}");
    assert!(runs > 1000, "{runs}");
    // Every kind of ending was reached.
    for key in ["Punch WonTcp", "Punch WonUtp", "CallerPunch WonUtp", "Lan WonUtp", "Lan WonTcp"] {
        assert!(ends.contains_key(key), "{key} never happened");
    }
    assert!(ends.keys().any(|k| k.starts_with("Punch Failed(PunchFailed")));
    assert!(ends.keys().any(|k| k.starts_with("Punch Failed(TimedOut")));
    assert!(ends.keys().any(|k| k.starts_with("Lan Failed(Failed { reason: \"refused\"")));
}

#[test]
fn tcp_inside_its_head_start_still_sends_the_punch_unanswered() {
    let mut r = OneRace::new(Shape::Punch);
    r.deliver(Outcome::Tcp(Tcp::Ok), 10 * MS);
    assert_eq!(r.terminal, Some(Terminal::WonTcp));
    // The PunchUnanswered came before Won (checked in drain); no race punch.
    assert_eq!(r.punch, None);
    r.finish();
}

/// Across the internet a NAT drops our SYN: a peer at a public address
/// gets its punch beside TCP at once, as the reference does.
#[test]
fn a_peer_at_a_public_address_is_punched_beside_tcp_at_once() {
    let t0 = Instant::now();
    let mut core: SwarmCore<()> = SwarmCore::new(4, true);
    core.set_udp(true);
    let race = core.dial(t0, DialKind::Request(1), public_peer(), false);
    assert!(matches!(core.poll_action(), Some(Action::StartTcp { race: r, .. }) if r == race));
    assert!(matches!(core.poll_action(), Some(Action::Punch { race: r, .. }) if r == race), "no head start");
    // The same at a private address waits UDP_LEG_DELAY.
    let race = core.dial(t0, DialKind::Request(2), testnet_peer(), false);
    assert!(matches!(core.poll_action(), Some(Action::StartTcp { race: r, .. }) if r == race));
    assert!(core.poll_action().is_none());
    core.handle_timeout(t0 + UDP_LEG_DELAY);
    assert!(matches!(core.poll_action(), Some(Action::Punch { race: r, .. }) if r == race));
}

#[test]
fn a_refused_tcp_punches_at_once() {
    let mut r = OneRace::new(Shape::Punch);
    r.deliver(Outcome::Tcp(Tcp::Refused), 5 * MS);
    assert_eq!(r.punch_at, Some(r.t0 + 5 * MS), "no waiting for the head start");
    assert_eq!(r.core.poll_timeout(), Some(r.t0 + CONNECT_TIMEOUT));
    r.finish();
}

#[test]
fn without_tcp_the_punch_starts_at_once_and_without_a_dht_the_race_fails() {
    let t0 = Instant::now();
    let mut core: SwarmCore<()> = SwarmCore::new(4, false);
    core.set_udp(true);
    let race = core.dial(t0, DialKind::Request(1), public_peer(), false);
    let Some(Action::Punch { race: r, .. }) = core.poll_action() else { panic!() };
    assert_eq!(r, race);
    core.punch_started(t0, race, None);
    match core.poll_action() {
        Some(Action::Failed { error: ConnectError::NoPath(_), .. }) => {}
        a => panic!("{a:?}"),
    }
    // No UDP socket and no TCP: nothing to try at all.
    let mut core: SwarmCore<()> = SwarmCore::new(4, false);
    core.dial(t0, DialKind::Request(2), public_peer(), false);
    assert!(matches!(core.poll_action(), Some(Action::Failed { error: ConnectError::NoPath(_), .. })));
    assert_eq!((core.races(), core.attempts()), (0, (0, 0)));
}

/// A relay session for the peer (both NATs random) keeps its dial alive
/// past the failed punch and the 10 s deadline, and its connection is the
/// dial's; a failed session fails the dial with its reason.
#[test]
fn a_path_outside_the_race_keeps_the_dial_waiting_and_answers_it() {
    let t0 = Instant::now();
    let ip: std::net::Ipv4Addr = "198.51.100.7".parse().unwrap();
    for won in [true, false] {
        let mut core: SwarmCore<()> = SwarmCore::new(4, false);
        core.set_udp(true);
        let race = core.dial(t0, DialKind::Request(1), public_peer(), false);
        let Some(Action::Punch { .. }) = core.poll_action() else { panic!() };
        core.punch_started(t0, race, Some(9));
        assert_eq!(core.side_started("203.0.113.99".parse().unwrap(), t0 + 30 * 1000 * MS), 0, "another IP's session");
        assert_eq!(core.side_started(ip, t0 + 30 * 1000 * MS), 1);
        // The punch fails and the reference's deadline passes: still waiting.
        core.punch_result(t0 + 2000 * MS, 9, None);
        core.handle_timeout(t0 + CONNECT_TIMEOUT);
        assert!(core.poll_action().is_none(), "the dial waits for the relay");
        assert_eq!(core.races(), 1);
        if won {
            let conn = core.side_won(t0 + 12_000 * MS, ip).expect("the dial takes the connection");
            match core.poll_action() {
                Some(Action::Won { race: r, conn: c, via: Via::Side, kind: DialKind::Request(1), .. }) => assert_eq!((r, c), (race, conn)),
                a => panic!("{a:?}"),
            }
            assert_eq!(core.side_won(t0 + 12_000 * MS, ip), None, "no dial left: the next is an incoming connection");
        } else {
            core.side_failed(t0 + 12_000 * MS, ip, ConnectError::Failed { reason: "both NATs are random and no relay is announced on the DHT".into(), errno: None });
            match core.poll_action() {
                Some(Action::Failed { error: ConnectError::Failed { reason, .. }, .. }) => assert!(reason.contains("no relay")),
                a => panic!("{a:?}"),
            }
        }
        assert_eq!(core.races(), 0);
    }
    // Past the session's own budget the dial times out all the same.
    let mut core: SwarmCore<()> = SwarmCore::new(4, false);
    core.set_udp(true);
    let race = core.dial(t0, DialKind::Request(2), public_peer(), false);
    let _ = core.poll_action();
    core.punch_started(t0, race, Some(3));
    core.side_started(ip, t0 + 30 * 1000 * MS);
    core.handle_timeout(t0 + 30 * 1000 * MS);
    assert!(matches!(core.poll_action(), Some(Action::Failed { error: ConnectError::TimedOut, .. })));
}

#[test]
fn a_lan_peer_that_times_out_gets_no_utp_dial() {
    let mut r = OneRace::new(Shape::Lan);
    r.deliver(Outcome::Tcp(Tcp::Err), 2 * MS);
    assert_eq!(r.utp, None);
    assert_eq!(r.finish(), Terminal::Failed(unreachable().error));
}

// ---------------------------------------------------------------------
// 1,200 peers with churn.
// ---------------------------------------------------------------------

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Answers TCP (and, with a referrer, punches and uTP too).
    Open,
    /// Behind a NAT: TCP's SYNs are dropped; punch then uTP gets through.
    Natted,
    /// On the LAN, TCP refused (full), uTP taking.
    LanUtpOnly,
    /// Gone for good: nothing answers, the punch times out.
    Dead,
    /// Up, refusing TCP, no referrer: fails at once every time.
    Refusing,
}

struct SimPeer {
    peer: Peer,
    kind: Kind,
    /// Left the network at this time (then it behaves as `Dead`).
    departs: Option<Instant>,
    /// Discovery stops naming it (its records expired).
    forgotten_at: Option<Instant>,
    first_found: Instant,
    conn: Option<u64>,
    /// Since when it has been found and not connected.
    waiting_since: Option<Instant>,
    connections: usize,
    /// Consecutive failed dials, and when the last one failed.
    failures: usize,
    last_failure: Option<Instant>,
}

impl SimPeer {
    fn kind_at(&self, now: Instant) -> Kind {
        if self.departs.is_some_and(|d| d <= now) {
            Kind::Dead
        } else {
            self.kind
        }
    }

    fn reachable(&self, now: Instant) -> bool {
        !matches!(self.kind_at(now), Kind::Dead | Kind::Refusing)
    }
}

#[derive(Debug)]
enum Ev {
    Found(usize),
    Round,
    Tcp(RaceId, Result<u32, TcpError>),
    Punch(u64, Option<SocketAddrV4>),
    Utp(u64, bool),
    Close(u64),
}

struct Net {
    core: SwarmCore<u32>,
    rng: Rng,
    now: Instant,
    peers: Vec<SimPeer>,
    by_addr: HashMap<String, usize>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    evs: HashMap<u64, Ev>,
    seq: u64,
    race_peer: HashMap<RaceId, usize>,
    aborted: HashSet<RaceId>,
    utp_race: HashMap<u64, RaceId>,
    abandoned: HashSet<u64>,
    conns: HashMap<u64, usize>,
    next_id: u64,
    churn_until: Instant,
    max_dials: usize,
    max_races: usize,
    max_wait: Duration,
    dials: usize,
    wins: usize,
    fails: usize,
    closes: usize,
}

impl Net {
    fn at(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.evs.insert(self.seq, ev);
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn found(&mut self, i: usize) {
        let p = &mut self.peers[i];
        if p.forgotten_at.is_some_and(|f| f <= self.now) {
            return;
        }
        if p.conn.is_none() && p.waiting_since.is_none() {
            p.waiting_since = Some(self.now);
        }
        let peer = p.peer.clone();
        self.core.peer_found(self.now, peer);
    }

    fn drain(&mut self) {
        while let Some(a) = self.core.poll_action() {
            let now = self.now;
            match a {
                Action::StartTcp { race, peer } => {
                    let i = self.by_addr[&peer.address_key()];
                    assert!(self.race_peer.insert(race, i).is_none());
                    self.dials += 1;
                    let p = &self.peers[i];
                    assert!(p.conn.is_none(), "{peer} dialled while connected");
                    // Backoff: the wait after the k-th failure in a row
                    // (then, after the 4th, forgotten and found again).
                    if let Some(last) = p.last_failure {
                        let k = p.failures;
                        let wait = if k % 4 == 0 { FORGET_UNRESPONSIVE } else { REQUEUE[(k - 1) % 4] };
                        assert!(now - last >= wait, "{peer} redialled {:?} after failure {k}", now - last);
                    }
                    let kind = p.kind_at(now);
                    let lat = self.rng.ms(2, 60);
                    match kind {
                        Kind::Open => self.at(now + lat, Ev::Tcp(race, Ok(race as u32))),
                        Kind::LanUtpOnly | Kind::Refusing => self.at(now + lat / 10, Ev::Tcp(race, Err(refused()))),
                        // SYNs dropped: the race's deadline ends it.
                        Kind::Natted | Kind::Dead => {}
                    }
                }
                Action::AbortTcp { race } => {
                    self.aborted.insert(race);
                }
                Action::Punch { race, target, .. } => {
                    let req = self.id();
                    self.core.punch_started(now, race, Some(req));
                    let i = self.race_peer[&race];
                    let ok = self.peers[i].reachable(now);
                    let lat = self.rng.ms(20, 200);
                    // Dead: dht-rpc's request timeout, well before 10 s.
                    let (at, from) = if ok { (now + lat, Some(target)) } else { (now + Duration::from_secs(2), None) };
                    self.at(at, Ev::Punch(req, from));
                }
                Action::PunchUnanswered { .. } => {}
                Action::AskCallerToPunch { .. } => panic!("no caller punches here"),
                Action::UtpConnect { race, addr } => {
                    let utp = self.id();
                    self.core.utp_started(race, utp);
                    self.utp_race.insert(utp, race);
                    let i = self.race_peer[&race];
                    assert_eq!(addr.to_string(), self.peers[i].peer.address_key());
                    let ok = self.peers[i].reachable(now);
                    let lat = self.rng.ms(2, 80);
                    self.at(now + if ok { lat } else { Duration::from_secs(3) }, Ev::Utp(utp, ok));
                }
                Action::AbandonUtp { utp } => {
                    self.abandoned.insert(utp);
                }
                Action::Won { race, kind, conn, peer, via } => {
                    assert_eq!(kind, DialKind::Auto);
                    let i = self.race_peer.remove(&race).unwrap();
                    assert_eq!(peer.address_key(), self.peers[i].peer.address_key());
                    if let Via::Tcp(s) = via {
                        assert_eq!(s, race as u32);
                    }
                    self.wins += 1;
                    let p = &mut self.peers[i];
                    assert!(p.conn.is_none());
                    p.conn = Some(conn);
                    p.connections += 1;
                    p.failures = 0;
                    p.last_failure = None;
                    if let Some(since) = p.waiting_since.take() {
                        self.max_wait = self.max_wait.max(now - since);
                    }
                    self.conns.insert(conn, i);
                    if now < self.churn_until {
                        let life = self.rng.ms(5_000, 60_000);
                        self.at(now + life, Ev::Close(conn));
                    }
                }
                Action::Failed { race, kind, .. } => {
                    assert_eq!(kind, DialKind::Auto);
                    let i = self.race_peer.remove(&race).unwrap();
                    self.fails += 1;
                    let p = &mut self.peers[i];
                    p.failures += 1;
                    p.last_failure = Some(now);
                }
            }
        }
        self.max_races = self.max_races.max(self.core.races());
        assert!(self.core.races() <= self.max_dials, "{} dials in flight", self.core.races());
        assert!(self.core.queue().len() <= MAX_TRACKED);
        assert_eq!(self.core.races(), self.race_peer.len());
    }

    fn apply(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Found(i) => self.found(i),
            Ev::Round => {
                // A discovery round names every peer whose records live.
                for i in 0..self.peers.len() {
                    if self.peers[i].first_found <= now {
                        self.found(i);
                    }
                }
                self.at(now + ROUND, Ev::Round);
            }
            Ev::Tcp(race, result) => {
                if !self.aborted.contains(&race) {
                    self.core.tcp_result(now, race, result);
                }
            }
            Ev::Punch(req, from) => self.core.punch_result(now, req, from),
            Ev::Utp(utp, ok) => {
                if !self.abandoned.contains(&utp) {
                    if ok {
                        self.core.utp_connected(now, utp);
                    } else {
                        self.core.utp_failed(now, utp, "timed out".into());
                    }
                }
            }
            Ev::Close(conn) => {
                let i = self.conns.remove(&conn).unwrap();
                self.peers[i].conn = None;
                self.closes += 1;
                self.core.connection_closed(conn);
            }
        }
    }
}

/// How often the simulated discovery names every live peer again (one
/// DHT round of the topic). The simulation's choice: short enough that a
/// closed connection's peer is found again, and redialled, within the run.
const ROUND: Duration = Duration::from_secs(20);

#[test]
fn twelve_hundred_peers_with_churn() {
    const N: usize = 1200;
    let t0 = Instant::now();
    let mut rng = Rng(0x5eed);
    let end = t0 + Duration::from_secs(420);
    let churn_until = t0 + Duration::from_secs(300);
    let mut peers = Vec::new();
    let mut by_addr = HashMap::new();
    for i in 0..N {
        let kind = match i % 50 {
            0 => Kind::Dead,
            1 => Kind::Refusing,
            2..=6 => Kind::LanUtpOnly,
            7..=16 => Kind::Natted,
            _ => Kind::Open,
        };
        let local = kind == Kind::LanUtpOnly;
        // Each peer in its own /24; 24 referrers share the rest (50 each,
        // under the dial queue's per-referrer cap).
        let host = if local { format!("192.168.{}.{}", i / 250, 1 + i % 250) } else { format!("10.{}.{}.1", i / 250, i % 250) };
        let referrer = (!local && kind != Kind::Refusing && (i % 3 != 0 || kind != Kind::Open))
            .then(|| Referrer { host: format!("203.0.113.{}", 1 + i % 24).into(), port: 49737, id: None });
        let peer = Peer { host: host.into(), port: 4000 + (i % 7) as u16, local, referrer, topic: Some([1; 32]), to: None };
        by_addr.insert(peer.address_key(), i);
        // One open or punchable peer in twenty leaves during the run; its
        // records outlive it by two rounds.
        let departs = (i % 20 == 19 && matches!(kind, Kind::Open | Kind::Natted)).then(|| t0 + rng.ms(30_000, 250_000));
        let forgotten_at = departs.map(|d| d + 2 * ROUND);
        let first_found = t0 + rng.ms(0, 60_000);
        peers.push(SimPeer { peer, kind, departs, forgotten_at, first_found, conn: None, waiting_since: None, connections: 0, failures: 0, last_failure: None });
    }
    let max_dials = 16;
    let mut net = Net {
        core: SwarmCore::new(max_dials, true),
        rng,
        now: t0,
        peers,
        by_addr,
        heap: BinaryHeap::new(),
        evs: HashMap::new(),
        seq: 0,
        race_peer: HashMap::new(),
        aborted: HashSet::new(),
        utp_race: HashMap::new(),
        abandoned: HashSet::new(),
        conns: HashMap::new(),
        next_id: 10_000,
        churn_until,
        max_dials,
        max_races: 0,
        max_wait: Duration::ZERO,
        dials: 0,
        wins: 0,
        fails: 0,
        closes: 0,
    };
    net.core.set_udp(true);
    for i in 0..N {
        let at = net.peers[i].first_found;
        net.at(at, Ev::Found(i));
    }
    net.at(t0 + ROUND, Ev::Round);
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps < 10_000_000, "the simulation does not progress");
        let next_ev = net.heap.peek().map(|Reverse((at, _))| *at);
        let next_timer = net.core.poll_timeout();
        let Some(at) = [next_ev, next_timer].into_iter().flatten().min() else { break };
        if at > end {
            break;
        }
        assert!(at >= net.now, "time runs forward");
        net.now = at;
        if next_timer.is_some_and(|t| t <= at) {
            net.core.handle_timeout(at);
        } else {
            let Reverse((_, seq)) = net.heap.pop().unwrap();
            let ev = net.evs.remove(&seq).unwrap();
            net.apply(ev);
        }
        net.drain();
    }
    let now = net.now;
    eprintln!(
        "{} dials, {} won, {} failed, {} closed, at most {} races at once, longest wait for a connection {:?}, queue {} (refused {})",
        net.dials,
        net.wins,
        net.fails,
        net.closes,
        net.max_races,
        net.max_wait,
        net.core.queue().len(),
        net.core.queue().refused()
    );
    assert_eq!(net.core.queue().refused(), 0, "honest peers were refused");
    assert_eq!(net.max_races, max_dials, "the dial limit was reached and held");
    // Churn has stopped for two minutes: every reachable peer is connected.
    let mut kinds: HashMap<String, (usize, usize)> = HashMap::new();
    for p in &net.peers {
        let e = kinds.entry(format!("{:?}", p.kind_at(now))).or_default();
        e.0 += 1;
        e.1 += p.connections;
        if p.reachable(now) {
            assert!(p.conn.is_some(), "{} ({:?}) is not connected", p.peer, p.kind);
        } else {
            assert!(p.conn.is_none() || p.departs.is_some(), "{} ({:?}) connected", p.peer, p.kind);
        }
        if p.kind == Kind::Dead {
            assert_eq!(p.connections, 0);
        }
    }
    eprintln!("peers and connections by kind: {kinds:?}");
    assert!(net.closes > 1000, "too little churn: {}", net.closes);
    assert!(net.max_wait <= Duration::from_secs(90), "a reachable peer waited {:?}", net.max_wait);
}

#[test]
fn accept_limits_share_the_connection_numbering_and_free_on_close() {
    let t0 = Instant::now();
    let mut core: SwarmCore<()> = SwarmCore::new(4, true).max_incoming_per_ip(2);
    let ip: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let a = core.tcp_incoming(ip).unwrap();
    let b = core.tcp_incoming("::ffff:10.0.0.1".parse().unwrap()).unwrap();
    assert_eq!(core.tcp_incoming(ip), Err(Refusal::PerIp), "past the per-IP bound");
    // A dialled connection takes the next id, and does not count here.
    core.dial(t0, DialKind::Request(1), lan_peer(), false);
    let Some(Action::StartTcp { race, .. }) = core.poll_action() else { panic!() };
    core.tcp_result(t0, race, Ok(()));
    let Some(Action::Won { conn, .. }) = core.poll_action() else { panic!() };
    assert!(conn > b && b > a);
    core.connection_closed(conn);
    assert_eq!(core.tcp_incoming(ip), Err(Refusal::PerIp));
    core.connection_closed(a);
    let c = core.tcp_incoming(ip).unwrap();
    assert!(c > conn);
    core.set_accepting(false);
    assert_eq!(core.tcp_incoming("10.9.9.9".parse().unwrap()), Err(Refusal::NotAccepting));
}

// ---------------------------------------------------------------------
// Dials ahead of the `./hyperswarm` entry.
// ---------------------------------------------------------------------

#[test]
fn dials_ahead_one_per_permission_never_twice_and_bounded() {
    use hyperswarm_native::swarm::core::{MAX_AHEAD, SPECULATIVE_REQUESTS};
    let now = Instant::now();
    let mut core: SwarmCore<u32> = SwarmCore::new(8, true);
    let peer = |i: u16| Peer { host: format!("198.51.100.{i}").into(), port: 4000, local: false, referrer: None, topic: Some([1; 32]), to: None };
    // Not asked: nothing.
    assert_eq!(core.speculate(now, &peer(1)), None);
    core.set_speculation(true);
    let first = core.speculate(now, &peer(1)).expect("asked: dialled ahead");
    assert!(first >= SPECULATIVE_REQUESTS, "the engine's ids stay out of the caller's range");
    assert!(matches!(core.poll_action(), Some(Action::StartTcp { .. })));
    // One per permission.
    assert_eq!(core.speculate(now, &peer(2)), None);
    // Never the same address twice, even when asked again.
    core.set_speculation(true);
    assert_eq!(core.speculate(now, &peer(1)), None);
    // At most MAX_AHEAD in flight, whatever the caller asks.
    let mut ahead = 1;
    for i in 2..20 {
        core.set_speculation(true);
        if core.speculate(now, &peer(i)).is_some() {
            ahead += 1;
        }
    }
    assert_eq!(ahead, MAX_AHEAD);
    // Each is an ordinary race: it ends in Connected for its request.
    let mut ended = 0;
    core.handle_timeout(now + CONNECT_TIMEOUT + MS);
    while let Some(a) = core.poll_action() {
        if let Action::Failed { kind: DialKind::Request(q), .. } = a {
            assert!(q >= SPECULATIVE_REQUESTS);
            ended += 1;
        }
    }
    assert_eq!(ended, MAX_AHEAD);
    core.set_speculation(true);
    assert!(core.speculate(now + CONNECT_TIMEOUT, &peer(30)).is_some(), "room again once they ended");
}
