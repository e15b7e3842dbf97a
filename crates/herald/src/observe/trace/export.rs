//! Where a recorded span goes once it ends: onto a queue (one uncontended lock), from which
//! one task builds OTLP's `ExportTraceServiceRequest` (opentelemetry-proto's types) and sends
//! it to the collector with the generated tonic client, every few seconds or as soon as
//! [`WAKE_AT`] spans wait — the task is woken once per batch, not per span.
//!
//! The SDK's span and batch processor did this span by span on the request path (a span
//! object with its attributes, a channel send that woke the processor's task), and its OTLP
//! exporter turned each batch into `SpanData`, cloned it, then converted the clone: ~18,000
//! instructions per sampled span (callgrind), and at 1 % sampling the export alone cost 1.2 %
//! of a server's CPU (`bench/together`). Here the request path keeps a few ids and times,
//! and a batch is built once, in its wire types (~12,000 instructions a span, most of them
//! prost's encoding and the HTTP/2 client's).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, SpanFlags, Status, span, status,
};
use tokio::sync::Notify;

use crate::contract::MethodContract;
use crate::observe::server_metrics::caller_label;
use crate::{Code, Identity};

/// Spans queued at most (the SDK's default): beyond it, while an export is slow or failing,
/// spans are dropped and counted rather than held.
const MAX_QUEUED: usize = 2048;

/// Spans per export request at most (the SDK's default).
const BATCH: usize = 512;

/// Spans queued that wake the exporter before its schedule. Smaller exports disturb the
/// request path less: at 1 % sampling (~500 spans a second), waking at 32, 64 or 128 spans
/// gave a server 0.5-0.6 % more calls per CPU-second than waking at 512 (`bench/together`,
/// 8 rounds each), while waking at 8 cost it 5 %. Under more spans the queue grows while an
/// export is under way, and requests fill up to `BATCH`.
const WAKE_AT: usize = 128;

/// How long a span waits at most before it is sent (the SDK's default schedule delay).
const EVERY: Duration = Duration::from_secs(5);

/// How long one export may take (the OTLP exporters' default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A span being recorded: what the request path knows of it when it starts.
#[derive(Debug)]
pub(crate) struct RecordedSpan {
    /// Its trace, its own id, sampled; the caller's trace state.
    pub(super) context: SpanContext,
    /// The span it is a child of, and whether that one is in another process.
    pub(super) parent: Option<(SpanId, bool)>,
    pub(super) side: Side,
    pub(super) method: &'static MethodContract,
    pub(super) start: SystemTime,
    pub(super) request_id: Box<str>,
}

/// Which end of the call a span records.
#[derive(Debug)]
pub(crate) enum Side {
    /// Serving a request from this caller (none: unauthenticated).
    Server(Option<Identity>),
    /// Calling another service.
    Client,
}

/// A recorded span that has ended.
#[derive(Debug)]
pub(super) struct Ended {
    pub(super) span: Arc<RecordedSpan>,
    pub(super) end: SystemTime,
    pub(super) code: Code,
}

/// Ended spans waiting to be sent.
#[derive(Debug, Default)]
pub(super) struct Queue {
    ended: Mutex<Vec<Ended>>,
    /// Woken when [`WAKE_AT`] spans wait.
    full: Notify,
    /// Spans dropped for a full queue since the last export said so.
    dropped: AtomicU64,
}

