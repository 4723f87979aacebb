//! The one wrapper every napi method body runs in.

use napi::{Error, Result, Status};

/// Runs a method body, turning a panic into a JS `Error` so that no panic
/// unwinds into Node (which would abort the process).
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(Error::new(Status::GenericFailure, format!("internal error in hyperswarm-native: {what}")))
        }
    }
}
