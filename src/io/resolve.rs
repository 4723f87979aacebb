//! Turning bootstrap entries (`host:port`) into IPv4 socket addresses.

use std::net::{SocketAddr, SocketAddrV4};

/// Parses and resolves every entry; an entry that does not resolve is
/// skipped. Fails only when entries were given and none resolved.
pub async fn bootstrap(entries: &[String]) -> Result<Vec<SocketAddrV4>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for e in entries {
        if let Ok(SocketAddr::V4(a)) = e.parse::<SocketAddr>() {
            out.push(a);
            continue;
        }
        match tokio::net::lookup_host(e.as_str()).await {
            Ok(addrs) => {
                let before = out.len();
                out.extend(addrs.filter_map(|a| match a {
                    SocketAddr::V4(v4) => Some(v4),
                    SocketAddr::V6(_) => None,
                }));
                if out.len() == before {
                    errors.push(format!("{e}: no IPv4 address"));
                }
            }
            Err(err) => errors.push(format!("{e}: {err}")),
        }
    }
    out.dedup();
    if out.is_empty() && !entries.is_empty() {
        return Err(errors.join(", "));
    }
    Ok(out)
}
