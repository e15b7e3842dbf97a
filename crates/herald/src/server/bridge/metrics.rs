//! Legacy traffic, counted apart from gRPC's: the evidence a service owner needs before
//! removing the bridge ("no legacy caller left").

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::Code;
use crate::observe::server_metrics::caller_label;
use crate::server::bridge::Format;
use crate::server::conn::ConnInfo;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BridgeLabels {
    /// The request path, `/package.Service/Method` (also for unknown methods: which ones
    /// legacy callers still try is worth knowing).
    path: String,
    caller: String,
    format: &'static str,
    code: &'static str,
}

/// `herald_bridge_requests`, by path, caller, body format and code.
#[derive(Debug, Clone, Default)]
pub(crate) struct BridgeMetrics {
    requests: Family<BridgeLabels, Counter>,
}

// === impl BridgeMetrics ===

impl BridgeMetrics {
    pub(crate) fn register(registry: &mut Registry) -> BridgeMetrics {
        let metrics = BridgeMetrics::default();
        registry.register(
            "herald_bridge_requests",
            "Calls through the legacy HTTP/1.1 bridge, by path, caller identity, body format and gRPC code",
            metrics.requests.clone(),
        );
        metrics
    }

    pub(crate) fn note(&self, path: &str, conn: &ConnInfo, format: Format, code: Code) {
        let caller = caller_label(conn.identity.as_ref());
        self.requests
            .get_or_create(&BridgeLabels {
                path: path.to_owned(),
                caller: caller.to_owned(),
                format: match format {
                    Format::Protobuf => "protobuf",
                    Format::Json => "json",
                },
                code: code.name(),
            })
            .inc();
    }
}
