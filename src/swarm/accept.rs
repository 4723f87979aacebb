//! Which incoming TCP connections a swarm takes: none while it is not
//! accepting (`maxConnections` reached, as the reference's server stops),
//! and at most a fixed number open per peer IP, so that one host cannot
//! take every descriptor. Pure bookkeeping; the uTP endpoint applies the
//! same two rules to SYNs itself.

use std::collections::HashMap;
use std::net::IpAddr;

/// Why an incoming connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The swarm is not accepting (`set_accepting(false)`).
    NotAccepting,
    /// Its IP has the most connections open it may have.
    PerIp,
}

#[derive(Debug)]
pub struct AcceptLimits {
    accepting: bool,
    max_per_ip: usize,
    open: HashMap<IpAddr, usize>,
    by_conn: HashMap<u64, IpAddr>,
}

impl AcceptLimits {
    /// At most `max_per_ip` open connections per IP; 0: no cap
    /// (`SwarmConfig::max_incoming_per_ip`).
    pub fn new(max_per_ip: usize) -> Self {
        AcceptLimits {
            accepting: true,
            max_per_ip: if max_per_ip == 0 { usize::MAX } else { max_per_ip },
            open: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }

    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// Connection `conn` from `ip` came in: counted if taken.
    pub fn admit(&mut self, ip: IpAddr, conn: u64) -> Result<(), Refusal> {
        if !self.accepting {
            return Err(Refusal::NotAccepting);
        }
        let ip = unmapped(ip);
        let open = self.open.entry(ip).or_default();
        if *open >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *open += 1;
        self.by_conn.insert(conn, ip);
        Ok(())
    }

    /// Connection `conn` closed; nothing happens for one not admitted here.
    pub fn closed(&mut self, conn: u64) {
        let Some(ip) = self.by_conn.remove(&conn) else { return };
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }

    /// Incoming connections open from `ip`.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.get(&unmapped(ip)).copied().unwrap_or(0)
    }

    /// IPs with connections open (the table is bounded by the connections).
    #[cfg(test)]
    pub fn ips(&self) -> usize {
        self.open.len()
    }
}

/// A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`: one host,
/// one count.
use crate::discovery::peer::unmap as unmapped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_ip_cap_holds_and_frees_on_close() {
        let mut a = AcceptLimits::new(3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        for conn in 0..3 {
            assert_eq!(a.admit(if conn % 2 == 0 { ip } else { mapped }, conn), Ok(()));
        }
        // Past the bound, in either spelling.
        assert_eq!(a.admit(ip, 3), Err(Refusal::PerIp));
        assert_eq!(a.admit(mapped, 4), Err(Refusal::PerIp));
        assert_eq!(a.admit("10.0.0.2".parse().unwrap(), 5), Ok(()));
        a.closed(3); // refused: was never counted
        assert_eq!(a.open_from(ip), 3);
        a.closed(1);
        assert_eq!(a.admit(ip, 6), Ok(()));
        for conn in [0, 2, 5, 6] {
            a.closed(conn);
        }
        assert_eq!(a.ips(), 0, "the table empties");
    }

    #[test]
    fn not_accepting_refuses_everyone_and_zero_means_no_cap() {
        let mut a = AcceptLimits::new(0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for conn in 0..1000 {
            assert_eq!(a.admit(ip, conn), Ok(()));
        }
        a.set_accepting(false);
        assert_eq!(a.admit("10.0.0.9".parse().unwrap(), 1000), Err(Refusal::NotAccepting));
        a.set_accepting(true);
        assert_eq!(a.admit("10.0.0.9".parse().unwrap(), 1001), Ok(()));
    }
}