/// Where batches go: an OTLP/gRPC collector ([`Otlp`]), or a test's stand-in.
pub(super) trait Collector: Send + Sync + 'static {
    fn export(
        &self,
        request: ExportTraceServiceRequest,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// An OTLP/gRPC trace collector, through opentelemetry-proto's generated client.
#[derive(Debug)]
pub(super) struct Otlp {
    client: TraceServiceClient<tonic::transport::Channel>,
}

/// Sends what has queued, one export at a time.
#[derive(Debug)]
pub(super) struct Exporter<C> {
    collector: C,
    /// This process (`service.name`) and herald, sent with every batch.
    resource: Resource,
    scope: InstrumentationScope,
    /// Held through a whole send, so that a flush returns only after any export already
    /// under way (whose spans it cannot see in the queue) has finished.
    sending: tokio::sync::Mutex<()>,
}

// === impl Ended ===

impl Ended {
    /// The span in OTLP's terms: the RPC attributes of OpenTelemetry's conventions, herald's
    /// caller and request id, and the status code (as the SDK's exporter would send it).
    fn to_otlp(&self) -> Span {
        let span = &self.span;
        let method = span.method;
        let mut attributes = Vec::with_capacity(6);
        attributes.extend([
            attribute("rpc.system", "grpc"),
            attribute("rpc.service", method.service),
            attribute("rpc.method", method.method),
        ]);
        let kind = match &span.side {
            Side::Server(caller) => {
                attributes.push(attribute("herald.caller", caller_label(caller.as_ref())));
                span::SpanKind::Server
            }
            Side::Client => span::SpanKind::Client,
        };
        attributes.extend([
            attribute("herald.request_id", &span.request_id),
            KeyValue {
                key: "rpc.grpc.status_code".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(self.code as i64)),
                }),
                ..KeyValue::default()
            },
        ]);
        let (parent_span_id, parent_is_remote) = match span.parent {
            Some((id, remote)) => (id.to_bytes().to_vec(), remote),
            None => (Vec::new(), false),
        };
        let mut flags = u32::from(span.context.trace_flags().to_u8())
            | SpanFlags::ContextHasIsRemoteMask as u32;
        if parent_is_remote {
            flags |= SpanFlags::ContextIsRemoteMask as u32;
        }
        Span {
            trace_id: span.context.trace_id().to_bytes().to_vec(),
            span_id: span.context.span_id().to_bytes().to_vec(),
            trace_state: span.context.trace_state().header(),
            parent_span_id,
            flags,
            name: method.full_name().to_owned(),
            kind: kind as i32,
            start_time_unix_nano: unix_nanos(span.start),
            end_time_unix_nano: unix_nanos(self.end),
            attributes,
            status: Some(if self.code == Code::Ok {
                Status {
                    message: String::new(),
                    code: status::StatusCode::Unset as i32,
                }
            } else {
                Status {
                    message: self.code.name().to_owned(),
                    code: status::StatusCode::Error as i32,
                }
            }),
            // No events or links, nothing dropped.
            ..Span::default()
        }
    }
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        // Later fields of the message (string-table indexes): unset.
        ..KeyValue::default()
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// === impl Queue ===

impl Queue {
    /// Queues an ended span; wakes the exporter when [`WAKE_AT`] wait.
    pub(super) fn push(&self, ended: Ended) {
        let mut queue = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= MAX_QUEUED {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.push(ended);
        let wake = queue.len() == WAKE_AT;
        drop(queue);
        if wake {
            self.full.notify_one();
        }
    }

    /// Everything queued, leaving room for a batch (allocated here, not on the request path).
    fn take(&self) -> Vec<Ended> {
        let mut queue = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *queue, Vec::with_capacity(BATCH))
    }
}

// === impl Otlp ===

impl Otlp {
    /// A collector at `endpoint` (`http://host:port`), connected on first use and
    /// reconnected as needed.
    pub(super) fn new(endpoint: &str) -> Result<Otlp, String> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| format!("OTLP collector {endpoint}: {e}"))?
            .timeout(EXPORT_TIMEOUT)
            .connect_lazy();
        Ok(Otlp {
            client: TraceServiceClient::new(channel),
        })
    }
}

impl Collector for Otlp {
    async fn export(&self, request: ExportTraceServiceRequest) -> Result<(), String> {
        let response = self
            .client
            .clone()
            .export(request)
            .await
            .map_err(|status| format!("OTLP export: {status}"))?;
        // The collector kept only part of it: said, not retried (as the OTLP exporters do).
        if let Some(partial) = response.into_inner().partial_success
            && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
        {
            tracing::warn!(
                rejected = partial.rejected_spans,
                message = partial.error_message,
                "tracing: the collector rejected spans"
            );
        }
        Ok(())
    }
}

// === impl Exporter ===

