//! Distributed tracing: an OpenTelemetry span per call, W3C `traceparent` on the wire, OTLP
//! export. The server's span is the parent of every call its handler makes with the
//! request's [`Context`](crate::Context), so a Cache → Accounts call is one trace.
//!
//! Off until [`Tracing::install`]: then, and only then, spans are made — a server without
//! tracing pays one atomic load per request for it.

use std::cell::Cell;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer, TracerProvider,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider,
};

use crate::contract::MethodContract;
use crate::{Code, Identity};

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
    provider: SdkTracerProvider,
}

/// Tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("tracing: {0}")]
pub struct TracingError(String);

/// Tracing, once installed: the tracer, and the sampler for new traces that `choose` consults
/// before making a span.
struct Installed {
    tracer: SdkTracer,
    root_sampler: RootRatio,
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
    /// starting servers.
    ///
    /// # Errors
    /// An invalid endpoint or ratio, or tracing already installed.
    pub fn install(config: TracingConfig) -> Result<Tracing, TracingError> {
        if !(0.0..=1.0).contains(&config.sampling_ratio) {
            return Err(TracingError(format!(
                "sampling ratio {} is not within 0 to 1",
                config.sampling_ratio
            )));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&config.endpoint)
            .build()
            .map_err(|e| TracingError(format!("OTLP exporter to {}: {e}", config.endpoint)))?;
        // Exports run on the tokio runtime (tonic needs one), not on a thread of their own.
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_id_generator(DecidedIds)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name)
                    .build(),
            )
            .build();
        let installed = Installed {
            tracer: provider.tracer("herald"),
            root_sampler: RootRatio::new(config.sampling_ratio),
        };
        INSTALLED
            .set(installed)
            .map_err(|_| TracingError("tracing is already installed in this process".into()))?;
        Ok(Tracing { provider })
    }

    /// Sends every finished span now (from a blocking thread: the export itself runs on the
    /// runtime, so this must not hold a runtime thread while it waits).
    ///
    /// # Errors
    /// The exporter failed.
    pub async fn flush(&self) -> Result<(), TracingError> {
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .map_err(|e| TracingError(e.to_string()))?
            .map_err(|e| TracingError(e.to_string()))
    }
}

/// A call's place in a trace.
///
/// Most calls are not sampled. Those carry only the trace's identity, so that the calls they
/// make are not sampled either: no span object, no allocation, nothing to end.
#[derive(Clone, Debug)]
pub(crate) enum Trace {
    /// A span being recorded, in the context that parents its children.
    Recorded(opentelemetry::Context),
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
    method: &MethodContract,
    caller: Option<&Identity>,
    request_id: &str,
) -> Option<Trace> {
    let installed = INSTALLED.get()?;
    let parent = if traceparent {
        TraceContextPropagator::new().extract(&Headers(headers))
    } else {
        opentelemetry::Context::new()
    };
    Some(start(installed, parent, method, SpanKind::Server, || {
        vec![
            KeyValue::new(
                "herald.caller",
                crate::observe::server_metrics::caller_label(caller).to_owned(),
            ),
            KeyValue::new("herald.request_id", request_id.to_owned()),
        ]
    }))
}

/// Starts the span of a call this process makes: a child of the handler's span when the
/// call is made with a handler's context, else a new trace.
pub(crate) fn client_span(
    parent: Option<&Trace>,
    method: &MethodContract,
    request_id: &str,
) -> Option<Trace> {
    let installed = INSTALLED.get()?;
    let parent = match parent {
        Some(Trace::Unrecorded(unrecorded)) => return Some(Trace::Unrecorded(unrecorded.clone())),
        Some(Trace::Recorded(cx)) => cx.clone(),
        None => opentelemetry::Context::new(),
    };
    Some(start(installed, parent, method, SpanKind::Client, || {
        vec![KeyValue::new("herald.request_id", request_id.to_owned())]
    }))
}

/// A span of `kind` for `method` under `parent` when it is to be recorded (with the RPC
/// attributes and `more`, built only then); else the trace's identity alone.
fn start(
    installed: &Installed,
    parent: opentelemetry::Context,
    method: &MethodContract,
    kind: SpanKind,
    more: impl FnOnce() -> Vec<KeyValue>,
) -> Trace {
    let new_trace = match choose(installed, &parent) {
        Choice::Skip(unrecorded) => return Trace::Unrecorded(unrecorded),
        Choice::Record(new_trace) => new_trace,
    };
    let mut attributes = vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", method.service),
        KeyValue::new("rpc.method", method.method),
    ];
    attributes.extend(more());
    // The SDK (0.33) draws a new trace's id itself, ignoring a builder's: it is handed the id
    // sampled by through this thread, so that the trace exported is the one chosen.
    DECIDED_TRACE_ID.set(new_trace);
    let span = installed
        .tracer
        .span_builder(method.full_name())
        .with_kind(kind)
        .with_attributes(attributes)
        .start_with_context(&installed.tracer, &parent);
    DECIDED_TRACE_ID.set(None);
    Trace::Recorded(parent.with_span(span))
}

