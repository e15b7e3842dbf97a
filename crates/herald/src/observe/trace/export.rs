//! Where a recorded span goes once it ends: onto a queue — one uncontended lock, no task
//! woken — from which one task builds the SDK's `SpanData` and sends it over OTLP, every
//! few seconds or as soon as a batch is full.
//!
//! The SDK's own span and batch processor did that work span by span on the request path (a
//! span object with its attributes, then a channel send that woke the processor's task). At
//! a sampling ratio of 1 % that cost ~2.4 % of a server's CPU, ten times the instructions it
//! ran: each span ran that code cold. Here the request path keeps a few ids and times.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use tokio::sync::Notify;

use crate::contract::MethodContract;
use crate::observe::server_metrics::caller_label;
use crate::{Code, Identity};

/// Spans queued at most (the SDK's default): beyond it, while an export is slow or failing,
/// spans are dropped and counted rather than held.
const MAX_QUEUED: usize = 2048;

/// Spans per export request (the SDK's default); a full batch is sent without waiting.
const BATCH: usize = 512;

/// How long a span waits at most before it is sent (the SDK's default schedule delay).
const EVERY: Duration = Duration::from_secs(5);

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
    /// Woken when a batch is full.
    full: Notify,
    /// Spans dropped for a full queue since the last export said so.
    dropped: AtomicU64,
}

/// Sends what has queued, one export at a time.
#[derive(Debug)]
pub(super) struct Exporter<E> {
    otlp: E,
    scope: InstrumentationScope,
    /// Held through a whole send, so that a flush returns only after any export already
    /// under way (whose spans it cannot see in the queue) has finished.
    sending: tokio::sync::Mutex<()>,
}

// === impl Ended ===

impl Ended {
    /// The span as the SDK exports it: the RPC attributes of OpenTelemetry's conventions,
    /// herald's caller and request id, and the status code.
    fn to_span_data(&self, scope: &InstrumentationScope) -> SpanData {
        let span = &self.span;
        let method = span.method;
        let mut attributes = Vec::with_capacity(6);
        attributes.extend([
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", method.service),
            KeyValue::new("rpc.method", method.method),
        ]);
        let kind = match &span.side {
            Side::Server(caller) => {
                attributes.push(KeyValue::new(
                    "herald.caller",
                    caller_label(caller.as_ref()).to_owned(),
                ));
                SpanKind::Server
            }
            Side::Client => SpanKind::Client,
        };
        attributes.extend([
            KeyValue::new("herald.request_id", String::from(&*span.request_id)),
            KeyValue::new("rpc.grpc.status_code", self.code as i64),
        ]);
        let (parent_span_id, parent_span_is_remote) =
            span.parent.unwrap_or((SpanId::INVALID, false));
        SpanData {
            span_context: span.context.clone(),
            parent_span_id,
            parent_span_is_remote,
            span_kind: kind,
            name: Cow::Borrowed(method.full_name()),
            start_time: span.start,
            end_time: self.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if self.code == Code::Ok {
                Status::Unset
            } else {
                Status::error(self.code.name())
            },
            instrumentation_scope: scope.clone(),
        }
    }
}

// === impl Queue ===

impl Queue {
    /// Queues an ended span; wakes the exporter when a batch is full.
    pub(super) fn push(&self, ended: Ended) {
        let mut queue = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= MAX_QUEUED {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.push(ended);
        let full = queue.len() == BATCH;
        drop(queue);
        if full {
            self.full.notify_one();
        }
    }

    /// Everything queued, leaving room for a batch (allocated here, not on the request path).
    fn take(&self) -> Vec<Ended> {
        let mut queue = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *queue, Vec::with_capacity(BATCH))
    }
}

// === impl Exporter ===

impl<E: SpanExporter> Exporter<E> {
    pub(super) fn new(otlp: E) -> Self {
        Exporter {
            otlp,
            scope: InstrumentationScope::builder("herald")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            sending: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends every span queued, in batches. A failed batch ends the send: the spans after it
    /// are dropped (the collector is most likely down for them too), not retried.
    pub(super) async fn send(&self, queue: &Queue) -> OTelSdkResult {
        let _one_at_a_time = self.sending.lock().await;
        let dropped = queue.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "tracing: spans dropped, the export queue was full");
        }
        let ended = queue.take();
        for batch in ended.chunks(BATCH) {
            let spans = batch.iter().map(|e| e.to_span_data(&self.scope)).collect();
            self.otlp.export(spans).await?;
        }
        Ok(())
    }
}

