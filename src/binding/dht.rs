//! `NativeDht`: one DHT node on its own UDP socket, driven by `./dht`
//! (the @hyperswarm/dht 4 API). Each operation carries a request number
//! that its events repeat; dht.js turns them into streams and callbacks.
//! The hypersign helpers (keypair, salt, sign, signable) live here too.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::code::{os_error, with_status, Code};
use super::guard::guarded;
use crate::dht::hypersign::{self, Keypair};
use crate::dht::{mutable, DhtConfig, DhtEvent, Limits, MutablePutOptions, Signer, StoreOutcome};
use crate::dht::ops::{Command, NodeEvent};
use crate::io::dht_node::DhtNode;
use crate::io::{resolve, runtime};
use crate::wire;

/// Events not asked for (`announce`, `lookup`, `holepunch`, … which remote
/// nodes cause) waiting for JS at most; past it they are dropped and
/// counted. Replies to our own operations are always delivered: their
/// number is bounded by the caller's operations and each query's cap.
pub const MAX_PENDING_UNSOLICITED: usize = 1024;

#[napi(object)]
pub struct DhtOptions {
    /// IPv4 address to bind; default 0.0.0.0.
    pub host: Option<String>,
    /// Port to bind; default 0 (any).
    pub port: Option<u32>,
    /// `"host:port"` entries; names are resolved in the background.
    pub bootstrap: Option<Vec<String>>,
    pub ephemeral: Option<bool>,
    /// Become persistent once hole-punchable (needs `ephemeral`).
    pub adaptive: Option<bool>,
    /// The node id, 32 bytes.
    pub id: Option<Buffer>,
    /// Multiplies the per-source limits (testnets; default 1).
    pub limit_scale: Option<u32>,
}

#[napi(object)]
pub struct DhtAddr {
    pub host: String,
    pub port: u32,
}

#[napi(object)]
pub struct DhtContact {
    pub id: Buffer,
    pub host: String,
    pub port: u32,
}

/// A mutable record (a get's answer, or a seq error's proof).
#[napi(object)]
pub struct DhtRecord {
    pub value: Option<Buffer>,
    pub signature: Option<Buffer>,
    pub seq: Option<f64>,
    pub salt: Option<Buffer>,
}

/// `mutablePut`'s signer and slot.
#[napi(object)]
pub struct DhtPutOptions {
    /// 64-byte libsodium secret key (seed ‖ public key); or give
    /// `publicKey` and `signature`.
    pub secret_key: Option<Buffer>,
    pub public_key: Option<Buffer>,
    pub signature: Option<Buffer>,
    pub seq: f64,
    pub salt: Option<Buffer>,
}

/// One event for lib/dht: a tagged union on `kind` (the variant's name in
/// kebab-case). Replies to an operation carry its `request`; which reply
/// kind ends an operation depends on the operation (see `to_js`).
#[napi(discriminant = "kind", discriminant_case = "kebab-case")]
pub enum DhtNativeEvent {
    Listening,
    Ready,
    InitialNodes,
    Persistent,
    Close,
    /// A remote node announced `topic` to us.
    Announce {
        topic: Buffer,
        from: DhtAddr,
    },
    Unannounce {
        topic: Buffer,
        from: DhtAddr,
    },
    Lookup {
        topic: Buffer,
        from: DhtAddr,
    },
    /// `from` asked us to punch towards `to`.
    Holepunch {
        from: DhtAddr,
        to: DhtAddr,
    },
    /// A query's reply from node `from` (`to`: our address as it saw it).
    Data {
        request: u32,
        from: DhtAddr,
        node_id: Option<Buffer>,
        to: Option<DhtAddr>,
        peers: Vec<DhtAddr>,
        local_peers: Vec<DhtAddr>,
    },
    /// A store's node refused or failed (`proof`: a seq error's record).
    Warning {
        request: u32,
        from: DhtAddr,
        error: String,
        proof: Option<DhtRecord>,
    },
    /// A query (lookup, announce, bootstrap, …) ended.
    Done {
        request: u32,
        error: Option<String>,
    },
    /// An operation failed: refused at once, a store's error (with its
    /// node and seq proof when there is one), or a ping or punch timed out.
    Failed {
        request: u32,
        error: String,
        from: Option<DhtAddr>,
        proof: Option<DhtRecord>,
    },
    /// A get's answer (`record.value` missing: no node had it).
    Got {
        request: u32,
        from: Option<DhtAddr>,
        node_id: Option<Buffer>,
        record: DhtRecord,
    },
    /// A put stored its value under `key`; a mutable put's `record` is the
    /// signed record.
    Put {
        request: u32,
        key: Buffer,
        record: Option<DhtRecord>,
    },
    /// A ping's answer (`to`: our address as `from` saw it).
    Pong {
        request: u32,
        from: DhtAddr,
        to: Option<DhtAddr>,
    },
    /// A punch through `from` worked.
    Holepunched {
        request: u32,
        from: DhtAddr,
    },
    /// An engine event lib/dht has no use for.
    Ignored,
}

