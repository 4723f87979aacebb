//! The swarm's errors, each with a stable code. The binding puts the code
//! on the JS error's `code`, and each entry point maps it to its
//! reference's exact message, so nothing has to read a message to learn
//! what failed.

use std::fmt;
use std::io;

/// Why a call on a [`super::Swarm`] failed.
#[derive(Debug)]
pub enum SwarmError {
    /// The swarm was destroyed (or its engine died).
    Destroyed,
    /// No port could be bound (or the bound listener not registered).
    Bind(io::Error),
    /// The TCP listener could not be started again (`start`) or stopped.
    Listen {
        /// Whether it was to start.
        start: bool,
        /// The OS's refusal.
        error: io::Error,
    },
}

impl SwarmError {
    /// `EDESTROYED`, or the OS error's name (`EADDRINUSE`, `EACCES`, …;
    /// `EIO` for one without a known name).
    pub fn code(&self) -> &'static str {
        match self {
            SwarmError::Destroyed => "EDESTROYED",
            SwarmError::Bind(e) | SwarmError::Listen { error: e, .. } => errno_name(e),
        }
    }
}

impl fmt::Display for SwarmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwarmError::Destroyed => f.write_str("swarm is destroyed"),
            SwarmError::Bind(e) => write!(f, "could not bind a port: {e}"),
            SwarmError::Listen { start, error } => write!(f, "cannot {} listening on TCP: {error}", if *start { "start" } else { "stop" }),
        }
    }
}

impl std::error::Error for SwarmError {}

/// Why a dial failed ([`super::SwarmEvent::Connected`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The connect deadline passed ([`super::CONNECT_TIMEOUT`], the
    /// reference's 10 s).
    TimedOut,
    /// The hole punch was the last path to fail: its request through the
    /// referrer got no answer (the reference reports dht-rpc's timeout).
    PunchFailed,
    /// No path could start: nothing to dial over TCP and no DHT to punch
    /// through.
    NoPath(&'static str),
    /// Every path failed; `reason` is the last one's (TCP's OS error, a
    /// uTP reset). `errno` is set for an OS error.
    Failed {
        /// The last path's error, in words.
        reason: String,
        /// Its OS error number, if it was one.
        errno: Option<i32>,
    },
    /// The swarm was destroyed before the dial ended.
    Destroyed,
}

impl ConnectError {
    /// Stable: `ETIMEDOUT`, `EHOLEPUNCH`, `ENOPATH`, `ECONNFAILED` or
    /// `EDESTROYED`.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::TimedOut => "ETIMEDOUT",
            ConnectError::PunchFailed => "EHOLEPUNCH",
            ConnectError::NoPath(_) => "ENOPATH",
            ConnectError::Failed { .. } => "ECONNFAILED",
            ConnectError::Destroyed => "EDESTROYED",
        }
    }

    /// A failed TCP dial, keeping its OS error number.
    pub fn io(e: &io::Error) -> ConnectError {
        ConnectError::Failed { reason: e.to_string(), errno: e.raw_os_error() }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::TimedOut => f.write_str("Timed out trying to connect to peer"),
            // dht-rpc's words, which the reference passes on.
            ConnectError::PunchFailed => f.write_str("Request timed out"),
            ConnectError::NoPath(why) => write!(f, "Could not connect to peer: {why}"),
            ConnectError::Failed { reason, .. } => write!(f, "Could not connect to peer: {reason}"),
            ConnectError::Destroyed => f.write_str("swarm is destroyed"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The symbolic name of an OS error, as Node's `err.code` has it.
pub fn errno_name(e: &io::Error) -> &'static str {
    let Some(n) = e.raw_os_error() else { return "EIO" };
    const NAMES: &[(i32, &str)] = &[
        (libc::EPERM, "EPERM"),
        (libc::EACCES, "EACCES"),
        (libc::EADDRINUSE, "EADDRINUSE"),
        (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
        (libc::EINVAL, "EINVAL"),
        (libc::EMFILE, "EMFILE"),
        (libc::ENFILE, "ENFILE"),
        (libc::ENOBUFS, "ENOBUFS"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::ECONNREFUSED, "ECONNREFUSED"),
        (libc::ECONNRESET, "ECONNRESET"),
        (libc::ETIMEDOUT, "ETIMEDOUT"),
        (libc::ENETUNREACH, "ENETUNREACH"),
        (libc::EHOSTUNREACH, "EHOSTUNREACH"),
    ];
    NAMES.iter().find(|(code, _)| *code == n).map(|(_, name)| *name).unwrap_or("EIO")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_are_the_references() {
        assert_eq!(ConnectError::TimedOut.code(), "ETIMEDOUT");
        assert_eq!(ConnectError::TimedOut.to_string(), "Timed out trying to connect to peer");
        assert_eq!(ConnectError::PunchFailed.to_string(), "Request timed out");
        let refused = ConnectError::io(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(refused.code(), "ECONNFAILED");
        assert!(matches!(refused, ConnectError::Failed { errno: Some(libc::ECONNREFUSED), .. }));
        let in_use = SwarmError::Bind(io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(in_use.code(), "EADDRINUSE");
        assert_eq!(SwarmError::Bind(io::Error::other("x")).code(), "EIO");
        assert_eq!(SwarmError::Destroyed.code(), "EDESTROYED");
    }
}
