//! Distributed tracing: an OpenTelemetry span per call, W3C `traceparent` on the wire, OTLP
//! export. The server's span is the parent of every call its handler makes with the
//! request's [`Context`](crate::Context), so a Cache → Accounts call is one trace.
//!
//! Off until [`Tracing::install`]: then, and only then, spans are made — a server without
//! tracing pays one atomic load per request for it. A span sampled is recorded as a few ids
//! and times, and sent to the OTLP collector in batches by one task (`export`).

mod export;

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use crate::contract::MethodContract;
use crate::{Code, Identity};
use export::{Ended, Exporter, Queue, RecordedSpan, Side};

/// Where spans go, and how many.
#[derive(Clone, Debug)]
pub struct TracingConfig {
    /// The OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// Share of new traces recorded, 0 to 1; a caller's sampling decision is always followed.
    pub sampling_ratio: f64,
    /// This process's `service.name`.
    pub service_name: String,
}

/// Tracing, installed for the process.
#[derive(Debug)]
pub struct Tracing {
    exporter: Arc<Exporter<export::Otlp>>,
    queue: &'static Queue,
}

/// Tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("tracing: {0}")]
pub struct TracingError(String);

/// Tracing, once installed: the sampler for new traces, and where ended spans go.
#[derive(Debug)]
struct Installed {
    root_sampler: RootRatio,
    queue: Queue,
}

/// The sampling ratio of new traces, decided as the SDK's `Sampler::TraceIdRatioBased`
/// decides (the trace id's low 63 bits against the ratio's share of 2^63) with the bound
/// worked out once: the SDK's sampler builds a result with attributes and a trace state for
/// every request it is asked about, sampled or not.
#[derive(Clone, Copy, Debug)]
struct RootRatio {
    /// `None`: every trace (a ratio of 1 or more).
    below: Option<u64>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

// === impl Tracing ===

impl Tracing {
    /// Exports spans over OTLP/gRPC from now on. Call it once, inside a tokio runtime, before
    /// starting servers: the export runs as a task on that runtime.
    ///
    /// # Errors
    /// An invalid endpoint or ratio, no runtime, or tracing already installed.
    pub fn install(config: TracingConfig) -> Result<Tracing, TracingError> {
        if !(0.0..=1.0).contains(&config.sampling_ratio) {
            return Err(TracingError(format!(
                "sampling ratio {} is not within 0 to 1",
                config.sampling_ratio
            )));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| TracingError("install it from within a tokio runtime".into()))?;
        let otlp = export::Otlp::new(&config.endpoint).map_err(TracingError)?;
        let installed = Installed {
            root_sampler: RootRatio::new(config.sampling_ratio),
            queue: Queue::default(),
        };
        INSTALLED
            .set(installed)
            .map_err(|_| TracingError("tracing is already installed in this process".into()))?;
        let queue = &INSTALLED
            .get()
            .ok_or_else(|| TracingError("tracing was not installed".into()))?
            .queue;
        let exporter = Arc::new(Exporter::new(otlp, &config.service_name));
        runtime.spawn(export::run(queue, exporter.clone()));
        Ok(Tracing { exporter, queue })
    }