#[napi(object)]
pub struct DhtInfo {
    pub nodes: u32,
    pub bootstrapped: bool,
    pub ephemeral: bool,
    pub holepunchable: bool,
    pub remote_address: Option<DhtAddr>,
    /// Our NAT's class: "unknown", "open", "consistent" or "random".
    pub nat_type: String,
    pub received: f64,
    pub malformed: f64,
    pub unmatched_responses: f64,
    pub rate_limited: f64,
    pub amplification_dropped: f64,
    pub values_stored: f64,
    pub values_rejected: f64,
    pub values_dropped: f64,
    pub values_evicted: f64,
    /// Unsolicited events dropped because JS was `MAX_PENDING_UNSOLICITED` behind.
    pub events_dropped: f64,
}

type EventFn = ThreadsafeFunction<NodeEvent, (), DhtNativeEvent, Status, false>;
type SharedFn = Arc<std::sync::Mutex<Option<EventFn>>>;

#[napi]
pub struct NativeDht {
    node: Option<DhtNode>,
    tsfn: SharedFn,
    dropped: Arc<AtomicU64>,
    port: u32,
    /// Commands of this JS turn, sent together by `flush` (see `command`).
    batch: std::cell::RefCell<Vec<Command>>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, msg.into())
}

fn key32(b: &[u8], name: &str) -> Result<[u8; 32]> {
    b.try_into().map_err(|_| invalid(format!("{name} must be 32 bytes, got {}", b.len())))
}

fn port16(p: u32, name: &str) -> Result<u16> {
    u16::try_from(p).map_err(|_| invalid(format!("{name} must be 0-65535, got {p}")))
}

fn addr(a: &DhtAddr, name: &str) -> Result<SocketAddrV4> {
    let ip = a.host.parse().map_err(|_| invalid(format!("{name}.host must be an IPv4 address, got {:?}", a.host)))?;
    Ok(SocketAddrV4::new(ip, port16(a.port, &format!("{name}.port"))?))
}

fn seq(s: f64) -> Result<u64> {
    if !(s.is_finite() && s >= 0.0 && s.fract() == 0.0 && s <= mutable::MAX_SEQ as f64) {
        return Err(invalid(format!("seq must be an integer from 0 to 2^53 - 1, got {s}")));
    }
    Ok(s as u64)
}

#[napi]
impl NativeDht {
    #[napi(constructor, catch_unwind)]
    /// A port that cannot be bound fails with the OS error's name as
    /// `code` (`EADDRINUSE`, …); other failures keep napi's status.
    pub fn new(options: DhtOptions, on_event: Function<DhtNativeEvent, ()>) -> Result<Self, Code> {
        let mut bind_error = None;
        match guarded(|| Self::create(options, on_event, &mut bind_error)) {
            Ok(node) => Ok(node),
            Err(e) => Err(match bind_error {
                Some(io) => os_error(&io, e.reason.clone()),
                None => with_status(e),
            }),
        }
    }

