//! Observability with no code from the service's author: metrics in Prometheus' text format,
//! a structured access log, and the service dependency graph.

mod access_json;
pub(crate) mod access_log;
pub mod buffered_log;
pub mod client_metrics;
pub(crate) mod deps;
pub(crate) mod histogram;
pub mod logging;
pub(crate) mod server_collector;
pub(crate) mod server_metrics;
pub mod trace;

pub(crate) use access_json::ACCESS_TARGET;
pub use buffered_log::BufferedLog;
pub use client_metrics::{ClientMetrics, client_metrics};
pub use logging::{LogControl, LogError, LogFormat};
pub use trace::{Tracing, TracingConfig, TracingError};

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Registers `herald_build_info`: what code is running.
pub(crate) fn register_build_info(registry: &mut Registry) {
    let info = Info::new(vec![
        ("version", env!("CARGO_PKG_VERSION")),
        (
            "git_hash",
            option_env!("HERALD_GIT_HASH").unwrap_or("unknown"),
        ),
    ]);
    registry.register("herald_build", "The herald version serving", info);
}

/// A server's metrics followed by the process's client metrics, as one exposition.
pub(crate) fn encode_all(server: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode_registry(&mut text, server)?;
    client_metrics().encode_into(&mut text)?;
    prometheus_client::encoding::text::encode_eof(&mut text)?;
    Ok(text)
}
