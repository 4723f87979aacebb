//! Stopping and restarting the TCP listener from the caller's thread.
//!
//! The reference's TCP server is a `net.Server` on Node's own thread:
//! `close()` stops the kernel from completing handshakes before it returns.
//! Ours lives on the engine's runtime, so a close that waited for the
//! engine left a window of a few milliseconds in which a dialer still got
//! through (upstream network tests saw it). The gate turns listening off
//! and on at once, from whichever thread asks: on Linux, `shutdown(SHUT_RD)`
//! takes a listening socket out of LISTEN (new SYNs are answered with RST)
//! while it keeps its explicitly bound port, and `listen()` puts it back.
//!
//! The gate holds the listener's descriptor number, never a duplicate (a
//! duplicate would keep the socket listening after the engine closed it),
//! and forgets it under the same lock before the listener is closed, so a
//! late call can never reach a descriptor number reused by something else.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use socket2::SockRef;

/// The listen backlog when listening again; the one `bind` used.
const BACKLOG: i32 = super::bind::BACKLOG;

pub struct TcpGate {
    fd: Mutex<Option<RawFd>>,
    /// Whether the socket is out of LISTEN on purpose (the engine's accept
    /// loop waits instead of reading the EINVAL that follows).
    stopped: AtomicBool,
    /// Times listening was started again: a reactor registration made
    /// before the latest restart must not be polled (see `restarts`).
    restarts: AtomicU64,
}

impl TcpGate {
    pub fn new(fd: RawFd) -> TcpGate {
        TcpGate { fd: Mutex::new(Some(fd)), stopped: AtomicBool::new(false), restarts: AtomicU64::new(0) }
    }

    /// Stops (`false`) or restarts (`true`) listening, now. Returns whether
    /// anything changed; an error if the kernel refused (the listener keeps
    /// its state, except that a failed restart leaves it stopped).
    pub fn set_listening(&self, on: bool) -> io::Result<bool> {
        let fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        let Some(raw) = *fd else { return Ok(false) };
        if self.stopped.load(Ordering::SeqCst) == !on {
            return Ok(false);
        }
        // SAFETY: `raw` is the listener's descriptor, open while the gate
        // holds it: `close` takes it out under this lock before the
        // listener is dropped.
        let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
        let sock = SockRef::from(&borrowed);
        if on {
            sock.listen(BACKLOG)?;
            self.restarts.fetch_add(1, Ordering::SeqCst);
            self.stopped.store(false, Ordering::SeqCst);
        } else {
            self.stopped.store(true, Ordering::SeqCst);
            match sock.shutdown(std::net::Shutdown::Read) {
                Ok(()) => {}
                // Not listening any more (a shutdown that raced us): done.
                Err(e) if e.raw_os_error() == Some(libc_enotconn()) => {}
                Err(e) => {
                    self.stopped.store(false, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// How many times listening was started again. The engine polls its
    /// listener only through a registration made after the latest restart:
    /// the one from before the stop is marked read-closed for good, and its
    /// accept would spin.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// Whether listening was stopped through the gate.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Runs `f` (which may close the listener: it returns whether the
    /// descriptor is still open) with calls from other threads held off,
    /// and forgets the descriptor if it closed.
    pub fn hold(&self, f: impl FnOnce() -> bool) {
        let mut fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        if !f() {
            *fd = None;
        }
    }

    /// Forgets the descriptor: call before the listener closes.
    pub fn close(&self) {
        *self.fd.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// ENOTCONN on Linux (asm-generic/errno.h), without pulling in libc for one number.
const fn libc_enotconn() -> i32 {
    107
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn connects(port: u16) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    // Loopback only: a listener and dials to it on 127.0.0.1.
    #[test]
    fn a_stopped_listener_refuses_at_once_keeps_its_port_and_listens_again() {
        // Bound as the engine binds it: on an explicit port (UDP's), which
        // the kernel keeps through a shutdown (a port-0 bind would lose it).
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let l = super::super::bind::listen_tcp(port).unwrap();
        let gate = TcpGate::new(l.as_raw_fd());
        assert!(connects(port), "control: listening");
        assert!(gate.set_listening(false).unwrap());
        assert!(gate.stopped());
        assert!(!connects(port), "refused while stopped");
        assert!(!gate.set_listening(false).unwrap(), "stopping twice changes nothing");
        assert!(gate.set_listening(true).unwrap());
        assert!(!gate.stopped());
        assert_eq!(l.local_addr().unwrap().port(), port, "same port");
        assert!(connects(port), "listening again");
        gate.close();
        assert!(!gate.set_listening(false).unwrap(), "a closed gate touches nothing");
        assert!(connects(port), "and the listener is left as it was");
    }
}
