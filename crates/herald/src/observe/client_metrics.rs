//! Client metrics for every channel of the process, from the client's observer hook: calls
//! and attempts by method and code, retries by reason, breaker transitions, endpoints per
//! target, call latency. Each series is resolved once and cached by static keys, so a call
//! bumps atomics without formatting a label or taking a lock.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Code;
use crate::client::observe::{
    AttemptEvent, BreakerEvent, CallEvent, EndpointsEvent, Next, Observer,
};
use crate::contract::MethodContract;
use crate::cow_map::{AddressHash, CowMap};
use crate::observe::histogram::LatencyHistogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    service: &'static str,
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    service: &'static str,
    method: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    target: String,
    state: &'static str,
}

/// The process's client metrics (one registry, shared by every channel).
#[derive(Debug)]
pub struct ClientMetrics {
    registry: Registry,
    calls: Family<CodeLabels, Counter>,
    attempts: Family<CodeLabels, Counter>,
    retries: Family<ReasonLabels, Counter>,
    breaker: Family<ReasonLabels, Counter>,
    endpoints: Family<EndpointLabels, Gauge>,
    latency: Family<MethodLabels, LatencyHistogram>,
    /// Each method's series, by the address of its contract: one lookup per event.
    methods: CowMap<usize, Arc<MethodSeries>, AddressHash>,
}

/// One method's series: counters by code made on first use, the latency histogram.
#[derive(Debug)]
struct MethodSeries {
    calls: [OnceLock<Counter>; 17],
    attempts: [OnceLock<Counter>; 17],
    latency: LatencyHistogram,
}

/// The process's client metrics, made on first use.
pub fn client_metrics() -> Arc<ClientMetrics> {
    static METRICS: OnceLock<Arc<ClientMetrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| Arc::new(ClientMetrics::new()))
        .clone()
}

// === impl ClientMetrics ===

impl ClientMetrics {
    fn new() -> ClientMetrics {
        let mut metrics = ClientMetrics {
            registry: Registry::default(),
            calls: Family::default(),
            attempts: Family::default(),
            retries: Family::default(),
            breaker: Family::default(),
            endpoints: Family::default(),
            latency: Family::default(),
            methods: CowMap::default(),
        };
        let client = metrics.registry.sub_registry_with_prefix("herald_client");
        client.register(
            "calls",
            "Calls made, by method and final code (after retries)",
            metrics.calls.clone(),
        );
        client.register(
            "attempts",
            "Attempts made, by method and code",
            metrics.attempts.clone(),
        );
        client.register(
            "retries",
            "Retries decided, and retries given up, by reason",
            metrics.retries.clone(),
        );
        client.register(
            "breaker_transitions",
            "Circuit breaker state changes, by the state entered",
            metrics.breaker.clone(),
        );
        client.register(
            "endpoints",
            "Endpoints of each target, by state",
            metrics.endpoints.clone(),
        );
        client.register(
            "call_duration_seconds",
            "Time a call took, retries included",
            metrics.latency.clone(),
        );
        metrics
    }

    /// The metrics in Prometheus' text format, without the closing `# EOF`.
    pub(crate) fn encode_into(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }

    /// `record` of `method`'s series, made on its first event.
    fn with_series(&self, method: &'static MethodContract, record: impl FnOnce(&MethodSeries)) {
        let key = std::ptr::from_ref(method) as usize;
        let make = || {
            Arc::new(MethodSeries {
                calls: Default::default(),
                attempts: Default::default(),
                latency: self
                    .latency
                    .get_or_create(&MethodLabels {
                        service: method.service,
                        method: method.method,
                    })
                    .clone(),
            })
        };
        self.methods
            .read_or_insert_with(&key, make, |series| record(series));
    }
}

/// The counter of `code` in `by_code`, made in `family` on first use.
fn counter<'a>(
    by_code: &'a [OnceLock<Counter>; 17],
    family: &Family<CodeLabels, Counter>,
    method: &'static MethodContract,
    code: Code,
) -> &'a Counter {
    by_code[code as usize].get_or_init(|| family.get_or_create(&code_labels(method, code)).clone())
}

impl Observer for ClientMetrics {
    fn attempt(&self, event: &AttemptEvent) {
        let m = event.method;
        self.with_series(m, |series| {
            counter(&series.attempts, &self.attempts, m, event.code).inc();
        });
        let reason = match event.next {
            Next::Done => return,
            Next::Retry(_) => "retried",
            Next::AttemptsExhausted => "attempts_exhausted",
            Next::Throttled => "budget_exhausted",
            Next::NoTimeLeft => "no_time_left",
            Next::PushedBack => "pushed_back",
            #[allow(unreachable_patterns, reason = "Next is non-exhaustive")]
            _ => "other",
        };
        // Rare next to attempts: the family lookup is fine here.
        self.retries
            .get_or_create(&ReasonLabels {
                service: m.service,
                method: m.method,
                reason,
            })
            .inc();
    }

    fn call(&self, event: &CallEvent) {
        let m = event.method;
        self.with_series(m, |series| {
            counter(&series.calls, &self.calls, m, event.code).inc();
            series.latency.observe(event.latency);
        });
    }

    fn breaker(&self, event: &BreakerEvent) {
        let m = event.method;
        let to = match event.to {
            crate::client::BreakerState::Closed => "closed",
            crate::client::BreakerState::Open => "open",
            crate::client::BreakerState::HalfOpen => "half_open",
        };
        self.breaker
            .get_or_create(&ReasonLabels {
                service: m.service,
                method: m.method,
                reason: to,
            })
            .inc();
    }

    fn endpoints(&self, event: &EndpointsEvent<'_>) {
        for (state, n) in [
            ("total", event.total),
            ("ready", event.ready),
            ("ejected", event.ejected),
        ] {
            let labels = EndpointLabels {
                target: event.service.to_owned(),
                state,
            };
            self.endpoints
                .get_or_create(&labels)
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

fn code_labels(m: &'static MethodContract, code: Code) -> CodeLabels {
    CodeLabels {
        service: m.service,
        method: m.method,
        code: code.name(),
    }
}
