//! Rate limits per method and caller: RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms`, the
//! hint gRPC clients honour before retrying.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::future::{Either, Ready};
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tower::{Layer, Service};

use crate::limits::Rate;
use crate::server::call::Call;
use crate::server::refuse::refuse;
use crate::server::stats::ServerStats;

/// Applies [`RateLimit`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    stats: Arc<ServerStats>,
}

/// Refuses a caller over its rate on the method.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    stats: Arc<ServerStats>,
}

// === impl RateLimitLayer ===

impl RateLimitLayer {
    /// Counts refusals in `stats`.
    pub fn new(stats: Arc<ServerStats>) -> Self {
        RateLimitLayer { stats }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            stats: self.stats.clone(),
        }
    }
}

// === impl RateLimit ===

impl<S> Service<Call> for RateLimit<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<Ready<Result<Self::Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let Rate::PerSecond(rate) = call.rate else {
            return Either::Right(self.inner.call(call));
        };
        match call.method.buckets.acquire(call.ctx.caller(), rate) {
            Ok(()) => Either::Right(self.inner.call(call)),
            Err(wait) => {
                ServerStats::count(&self.stats.rate_limited);
                let who = call
                    .ctx
                    .caller()
                    .map_or("unauthenticated callers", |i| i.as_str());
                let mut metadata = MetadataMap::new();
                let pushback = wait.as_millis().max(1).to_string();
                if let Ok(value) = pushback.parse() {
                    metadata.insert("grpc-retry-pushback-ms", value);
                }
                let status = tonic::Status::with_metadata(
                    tonic::Code::ResourceExhausted,
                    format!(
                        "{who} is over its rate of {rate}/s on {}",
                        call.contract().full_name()
                    ),
                    metadata,
                );
                Either::Left(refuse(status))
            }
        }
    }
}