impl<C: Collector> Exporter<C> {
    pub(super) fn new(collector: C, service_name: &str) -> Self {
        Exporter {
            collector,
            resource: Resource {
                attributes: vec![
                    attribute("service.name", service_name),
                    attribute("telemetry.sdk.name", "herald"),
                    attribute("telemetry.sdk.language", "rust"),
                    attribute("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: "herald".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..InstrumentationScope::default()
            },
            sending: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends every span queued, in batches. A failed batch ends the send: the spans after it
    /// are dropped (the collector is most likely down for them too), not retried.
    pub(super) async fn send(&self, queue: &Queue) -> Result<(), String> {
        let _one_at_a_time = self.sending.lock().await;
        let dropped = queue.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "tracing: spans dropped, the export queue was full");
        }
        let ended = queue.take();
        for batch in ended.chunks(BATCH) {
            self.collector.export(self.request(batch)).await?;
        }
        Ok(())
    }

    /// One export request: this process's resource, herald's scope, the spans.
    fn request(&self, batch: &[Ended]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans: batch.iter().map(Ended::to_otlp).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}

/// The exporter's task: sends what has queued every [`EVERY`], or once [`WAKE_AT`] wait.
pub(super) async fn run<C: Collector>(queue: &'static Queue, exporter: Arc<Exporter<C>>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = queue.full.notified() => {}
        }
        if let Err(error) = exporter.send(queue).await {
            tracing::warn!(%error, "tracing: span export failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::call::testing::METHOD;
    use opentelemetry::trace::{TraceFlags, TraceId, TraceState};

    /// Keeps what it is given, as a collector would.
    #[derive(Debug, Default)]
    struct Kept(Mutex<Vec<ExportTraceServiceRequest>>);

    impl Collector for Kept {
        async fn export(&self, request: ExportTraceServiceRequest) -> Result<(), String> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(request);
            Ok(())
        }
    }

    impl Kept {
        /// Spans per request received.
        fn sizes(&self) -> Vec<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|r| r.resource_spans[0].scope_spans[0].spans.len())
                .collect()
        }
    }

    fn span(side: Side, parent: Option<(SpanId, bool)>) -> Arc<RecordedSpan> {
        Arc::new(RecordedSpan {
            context: SpanContext::new(
                TraceId::from(7),
                SpanId::from(9),
                TraceFlags::SAMPLED,
                false,
                TraceState::from_key_value([("vendor", "x")]).unwrap_or_default(),
            ),
            parent,
            side,
            method: &METHOD,
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            request_id: "r-1".into(),
        })
    }

    fn ended(span: Arc<RecordedSpan>, code: Code) -> Ended {
        Ended {
            span,
            end: SystemTime::UNIX_EPOCH + Duration::from_secs(2),
            code,
        }
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn text(value: &str) -> Option<any_value::Value> {
        Some(any_value::Value::StringValue(value.to_owned()))
    }

    #[test]
    fn a_server_span_is_sent_with_its_ids_times_caller_and_code() {
        let caller = Identity::new("trace-test.caller");
        let remote_parent = Some((SpanId::from(5), true));
        let span = ended(
            span(Side::Server(Some(caller)), remote_parent),
            Code::NotFound,
        )
        .to_otlp();
        assert_eq!(span.trace_id, TraceId::from(7).to_bytes());
        assert_eq!(span.span_id, SpanId::from(9).to_bytes());
        assert_eq!(span.parent_span_id, SpanId::from(5).to_bytes());
        assert_eq!(span.trace_state, "vendor=x");
        // Sampled, and the parent known to be remote.
        assert_eq!(span.flags, 0x1 | 0x100 | 0x200);
        assert_eq!(span.kind, span::SpanKind::Server as i32);
        assert_eq!(span.name, "t.S/M");
        assert_eq!(span.start_time_unix_nano, 1_000_000_000);
        assert_eq!(span.end_time_unix_nano, 2_000_000_000);
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "rpc.system",
                "rpc.service",
                "rpc.method",
                "herald.caller",
                "herald.request_id",
                "rpc.grpc.status_code"
            ]
        );
        assert_eq!(attribute(&span, "rpc.system").cloned(), text("grpc"));
        assert_eq!(attribute(&span, "rpc.service").cloned(), text("t.S"));
        assert_eq!(attribute(&span, "rpc.method").cloned(), text("M"));
        assert_eq!(
            attribute(&span, "herald.caller").cloned(),
            text("trace-test.caller")
        );
        assert_eq!(
            attribute(&span, "rpc.grpc.status_code"),
            Some(&any_value::Value::IntValue(5))
        );
        assert_eq!(
            span.status,
            Some(Status {
                message: "NOT_FOUND".into(),
                code: status::StatusCode::Error as i32
            })
        );
    }

