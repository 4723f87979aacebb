//! The sans-IO protocol cores under [`Swarm`](crate::Swarm), for use on
//! their own: no socket, clock or runtime inside. Feed them datagrams and
//! the time, and they answer with datagrams to send, events, and the next
//! deadline (the style of `quinn-proto`). They are what the swarm's tokio
//! driver runs, and what this crate's simulations test.

pub mod utp {
    //! uTP (BEP 29), as libutp / utp-native 2.5.3 speak it: every
    //! connection of one UDP socket in one [`Endpoint`].
    //!
    //! Driving it: hand every datagram for which [`looks_like_utp`] holds
    //! to [`Endpoint::handle_datagram`], call [`Endpoint::handle_timeout`]
    //! at [`Endpoint::poll_timeout`], and after each call drain
    //! [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`].
    //!
    //! Two endpoints on a virtual network:
    //!
    //! ```
    //! use std::net::SocketAddrV4;
    //! use std::time::Instant;
    //! use hyperswarm_native::sansio::utp::{Endpoint, UtpConfig, UtpEvent};
    //!
    //! let (a_addr, b_addr): (SocketAddrV4, SocketAddrV4) = ("10.0.0.1:4000".parse().unwrap(), "10.0.0.2:5000".parse().unwrap());
    //! let mut a = Endpoint::new(UtpConfig::default(), 1);
    //! let mut b = Endpoint::new(UtpConfig::default(), 2);
    //! let now = Instant::now();
    //!
    //! // Delivers every datagram either side has to send, until both are quiet.
    //! let pump = |a: &mut Endpoint, b: &mut Endpoint| loop {
    //!     let mut moved = false;
    //!     while let Some((to, datagram)) = a.poll_transmit() {
    //!         assert_eq!(to, b_addr);
    //!         b.handle_datagram(now, a_addr, &datagram);
    //!         moved = true;
    //!     }
    //!     while let Some((to, datagram)) = b.poll_transmit() {
    //!         assert_eq!(to, a_addr);
    //!         a.handle_datagram(now, b_addr, &datagram);
    //!         moved = true;
    //!     }
    //!     if !moved { break }
    //! };
    //!
    //! let conn = a.connect(now, b_addr);
    //! pump(&mut a, &mut b);
    //! assert_eq!(a.poll_event(), Some(UtpEvent::Connected { id: conn }));
    //! assert_eq!(a.write(now, conn, b"hello"), 5);
    //! pump(&mut a, &mut b);
    //!
    //! // The acceptor hears of the connection with its first data.
    //! let events: Vec<UtpEvent> = std::iter::from_fn(|| b.poll_event()).collect();
    //! let Some(UtpEvent::Incoming { id, from }) = events.first().cloned() else { panic!("{events:?}") };
    //! assert_eq!(from, a_addr);
    //! let mut got = Vec::new();
    //! assert_eq!(b.read(id, &mut got, 1024), 5);
    //! assert_eq!(got, b"hello");
    //! ```
    pub use crate::utp::{ConnId, Endpoint, UtpConfig, UtpEvent, UtpStats};
    pub use crate::utp::looks_like_utp;
}

pub mod wire {
    //! The DHT's wire format (dht-rpc 4.9.6 / @hyperswarm/dht 4.0.1), byte
    //! for byte as the reference writes it: the [`Message`] every datagram
    //! carries, and the compact address records inside messages.
    //!
    //! A `_ping` query:
    //!
    //! ```
    //! use hyperswarm_native::sansio::wire::{Message, MessageType};
    //!
    //! let mut ping = Message::new(MessageType::Query, 7);
    //! ping.command = Some("_ping".into());
    //! let bytes = ping.encode();
    //! // version (field 11) first, as the reference's schema orders it; then
    //! // type, rid and command.
    //! assert_eq!(bytes, [0x58, 1, 0x08, 1, 0x10, 7, 0x3a, 5, b'_', b'p', b'i', b'n', b'g']);
    //! assert_eq!(Message::decode(&bytes), Ok(ping));
    //! assert!(Message::decode(&bytes[..5]).is_err());
    //! ```
    //!
    //! A peer record is 6 bytes (IPv4, then the port big-endian); a DHT node
    //! record is its 32-byte id and then those 6.
    //!
    //! ```
    //! use std::net::SocketAddrV4;
    //! use hyperswarm_native::sansio::wire::{decode_peers, encode_peers, DecodeError};
    //!
    //! let peers: Vec<SocketAddrV4> = vec!["10.0.0.1:49737".parse().unwrap(), "192.168.1.20:1".parse().unwrap()];
    //! let bytes = encode_peers(&peers);
    //! assert_eq!(bytes[..6], [10, 0, 0, 1, 0xc2, 0x49]);
    //! assert_eq!(decode_peers(&bytes), Ok(peers));
    //! // As the reference reads them: a partial record or a zero port
    //! // rejects the whole list.
    //! assert_eq!(decode_peers(&bytes[..7]), Err(DecodeError::BadRecordLength { len: 7, record: 6 }));
    //! assert_eq!(decode_peers(&[10, 0, 0, 1, 0, 0]), Err(DecodeError::ZeroPort));
    //! ```
    pub use crate::wire::dht::{
        decode_nodes, decode_peer, decode_peers, encode_nodes, encode_peer, encode_peers, DecodeError, Message, MessageType,
        NodeRecord, MAX_MESSAGE_LEN, NODE_RECORD_LEN, PEER_RECORD_LEN,
    };
}
