//! Tokio drivers: the shared runtime and the sockets. Everything that touches
//! the operating system lives here.

pub mod bind;
pub mod dht_node;
pub mod mdns_hub;
pub mod multicast;
pub mod relay;
pub mod resolve;
pub mod runtime;
pub mod tcp_gate;

/// Sends a datagram now, without waiting. tokio's `try_send_to` refuses
/// until the reactor has reported the socket writable once, which drops the
/// first datagrams of a fresh socket (our first DHT requests); a plain
/// non-blocking `sendto` does not.
pub fn send_now(socket: &tokio::net::UdpSocket, bytes: &[u8], to: std::net::SocketAddr) -> std::io::Result<usize> {
    socket2::SockRef::from(socket).send_to(bytes, &to.into())
}

/// Sends one datagram with IP TTL `ttl`, then puts the socket's TTL back.
///
/// The swarm's one UDP socket carries the DHT and uTP, so the option must
/// not outlive this datagram. Every send of that socket is a synchronous
/// `sendto` on the driver's one task, so nothing else is sent between the
/// two `setsockopt` calls: the price is two system calls per hole punch,
/// and nothing for any other datagram. (`sendmsg` with an `IP_TTL` control
/// message would need neither, but Linux accepts that only since 4.x and
/// the BSDs not at all.)
pub fn send_with_ttl(socket: &tokio::net::UdpSocket, bytes: &[u8], to: std::net::SocketAddr, ttl: u32) -> std::io::Result<usize> {
    let s = socket2::SockRef::from(socket);
    let before = s.ttl_v4()?;
    s.set_ttl_v4(ttl)?;
    let sent = s.send_to(bytes, &to.into());
    // Put it back whether or not the send went: a failure here would leave
    // every later datagram short-lived, so it is the error reported.
    s.set_ttl_v4(before)?;
    sent
}
