//! The mDNS socket: `0.0.0.0:5353` shared with other processes, member of
//! 224.0.0.251 on every IPv4 interface, sending on every interface.
//!
//! The reference sends through the kernel's default interface only, so a
//! multi-homed host was found on one LAN at most (an upstream complaint).
//! We send one copy per multicast-capable interface, each with that
//! interface's address as source, so peers on each LAN dial an address they
//! can reach.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::wire::mdns::{MDNS_GROUP, MDNS_PORT, MULTICAST_TTL};

/// The IPv4 addresses to send from: every non-loopback interface that is up,
/// or loopback alone when there is none (what the reference falls back to).
pub fn send_interfaces() -> Vec<Ipv4Addr> {
    let all = ipv4_interfaces();
    let outside: Vec<Ipv4Addr> = all.iter().copied().filter(|ip| !ip.is_loopback()).collect();
    if outside.is_empty() {
        all.into_iter().filter(|ip| ip.is_loopback()).take(1).collect()
    } else {
        outside
    }
}

/// Every IPv4 interface address, loopback included (group membership goes
/// on all of them, like the reference).
pub fn ipv4_interfaces() -> Vec<Ipv4Addr> {
    let mut seen = HashSet::new();
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => Some(v4.ip),
            _ => None,
        })
        .filter(|ip| seen.insert(*ip))
        .collect()
}

pub struct MulticastSocket {
    socket: UdpSocket,
    joined: HashSet<Ipv4Addr>,
}

impl MulticastSocket {
    /// Binds `0.0.0.0:5353` with address reuse so that several swarms and
    /// other mDNS responders on the host share the port.
    pub fn open() -> io::Result<Self> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        #[cfg(unix)]
        s.set_reuse_port(true)?;
        s.set_multicast_loop_v4(true)?;
        s.set_multicast_ttl_v4(MULTICAST_TTL)?;
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, MDNS_PORT)).into())?;
        let socket = UdpSocket::from_std(s.into())?;
        let mut me = MulticastSocket { socket, joined: HashSet::new() };
        me.refresh_membership();
        Ok(me)
    }

    /// Joins the group on interfaces not yet joined; called again
    /// periodically so that interfaces that appear later are covered.
    pub fn refresh_membership(&mut self) {
        for ip in ipv4_interfaces() {
            if self.joined.contains(&ip) {
                continue;
            }
            match self.socket.join_multicast_v4(MDNS_GROUP, ip) {
                Ok(()) => {
                    self.joined.insert(ip);
                }
                // An interface without multicast (e.g. a bare `lo`) refuses;
                // that is not an error for the swarm.
                Err(e) => tracing::trace!(%ip, "no mDNS membership: {e}"),
            }
        }
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }

    /// Multicasts `payload` out of every interface. Returns how many copies
    /// left; failures on single interfaces are logged, not fatal.
    pub async fn send_all(&self, payload: &[u8]) -> usize {
        let mut sent = 0;
        let group = SocketAddrV4::new(MDNS_GROUP, MDNS_PORT);
        for ip in send_interfaces() {
            let sock = socket2::SockRef::from(&self.socket);
            if let Err(e) = sock.set_multicast_if_v4(&ip) {
                tracing::trace!(%ip, "cannot select interface: {e}");
                continue;
            }
            match self.socket.send_to(payload, group).await {
                Ok(_) => sent += 1,
                Err(e) => tracing::debug!(%ip, "mDNS send failed: {e}"),
            }
        }
        sent
    }
}
