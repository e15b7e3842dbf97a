//! The ACL: may this caller call this method at all? Default deny; PERMISSION_DENIED.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::future::{Either, Ready};
use tonic::body::Body;
use tower::{Layer, Service};

use crate::limits::policy::Verdict;
use crate::server::call::Call;
use crate::server::refuse::refuse;
use crate::server::stats::ServerStats;

/// Applies [`Acl`].
#[derive(Clone, Debug)]
pub struct AclLayer {
    stats: Arc<ServerStats>,
}

/// Refuses callers the limits do not allow on the method.
#[derive(Clone, Debug)]
pub struct Acl<S> {
    inner: S,
    stats: Arc<ServerStats>,
}

// === impl AclLayer ===

impl AclLayer {
    /// Counts refusals in `stats`.
    pub fn new(stats: Arc<ServerStats>) -> Self {
        AclLayer { stats }
    }
}

impl<S> Layer<S> for AclLayer {
    type Service = Acl<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Acl {
            inner,
            stats: self.stats.clone(),
        }
    }
}

// === impl Acl ===

impl<S> Service<Call> for Acl<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<Ready<Result<Self::Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        match call
            .policy()
            .acl
            .verdict(call.ctx.caller(), call.contract())
        {
            Verdict::Allowed(rate) => {
                call.rate = rate;
                Either::Right(self.inner.call(call))
            }
            Verdict::Denied(reason) => {
                ServerStats::count(&self.stats.denied);
                Either::Left(refuse(tonic::Status::permission_denied(reason)))
            }
        }
    }
}
