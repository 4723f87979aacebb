//! A connected pair of local stream sockets, for lib/warm.js: the JS side
//! sends a byte through `net.Socket`s made from these descriptors once, so
//! that the first real TCP connection does not pay V8's first-call
//! compilation of the socket and stream paths (measured in the NAT lab at
//! 1.3–4.8 ms before the first hello left; about 0.2 ms warm).

use napi::{Error, Result, Status};
use napi_derive::napi;

use super::guard::guarded;

/// Two connected `AF_UNIX` stream descriptors; the caller owns both (Node
/// closes them with the sockets it makes of them). No network is touched.
#[napi]
pub fn socket_pair() -> Result<Vec<i32>> {
    guarded(|| {
        #[cfg(unix)]
        {
            use std::os::fd::IntoRawFd;
            let (a, b) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| Error::new(Status::GenericFailure, format!("cannot make a socket pair: {e}")))?;
            Ok(vec![a.into_raw_fd(), b.into_raw_fd()])
        }
        #[cfg(not(unix))]
        Err(Error::new(Status::GenericFailure, "socket pairs need Unix"))
    })
}
