//! Admission: a slot of the method's `max_concurrency`, or a bounded wait for one (see
//! [`crate::limits`]); shed requests get RESOURCE_EXHAUSTED and never run.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::future::Either;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::limits::admission::Shed;
use crate::server::call::Call;
use crate::server::stats::ServerStats;

/// Applies [`Admit`].
#[derive(Clone, Debug)]
pub struct AdmitLayer {
    stats: Arc<ServerStats>,
}

/// Holds a call until it has a slot, or sheds it.
#[derive(Clone, Debug)]
pub struct Admit<S> {
    inner: S,
    stats: Arc<ServerStats>,
}

type BoxResponse = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

// === impl AdmitLayer ===

impl AdmitLayer {
    /// Counts sheds in `stats`.
    pub fn new(stats: Arc<ServerStats>) -> Self {
        AdmitLayer { stats }
    }
}

impl<S> Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admit {
            inner,
            stats: self.stats.clone(),
        }
    }
}

// === impl Admit ===

impl<S> Service<Call> for Admit<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, BoxResponse>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        let Some(policy) = call.policy().admission.clone() else {
            return Either::Left(self.inner.call(call));
        };
        // The usual case under normal load: a free slot, taken without waiting or boxing.
        let admission = call.method.admission.clone();
        if let Some(permit) = admission.try_acquire(&policy) {
            call.permit = Some(permit);
            return Either::Left(self.inner.call(call));
        }
        let mut inner = self.inner.clone();
        let stats = self.stats.clone();
        Either::Right(Box::pin(async move {
            let queued_at = std::time::Instant::now();
            let outcome = admission.acquire(&policy, call.ctx.deadline()).await;
            call.method.metrics.queue_wait.observe(queued_at.elapsed());
            match outcome {
                Ok(permit) => {
                    call.permit = Some(permit);
                    inner.call(call).await
                }
                Err(shed) => {
                    let method = call.contract().full_name();
                    let status = match shed {
                        Shed::QueueFull => {
                            ServerStats::count(&stats.shed_queue_full);
                            tonic::Status::resource_exhausted(format!(
                                "{method} is overloaded: its queue is full"
                            ))
                        }
                        Shed::TimedOut(waited) => {
                            ServerStats::count(&stats.shed_queue_timeout);
                            tonic::Status::resource_exhausted(format!(
                                "{method} is overloaded: no slot within {} ms",
                                waited.as_millis()
                            ))
                        }
                        Shed::DeadlineExceeded => {
                            ServerStats::count(&stats.expired_in_queue);
                            tonic::Status::deadline_exceeded(format!(
                                "deadline of {method} passed while queued"
                            ))
                        }
                    };
                    Ok(status.into_http())
                }
            }
        }))
    }
}