    fn create(options: DhtOptions, on_event: Function<DhtNativeEvent, ()>, bind_error: &mut Option<std::io::Error>) -> Result<Self> {
        crate::log::init();
        let host = options.host.unwrap_or_else(|| "0.0.0.0".into());
        let ip = host.parse().map_err(|_| invalid(format!("host must be an IPv4 address, got {host:?}")))?;
        let port = port16(options.port.unwrap_or(0), "port")?;
        let entries = options.bootstrap.unwrap_or_default();
        // Literal addresses start the node bootstrapping at once; names
        // are resolved first, and then the node bootstraps.
        let literal: Option<Vec<SocketAddrV4>> = entries.iter().map(|e| e.parse().ok()).collect();
        let ephemeral = options.ephemeral.unwrap_or(false);
        let adaptive = options.adaptive.unwrap_or(false);
        if adaptive && !ephemeral {
            return Err(invalid("adaptive mode can only applied when ephemeral: true"));
        }
        let config = DhtConfig {
            id: options.id.as_ref().map(|b| key32(b, "id")).transpose()?,
            ephemeral,
            adaptive,
            bootstrap: literal.clone().unwrap_or_default(),
            seed: rand::random(),
        };

        let pending = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let taken = pending.clone();
        let tsfn: EventFn = on_event
            .build_threadsafe_function::<NodeEvent>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                if matches!(ctx.value, NodeEvent::Dht(_)) {
                    taken.fetch_sub(1, Ordering::Relaxed);
                }
                guarded(|| Ok(to_js(ctx.value)))
            })?;
        let tsfn: SharedFn = Arc::new(std::sync::Mutex::new(Some(tsfn)));
        let sink_fn = tsfn.clone();
        let counted = dropped.clone();
        let sink = Box::new(move |ev: NodeEvent| {
            let closing = matches!(ev, NodeEvent::Closed);
            if matches!(ev, NodeEvent::Dht(_)) {
                if pending.load(Ordering::Relaxed) >= MAX_PENDING_UNSOLICITED {
                    counted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                pending.fetch_add(1, Ordering::Relaxed);
            }
            let mut guard = sink_fn.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = guard.as_ref() {
                f.call(ev, ThreadsafeFunctionCallMode::NonBlocking);
            }
            // After Closed nothing more comes: let Node exit.
            if closing {
                guard.take();
            }
        });
        let _rt = runtime::handle().enter();
        let node = DhtNode::spawn_with(SocketAddrV4::new(ip, port), config, Limits::scaled(options.limit_scale.unwrap_or(1).max(1)), Some(sink))
            .map_err(|e| {
                let err = Error::new(Status::GenericFailure, format!("cannot bind {host}:{port}: {e}"));
                *bind_error = Some(e);
                err
            })?;
        let port = node.local_addr().port() as u32;
        if literal.is_none() {
            let commands = node.commander();
            runtime::handle().spawn(async move {
                match resolve::bootstrap(&entries).await {
                    Ok(nodes) => {
                        let _ = commands.try_send(vec![Command::UseBootstrap { nodes }]);
                    }
                    Err(e) => tracing::warn!("bootstrap: {e}"),
                }
            });
        }
        Ok(NativeDht { node: Some(node), tsfn, dropped, port, batch: Default::default() })
    }

    /// Whether this node keeps Node's event loop alive.
    #[napi(catch_unwind)]
    #[allow(deprecated)]
    pub fn set_ref(&self, env: Env, keep_alive: bool) -> Result<()> {
        let Ok(mut guard) = self.tsfn.lock() else { return Ok(()) };
        match guard.as_mut() {
            Some(f) if keep_alive => f.refer(&env),
            Some(f) => f.unref(&env),
            None => Ok(()),
        }
    }

    #[napi(catch_unwind)]
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Queues operation `op` (see [`parse_command`]) numbered `request`
    /// until `flush`; its events carry that number. Bad arguments throw
    /// here. dht.js flushes once per turn of the event loop, so operations
    /// started together reach the node together and leave in call order
    /// before any reply is read (as on dht-rpc's single thread).
    #[napi(catch_unwind)]
    pub fn command(&self, op: String, request: u32, args: DhtCommandArgs) -> Result<()> {
        let command = parse_command(&op, request, args)?;
        if self.node.is_none() {
            return match command {
                Command::Cancel { .. } => Ok(()),
                _ => Err(Error::new(Status::GenericFailure, "the DHT node is destroyed")),
            };
        }
        let mut batch = self.batch.borrow_mut();
        if batch.len() >= crate::io::dht_node::COMMAND_QUEUE {
            return Err(Error::new(Status::GenericFailure, "too many DHT operations queued"));
        }
        batch.push(command);
        Ok(())
    }

    /// Sends the queued commands; the number sent.
    #[napi(catch_unwind)]
    pub fn flush(&self) -> Result<u32> {
        let batch = std::mem::take(&mut *self.batch.borrow_mut());
        let n = batch.len() as u32;
        if n > 0 {
            let node = self.node.as_ref().ok_or_else(|| Error::new(Status::GenericFailure, "the DHT node is destroyed"))?;
            node.commands(batch).map_err(|e| Error::new(Status::GenericFailure, e))?;
        }
        Ok(n)
    }

    /// The routing table's contacts (empty once destroyed).
    #[napi(catch_unwind)]
    pub fn nodes(&self) -> Vec<DhtContact> {
        let Some(node) = &self.node else { return Vec::new() };
        contacts(node.nodes())
    }

    /// State and counters, or null once destroyed.
    #[napi(catch_unwind)]
    pub fn info(&self) -> Option<DhtInfo> {
        let i = self.node.as_ref()?.info();
        let s = i.stats;
        Some(DhtInfo {
            nodes: i.nodes as u32,
            bootstrapped: i.bootstrapped,
            ephemeral: i.ephemeral,
            holepunchable: i.holepunchable,
            remote_address: i.remote_address.map(addr_js),
            nat_type: i.nat_type.as_str().into(),
            received: s.received as f64,
            malformed: s.malformed as f64,
            unmatched_responses: s.unmatched_responses as f64,
            rate_limited: s.rate_limited as f64,
            amplification_dropped: s.amplification_dropped as f64,
            values_stored: s.values_stored as f64,
            values_rejected: s.values_rejected as f64,
            values_dropped: s.values_dropped as f64,
            values_evicted: s.values_evicted as f64,
            events_dropped: self.dropped.load(Ordering::Relaxed) as f64,
        })
    }

    /// Closes the socket; a `close` event follows.
    #[napi(catch_unwind)]
    pub fn destroy(&mut self) {
        if let Some(node) = self.node.take() {
            runtime::handle().spawn(node.shutdown());
        }
    }
}

