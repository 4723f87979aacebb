//! The mDNS socket: `0.0.0.0:5353` shared with other processes, member of
//! 224.0.0.251 on every IPv4 interface, sending on every interface.
//!
//! The reference sends through the kernel's default interface only, so a
//! multi-homed host was found on one LAN at most (an upstream complaint).
//! We send one copy per multicast-capable interface, each with that
//! interface's address as source, so peers on each LAN dial an address they
//! can reach. Answers to a query go out of the interface it came in on
//! only; `IP_PKTINFO` says which one that was, so the LAN core can check
//! that the querier is on that interface's link.

use std::collections::HashSet;
use std::io;
use std::sync::Mutex;
use std::time::SystemTime;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::lan::Link;
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

/// Every IPv4 interface as the LAN core sees a link, by kernel index.
pub fn links() -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    for i in if_addrs::get_if_addrs().unwrap_or_default() {
        let if_addrs::IfAddr::V4(v4) = &i.addr else { continue };
        let index = i.index.unwrap_or(0);
        match out.iter_mut().find(|l| l.index == index && index != 0) {
            Some(l) => l.nets.push((v4.ip, v4.prefixlen)),
            None => out.push(Link { index, addr: v4.ip, loopback: i.is_loopback(), nets: vec![(v4.ip, v4.prefixlen)] }),
        }
    }
    out
}

/// The link a datagram came in on, from its interface index. An unknown
/// index (no packet info, or an interface that appeared since the last
/// scan) gives index 0 and the networks of every interface: the source must
/// still be on one of this host's links.
pub fn link_for(links: &[Link], index: u32) -> Link {
    if let Some(l) = links.iter().find(|l| l.index == index && index != 0) {
        return l.clone();
    }
    Link {
        index: 0,
        addr: Ipv4Addr::UNSPECIFIED,
        loopback: false,
        nets: links.iter().flat_map(|l| l.nets.iter().copied()).collect(),
    }
}

pub struct MulticastSocket {
    socket: UdpSocket,
    joined: Mutex<HashSet<Ipv4Addr>>,
    /// The interfaces as last scanned (refreshed with the memberships).
    links: Mutex<Vec<Link>>,
    /// Held from choosing the outgoing interface to the send: the socket is
    /// shared by every swarm of the process (io::mdns_hub) and by the JS
    /// thread, and `IP_MULTICAST_IF` is per socket.
    sending: Mutex<()>,
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
        #[cfg(target_os = "linux")]
        pktinfo::enable(&s)?;
        let socket = UdpSocket::from_std(s.into())?;
        let me = MulticastSocket { socket, joined: Mutex::default(), links: Mutex::default(), sending: Mutex::new(()) };
        me.refresh_membership();
        Ok(me)
    }

    /// Joins the group on interfaces not yet joined; called again
    /// periodically so that interfaces that appear later are covered.
    pub fn refresh_membership(&self) {
        *self.links.lock().unwrap_or_else(|p| p.into_inner()) = links();
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        for ip in ipv4_interfaces() {
            if joined.contains(&ip) {
                continue;
            }
            match self.socket.join_multicast_v4(MDNS_GROUP, ip) {
                Ok(()) => {
                    joined.insert(ip);
                }
                // An interface without multicast (e.g. a bare `lo`) refuses;
                // that is not an error for the swarm.
                Err(e) => tracing::trace!(%ip, "no mDNS membership: {e}"),
            }
        }
    }

    /// Receives one datagram: its length, source, the link it came in on,
    /// and when the kernel received it (`None` where it cannot tell).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Link, Option<SystemTime>)> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = self.socket.as_raw_fd();
            let (n, from, index, at) =
                self.socket.async_io(tokio::io::Interest::READABLE, || pktinfo::recv(fd, buf)).await?;
            Ok((n, from, link_for(&self.links.lock().unwrap_or_else(|p| p.into_inner()), index), at))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (n, from) = self.socket.recv_from(buf).await?;
            Ok((n, from, link_for(&self.links.lock().unwrap_or_else(|p| p.into_inner()), 0), None))
        }
    }

    /// Multicasts `payload` out of the interface with address `via` only,
    /// or out of every interface when `via` is `None`. Returns the copies
    /// sent. Never waits: it is called from engine tasks and from the JS
    /// thread, and a full socket buffer drops the datagram, as UDP may.
    pub fn send_via(&self, payload: &[u8], via: Option<Ipv4Addr>) -> usize {
        let _one_at_a_time = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        match via {
            None => send_interfaces().into_iter().filter(|ip| self.send_on(payload, *ip)).count(),
            Some(ip) => self.send_on(payload, ip) as usize,
        }
    }

    fn send_on(&self, payload: &[u8], ip: Ipv4Addr) -> bool {
        let group = SocketAddrV4::new(MDNS_GROUP, MDNS_PORT);
        let sock = socket2::SockRef::from(&self.socket);
        if let Err(e) = sock.set_multicast_if_v4(&ip) {
            tracing::trace!(%ip, "cannot select interface: {e}");
            return false;
        }
        match super::send_now(&self.socket, payload, SocketAddr::V4(group)) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(%ip, "mDNS send failed: {e}");
                false
            }
        }
    }
}

/// `IP_PKTINFO`: the kernel tells which interface each datagram came in on.
#[cfg(target_os = "linux")]
mod pktinfo {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
    use std::os::fd::{AsRawFd, RawFd};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub fn enable(s: &socket2::Socket) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid descriptor and an int option of the right size.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SO_TIMESTAMPNS: the kernel's receive time of each datagram, so
        // that a swarm is not handed what arrived before it existed.
        // SAFETY: as above.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// One `recvmsg`: (length, source, interface index or 0, receive time).
    pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, u32, Option<SystemTime>)> {
        // SAFETY: every pointer handed to recvmsg points into a local that
        // outlives the call, with its true length; the control buffer is
        // u64-aligned as cmsghdr needs, and the CMSG_* walk stays within
        // msg_controllen as the kernel set it.
        unsafe {
            let mut addr: libc::sockaddr_in = zeroed();
            let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            let mut control = [0u64; 16];
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 16]>() as _;
            let n = libc::recvmsg(fd, &mut msg, 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut index = 0u32;
            let mut at = None;
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                    let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    index = info.ipi_ifindex as u32;
                }
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    if ts.tv_sec >= 0 {
                        at = Some(UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
            let from = SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(addr.sin_port)));
            Ok((n as usize, from, index, at))
        }
    }
}
