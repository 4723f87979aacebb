//! How much heap a full value store takes, measured with a counting global
//! allocator (its own test binary, so the allocator counts nothing else).
//! No sockets.
//!
//! Worst case: [`MAX_VALUES`] mutable records of maximum size (value 1000
//! bytes, signature 128, salt 64), each written from its own /24, so the
//! per-IP and per-/24 indexes are as large as they get too. Measured twice:
//! a bare `ValueStore`, and a `Dht` node filled through UPDATE datagrams
//! (which adds the per-source tables of its request budget). Each fill is
//! followed by as many puts again from other /24s, to check that churn at
//! capacity does not grow the heap.
//!
//! Run with `cargo test --release --test value_store_memory -- --nocapture`
//! to see the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use hyperswarm_native::dht::mutable::{MAX_SALT_LEN, MAX_SIGNATURE_LEN, MAX_VALUE_LEN};
use hyperswarm_native::dht::tokens::Tokens;
use hyperswarm_native::dht::value_store::{MutableRecord, StoreKey, ValueStore, HEAP_BOUND, MAX_VALUES};
use hyperswarm_native::dht::{Dht, DhtConfig, Keypair};
use hyperswarm_native::wire::dht::{encode_peer, Message, MessageType, Mutable, CMD_MUTABLE_STORE};

/// Bytes requested and not yet freed, their peak, and live allocations.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

struct Counting;

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: forwards every call to `System` unchanged and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap in use now (bytes requested) and live allocations.
fn heap() -> (usize, usize) {
    (LIVE.load(Relaxed), BLOCKS.load(Relaxed))
}

/// The writer of record `i` of round `round`: host .1 of its own /24.
fn writer(round: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10 + round, (i >> 8) as u8, i as u8, 1)
}

