//! Error codes for JS: where napi would put its status in `err.code`, the
//! engine's stable codes go, so that JS never reads a message to learn what
//! failed.

use napi::Error;

use crate::swarm::{errno_name, SwarmError};

/// A JS error's `code`.
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A swarm error as JS sees it: its code, and its words as the message.
pub fn coded(e: SwarmError) -> Error<Code> {
    Error::new(Code(e.code()), e.to_string())
}

/// An OS error with a message of ours: `code` is its name (`EADDRINUSE`, …).
pub fn os_error(e: &std::io::Error, message: String) -> Error<Code> {
    Error::new(Code(errno_name(e)), message)
}

/// A napi error with its status kept as the code (`InvalidArg`,
/// `GenericFailure`), for methods whose other failures carry ours.
pub fn with_status(e: Error) -> Error<Code> {
    let code = match e.status {
        napi::Status::InvalidArg => "InvalidArg",
        _ => "GenericFailure",
    };
    Error::new(Code(code), e.reason.clone())
}
