//! Records every answered request: per-caller, per-code counts, latency, in-flight, and one
//! structured access log line (target `herald::access`). A stream is recorded when its
//! trailers go out (or when the caller goes away), not when its head does.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Instant;

use http_body::Frame;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::Code;
use crate::context::Context;
use crate::contract::RpcKind;
use crate::observe::access_log::{self, AccessLine};
use crate::observe::server_metrics::caller_label;
use crate::server::call::{Call, RoutedMethod};
use crate::server::connections::ConnEntry;

/// Applies [`Observe`]: on unless built with [`ObserveLayer::off`].
#[derive(Clone, Copy, Debug)]
pub struct ObserveLayer {
    on: bool,
}

/// Measures and logs each call.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    on: bool,
}

/// What to record once the call's code is known.
struct Record {
    method: Arc<RoutedMethod>,
    ctx: Context,
    start: Instant,
    conn: Option<Arc<ConnEntry>>,
}

pin_project_lite::pin_project! {
    /// The response future, recording at the head (unary, refusals) or handing the record to
    /// the body (streams).
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }

    impl<F> PinnedDrop for ObserveFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its head: the caller went away (or its connection did).
            if let Some(record) = this.project().record.take() {
                record.finish(Code::Cancelled);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A streaming response body that records when its trailers pass, or when dropped.
    struct ObservedBody {
        #[pin]
        body: Body,
        record: Option<Record>,
    }

    impl PinnedDrop for ObservedBody {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its trailers: the caller went away.
            if let Some(record) = this.project().record.take() {
                record.finish(Code::Cancelled);
            }
        }
    }
}

// === impl ObserveLayer ===

impl ObserveLayer {
    /// Records every call.
    pub fn on() -> Self {
        ObserveLayer { on: true }
    }

    /// Records nothing: passes calls through untouched (to measure what recording costs).
    pub fn off() -> Self {
        ObserveLayer { on: false }
    }
}

impl Default for ObserveLayer {
    fn default() -> Self {
        ObserveLayer::on()
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, on: self.on }
    }
}

// === impl Observe ===

impl<S> Service<Call> for Observe<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        if !self.on {
            return ObserveFuture {
                inner: self.inner.call(call),
                record: None,
            };
        }
        let record = Record {
            method: call.method.clone(),
            ctx: call.ctx.clone(),
            start: call.arrival,
            conn: call.conn.take(),
        };
        record.method.metrics.in_flight.inc();
        ObserveFuture {
            inner: self.inner.call(call),
            record: Some(record),
        }
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, Infallible>>,
{
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        let Some(record) = this.record.take() else {
            return Poll::Ready(Ok(response));
        };
        // A trailers-only response (a refusal, a handler's error) carries its code here.
        if let Some(code) = Code::in_headers(response.headers()) {
            record.finish(code);
            return Poll::Ready(Ok(response));
        }
        let streams = matches!(
            record.method.method.contract.kind,
            RpcKind::ServerStreaming | RpcKind::BidiStreaming
        );
        if streams {
            return Poll::Ready(Ok(response.map(|body| {
                Body::new(ObservedBody {
                    body,
                    record: Some(record),
                })
            })));
        }
        // A unary answer's head means the handler succeeded: its one message follows.
        record.finish(Code::Ok);
        Poll::Ready(Ok(response))
    }
}

// === impl Record ===

impl Record {
    fn finish(self, code: Code) {
        // What a request cut short by its caller's going makes of a call (its body ended
        // early: "missing request message", a reset) is put down to the going: CANCELLED, the
        // caller's doing, as when the call is dropped; not UNKNOWN or INTERNAL, which
        // dashboards read as the server failing. Codes the server chose itself (a deadline, a
        // shed) stand.
        let cut_short = matches!(code, Code::Unknown | Code::Internal)
            && self.conn.as_ref().is_some_and(|conn| conn.peer_gone());
        let code = if cut_short { Code::Cancelled } else { code };
        let now = Instant::now();
        let took = now.saturating_duration_since(self.start);
        let method = &self.method;
        method.metrics.in_flight.dec();
        if let Some(trace) = self.ctx.trace() {
            crate::observe::trace::end(trace, code);
        }
        let caller = self.ctx.caller();
        method.metrics.record(caller, code, took, |middle| {
            access_log::log(&AccessLine {
                method: method.method.contract.full_name(),
                caller: caller_label(caller),
                middle,
                code,
                took,
                request_id: self.ctx.request_id(),
                at: now,
            });
        });
    }
}

// === impl ObservedBody ===

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(Code::in_headers)
                    && let Some(record) = this.record.take()
                {
                    record.finish(code);
                }
            }
            Some(Err(status)) => {
                if let Some(record) = this.record.take() {
                    record.finish(Code::from_tonic(status.code()));
                }
            }
            None => {
                if let Some(record) = this.record.take() {
                    record.finish(Code::Ok);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;
    use crate::observe::server_metrics::ServerMetrics;
    use crate::server::call::testing;

    #[tokio::test]
    async fn a_call_dropped_before_its_answer_counts_as_cancelled_and_leaves_nobody_in_flight() {
        let mut registry = Registry::default();
        let metrics = ServerMetrics::register(&mut registry);
        let call = testing::call(&[], &metrics);
        let method = call.method.clone();
        // A handler that never answers; its caller goes away.
        let inner = tower::service_fn(|_: Call| {
            std::future::pending::<Result<http::Response<Body>, Infallible>>()
        });
        let mut observed = ObserveLayer::on().layer(inner);
        let mut answer = Box::pin(observed.call(call));
        assert!(futures_util::poll!(answer.as_mut()).is_pending());
        assert_eq!(method.metrics.in_flight.get(), 1);
        drop(answer);
        assert_eq!(method.metrics.in_flight.get(), 0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(r#"caller="unauthenticated",code="CANCELLED"} 1"#),
            "{text}"
        );
    }
}
