//! The server's metrics: per service and method, per caller identity and status code.
//!
//! Per-method series are created once at start-up from the contract table; per-caller
//! series on a caller's first request, then cached: a request finds its caller's counters by
//! the identity's number (an index into a table) and bumps atomics — no string formatting,
//! no hashing, no lock. Each of a caller's per-code counters also keeps what the access
//! lines of those requests say of the method, caller and code, rendered with the counter.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::contract::MethodContract;
use crate::cow_map::CowMap;
use crate::observe::access_log;
use crate::observe::histogram::LatencyHistogram;
use crate::{Code, Identity};

/// The caller label of requests without an identity: the limits config's name for them.
pub(crate) use crate::limits::UNAUTHENTICATED;

/// Callers whose identity number is below this find their counters in a table; the rest
/// (a process that has seen more identities than this) look them up by name.
const NUMBERED_CALLERS: usize = 64;

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
    /// By caller identity (`""` for none), looked up by `&str`: every caller, for listing.
    callers: CowMap<String, Arc<CallerCounters>>,
    /// The same counters by identity number (below [`NUMBERED_CALLERS`]).
    numbered: Box<[OnceLock<Arc<CallerCounters>>]>,
    /// The same counters for requests without an identity.
    unauthenticated: OnceLock<Arc<CallerCounters>>,
}

/// One caller's request counters on one method, by code, made on first use.
#[derive(Debug)]
struct CallerCounters {
    by_code: [OnceLock<CodeCounter>; 17],
}

/// A caller's requests on one method answered with one code: their count, and what their
/// access lines say that only the method, caller and code decide ([`access_log::middle`]).
#[derive(Debug)]
struct CodeCounter {
    requests: Counter,
    access_middle: Box<str>,
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
            numbered: (0..NUMBERED_CALLERS).map(|_| OnceLock::new()).collect(),
            unauthenticated: OnceLock::new(),
        }
    }
}

// === impl MethodMetrics ===

impl MethodMetrics {
    /// Records one answered request, then hands `log` what its access line says of the
    /// method, caller and code ([`access_log::middle`], rendered once per caller and code
    /// with its counter: the line needs no escaping of its own).
    pub(crate) fn record(
        &self,
        caller: Option<&Identity>,
        code: Code,
        took: Duration,
        log: impl FnOnce(&str),
    ) {
        self.duration.observe(took);
        let name = caller.map_or("", Identity::as_str);
        let label = caller_label(caller);
        let by_name = || {
            self.callers
                .get_or_insert_with(name, || Arc::new(CallerCounters::new()))
        };
        let slot = match caller {
            None => Some(&self.unauthenticated),
            Some(who) => self.numbered.get(who.index()),
        };
        match slot {
            Some(slot) => slot.get_or_init(by_name).count(self, label, code, log),
            None => by_name().count(self, label, code, log),
        }
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
                    .map(|counter| counter.requests.get())
                    .sum();
                let who = (!who.is_empty()).then(|| Identity::new(who));
                (who, total)
            })
            .collect()
    }
}

// === impl CallerCounters ===

impl CallerCounters {
    fn new() -> CallerCounters {
        CallerCounters {
            by_code: Default::default(),
        }
    }

    /// `label`: the caller's [`caller_label`].
    fn count(&self, method: &MethodMetrics, label: &str, code: Code, log: impl FnOnce(&str)) {
        let counter = self.by_code[code as usize].get_or_init(|| {
            let labels = RequestLabels {
                service: method.contract.service,
                method: method.contract.method,
                caller: label.to_owned(),
                code: code.name(),
            };
            CodeCounter {
                requests: method.requests.get_or_create(&labels).clone(),
                access_middle: access_log::middle(method.contract.full_name(), label, code).into(),
            }
        });
        counter.requests.inc();
        log(&counter.access_middle);
    }
}

/// How a caller's requests are labelled wherever they are broken down by caller (metrics,
/// access lines, spans, `/deps`): its identity, or [`UNAUTHENTICATED`] without one.
pub(crate) fn caller_label(caller: Option<&Identity>) -> &str {
    caller.map_or(UNAUTHENTICATED, Identity::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::call::testing::METHOD;

    /// `herald_server_requests_total` for `caller` and `code` in the exposition.
    fn count(text: &str, caller: &str, code: &str) -> Option<u64> {
        let labels =
            format!("{{service=\"t.S\",method=\"M\",caller=\"{caller}\",code=\"{code}\"}}");
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("herald_server_requests_total{labels} ")))
            .map(|n| n.parse().expect("a count"))
    }

    #[test]
    fn each_caller_is_counted_apart_whether_found_by_number_or_by_name() {
        let mut registry = Registry::default();
        let metrics = ServerMetrics::register(&mut registry).method(&METHOD);
        // More identities than the numbered table holds: the later ones take the named path.
        let callers: Vec<Identity> = (0..NUMBERED_CALLERS + 8)
            .map(|i| Identity::new(format!("server-metrics-test.{i}")))
            .collect();
        assert!(callers.iter().any(|c| c.index() >= NUMBERED_CALLERS));
        for (i, caller) in callers.iter().enumerate() {
            for _ in 0..=i {
                metrics.record(Some(caller), Code::Ok, Duration::from_millis(1), |_| ());
            }
            // The access line's middle comes with the counter, whichever way it was found.
            let mut logged = String::new();
            metrics.record(
                Some(caller),
                Code::NotFound,
                Duration::from_millis(1),
                |middle| logged = middle.to_owned(),
            );
            assert_eq!(
                logged,
                access_log::middle("t.S/M", caller.as_str(), Code::NotFound)
            );
        }
        let mut logged = String::new();
        metrics.record(None, Code::Ok, Duration::from_millis(1), |_| ());
        metrics.record(None, Code::Ok, Duration::from_millis(1), |middle| {
            logged = middle.to_owned();
        });
        assert_eq!(
            logged,
            access_log::middle("t.S/M", UNAUTHENTICATED, Code::Ok)
        );

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for (i, caller) in callers.iter().enumerate() {
            let name = caller.as_str();
            assert_eq!(count(&text, name, "OK"), Some(i as u64 + 1), "{name}");
            assert_eq!(count(&text, name, "NOT_FOUND"), Some(1), "{name}");
            assert_eq!(count(&text, name, "INTERNAL"), None, "{name}");
        }
        assert_eq!(count(&text, UNAUTHENTICATED, "OK"), Some(2));

        let mut listed = metrics.callers();
        listed.sort();
        assert_eq!(listed.len(), callers.len() + 1);
        assert_eq!(listed[0], (None, 2));
        for (caller, total) in &listed[1..] {
            let i = callers
                .iter()
                .position(|c| Some(c) == caller.as_ref())
                .expect("a known caller");
            assert_eq!(*total, i as u64 + 2);
        }
    }
}