/// The exporter's task: sends what has queued every [`EVERY`], or sooner for a full batch.
pub(super) async fn run<E: SpanExporter>(queue: &'static Queue, exporter: Arc<Exporter<E>>) {
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
    struct Kept(Mutex<Vec<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(batch);
            Ok(())
        }
    }

    fn span(side: Side, parent: Option<(SpanId, bool)>) -> Arc<RecordedSpan> {
        Arc::new(RecordedSpan {
            context: SpanContext::new(
                TraceId::from(7),
                SpanId::from(9),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
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

    fn attribute<'a>(data: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
        data.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_server_span_exports_its_ids_times_caller_and_code() {
        let scope = InstrumentationScope::builder("herald").build();
        let caller = Identity::new("trace-test.caller");
        let remote_parent = Some((SpanId::from(5), true));
        let data = ended(
            span(Side::Server(Some(caller)), remote_parent),
            Code::NotFound,
        )
        .to_span_data(&scope);
        assert_eq!(data.span_context.trace_id(), TraceId::from(7));
        assert_eq!(data.span_context.span_id(), SpanId::from(9));
        assert_eq!(
            (data.parent_span_id, data.parent_span_is_remote),
            (SpanId::from(5), true)
        );
        assert_eq!(data.span_kind, SpanKind::Server);
        assert_eq!(data.name, "t.S/M");
        assert_eq!(
            data.start_time,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1)
        );
        assert_eq!(
            data.end_time,
            SystemTime::UNIX_EPOCH + Duration::from_secs(2)
        );
        let keys: Vec<&str> = data.attributes.iter().map(|kv| kv.key.as_str()).collect();
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
        assert_eq!(
            attribute(&data, "herald.caller").map(ToString::to_string),
            Some("trace-test.caller".to_owned())
        );
        assert_eq!(
            attribute(&data, "rpc.grpc.status_code"),
            Some(&opentelemetry::Value::I64(5))
        );
        assert_eq!(data.status, Status::error("NOT_FOUND"));
    }

    #[test]
    fn a_client_span_has_no_caller_and_a_root_no_parent() {
        let scope = InstrumentationScope::builder("herald").build();
        let data = ended(span(Side::Client, None), Code::Ok).to_span_data(&scope);
        assert_eq!(data.span_kind, SpanKind::Client);
        assert_eq!(data.parent_span_id, SpanId::INVALID);
        assert_eq!(attribute(&data, "herald.caller"), None);
        assert_eq!(
            attribute(&data, "herald.request_id").map(ToString::to_string),
            Some("r-1".to_owned())
        );
        assert_eq!(data.status, Status::Unset, "OK leaves the status unset");
    }

    #[tokio::test]
    async fn spans_go_in_batches_and_a_full_queue_drops_the_excess() {
        let queue = Queue::default();
        let exporter = Exporter::new(Kept::default());
        let one = span(Side::Client, None);
        for _ in 0..MAX_QUEUED + 10 {
            queue.push(ended(one.clone(), Code::Ok));
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 10);
        exporter.send(&queue).await.expect("export");
        let sizes: Vec<usize> = exporter
            .otlp
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [BATCH; MAX_QUEUED / BATCH]);
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 0, "reported once");
        exporter.send(&queue).await.expect("nothing to export");
        assert_eq!(exporter.otlp.0.lock().map(|k| k.len()).unwrap_or(0), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_sends_a_full_batch_at_once_and_the_rest_within_the_delay() {
        let queue: &'static Queue = Box::leak(Box::default());
        let exporter = Arc::new(Exporter::new(Kept::default()));
        let sent = |exporter: &Exporter<Kept>| -> usize {
            exporter
                .otlp
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(Vec::len)
                .sum()
        };
        let task = tokio::spawn(run(queue, exporter.clone()));
        // The interval's first tick is at once: let it pass with nothing queued.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let one = span(Side::Client, None);
        for _ in 0..BATCH {
            queue.push(ended(one.clone(), Code::Ok));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(sent(&exporter), BATCH, "a full batch goes at once");
        queue.push(ended(one.clone(), Code::Ok));
        tokio::time::sleep(EVERY / 2).await;
        assert_eq!(sent(&exporter), BATCH, "one span waits for the schedule");
        tokio::time::sleep(EVERY).await;
        assert_eq!(sent(&exporter), BATCH + 1);
        task.abort();
    }
}
