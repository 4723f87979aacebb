//! Tokio drivers: the shared runtime and the sockets. Everything that touches
//! the operating system lives here.

pub mod bind;
pub mod dht_node;
pub mod mdns_hub;
pub mod multicast;
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
