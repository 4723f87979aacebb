//! The Node.js binding: converts types and errors, nothing more. Every rule
//! lives in the engine; index.js builds the Node-shaped API.

mod code;
mod constants;
mod dht;
mod dht_node;
mod guard;
mod peer_queue;
mod swarm;
mod warm;