/// The arguments of a DHT operation from JS; which are needed depends on
/// the operation.
#[napi(object)]
pub struct DhtCommandArgs {
    pub topic: Option<Buffer>,
    /// `announce`/`unannounce`: the port to announce (0: our UDP source port).
    pub port: Option<u32>,
    pub local_address: Option<DhtAddr>,
    /// `ping`, `holepunch`, `add-node`.
    pub peer: Option<DhtAddr>,
    pub referrer: Option<DhtAddr>,
    pub value: Option<Buffer>,
    pub key: Option<Buffer>,
    pub put: Option<DhtPutOptions>,
    /// `mutable-get`: the lowest seq wanted.
    pub seq: Option<f64>,
    pub salt: Option<Buffer>,
    /// `add-node`: the contact's id.
    pub id: Option<Buffer>,
}

fn need<T>(v: Option<T>, op: &str, name: &str) -> Result<T> {
    v.ok_or_else(|| invalid(format!("{op} needs {name}")))
}

/// The [`Command`] of operation `op`: `lookup`, `announce`, `unannounce`,
/// `ping`, `holepunch`, `immutable-put`, `immutable-get`, `mutable-put`,
/// `mutable-get`, `bootstrap`, `persistent`, `add-node` or `cancel`. Shared
/// by the standalone node and the swarm's (`discovery.dht`).
pub(crate) fn parse_command(op: &str, request: u32, a: DhtCommandArgs) -> Result<Command> {
    let local = |a: &Option<DhtAddr>| a.as_ref().map(|a| addr(a, "localAddress")).transpose();
    Ok(match op {
        "lookup" => Command::Lookup {
            request,
            topic: key32(&need(a.topic, op, "topic")?, "topic")?,
            port: a.port.map(|p| port16(p, "port")).transpose()?,
            local_address: local(&a.local_address)?,
        },
        "announce" | "unannounce" => {
            let topic = key32(&need(a.topic, op, "topic")?, "topic")?;
            let port = port16(a.port.unwrap_or(0), "port")?;
            let local_address = local(&a.local_address)?;
            if op == "announce" {
                Command::Announce { request, topic, port, local_address }
            } else {
                Command::Unannounce { request, topic, port, local_address }
            }
        }
        "ping" => Command::Ping { request, to: addr(&need(a.peer, op, "peer")?, "peer")? },
        "holepunch" => Command::Holepunch {
            request,
            peer: addr(&need(a.peer, op, "peer")?, "peer")?,
            referrer: addr(&need(a.referrer, op, "peer.referrer")?, "peer.referrer")?,
        },
        "immutable-put" => Command::ImmutablePut { request, value: need(a.value, op, "value")?.to_vec() },
        "immutable-get" => Command::ImmutableGet { request, key: key32(&need(a.key, op, "key")?, "key")? },
        "mutable-put" => {
            let options = need(a.put, op, "put options")?;
            let signer = match (&options.secret_key, &options.signature) {
                (Some(sk), None) => Signer::Keypair(keypair_of(sk)?),
                (None, Some(sig)) => {
                    let pk = options.public_key.as_ref().ok_or_else(|| invalid("keypair.publicKey is required"))?;
                    Signer::Signature { public_key: key32(pk, "keypair.publicKey")?, signature: sig.to_vec() }
                }
                (Some(_), Some(_)) => return Err(invalid("only opts.signature OR opts.keypair.secretKey should be supplied")),
                (None, None) => return Err(invalid("keypair.secretKey is required")),
            };
            let opts = MutablePutOptions { signer, seq: seq(options.seq)?, salt: options.salt.map(|s| s.to_vec()) };
            Command::MutablePut { request, value: need(a.value, op, "value")?.to_vec(), opts }
        }
        "mutable-get" => Command::MutableGet {
            request,
            key: key32(&need(a.key, op, "key")?, "key")?,
            seq: seq(a.seq.unwrap_or(0.0))?,
            salt: a.salt.map(|s| s.to_vec()),
        },
        "bootstrap" => Command::Bootstrap { request },
        "persistent" => Command::Persistent { request },
        "add-node" => Command::AddNode { id: key32(&need(a.id, op, "id")?, "node.id")?, addr: addr(&need(a.peer, op, "peer")?, "node")? },
        "cancel" => Command::Cancel { request },
        _ => return Err(invalid(format!("unknown DHT operation {op:?}"))),
    })
}

