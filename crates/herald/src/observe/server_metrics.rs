//! The server's metrics: per service and method, per caller identity and status code.
//!
//! Per-method series are created once at start-up from the contract table; per-caller
//! series on a caller's first request, then cached: a request only loads an atomic snapshot,
//! looks its caller up and bumps atomics — no string formatting, no global lock.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::contract::MethodContract;
use crate::cow_map::CowMap;
use crate::observe::histogram::LatencyHistogram;
use crate::{Code, Identity};

/// The caller label of requests without an identity.
pub(crate) const UNAUTHENTICATED: &str = "unauthenticated";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    method: &'static str,
    caller: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

/// The server's metric families, registered once.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<MethodLabels, LatencyHistogram>,
    queue_wait: Family<MethodLabels, LatencyHistogram>,
    in_flight: Family<MethodLabels, Gauge>,
    pub(crate) started: Instant,
}

/// One method's handles, resolved at start-up.
#[derive(Debug)]
pub(crate) struct MethodMetrics {
    contract: &'static MethodContract,
    requests: Family<RequestLabels, Counter>,
    pub(crate) duration: LatencyHistogram,
    pub(crate) queue_wait: LatencyHistogram,
    pub(crate) in_flight: Gauge,
    /// By caller identity (`""` for none), looked up by `&str`.
    callers: CowMap<String, Arc<CallerCounters>>,
}

/// One caller's request counters on one method, by code, made on first use.
#[derive(Debug, Default)]
struct CallerCounters {
    by_code: [OnceLock<Counter>; 17],
}

// === impl ServerMetrics ===

impl ServerMetrics {
    /// The families, registered in `registry` under `herald_server_`.
    pub(crate) fn register(registry: &mut Registry) -> ServerMetrics {
        let metrics = ServerMetrics {
            requests: Family::default(),
            duration: Family::default(),
            queue_wait: Family::default(),
            in_flight: Family::default(),
            started: Instant::now(),
        };
        let server = registry.sub_registry_with_prefix("herald_server");
        server.register(
            "requests",
            "Requests answered, by service, method, caller identity and gRPC status code",
            metrics.requests.clone(),
        );
        server.register(
            "request_duration_seconds",
            "Time from a request's headers to its response's end",
            metrics.duration.clone(),
        );
        server.register(
            "queue_wait_seconds",
            "Time requests waited for an admission slot (only those that queued)",
            metrics.queue_wait.clone(),
        );
        server.register(
            "in_flight",
            "Requests being handled",
            metrics.in_flight.clone(),
        );
        metrics
    }

    /// The handles of one method; its per-method series exist from now on.
    pub(crate) fn method(&self, contract: &'static MethodContract) -> MethodMetrics {
        let labels = MethodLabels {
            service: contract.service,
            method: contract.method,
        };
        MethodMetrics {
            contract,
            requests: self.requests.clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            queue_wait: self.queue_wait.get_or_create(&labels).clone(),
            in_flight: self.in_flight.get_or_create(&labels).clone(),
            callers: CowMap::default(),
        }
    }
}

// === impl MethodMetrics ===

impl MethodMetrics {
    /// Records one answered request.
    pub(crate) fn record(&self, caller: Option<&Identity>, code: Code, took: Duration) {
        self.duration.observe(took);
        let name = caller.map_or("", Identity::as_str);
        self.callers
            .get_or_insert_with(name, Arc::default)
            .count(self, name, code);
    }

    /// The callers seen so far, with their request counts.
    pub(crate) fn callers(&self) -> Vec<(Option<Identity>, u64)> {
        self.callers
            .snapshot()
            .into_iter()
            .map(|(who, counters)| {
                let total = counters
                    .by_code
                    .iter()
                    .filter_map(OnceLock::get)
                    .map(Counter::get)
                    .sum();
                let who = (!who.is_empty()).then(|| Identity::new(who));
                (who, total)
            })
            .collect()
    }
}

// === impl CallerCounters ===

impl CallerCounters {
    fn count(&self, method: &MethodMetrics, name: &str, code: Code) {
        self.by_code[code as usize]
            .get_or_init(|| {
                let labels = RequestLabels {
                    service: method.contract.service,
                    method: method.contract.method,
                    caller: if name.is_empty() {
                        UNAUTHENTICATED.to_owned()
                    } else {
                        name.to_owned()
                    },
                    code: code.name(),
                };
                method.requests.get_or_create(&labels).clone()
            })
            .inc();
    }
}
