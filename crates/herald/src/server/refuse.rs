//! What a layer answers when it refuses a call: a gRPC status, and nothing run.

use std::convert::Infallible;

use futures_util::future::{Ready, ready};
use tonic::body::Body;

/// A ready response carrying `status`.
pub(crate) fn refuse(status: tonic::Status) -> Ready<Result<http::Response<Body>, Infallible>> {
    ready(Ok(status.into_http()))
}
