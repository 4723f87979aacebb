//! What discovery reports: a peer, where it was heard of, and under which
//! topic (spec/api-network.md §3.4).

use std::fmt;

/// A 32-byte topic key: what peers join to find each other. Any 32 bytes
/// do; [`topic`](crate::topic) hashes a name into one.
pub type Topic = [u8; 32];

/// The DHT node that told us about a peer. LAN peers have none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Referrer {
    /// The node's IPv4 address, as text.
    pub host: String,
    /// The node's UDP port.
    pub port: u16,
    /// The node's 32-byte DHT id, when it sent one.
    pub id: Option<Vec<u8>>,
}

/// A peer to dial: found in a topic by discovery, or written by hand for
/// [`Swarm::connect`](crate::Swarm::connect) (then only `host`, `port` and
/// `local` matter).
///
/// ```
/// use hyperswarm_native::Peer;
/// let p = Peer { host: "10.0.0.2".into(), port: 49737, local: true, referrer: None, topic: None, to: None };
/// assert_eq!(p.to_string(), "10.0.0.2:49737");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Its address, as text (an IPv4 address for discovered peers).
    pub host: String,
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
    pub to: Option<std::net::SocketAddrV4>,
}

impl Peer {
    /// The dial-queue key: one entry per address, as the seed's queue keeps.
    pub fn address_key(&self) -> String {
        format!("{}:{}", unmap(&self.host), self.port)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// `::ffff:a.b.c.d` and `a.b.c.d` are one host; keying on the raw string
/// made the reference treat them as two peers (hyperswarm #75).
pub fn unmap(host: &str) -> &str {
    host.strip_prefix("::ffff:").filter(|v4| v4.parse::<std::net::Ipv4Addr>().is_ok()).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_is_one_key() {
        let p = |h: &str| Peer { host: h.into(), port: 1, local: true, referrer: None, topic: None, to: None };
        assert_eq!(p("::ffff:10.0.0.1").address_key(), p("10.0.0.1").address_key());
        assert_eq!(p("::ffff:zz").address_key(), "::ffff:zz:1");
    }
}
