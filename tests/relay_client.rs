//! The peer's side of the relay (`RelayClient`) against the relay core on
//! a virtual clock and network: pairing and data both ways, retries over
//! loss, refusals and endings reported as errors, a relay that never
//! answers, keep-alives that hold off the idle timeout, and datagrams from
//! anyone but the relay ignored.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hyperswarm_native::relay::client::{JOIN_TIMEOUT, KEEPALIVE};
use hyperswarm_native::relay::{ClientEvent, EndReason, Message, Refusal, Relay, RelayClient, RelayConfig, RelayError};

const RELAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 49738);

fn peer(i: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, i, 1), 4000 + i as u16)
}

/// A relay and clients on one virtual network, stepped 50 ms at a time.
/// `drop_first` datagrams towards the relay are lost.
struct Net {
    now: Instant,
    relay: Option<Relay>,
    clients: Vec<(SocketAddrV4, RelayClient, Vec<ClientEvent>)>,
    drop_first: usize,
    to_relay: usize,
}

impl Net {
    fn new(config: Option<RelayConfig>, n: u8) -> Net {
        let now = Instant::now();
        Net {
            now,
            relay: config.map(|c| Relay::new(c, now, [3; 32])),
            clients: (1..=n).map(|i| (peer(i), RelayClient::new(), Vec::new())).collect(),
            drop_first: 0,
            to_relay: 0,
        }
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for (addr, c, _) in self.clients.iter_mut() {
                while let Some((to, bytes)) = c.poll_transmit() {
                    assert_eq!(to, RELAY);
                    self.to_relay += 1;
                    moved = true;
                    if self.to_relay <= self.drop_first {
                        continue;
                    }
                    if let Some(r) = self.relay.as_mut() {
                        r.handle_datagram(self.now, *addr, &bytes);
                    }
                }
            }
            if let Some(r) = self.relay.as_mut() {
                while let Some((to, bytes)) = r.poll_transmit() {
                    moved = true;
                    if let Some((_, c, _)) = self.clients.iter_mut().find(|(a, _, _)| *a == to) {
                        c.handle_datagram(self.now, RELAY, &bytes);
                    }
                }
            }
            for (_, c, events) in self.clients.iter_mut() {
                events.extend(std::iter::from_fn(|| c.poll_event()));
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs the clocks for `d`.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(50);
            for (_, c, _) in self.clients.iter_mut() {
                if c.poll_timeout().is_some_and(|t| t <= self.now) {
                    c.handle_timeout(self.now);
                }
            }
            if let Some(r) = self.relay.as_mut() {
                if r.poll_timeout().is_some_and(|t| t <= self.now) {
                    r.handle_timeout(self.now);
                }
            }
            self.pump();
        }
    }

    fn join(&mut self, i: usize, token: [u8; 32]) {
        let now = self.now;
        self.clients[i].1.join(now, RELAY, token).unwrap();
        self.pump();
    }

    fn events(&mut self, i: usize) -> Vec<ClientEvent> {
        std::mem::take(&mut self.clients[i].2)
    }
}

#[test]
fn two_clients_pair_and_exchange_data_both_ways() {
    let mut net = Net::new(Some(RelayConfig::default()), 2);
    let t = [1; 32];
    net.join(0, t);
    assert_eq!(net.events(0), vec![ClientEvent::Waiting { token: t }]);
    net.join(1, t);
    assert_eq!(net.events(0), vec![ClientEvent::Paired { token: t }]);
    assert_eq!(net.events(1), vec![ClientEvent::Paired { token: t }]);
    let now = net.now;
    net.clients[0].1.send(now, &t, b"a to b").unwrap();
    net.clients[1].1.send(now, &t, b"b to a").unwrap();
    net.pump();
    assert_eq!(net.events(1), vec![ClientEvent::Data { token: t, payload: b"a to b".to_vec() }]);
    assert_eq!(net.events(0), vec![ClientEvent::Data { token: t, payload: b"b to a".to_vec() }]);
    // Too large for one relayed datagram; an unknown session.
    assert_eq!(net.clients[0].1.send(now, &t, &[0; 1461]), Err(RelayError::TooLarge));
    assert_eq!(net.clients[0].1.send(now, &[9; 32], b"x"), Err(RelayError::NotPaired));
    // A close reaches the other side as an ending.
    net.clients[0].1.close(&t);
    net.pump();
    assert_eq!(net.events(1), vec![ClientEvent::Failed { token: t, error: RelayError::Ended(EndReason::Closed) }]);
}