pub(crate) fn contacts(nodes: Vec<([u8; 32], SocketAddrV4)>) -> Vec<DhtContact> {
    nodes.into_iter().map(|(id, a)| DhtContact { id: id.to_vec().into(), host: a.ip().to_string(), port: a.port() as u32 }).collect()
}

fn keypair_of(secret_key: &[u8]) -> Result<Keypair> {
    let sk: &[u8; 64] = secret_key.try_into().map_err(|_| invalid(format!("keypair.secretKey must be 64 bytes, got {}", secret_key.len())))?;
    Keypair::from_secret_key(sk).ok_or_else(|| invalid("keypair.secretKey is not a libsodium secret key (seed followed by its public key)"))
}

#[napi(object)]
pub struct DhtKeypair {
    pub public_key: Buffer,
    pub secret_key: Buffer,
}

/// A random ed25519 keypair, or the one of a 32-byte `seed` (libsodium layout).
#[napi(js_name = "dhtKeypair", catch_unwind)]
pub fn dht_keypair(seed: Option<Buffer>) -> Result<DhtKeypair> {
    let k = match seed {
        Some(s) => Keypair::from_seed(&key32(&s, "seed")?),
        None => Keypair::random(),
    };
    Ok(DhtKeypair { public_key: k.public_key.to_vec().into(), secret_key: k.secret_key.to_vec().into() })
}

/// hypersign's `salt(str, size)`.
#[napi(js_name = "dhtSalt", catch_unwind)]
pub fn dht_salt(s: String, size: u32) -> Result<Buffer> {
    hypersign::salt(&s, size as usize).map(Into::into).map_err(|e| invalid(e.to_string()))
}

/// The bytes a mutable record's signature covers.
#[napi(js_name = "dhtSignable", catch_unwind)]
pub fn dht_signable(value: Buffer, seq_: f64, salt: Option<Buffer>) -> Result<Buffer> {
    Ok(mutable::signable(&value, seq(seq_)?, salt.as_deref()).into())
}

/// Signs `value` at `seq` under `salt` with a 64-byte secret key.
#[napi(js_name = "dhtSign", catch_unwind)]
pub fn dht_sign(value: Buffer, secret_key: Buffer, seq_: f64, salt: Option<Buffer>) -> Result<Buffer> {
    let k = keypair_of(&secret_key)?;
    k.sign(&value, salt.as_deref(), seq(seq_)?).map(|s| s.to_vec().into()).map_err(|e| invalid(e.to_string()))
}

