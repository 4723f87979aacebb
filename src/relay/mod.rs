//! A relay of last resort (issue 11 item 5): it splices the uTP flows of
//! two peers that cannot reach each other directly (two random NATs, or
//! every punch failed). Not in the 2019 stack; Rust↔Rust only, on a port of
//! its own, so no JS node ever sees its datagrams.
//!
//! **A relay sees the bytes it carries**, as a TURN server does: uTP
//! packets pass through it in the clear. Hypercore's handshake (Noise, in
//! the protocol above us) encrypts and authenticates what matters; an
//! application not on hypercore must do its own.
//!
//! **Sessions.** Two peers pair by presenting the same session token, 32
//! random bytes one of them draws. Not derived from something both know:
//! in the 2019 stack two peers share only public facts (the topic, their
//! addresses), so anything both could derive, a DHT node that saw the
//! announcements could derive too, and then take a side of the pair first.
//! A random token is known only to the two peers and whoever carried it
//! between them. The relay registers at most two addresses per token and
//! forwards only between them.
//!
//! **Spoofing and amplification.** A join is answered with a stateless
//! cookie challenge ([`cookie`]) until it echoes a cookie made for its
//! source address, so no state is kept for a spoofed source and nothing
//! sent to one is larger than the join it sent. Each side then sends under
//! a random 64-bit id only it was told, from the address it registered.
//!
//! **How it will plug in** (not built yet): a relay announces its relay
//! port on the DHT under a well-known topic, as any peer announces (a JS
//! node stores it like any other announcement); a swarm looks the topic
//! up when the two NAT classes (the capability record) call for a relay,
//! or when every punch failed. The token must travel through the referrer
//! (the one channel the two share), in the capability record of the
//! `_holepunch`, which has no room for 32 more bytes: the dialling peer
//! will put a 16-byte random nonce there and both take the token as
//! BLAKE2b-256 of it, then both join; the swarm's socket tells relay datagrams
//! from uTP and the DHT by [`message::looks_like_relay`] and runs its uTP
//! connection over [`Message::Data`], and the connection reports
//! `details.type === 'relay'`. A swarm option will let a public peer run
//! the same core on a socket of its own.

pub mod bucket;
pub mod client;
pub mod config;
pub mod cookie;
pub mod message;
pub mod rendezvous;
pub mod server;
pub mod session;
pub mod stats;

pub use client::{ClientEvent, RelayClient, RelayError};
pub use config::RelayConfig;
pub use message::{looks_like_relay, EndReason, Message, Refusal, Token};
pub use server::Relay;
pub use stats::RelayStats;
