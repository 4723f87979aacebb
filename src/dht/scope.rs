//! Address scope: which addresses a node or peer list may name, given who
//! sent the list, and the "subnet" one party is assumed to control.
//!
//! Not in the reference, which takes any address it is given. The rules:
//! - Never an unspecified (0.0.0.0/8), multicast (224/4), reserved (240/4)
//!   or broadcast address: nobody legitimately listens there.
//! - A loopback address only from a loopback source (a local testnet), a
//!   private address (RFC 1918, link-local, CGNAT) only from a loopback or
//!   private source. A public node naming 127.0.0.1 or 192.168.1.1 is either
//!   confused or pointing us at our own host or LAN.
//! - One party controls at least an IPv4 /24 ([`subnet`]); diversity caps
//!   count contacts and records by it. Loopback is the exception: packets
//!   from 127/8 cannot arrive from another host (the kernel drops them as
//!   martians), so every loopback address:port is its own party and a
//!   loopback testnet of many nodes on 127.0.0.1 keeps working.

use std::net::{Ipv4Addr, SocketAddrV4};

/// How far an address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Loopback,
    Private,
    Public,
}

pub fn scope(ip: Ipv4Addr) -> Scope {
    let o = ip.octets();
    if ip.is_loopback() {
        Scope::Loopback
    } else if ip.is_private() || ip.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        Scope::Private
    } else {
        Scope::Public
    }
}

/// An address a datagram may be sent to at all.
pub fn is_unicast(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0 || ip.is_multicast() || ip.is_broadcast() || o[0] >= 240)
}

/// Whether a peer or node `addr` named in a list that came from `source`
/// is taken (see the module doc).
pub fn allowed_from(addr: SocketAddrV4, source: Ipv4Addr) -> bool {
    if addr.port() == 0 || !is_unicast(*addr.ip()) {
        return false;
    }
    match scope(*addr.ip()) {
        Scope::Public => true,
        Scope::Private => scope(source) != Scope::Public,
        Scope::Loopback => scope(source) == Scope::Loopback,
    }
}

/// The party an address belongs to for diversity caps: its /24, or for
/// loopback the full address (see the module doc).
pub fn subnet(addr: SocketAddrV4) -> u64 {
    let ip = u32::from(*addr.ip());
    if addr.ip().is_loopback() {
        (1 << 48) | ((ip as u64) << 16) | addr.port() as u64
    } else {
        (ip >> 8) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn lists_keep_their_scope() {
        let public: Ipv4Addr = "203.0.113.5".parse().unwrap();
        let private: Ipv4Addr = "10.1.2.3".parse().unwrap();
        let lo = Ipv4Addr::LOCALHOST;
        for bad in ["0.0.0.0:1", "0.1.2.3:1", "224.0.0.251:5353", "255.255.255.255:1", "240.0.0.1:1", "8.8.8.8:0"] {
            for src in [public, private, lo] {
                assert!(!allowed_from(a(bad), src), "{bad} from {src}");
            }
        }
        assert!(allowed_from(a("8.8.8.8:53"), public));
        assert!(!allowed_from(a("127.0.0.1:53"), public));
        assert!(!allowed_from(a("192.168.1.1:80"), public));
        assert!(!allowed_from(a("127.0.0.1:53"), private));
        assert!(allowed_from(a("192.168.1.1:80"), private));
        assert!(allowed_from(a("127.0.0.1:53"), lo));
        assert!(allowed_from(a("10.0.0.1:53"), lo));
        assert!(!allowed_from(a("100.64.0.1:53"), public), "CGNAT is private");
    }

    #[test]
    fn subnets_are_slash_24_except_loopback() {
        assert_eq!(subnet(a("203.0.113.5:1")), subnet(a("203.0.113.200:9")));
        assert_ne!(subnet(a("203.0.113.5:1")), subnet(a("203.0.114.5:1")));
        assert_ne!(subnet(a("127.0.0.1:1")), subnet(a("127.0.0.1:2")));
    }
}