    /// Sends every span ended so far now, and waits for any export already under way.
    ///
    /// # Errors
    /// The exporter failed.
    pub async fn flush(&self) -> Result<(), TracingError> {
        self.exporter.send(self.queue).await.map_err(TracingError)
    }
}

/// A call's place in a trace.
///
/// Most calls are not sampled. Those carry only the trace's identity, so that the calls they
/// make are not sampled either: nothing recorded, no allocation, nothing to end.
#[derive(Clone, Debug)]
pub(crate) enum Trace {
    /// A span being recorded; it parents the calls made under it.
    Recorded(Arc<RecordedSpan>),
    /// A trace not sampled here: passed on to callees as `traceparent` with the sampled flag off.
    Unrecorded(SpanContext),
}

/// Whether tracing is installed: until it is, no call carries `traceparent`.
pub(crate) fn installed() -> bool {
    INSTALLED.get().is_some()
}

/// Starts the span of a request being served, child of the caller's `traceparent`.
/// `traceparent`: whether the request has that header (the caller looked for it already).
pub(crate) fn server_span(
    headers: &HeaderMap,
    traceparent: bool,
    method: &'static MethodContract,
    caller: Option<&Identity>,
    request_id: &str,
) -> Option<Trace> {
    let installed = INSTALLED.get()?;
    let remote = traceparent.then(|| {
        let extracted = TraceContextPropagator::new().extract(&Headers(headers));
        extracted.span().span_context().clone()
    });
    Some(start(
        installed,
        remote.as_ref().map(|parent| (parent, true)),
        method,
        request_id,
        || Side::Server(caller.cloned()),
    ))
}

/// Starts the span of a call this process makes: a child of the handler's span when the
/// call is made with a handler's context, else a new trace.
pub(crate) fn client_span(
    parent: Option<&Trace>,
    method: &'static MethodContract,
    request_id: &str,
) -> Option<Trace> {
    let installed = INSTALLED.get()?;
    let parent = match parent {
        Some(Trace::Unrecorded(unrecorded)) => return Some(Trace::Unrecorded(unrecorded.clone())),
        Some(Trace::Recorded(span)) => Some((&span.context, false)),
        None => None,
    };
    Some(start(installed, parent, method, request_id, || {
        Side::Client
    }))
}

/// A span for `method` under `parent` (its context, and whether it is another process's)
/// when it is to be recorded: as the parent was, or for a new trace by the sampling ratio.
/// Else the trace's identity alone.
fn start(
    installed: &Installed,
    parent: Option<(&SpanContext, bool)>,
    method: &'static MethodContract,
    request_id: &str,
    side: impl FnOnce() -> Side,
) -> Trace {
    let (trace_id, parent, state) = match parent {
        Some((parent, remote)) if parent.is_valid() => {
            if !parent.is_sampled() {
                return Trace::Unrecorded(parent.clone());
            }
            (
                parent.trace_id(),
                Some((parent.span_id(), remote)),
                parent.trace_state().clone(),
            )
        }
        _ => {
            let trace_id = RandomIdGenerator::default().new_trace_id();
            if !installed.root_sampler.samples(trace_id) {
                return Trace::Unrecorded(SpanContext::new(
                    trace_id,
                    RandomIdGenerator::default().new_span_id(),
                    TraceFlags::default(),
                    false,
                    TraceState::default(),
                ));
            }
            (trace_id, None, TraceState::default())
        }
    };
    Trace::Recorded(Arc::new(RecordedSpan {
        context: SpanContext::new(
            trace_id,
            RandomIdGenerator::default().new_span_id(),
            TraceFlags::SAMPLED,
            false,
            state,
        ),
        parent,
        side: side(),
        method,
        start: SystemTime::now(),
        request_id: request_id.into(),
    }))
}

impl RootRatio {
    fn new(ratio: f64) -> Self {
        RootRatio {
            // The SDK's bound, to the bit (a float to integer cast saturates).
            below: (ratio < 1.0).then(|| (ratio.max(0.0) * (1u64 << 63) as f64) as u64),
        }
    }

