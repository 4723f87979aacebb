//! What discovery reports: a peer, where it was heard of, and under which
//! topic (spec/api-network.md §3.4).

use std::fmt;

/// A 32-byte topic key.
pub type Topic = [u8; 32];

/// The DHT node that told us about a peer. LAN peers have none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Referrer {
    pub host: String,
    pub port: u16,
    pub id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    pub host: String,
    pub port: u16,
    /// Found on the LAN (mDNS, or a DHT `localPeers` record).
    pub local: bool,
    pub referrer: Option<Referrer>,
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