/// A 64-byte salt unique to (round, i).
fn salt(round: u8, i: usize) -> Vec<u8> {
    let mut s = vec![round; MAX_SALT_LEN];
    s[..8].copy_from_slice(&(i as u64).to_be_bytes());
    s
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// glibc's malloc adds about 16 bytes a block (header and rounding); the
/// counter sees requested sizes only. For the printed estimate.
const MALLOC_OVERHEAD: usize = 16;

fn fill_store(store: &mut ValueStore, round: u8) {
    for i in 0..MAX_VALUES {
        let s = salt(round, i);
        let record = MutableRecord {
            value: vec![0x61; MAX_VALUE_LEN],
            signature: vec![0x73; MAX_SIGNATURE_LEN],
            seq: 1,
            salt: Some(s.clone()),
        };
        store.put(StoreKey::mutable(&[round; 32], &s), record.into(), writer(round, i));
    }
}

/// One signed, maximum-size UPDATE per record into `node`, each from its
/// own /24 with a valid token.
fn fill_node(node: &mut Dht, now: Instant, tokens: &Tokens, keypair: &Keypair, round: u8) {
    let value = vec![0x62; MAX_VALUE_LEN];
    for i in 0..MAX_VALUES {
        let s = salt(round, i);
        let mut signature = keypair.sign(&value, Some(&s), 1).expect("signs").to_vec();
        // Up to 128 bytes are accepted (the first 64 verify) and stored.
        signature.resize(MAX_SIGNATURE_LEN, 0);
        let record = Mutable { value: Some(value.clone()), signature: Some(signature), seq: Some(1), salt: Some(s) };
        let from = SocketAddrV4::new(writer(round, i), 40000);
        let mut m = Message::new(MessageType::Update, i as u64 + 1);
        m.to = Some(encode_peer(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 49737)).to_vec());
        m.target = Some(keypair.public_key.to_vec());
        m.command = Some(CMD_MUTABLE_STORE.into());
        m.value = Some(record.encode());
        m.roundtrip_token = Some(tokens.token(*from.ip()).to_vec());
        node.handle_datagram(now, from, &m.encode());
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
}

#[test]
fn a_full_store_stays_under_its_heap_bound() {
    // 1. The bare store.
    let (base, base_blocks) = heap();
    let mut store = ValueStore::new();
    fill_store(&mut store, 0);
    assert_eq!(store.len(), MAX_VALUES);
    let (full, full_blocks) = heap();
    let store_bytes = full - base;
    let store_blocks = full_blocks - base_blocks;
    fill_store(&mut store, 1);
    assert_eq!(store.len(), MAX_VALUES);
    assert_eq!(store.evicted(), MAX_VALUES as u64);
    let churned_bytes = heap().0 - base;
    drop(store);
    let leaked = heap().0 as isize - base as isize;

    // 2. A node, through the wire. A fresh node's own heap is the baseline.
    let now = Instant::now();
    let secret = [0x11; 32];
    let tokens = Tokens::new(secret, secret);
    let keypair = Keypair::from_seed(&[9; 32]);
    let (node_base, node_base_blocks) = heap();
    let mut node = Dht::new(now, DhtConfig { id: Some([0x42; 32]), ephemeral: false, adaptive: false, bootstrap: vec![], seed: 7 });
    node.set_token_secrets(secret, secret);
    let (node_empty, _) = heap();
    fill_node(&mut node, now, &tokens, &keypair, 0);
    assert_eq!(node.values().len(), MAX_VALUES);
    assert_eq!(node.stats().values_stored, MAX_VALUES as u64, "every UPDATE stored: {:?}", node.stats());
    let (node_full, node_full_blocks) = heap();
    fill_node(&mut node, now, &tokens, &keypair, 1);
    assert_eq!(node.values().len(), MAX_VALUES);
    assert_eq!(node.stats().values_stored, 2 * MAX_VALUES as u64);
    let node_churned = heap().0 - node_base;
    let node_bytes = node_full - node_base;
    let node_blocks = node_full_blocks - node_base_blocks;
    drop(node);

    let payload = MAX_VALUES * (MAX_VALUE_LEN + MAX_SIGNATURE_LEN + MAX_SALT_LEN);
    println!("value store, {MAX_VALUES} records of {} payload bytes each ({:.2} MB of payload):", payload / MAX_VALUES, mb(payload));
    println!(
        "  ValueStore: {:.2} MB requested in {store_blocks} blocks (~{:.2} MB with malloc's ~{MALLOC_OVERHEAD} B a block); after {MAX_VALUES} more puts at capacity: {:.2} MB",
        mb(store_bytes),
        mb(store_bytes + store_blocks * MALLOC_OVERHEAD),
        mb(churned_bytes)
    );
    println!(
        "  Dht node filled over the wire: {:.2} MB above a fresh node ({:.3} MB), {node_blocks} blocks (~{:.2} MB with malloc's overhead); after {MAX_VALUES} more puts: {:.2} MB",
        mb(node_bytes),
        mb(node_empty - node_base),
        mb(node_bytes + node_blocks * MALLOC_OVERHEAD),
        mb(node_churned)
    );
    println!("  bound (value_store::HEAP_BOUND): {:.2} MB; peak heap of the whole test: {:.2} MB", mb(HEAP_BOUND), mb(PEAK.load(Relaxed)));

    assert!(leaked.unsigned_abs() < 64 * 1024, "a dropped store frees its heap ({leaked} bytes left)");
    for (what, bytes) in [("store", store_bytes), ("store after churn", churned_bytes), ("node", node_bytes), ("node after churn", node_churned)] {
        assert!(bytes < HEAP_BOUND, "{what}: {bytes} bytes, over the bound of {HEAP_BOUND}");
    }
    // Churn at capacity reuses what the first fill took.
    assert!(churned_bytes < store_bytes + store_bytes / 10, "{churned_bytes} vs {store_bytes}");
    assert!(node_churned < node_bytes + node_bytes / 10, "{node_churned} vs {node_bytes}");
}
