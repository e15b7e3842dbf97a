//! Refuses a request whose deadline has already passed, before its body is decoded and
//! without running its handler: the caller has stopped waiting, so the work would be waste.

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::future::{Either, Ready};
use tonic::body::Body;
use tower::{Layer, Service};

use crate::server::call::Call;
use crate::server::stats::ServerStats;

/// Applies [`Deadline`].
#[derive(Clone, Debug)]
pub struct DeadlineLayer {
    stats: Arc<ServerStats>,
}

/// Answers DEADLINE_EXCEEDED for a [`Call`] whose deadline has passed.
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    stats: Arc<ServerStats>,
}

// === impl DeadlineLayer ===

impl DeadlineLayer {
    /// Counts refusals in `stats`.
    pub fn new(stats: Arc<ServerStats>) -> Self {
        DeadlineLayer { stats }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            stats: self.stats.clone(),
        }
    }
}

// === impl Deadline ===

impl<S> Service<Call> for Deadline<S>
where
    S: Service<Call, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        if call.ctx.is_expired() {
            ServerStats::count(&self.stats.expired_on_arrival);
            let status = tonic::Status::deadline_exceeded(format!(
                "deadline of {} passed before the handler could start",
                call.contract().full_name()
            ));
            return Either::Left(futures_util::future::ready(Ok(status.into_http())));
        }
        Either::Right(self.inner.call(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::time::Duration;

    use tower::ServiceExt;

    use crate::observe::server_metrics::ServerMetrics;

    fn call(timeout: &'static str) -> Call {
        let metrics = ServerMetrics::register(&mut Default::default());
        crate::server::call::testing::call(&[("grpc-timeout", timeout)], &metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn expired_call_never_reaches_the_inner_service() {
        let stats = Arc::new(ServerStats::default());
        let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = reached.clone();
        let inner = tower::service_fn(move |_: Call| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, Infallible>(http::Response::new(Body::empty())) }
        });
        let svc = DeadlineLayer::new(stats.clone()).layer(inner);

        let early = call("50m");
        tokio::time::advance(Duration::from_millis(60)).await;
        let response = svc.clone().oneshot(early).await.expect("infallible");
        assert_eq!(response.headers()["grpc-status"], "4");
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(stats.expired_on_arrival(), 1);

        let fresh = call("50m");
        let response = svc.oneshot(fresh).await.expect("infallible");
        assert!(response.headers().get("grpc-status").is_none());
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
