//! Logging through `tracing`: silent unless `HYPERSWARM_NATIVE_LOG` is set
//! to a filter such as `debug` or `hyperswarm_native::dht=trace,info`
//! (`tracing_subscriber`'s `Targets` syntax: no regex engine in the addon).

use std::sync::Once;

/// The environment variable that switches logging on.
pub const LOG_ENV: &str = "HYPERSWARM_NATIVE_LOG";

static INIT: Once = Once::new();

/// Installs a stderr subscriber once, if `HYPERSWARM_NATIVE_LOG` asks for one.
pub fn init() {
    INIT.call_once(|| {
        let Ok(filter) = std::env::var(LOG_ENV) else { return };
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let targets: tracing_subscriber::filter::Targets = filter
            .parse()
            .unwrap_or_else(|_| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let _ = tracing_subscriber::registry().with(targets).with(fmt).try_init();
    });
}
