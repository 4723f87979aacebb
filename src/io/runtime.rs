//! The one tokio runtime shared by every swarm in the process.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// Worker threads. Two match the machines we target; the hot data path of
/// TCP is Node's own socket, so the runtime mostly waits.
const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared runtime, started on first use and never stopped: its threads
/// park in epoll and do not keep a Node process alive.
pub fn handle() -> Handle {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                // Nothing of ours blocks: name lookups have their own
                // pool (io::resolve), so this pool stays small.
                .max_blocking_threads(2)
                .thread_name("hyperswarm-native")
                .enable_all()
                .build()
                .expect("cannot start the tokio runtime")
        })
        .handle()
        .clone()
}
