//! What discovery reports: a peer, where it was heard of, and under which
//! topic (spec/api-network.md §3.4).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

/// A 32-byte topic key: what peers join to find each other. Any 32 bytes
/// do; [`topic`](crate::topic) hashes a name into one.
pub type Topic = [u8; 32];

/// The DHT node that told us about a peer. LAN peers have none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Referrer {
    /// The node's address (IPv4 for discovered peers). A user's `connect`
    /// may name it instead: the engine then punches only when the user's
    /// own punch hook does it (network.js `discovery.holepunch`).
    pub host: Host,
    /// The node's UDP port.
    pub port: u16,
    /// The node's 32-byte DHT id, when it sent one.
    pub id: Option<Vec<u8>>,
}

/// Where a peer is. Discovery only ever reports addresses; a name is one a
/// user gave to `connect`, resolved when it is dialled (as `net.connect`
/// does for the reference).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An address, never `::ffff:`-mapped IPv4.
    Ip(IpAddr),
    /// A name to resolve when dialled.
    Name(String),
}

impl Host {
    /// Reads a host once, where text comes in: an IP literal becomes
    /// [`Host::Ip`] (`::ffff:a.b.c.d` as plain `a.b.c.d`), anything else a
    /// [`Host::Name`]. Nothing past this point parses host text again.
    pub fn parse(text: &str) -> Host {
        match text.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(unmap(ip)),
            Err(_) => Host::Name(text.to_string()),
        }
    }

    /// The IPv4 address, when it is one (punching and uTP are IPv4 only).
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        match self {
            Host::Ip(IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        }
    }
}

impl From<Ipv4Addr> for Host {
    fn from(ip: Ipv4Addr) -> Host {
        Host::Ip(IpAddr::V4(ip))
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        Host::Ip(unmap(ip))
    }
}

/// Text from a Rust caller (`"10.0.0.2".into()`): read as [`Host::parse`] does.
impl From<&str> for Host {
    fn from(text: &str) -> Host {
        Host::parse(text)
    }
}

impl From<String> for Host {
    fn from(text: String) -> Host {
        Host::parse(&text)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A peer to dial: found in a topic by discovery, or written by hand for
/// [`Swarm::connect`](crate::Swarm::connect) (then only `host`, `port` and
/// `local` matter).
///
/// ```
/// use std::net::Ipv4Addr;
/// use hyperswarm_native::Peer;
/// let p = Peer { host: Ipv4Addr::new(10, 0, 0, 2).into(), port: 49737, local: true, referrer: None, topic: None, to: None };
/// assert_eq!(p.to_string(), "10.0.0.2:49737");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Its address (always an IPv4 address for discovered peers).
    pub host: Host,
    /// Its port: TCP and UDP (uTP) share it.
    pub port: u16,
    /// Found on the LAN (mDNS, or a DHT `localPeers` record).
    pub local: bool,
    /// The DHT node that told us about it; dialling punches a hole
    /// through this node when TCP does not get through.
    pub referrer: Option<Referrer>,
    /// The topic it was found in.
    pub topic: Option<Topic>,
    /// Our own address as the DHT node that answered saw it (the
    /// reference's `peer.to`); hyperswarm gives a peer behind the same
    /// public IP one attempt only.
    pub to: Option<SocketAddrV4>,
}

impl Peer {
    /// The dial-queue key: one entry per address, as the seed's queue keeps.
    /// `host` is unmapped already ([`Host::parse`]), so `::ffff:a.b.c.d` and
    /// `a.b.c.d` share a key.
    pub fn address_key(&self) -> String {
        self.to_string()
    }

    /// Its IPv4 socket address, when `host` is an IPv4 address.
    pub fn addr_v4(&self) -> Option<SocketAddrV4> {
        self.host.ipv4().map(|ip| SocketAddrV4::new(ip, self.port))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// `::ffff:a.b.c.d` and `a.b.c.d` are one host; keying on the raw string
/// made the reference treat them as two peers (hyperswarm #75). The one
/// place a mapped address becomes plain IPv4.
pub fn unmap(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_is_one_key() {
        let p = |h: &str| Peer { host: Host::parse(h), port: 1, local: true, referrer: None, topic: None, to: None };
        assert_eq!(p("::ffff:10.0.0.1").address_key(), p("10.0.0.1").address_key());
        assert_eq!(p("::ffff:10.0.0.1").host, Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(p("::1").host, Host::Ip("::1".parse().unwrap()));
        // Not an address: a name, kept as given, never an IP.
        assert_eq!(p("::ffff:zz").host, Host::Name("::ffff:zz".into()));
        assert_eq!(p("localhost").addr_v4(), None);
        assert_eq!(p("10.0.0.1").addr_v4(), Some("10.0.0.1:1".parse().unwrap()));
    }
}
