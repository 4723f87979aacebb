//! Binding the swarm's one UDP socket and its TCP listener on one port
//! number, as `@hyperswarm/network` does (spec/api-network.md §2.3).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Port attempts: `pp, pp+1, pp+2, 0, 0, 0, 0` (spec/api-network.md §2.3).
pub const BIND_ATTEMPTS: usize = 7;
/// Listen backlog; Node's default for `net.Server`.
pub(crate) const BACKLOG: i32 = 511;

/// The candidate ports for a preferred port, or just `[port]` for a fixed one.
pub fn candidates(port: Option<u16>, preferred: u16) -> Vec<u16> {
    match port {
        Some(p) => vec![p],
        None if preferred == 0 => vec![0; BIND_ATTEMPTS],
        None => {
            let mut v: Vec<u16> = (0..3).filter_map(|i| preferred.checked_add(i)).collect();
            v.resize(BIND_ATTEMPTS, 0);
            v
        }
    }
}

/// A UDP socket on `0.0.0.0:port` and a TCP listener on the same port number,
/// dual-stack `[::]` where the host has IPv6, else `0.0.0.0`.
pub fn bind_pair(port: u16) -> io::Result<(UdpSocket, TcpListener)> {
    let udp = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
    udp.set_nonblocking(true)?;
    let port = udp.local_addr()?.port();
    let tcp = listen_tcp(port)?;
    Ok((UdpSocket::from_std(udp)?, TcpListener::from_std(tcp)?))
}

pub(crate) fn listen_tcp(port: u16) -> io::Result<std::net::TcpListener> {
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let socket = match Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)) {
        Ok(s) => {
            s.set_only_v6(false)?;
            (s, v6)
        }
        Err(_) => (
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ),
    };
    let (s, addr) = socket;
    // Like Node: a restarted swarm can take its port back at once.
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    if let Err(e) = s.bind(&addr.into()) {
        if !addr.is_ipv6() {
            return Err(e);
        }
        // No IPv6 on this host after all: fall back to IPv4.
        let s4 = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s4.set_reuse_address(true)?;
        s4.set_nonblocking(true)?;
        s4.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
        s4.listen(BACKLOG)?;
        return Ok(s4.into());
    }
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// Tries each candidate until both sockets bind; returns the last error.
pub fn bind_first(port: Option<u16>, preferred: u16) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no port candidates");
    for p in candidates(port, preferred) {
        match bind_pair(p) {
            Ok(pair) => return Ok(pair),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_reference() {
        assert_eq!(candidates(None, 0), vec![0; 7]);
        assert_eq!(candidates(None, 30000), vec![30000, 30001, 30002, 0, 0, 0, 0]);
        assert_eq!(candidates(Some(4000), 30000), vec![4000]);
        assert_eq!(candidates(None, 65535), vec![65535, 0, 0, 0, 0, 0, 0]);
    }
}
