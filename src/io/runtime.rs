//! The one tokio runtime shared by every swarm in the process.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Handle> = OnceLock::new();

/// The shared runtime, started on first use and never stopped: its thread
/// parks in epoll and does not keep a Node process alive.
///
/// One current-thread scheduler on a thread of its own, not tokio's
/// multi-thread one: the hot data path of TCP is Node's own socket, so the
/// runtime mostly waits, and the multi-thread scheduler costs idle memory
/// (its code, a second worker and its malloc arena, and libm's pow tables,
/// which its per-batch poll-time average faults in).
pub fn handle() -> Handle {
    RUNTIME
        .get_or_init(|| {
            let rt: Runtime = Builder::new_current_thread()
                // Nothing of ours blocks: name lookups have their own
                // pool (io::resolve), so this pool stays small.
                .max_blocking_threads(2)
                .thread_name("hyperswarm-native")
                .enable_all()
                .build()
                .expect("cannot start the tokio runtime");
            let handle = rt.handle().clone();
            // Tasks spawned through the handle from other threads run here.
            std::thread::Builder::new()
                .name("hyperswarm-native".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .expect("cannot start the tokio runtime thread");
            handle
        })
        .clone()
}