    fn samples(self, trace_id: TraceId) -> bool {
        let Some(below) = self.below else {
            return true;
        };
        let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
        low >> 1 < below
    }
}

/// Ends a call's span with its status code: queued for export when it was recorded.
pub(crate) fn end(trace: &Trace, code: Code) {
    let (Trace::Recorded(span), Some(installed)) = (trace, INSTALLED.get()) else {
        return;
    };
    installed.queue.push(Ended {
        span: span.clone(),
        end: SystemTime::now(),
        code,
    });
}

/// Writes `traceparent` (and `tracestate`) for a child call.
pub(crate) fn inject(trace: &Trace, headers: &mut HeaderMap) {
    let context = match trace {
        Trace::Recorded(span) => span.context.clone(),
        Trace::Unrecorded(unrecorded) => unrecorded.clone(),
    };
    TraceContextPropagator::new().inject_context(
        &opentelemetry::Context::new().with_remote_span_context(context),
        &mut HeadersMut(headers),
    );
}

struct Headers<'a>(&'a HeaderMap);
struct HeadersMut<'a>(&'a mut HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(mut value)) = (HeaderName::try_from(key), HeaderValue::try_from(value))
        {
            // A new span id on every call: never-indexed for HPACK, or each traced call would
            // push an entry through both ends' header tables, evicting those that repeat.
            value.set_sensitive(name == crate::header_names::TRACEPARENT);
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::call::testing::METHOD;
    use opentelemetry::trace::{SpanId, SpanKind};
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};

    fn installed(ratio: f64) -> Installed {
        Installed {
            root_sampler: RootRatio::new(ratio),
            queue: Queue::default(),
        }
    }

    fn recorded(trace: &Trace) -> &RecordedSpan {
        match trace {
            Trace::Recorded(span) => span,
            Trace::Unrecorded(unrecorded) => panic!("not recorded: {unrecorded:?}"),
        }
    }

    #[test]
    fn installing_outside_a_runtime_is_refused_and_installs_nothing() {
        let error = Tracing::install(TracingConfig {
            endpoint: "http://127.0.0.1:4317".into(),
            sampling_ratio: 0.5,
            service_name: "trace-test".into(),
        })
        .expect_err("no runtime");
        assert!(error.to_string().contains("tokio runtime"), "{error}");
        assert!(!super::installed());
    }

    #[tokio::test]
    async fn a_bad_ratio_or_endpoint_is_refused_and_installs_nothing() {
        let config = |endpoint: &str, sampling_ratio| TracingConfig {
            endpoint: endpoint.into(),
            sampling_ratio,
            service_name: "trace-test".into(),
        };
        for ratio in [-0.1, 1.5, f64::NAN] {
            let error =
                Tracing::install(config("http://127.0.0.1:4317", ratio)).expect_err("a bad ratio");
            assert!(error.to_string().contains("sampling ratio"), "{error}");
        }
        let error = Tracing::install(config("not a uri", 0.5)).expect_err("a bad endpoint");
        assert!(error.to_string().contains("not a uri"), "{error}");
        // Refused before anything was installed: no request is traced.
        assert!(!super::installed());
    }

    #[test]
    fn new_traces_are_sampled_as_the_sdks_ratio_sampler_samples_them() {
        for ratio in [0.0, 1e-9, 0.01, 0.25, 0.5, 0.999, 1.0, 2.0, -1.0] {
            let sdk = Sampler::TraceIdRatioBased(ratio);
            let ours = RootRatio::new(ratio);
            let mut ids: Vec<TraceId> = (0..2000)
                .map(|_| RandomIdGenerator::default().new_trace_id())
                .collect();
            // The edges of the low half: all zeros, all ones, and either side of the bound.
            for low in [0, 1, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1] {
                ids.push(TraceId::from(u128::from(low) | 7 << 64));
            }
            if let Some(below) = ours.below {
                for low in [below << 1, (below << 1).wrapping_sub(1), (below << 1) + 2] {
                    ids.push(TraceId::from(u128::from(low)));
                }
            }
            for id in ids {
                let by_sdk = sdk
                    .should_sample(None, id, "m", &SpanKind::Server, &[], &[])
                    .decision
                    == SamplingDecision::RecordAndSample;
                assert_eq!(ours.samples(id), by_sdk, "ratio {ratio}, trace {id}");
            }
        }
    }

    #[test]
    fn a_new_trace_is_recorded_exactly_when_its_id_passes_the_ratio() {
        let installed = installed(0.5);
        let ratio = Sampler::TraceIdRatioBased(0.5);
        let by_ratio = |id| {
            ratio
                .should_sample(None, id, "m", &SpanKind::Server, &[], &[])
                .decision
                == SamplingDecision::RecordAndSample
        };
        let (mut recorded, mut skipped) = (0, 0);
        for _ in 0..200 {
            match start(&installed, None, &METHOD, "r", || Side::Client) {
                Trace::Recorded(span) => {
                    assert!(by_ratio(span.context.trace_id()));
                    assert!(span.context.is_sampled() && span.context.is_valid());
                    assert_eq!(span.parent, None, "a root");
                    recorded += 1;
                }
                Trace::Unrecorded(unrecorded) => {
                    assert!(!by_ratio(unrecorded.trace_id()));
                    assert!(!unrecorded.is_sampled() && unrecorded.is_valid());
                    skipped += 1;
                }
            }
        }
        assert!(
            recorded > 0 && skipped > 0,
            "{recorded} recorded, {skipped} not"
        );
    }

    #[test]
    fn a_callers_decision_is_followed_whatever_the_ratio() {
        let never = installed(0.0);
        let state = TraceState::from_key_value([("vendor", "x")]).expect("a trace state");
        let sampled = SpanContext::new(
            TraceId::from(11),
            SpanId::from(12),
            TraceFlags::SAMPLED,
            true,
            state.clone(),
        );
        let child = start(&never, Some((&sampled, true)), &METHOD, "r", || {
            Side::Server(None)
        });
        let child = recorded(&child);
        assert_eq!(child.context.trace_id(), TraceId::from(11), "same trace");
        assert_ne!(
            child.context.span_id(),
            SpanId::from(12),
            "a span of its own"
        );
        assert_eq!(child.parent, Some((SpanId::from(12), true)));
        assert_eq!(
            child.context.trace_state(),
            &state,
            "the caller's state goes on"
        );
        assert_eq!(&*child.request_id, "r");

        let always = installed(1.0);
        let unsampled = SpanContext::new(
            TraceId::from(13),
            SpanId::from(14),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        match start(&always, Some((&unsampled, true)), &METHOD, "r", || {
            Side::Client
        }) {
            Trace::Unrecorded(passed_on) => assert_eq!(passed_on, unsampled),
            Trace::Recorded(span) => panic!("recorded against the caller's choice: {span:?}"),
        }
    }

    #[test]
    fn a_call_under_a_recorded_span_is_its_child_and_is_injected_as_such() {
        let always = installed(1.0);
        let parent = start(&always, None, &METHOD, "r", || Side::Server(None));
        let parent_context = &recorded(&parent).context;
        let child_trace = start(&always, Some((parent_context, false)), &METHOD, "r", || {
            Side::Client
        });
        let child = recorded(&child_trace);
        assert_eq!(child.context.trace_id(), parent_context.trace_id());
        assert_eq!(child.parent, Some((parent_context.span_id(), false)));

        let mut headers = HeaderMap::new();
        inject(&child_trace, &mut headers);
        let expected = format!(
            "00-{}-{}-01",
            child.context.trace_id(),
            child.context.span_id()
        );
        assert_eq!(
            headers.get("traceparent").and_then(|v| v.to_str().ok()),
            Some(&*expected)
        );
        assert!(
            headers
                .get("traceparent")
                .is_some_and(HeaderValue::is_sensitive),
            "never indexed"
        );
    }
}
