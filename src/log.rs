//! Logging through `tracing`: silent unless `HYPERSWARM_NATIVE_LOG` is set
//! (an `EnvFilter` string such as `debug` or `hyperswarm_native=trace`).

use std::sync::Once;

/// The environment variable that switches logging on.
pub const LOG_ENV: &str = "HYPERSWARM_NATIVE_LOG";

static INIT: Once = Once::new();

/// Installs a stderr subscriber once, if `HYPERSWARM_NATIVE_LOG` asks for one.
pub fn init() {
    INIT.call_once(|| {
        let Ok(filter) = std::env::var(LOG_ENV) else { return };
        let filter = tracing_subscriber::EnvFilter::try_new(filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    });
}