    #[test]
    fn a_client_span_has_no_caller_and_a_root_no_parent() {
        let span = ended(span(Side::Client, None), Code::Ok).to_otlp();
        assert_eq!(span.kind, span::SpanKind::Client as i32);
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.flags, 0x1 | 0x100, "sampled; no remote parent");
        assert_eq!(attribute(&span, "herald.caller"), None);
        assert_eq!(attribute(&span, "herald.request_id").cloned(), text("r-1"));
        let status = span.status.expect("a status");
        assert_eq!(
            status.code,
            status::StatusCode::Unset as i32,
            "OK leaves it unset"
        );
    }

    #[tokio::test]
    async fn spans_go_in_batches_with_the_resource_and_a_full_queue_drops_the_excess() {
        let queue = Queue::default();
        let exporter = Exporter::new(Kept::default(), "trace-test");
        let one = span(Side::Client, None);
        for _ in 0..MAX_QUEUED + 10 {
            queue.push(ended(one.clone(), Code::Ok));
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 10);
        exporter.send(&queue).await.expect("export");
        assert_eq!(exporter.collector.sizes(), [BATCH; MAX_QUEUED / BATCH]);
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 0, "reported once");
        let first = exporter.collector.0.lock().map(|r| r[0].clone());
        let resource_spans = &first.expect("a request").resource_spans[0];
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref()?.value.clone());
        assert_eq!(service, text("trace-test"));
        let scope = resource_spans.scope_spans[0]
            .scope
            .as_ref()
            .map(|s| &s.name);
        assert_eq!(scope.map(String::as_str), Some("herald"));
        exporter.send(&queue).await.expect("nothing to export");
        assert_eq!(exporter.collector.sizes().len(), 4, "nothing more sent");
    }

    /// Refuses its first `failing` exports, then keeps what it is given.
    #[derive(Debug, Default)]
    struct Flaky {
        failing: AtomicU64,
        kept: Kept,
    }

    impl Collector for Flaky {
        async fn export(&self, request: ExportTraceServiceRequest) -> Result<(), String> {
            let down = self
                .failing
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if down {
                return Err("OTLP export: status: Unavailable".into());
            }
            self.kept.export(request).await
        }
    }

    #[tokio::test]
    async fn a_failed_export_says_so_drops_its_spans_and_the_next_goes_out() {
        let queue = Queue::default();
        let exporter = Exporter::new(
            Flaky {
                failing: AtomicU64::new(1),
                kept: Kept::default(),
            },
            "trace-test",
        );
        let one = span(Side::Client, None);
        for _ in 0..BATCH + 1 {
            queue.push(ended(one.clone(), Code::Ok));
        }
        let error = exporter
            .send(&queue)
            .await
            .expect_err("the collector is down");
        assert!(error.contains("Unavailable"), "{error}");
        // The batch after the failed one was dropped with it, not kept for later.
        assert!(exporter.collector.kept.sizes().is_empty());
        queue.push(ended(one.clone(), Code::Ok));
        exporter.send(&queue).await.expect("the collector is back");
        assert_eq!(
            exporter.collector.kept.sizes(),
            [1],
            "only the span ended since"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_sends_once_enough_wait_and_the_rest_within_the_delay() {
        let queue: &'static Queue = Box::leak(Box::default());
        let exporter = Arc::new(Exporter::new(Kept::default(), "trace-test"));
        let sent = |exporter: &Exporter<Kept>| -> usize { exporter.collector.sizes().iter().sum() };
        let task = tokio::spawn(run(queue, exporter.clone()));
        // The interval's first tick is at once: let it pass with nothing queued.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let one = span(Side::Client, None);
        for _ in 0..WAKE_AT - 1 {
            queue.push(ended(one.clone(), Code::Ok));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(sent(&exporter), 0, "fewer wait for the schedule");
        queue.push(ended(one.clone(), Code::Ok));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(sent(&exporter), WAKE_AT, "enough go at once");
        queue.push(ended(one.clone(), Code::Ok));
        tokio::time::sleep(EVERY / 2).await;
        assert_eq!(sent(&exporter), WAKE_AT, "one span waits for the schedule");
        tokio::time::sleep(EVERY).await;
        assert_eq!(sent(&exporter), WAKE_AT + 1);
        task.abort();
    }
}
