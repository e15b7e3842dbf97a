//! The last layer: runs the method's handler under the request's deadline, and turns a
//! panic into INTERNAL for that call alone (Courier's panic handler, without the abort).

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use futures_util::FutureExt;
use tonic::body::Body;

use crate::context::Context;
use crate::contract::RpcKind;
use crate::limits::admission::Permit;
use crate::server::call::Call;
use crate::server::http2::Http2Limits;
use crate::server::methods::ResponseFuture;
use crate::server::pool::HandlerPool;
use crate::server::stats::ServerStats;

/// What every handler shares: limits and counters.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) limits: Http2Limits,
    pub(crate) stats: Arc<ServerStats>,
    /// Responses are compressed with this when the caller accepts it.
    pub(crate) compression: Option<crate::Compression>,
    /// Where handlers run, when not on the connection's threads.
    pub(crate) pool: Option<HandlerPool>,
}

/// Calls the method's handler.
#[derive(Clone, Debug)]
pub(crate) struct Dispatch {
    env: Arc<Env>,
}

// === impl Dispatch ===

impl Dispatch {
    pub(crate) fn new(env: Arc<Env>) -> Self {
        Dispatch { env }
    }
}

impl tower::Service<Call> for Dispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = DispatchFuture;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let Call {
            method,
            ctx,
            request,
            permit,
            ..
        } = call;
        let contract = method.method.contract;
        // A stream's work goes on after its head: its slot is held until the body ends.
        let streams = matches!(
            contract.kind,
            RpcKind::ServerStreaming | RpcKind::BidiStreaming
        );
        let response = method.method.call(ctx, request, &self.env);
        let (response, permit) = match &self.env.pool {
            // A unary call's slot is held by the pooled task itself: a computing handler whose
            // caller went away goes on until it yields, and keeps its slot until then.
            Some(pool) if !streams => {
                let held = permit;
                let response = pool.run(Box::pin(async move {
                    let response = response.await;
                    drop(held);
                    response
                }));
                (response, None)
            }
            Some(pool) => (pool.run(response), permit),
            None => (response, permit),
        };
        DispatchFuture {
            response,
            permit,
            streams,
        }
    }
}

/// The handler's response, holding the admission slot as long as the work lasts.
pub(crate) struct DispatchFuture {
    response: ResponseFuture,
    permit: Option<Permit>,
    streams: bool,
}

impl Future for DispatchFuture {
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let response = ready!(self.response.as_mut().poll(cx));
        Poll::Ready(Ok(match self.permit.take() {
            Some(permit) if self.streams => response.map(|body| {
                Body::new(PermitBody {
                    body,
                    _permit: permit,
                })
            }),
            _ => response,
        }))
    }
}

pin_project_lite::pin_project! {
    /// A response body that frees the admission slot when it ends.
    struct PermitBody {
        #[pin]
        body: Body,
        _permit: Permit,
    }
}

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Runs `response` (decode, handler, encode) until the context's deadline, catching panics;
/// then adds the metadata the handler set (`streams`: a body the handler still writes).
pub(crate) async fn guard_response(
    env: Arc<Env>,
    ctx: Context,
    streams: bool,
    response: impl Future<Output = http::Response<Body>> + Send,
) -> http::Response<Body> {
    // Pinned once, here: the handler's future (tonic's decode, handler, encode) is kilobytes,
    // and each wrapper below (panic catcher, deadline) would otherwise move it by copying —
    // seven copies of it per request, ~3 % of a small call's instructions (callgrind). The
    // wrappers hold a pinned reference to it instead.
    let response = std::pin::pin!(response);
    let mut response = guarded(&env, &ctx, response).await;
    oversized_is_resource_exhausted(&mut response);
    crate::server::metadata::apply(&ctx, response, streams)
}

/// tonic refuses a request message over the size limit with OUT_OF_RANGE; gRPC's own
/// implementations (and its spec of the limit) say RESOURCE_EXHAUSTED, which is what clients
/// and dashboards expect for "too big".
fn oversized_is_resource_exhausted(response: &mut http::Response<Body>) {
    use crate::header_names::{GRPC_MESSAGE, GRPC_STATUS};
    // tonic's message, as it travels: percent-encoded in `grpc-message`.
    const TONIC_TOO_LARGE: &[u8] = b"Error,%20decoded%20message%20length%20too%20large";
    let headers = response.headers_mut();
    let too_large = headers.get(&GRPC_STATUS).is_some_and(|s| s == "11")
        && headers
            .get(&GRPC_MESSAGE)
            .is_some_and(|m| m.as_bytes().starts_with(TONIC_TOO_LARGE));
    if too_large {
        headers.insert(GRPC_STATUS.clone(), http::HeaderValue::from_static("8"));
    }
}

async fn guarded(
    env: &Env,
    ctx: &Context,
    response: impl Future<Output = http::Response<Body>> + Send,
) -> http::Response<Body> {
    let guarded = AssertUnwindSafe(response).catch_unwind();
    let outcome = match ctx.deadline() {
        Some(deadline) => match tokio::time::timeout_at(deadline, guarded).await {
            Ok(outcome) => outcome,
            Err(_) => {
                ServerStats::count(&env.stats.deadline_exceeded_in_handler);
                return deadline_exceeded(ctx).into_http();
            }
        },
        None => guarded.await,
    };
    outcome.unwrap_or_else(|panic| panicked(env, ctx, panic.as_ref()).into_http())
}

/// The status of a handler cancelled at its deadline.
pub(crate) fn deadline_exceeded(ctx: &Context) -> tonic::Status {
    let method = ctx.method().map_or("?", |m| m.full_name());
    tonic::Status::deadline_exceeded(format!("deadline exceeded while serving {method}"))
}

/// Logs and counts a handler's panic; the status the caller gets.
pub(crate) fn panicked(env: &Env, ctx: &Context, panic: &(dyn Any + Send)) -> tonic::Status {
    ServerStats::count(&env.stats.panics);
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)");
    let method = ctx.method().map_or("?", |m| m.full_name());
    tracing::error!(
        method,
        request_id = ctx.request_id(),
        panic = message,
        "handler panicked"
    );
    tonic::Status::internal(format!("handler of {method} panicked"))
}
