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
//! **How it plugs in**: a relay announces its relay port on the DHT under
//! a well-known topic ([`rendezvous::relay_topic`]), as any peer announces
//! (a JS node stores it like any other announcement). When both NATs are
//! random, the punched peer sends a 16-byte nonce back through the
//! referrer (the capability record's kind 3), both take the token from it
//! ([`rendezvous::token_from_nonce`]), pick the same relay
//! ([`rendezvous::pick`]) and join; the swarm's socket tells relay
//! datagrams from uTP and the DHT by [`message::looks_like_relay`] and runs
//! its uTP connection over [`Message::Data`] (`swarm::relay_io`), and the
//! connection reports `details.type === 'relay'`. The swarm's `relay`
//! option runs the same core on a socket of its own.

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