thread_local! {
    /// The id of the new trace whose root span this thread is starting (see [`DecidedIds`]).
    static DECIDED_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The SDK's ids: for a new trace the one `choose` sampled by, when this thread is starting
/// its root span; otherwise random, as the SDK's own generator.
#[derive(Debug)]
struct DecidedIds;

impl IdGenerator for DecidedIds {
    fn new_trace_id(&self) -> TraceId {
        DECIDED_TRACE_ID
            .take()
            .unwrap_or_else(|| RandomIdGenerator::default().new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }
}

/// Whether a span under `parent` is recorded: as the caller chose, or for a new trace by the
/// sampling ratio — decided before any span object exists (the SDK's own sampler, which would
/// decide after, is `ParentBased(AlwaysOn)`: it records whatever reaches it).
enum Choice {
    /// Make the span (the SDK records it); a new trace's id, the one the ratio was applied to.
    Record(Option<TraceId>),
    /// Do not record; what callees are told.
    Skip(SpanContext),
}

fn choose(installed: &Installed, parent: &opentelemetry::Context) -> Choice {
    let span = parent.span();
    let known = span.span_context();
    if known.is_valid() {
        return if known.is_sampled() {
            Choice::Record(None)
        } else {
            Choice::Skip(known.clone())
        };
    }
    let trace_id = RandomIdGenerator::default().new_trace_id();
    if installed.root_sampler.samples(trace_id) {
        Choice::Record(Some(trace_id))
    } else {
        Choice::Skip(SpanContext::new(
            trace_id,
            RandomIdGenerator::default().new_span_id(),
            TraceFlags::default(),
            false,
            TraceState::default(),
        ))
    }
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

/// Ends a request's span with its status code.
pub(crate) fn end(trace: &Trace, code: Code) {
    let Trace::Recorded(cx) = trace else {
        return;
    };
    let span = cx.span();
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
    if code != Code::Ok {
        span.set_status(Status::error(code.name()));
    }
    span.end();
}

/// Writes `traceparent` (and `tracestate`) for a child call.
pub(crate) fn inject(trace: &Trace, headers: &mut HeaderMap) {
    let propagator = TraceContextPropagator::new();
    match trace {
        Trace::Recorded(cx) => propagator.inject_context(cx, &mut HeadersMut(headers)),
        Trace::Unrecorded(unrecorded) => propagator.inject_context(
            &opentelemetry::Context::new().with_remote_span_context(unrecorded.clone()),
            &mut HeadersMut(headers),
        ),
    }
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
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

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
    fn a_new_trace_is_exported_under_the_id_its_sampling_chose() {
        let ratio = Sampler::TraceIdRatioBased(0.5);
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_id_generator(DecidedIds)
            .build();
        let installed = Installed {
            tracer: provider.tracer("test"),
            root_sampler: RootRatio::new(0.5),
        };
        let sampled_by_ratio = |id| {
            ratio
                .should_sample(None, id, "m", &SpanKind::Server, &[], &[])
                .decision
                == SamplingDecision::RecordAndSample
        };
        let (mut recorded, mut skipped) = (0, 0);
        for _ in 0..200 {
            let root = opentelemetry::Context::new();
            match start(&installed, root, &METHOD, SpanKind::Server, Vec::new) {
                Trace::Recorded(cx) => {
                    let id = cx.span().span_context().trace_id();
                    // The SDK's own id would pass the ratio half the time only.
                    assert!(sampled_by_ratio(id), "{id} was not the id sampled by");
                    recorded += 1;
                }
                Trace::Unrecorded(unrecorded) => {
                    assert!(!sampled_by_ratio(unrecorded.trace_id()));
                    skipped += 1;
                }
            }
        }
        assert!(
            recorded > 0 && skipped > 0,
            "{recorded} recorded, {skipped} not"
        );
        // Handed over once: ids drawn afterwards (a child's span, another trace) are fresh.
        assert_eq!(DECIDED_TRACE_ID.get(), None);
    }
}