/// ed25519 detached signature over raw `message` (hypersign's `cryptoSign`).
#[napi(js_name = "dhtCryptoSign", catch_unwind)]
pub fn dht_crypto_sign(message: Buffer, secret_key: Buffer) -> Result<Buffer> {
    let k = keypair_of(&secret_key)?;
    Ok(k.sign_raw(&message).to_vec().into())
}

fn addr_js(a: SocketAddrV4) -> DhtAddr {
    DhtAddr { host: a.ip().to_string(), port: a.port() as u32 }
}

fn record(m: wire::dht::Mutable) -> DhtRecord {
    DhtRecord {
        value: m.value.map(Into::into),
        signature: m.signature.map(Into::into),
        seq: m.seq.map(|s| s as f64),
        salt: m.salt.map(Into::into),
    }
}

pub(crate) fn to_js(ev: NodeEvent) -> DhtNativeEvent {
    use DhtNativeEvent as E;
    match ev {
        NodeEvent::Closed => E::Close,
        NodeEvent::Listening => E::Listening,
        NodeEvent::Refused { request, error } => E::Failed { request, error, from: None, proof: None },
        NodeEvent::Dht(ev) => match ev {
            DhtEvent::Ready => E::Ready,
            DhtEvent::InitialNodes => E::InitialNodes,
            DhtEvent::Persistent => E::Persistent,
            DhtEvent::Announced { topic, peer } => E::Announce { topic: topic.to_vec().into(), from: addr_js(peer) },
            DhtEvent::Unannounced { topic, peer } => E::Unannounce { topic: topic.to_vec().into(), from: addr_js(peer) },
            DhtEvent::LookedUp { topic, peer } => E::Lookup { topic: topic.to_vec().into(), from: addr_js(peer) },
            DhtEvent::Relayed { from, to } => E::Holepunch { from: addr_js(from), to: addr_js(to) },
            _ => E::Ignored,
        },
        NodeEvent::Reply { request, event: ev } => match ev {
            DhtEvent::Peers(f) => E::Data {
                request,
                from: addr_js(f.node),
                node_id: f.node_id.map(|id| id.to_vec().into()),
                to: f.to.map(addr_js),
                peers: f.peers.into_iter().map(addr_js).collect(),
                local_peers: f.local_peers.into_iter().map(addr_js).collect(),
            },
            DhtEvent::StoreWarning { from, error, proof, .. } => E::Warning { request, from: addr_js(from), error, proof: proof.map(record) },
            DhtEvent::QueryDone { error, .. } => E::Done { request, error },
            DhtEvent::StoreDone { result: Err(f), .. } => E::Failed { request, error: f.error, from: f.from.map(addr_js), proof: f.proof.map(record) },
            DhtEvent::StoreDone { result: Ok(outcome), .. } => match outcome {
                StoreOutcome::Got(None) => E::Got { request, from: None, node_id: None, record: record(Default::default()) },
                StoreOutcome::Got(Some(g)) => E::Got {
                    request,
                    from: g.from.map(addr_js),
                    node_id: g.node_id.map(|id| id.to_vec().into()),
                    record: DhtRecord {
                        value: Some(g.value.into()),
                        signature: g.signature.map(Into::into),
                        seq: g.seq.map(|s| s as f64),
                        salt: g.salt.map(Into::into),
                    },
                },
                StoreOutcome::ImmutablePut { key } => E::Put { request, key: key.to_vec().into(), record: None },
                StoreOutcome::MutablePut { public_key, signature, seq, salt } => E::Put {
                    request,
                    key: public_key.to_vec().into(),
                    record: Some(DhtRecord { value: None, signature: Some(signature.into()), seq: Some(seq as f64), salt: salt.map(Into::into) }),
                },
            },
            DhtEvent::Pong { from, to, .. } => E::Pong { request, from: addr_js(from), to: to.map(addr_js) },
            DhtEvent::PingFailed { .. } | DhtEvent::HolepunchFailed { .. } => {
                E::Failed { request, error: "Request timed out".into(), from: None, proof: None }
            }
            DhtEvent::Holepunched { from, .. } => E::Holepunched { request, from: addr_js(from) },
            _ => E::Ignored,
        },
    }
}
