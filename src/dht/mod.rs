//! The DHT: a dht-rpc 4 / @hyperswarm/dht 4 node, sans-IO (spec/wire-dht.md).

pub mod budget;
pub mod capability;
pub mod hypersign;
pub mod immutable;
pub mod mutable;
pub mod nat;
pub mod node;
pub mod ops;
pub mod peer_store;
pub mod punch_hold;
pub mod query;
pub mod remote_address;
pub mod routing_table;
pub mod scope;
pub mod store_query;
pub mod rpc;
pub mod tokens;
pub mod value_store;

pub use budget::Limits;
pub use node::{Dht, DhtConfig, DhtEvent, DhtStats, FoundPeers, QueryId, RequestId};
pub use hypersign::{InputError, Keypair};
pub use routing_table::NodeId;
pub use store_query::{Got, MutablePutOptions, Signer, StoreFailure, StoreOutcome, StoreRequest};