#[test]
fn lost_joins_are_retried() {
    let mut net = Net::new(Some(RelayConfig::default()), 2);
    net.drop_first = 3;
    let t = [2; 32];
    net.join(0, t);
    net.join(1, t);
    assert!(net.events(0).is_empty());
    net.run(Duration::from_secs(3));
    assert!(net.events(0).contains(&ClientEvent::Paired { token: t }));
    assert!(net.events(1).contains(&ClientEvent::Paired { token: t }));
}

#[test]
fn a_refusal_is_reported_as_an_error_with_its_reason() {
    let mut net = Net::new(Some(RelayConfig { max_pairs: 1, ..RelayConfig::default() }), 3);
    net.join(0, [1; 32]);
    net.join(1, [1; 32]);
    net.join(2, [2; 32]);
    let ev = net.events(2);
    assert_eq!(ev, vec![ClientEvent::Failed { token: [2; 32], error: RelayError::Refused(Refusal::Full) }]);
    let ClientEvent::Failed { error, .. } = &ev[0] else { unreachable!() };
    assert_eq!(error.to_string(), "relay refused: the relay carries as many pairs as it may");
    // The control: the first pair formed.
    assert!(net.events(1).contains(&ClientEvent::Paired { token: [1; 32] }));
    // A waiting session whose partner never comes ends with its reason.
    let mut net = Net::new(Some(RelayConfig::default()), 1);
    net.join(0, [3; 32]);
    net.run(Duration::from_secs(36));
    let ev = net.events(0);
    assert_eq!(ev.last(), Some(&ClientEvent::Failed { token: [3; 32], error: RelayError::Ended(EndReason::NoPartner) }));
}

#[test]
fn a_relay_that_never_answers_fails_the_join_after_its_timeout() {
    let mut net = Net::new(None, 1);
    net.join(0, [1; 32]);
    net.run(JOIN_TIMEOUT - Duration::from_millis(100));
    assert!(net.events(0).is_empty());
    let sent = net.to_relay;
    assert!((9..=11).contains(&sent), "{sent} joins");
    net.run(Duration::from_millis(200));
    assert_eq!(net.events(0), vec![ClientEvent::Failed { token: [1; 32], error: RelayError::Unanswered }]);
    assert_eq!(net.clients[0].1.poll_timeout(), None);
}

#[test]
fn keepalives_hold_a_silent_pair_until_its_lifetime() {
    let config = RelayConfig { idle_timeout: Duration::from_secs(60), pair_lifetime: Duration::from_secs(600), ..RelayConfig::default() };
    let mut net = Net::new(Some(config), 2);
    net.join(0, [1; 32]);
    net.join(1, [1; 32]);
    net.events(0);
    net.events(1);
    net.run(Duration::from_secs(590));
    assert!(net.events(0).is_empty() && net.events(1).is_empty(), "ended early");
    let keepalives = net.relay.as_ref().unwrap().stats().received;
    assert!(keepalives >= 2 * (590 / KEEPALIVE.as_secs()), "{keepalives}");
    net.run(Duration::from_secs(11));
    for i in 0..2 {
        assert_eq!(net.events(i), vec![ClientEvent::Failed { token: [1; 32], error: RelayError::Ended(EndReason::Lifetime) }]);
    }
}

#[test]
fn only_the_relay_speaks_for_a_session() {
    let mut net = Net::new(Some(RelayConfig::default()), 2);
    let t = [1; 32];
    net.join(0, t);
    net.join(1, t);
    net.events(0);
    // A forged ending and forged data from elsewhere are ignored.
    let now = net.now;
    let mallory = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), RELAY.port());
    net.clients[0].1.handle_datagram(now, mallory, &Message::Ended { token: t, reason: EndReason::Idle }.encode());
    net.clients[0].1.handle_datagram(now, mallory, &Message::Data { id: 1, payload: b"x" }.encode());
    net.pump();
    assert!(net.events(0).is_empty());
    net.clients[1].1.send(now, &t, b"still here").unwrap();
    net.pump();
    assert_eq!(net.events(0), vec![ClientEvent::Data { token: t, payload: b"still here".to_vec() }]);
}
