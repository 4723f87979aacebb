//! Turning bootstrap entries (`host:port`) into IPv4 socket addresses.
//!
//! Only names a user configured are resolved here (bootstrap lists, a host
//! given to `connect`); names from the wire never are. `getaddrinfo`
//! blocks and cannot be cancelled, so lookups run on a small pool of
//! threads of their own, not on tokio's blocking pool: a resolver that
//! hangs ties up at most [`RESOLVER_THREADS`] threads of this pool and
//! nothing of the engine. Each lookup has a deadline ([`RESOLVE_TIMEOUT`]),
//! and when [`RESOLVE_QUEUE`] lookups already wait, a new one fails at once.

use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;

/// Threads that run `getaddrinfo`. Two: bootstrap lists are a handful of
/// names resolved once per swarm; more threads would only give a hanging
/// resolver more to hold.
pub const RESOLVER_THREADS: usize = 2;
/// Lookups waiting for a thread, beyond which new ones fail at once
/// ("resolver busy"). 64 covers the bootstrap lists of dozens of swarms
/// started together.
pub const RESOLVE_QUEUE: usize = 64;
/// How long one lookup may take. glibc's own default is 5 s per attempt
/// and 2 attempts; we give up at the first attempt's end and report the
/// name as unresolvable (the swarm goes on with LAN discovery).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

type Lookup = Box<dyn Fn(&str) -> Result<Vec<SocketAddrV4>, String> + Send + Sync>;

struct Job {
    entry: String,
    reply: oneshot::Sender<Result<Vec<SocketAddrV4>, String>>,
}

/// A pool of lookup threads behind a bounded queue.
pub struct Resolver {
    jobs: Mutex<SyncSender<Job>>,
    timeout: Duration,
}

impl Resolver {
    /// A pool of `threads` threads running `lookup`, `queue` jobs deep.
    pub fn new(threads: usize, queue: usize, timeout: Duration, lookup: Lookup) -> Resolver {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let lookup = std::sync::Arc::new(lookup);
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let lookup = lookup.clone();
            let spawned = std::thread::Builder::new().name(format!("hyperswarm-resolve-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                // A caller that gave up has dropped its receiver; fine.
                let _ = job.reply.send(lookup(&job.entry));
            });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a resolver thread: {e}");
            }
        }
        Resolver { jobs: Mutex::new(tx), timeout }
    }

    /// Resolves one `host:port` entry to its IPv4 addresses.
    pub async fn lookup(&self, entry: &str) -> Result<Vec<SocketAddrV4>, String> {
        let (reply, answer) = oneshot::channel();
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.try_send(Job { entry: entry.to_string(), reply }),
            Err(_) => return Err("resolver is broken".into()),
        };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err("resolver busy".into()),
            Err(TrySendError::Disconnected(_)) => return Err("resolver is gone".into()),
        }
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("resolver thread died".into()),
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs_f64())),
        }
    }
}

fn system_lookup(entry: &str) -> Result<Vec<SocketAddrV4>, String> {
    let addrs = entry.to_socket_addrs().map_err(|e| e.to_string())?;
    Ok(addrs
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .collect())
}

/// The process's resolver (the system's `getaddrinfo`), started on first use.
pub fn shared() -> &'static Resolver {
    static SHARED: OnceLock<Resolver> = OnceLock::new();
    SHARED.get_or_init(|| Resolver::new(RESOLVER_THREADS, RESOLVE_QUEUE, RESOLVE_TIMEOUT, Box::new(system_lookup)))
}

/// Parses and resolves every entry (at the same time); an entry that does
/// not resolve is skipped. Fails only when entries were given and none
/// resolved.
pub async fn bootstrap(entries: &[String]) -> Result<Vec<SocketAddrV4>, String> {
    bootstrap_with(shared(), entries).await
}

/// [`bootstrap`] on a given resolver.
pub async fn bootstrap_with(resolver: &Resolver, entries: &[String]) -> Result<Vec<SocketAddrV4>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut names = Vec::new();
    for e in entries {
        match e.parse::<SocketAddr>() {
            Ok(SocketAddr::V4(a)) => out.push(a),
            _ => names.push(e.clone()),
        }
    }
    // One future per name, polled together: a slow name does not hold up
    // the others, and the whole takes at most one timeout.
    let lookups = names.iter().map(|n| resolver.lookup(n));
    let results = join_all(lookups).await;
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(addrs) if addrs.is_empty() => errors.push(format!("{name}: no IPv4 address")),
            Ok(addrs) => out.extend(addrs),
            Err(err) => errors.push(format!("{name}: {err}")),
        }
    }
    out.dedup();
    if out.is_empty() && !entries.is_empty() {
        return Err(errors.join(", "));
    }
    Ok(out)
}

/// Polls every future until all are done (a few names, so a plain scan).
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("every future finished")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn slow_resolver(threads: usize, queue: usize, timeout: Duration) -> Resolver {
        Resolver::new(
            threads,
            queue,
            timeout,
            Box::new(|entry: &str| {
                if entry.starts_with("hang") {
                    std::thread::sleep(Duration::from_millis(1500));
                }
                Ok(vec!["10.0.0.1:1".parse().unwrap()])
            }),
        )
    }

    #[tokio::test]
    async fn a_hanging_name_times_out_and_the_rest_resolve() {
        let r = slow_resolver(2, 8, Duration::from_millis(300));
        let t0 = Instant::now();
        let out = bootstrap_with(&r, &["hang.example:1".into(), "fine.example:1".into(), "10.0.0.9:2".into()]).await.unwrap();
        assert!(t0.elapsed() < Duration::from_millis(1200), "{:?}", t0.elapsed());
        assert_eq!(out, vec!["10.0.0.9:2".parse().unwrap(), "10.0.0.1:1".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_full_queue_fails_at_once_and_the_runtime_keeps_running() {
        // One thread held by a hanging name, a queue of one: the third lookup
        // is refused at once, and other tasks on this runtime run meanwhile.
        let r = std::sync::Arc::new(slow_resolver(1, 1, Duration::from_millis(2000)));
        let hold = {
            let r = r.clone();
            tokio::spawn(async move { r.lookup("hang1:1").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let queued = {
            let r = r.clone();
            tokio::spawn(async move { r.lookup("hang2:1").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        assert_eq!(r.lookup("third:1").await, Err("resolver busy".into()));
        assert!(t0.elapsed() < Duration::from_millis(100));
        let ticks = tokio::spawn(async {
            let mut n = 0;
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                n += 1;
            }
            n
        });
        assert_eq!(ticks.await.unwrap(), 10);
        assert!(hold.await.unwrap().is_ok());
        // The deadline counts the wait for a thread too: 1.5 s queued plus
        // 1.5 s of its own is past 2 s.
        let late = queued.await.unwrap();
        assert!(late.as_ref().is_err_and(|e| e.starts_with("no answer within")), "{late:?}");
    }

    #[tokio::test]
    async fn ip_literals_need_no_lookup() {
        let r = Resolver::new(1, 1, Duration::from_millis(10), Box::new(|_: &str| Err("no lookups here".into())));
        assert_eq!(bootstrap_with(&r, &["1.2.3.4:5".into()]).await.unwrap(), vec!["1.2.3.4:5".parse().unwrap()]);
        assert!(bootstrap_with(&r, &["name:5".into()]).await.is_err());
    }
}
