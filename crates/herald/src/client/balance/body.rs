//! A request in flight on an endpoint, and the response body that carries it to its end.
//!
//! The outstanding count of an endpoint (the load the balancer compares) must cover the
//! whole exchange, not only the wait for headers: a streaming response is load until its
//! last message. So the [`InFlight`] guard lives in the [`ResponseBody`] and is dropped with
//! it; on the way it reads the call's `grpc-status` (from the headers of a trailers-only
//! response, or from the trailers) and reports the outcome to outlier detection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;

use crate::Code;
use crate::client::balance::{Shared, is_endpoint_failure};
use crate::client::endpoint::Endpoint;
use crate::client::unsent;

/// How a request went, for the endpoint's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    /// Says nothing of the endpoint: cancelled by the caller, handed back unsent.
    Neutral,
}

/// One request counted as outstanding on its endpoint until dropped.
pub(crate) struct InFlight {
    endpoint: Arc<Endpoint>,
    balancer: Arc<Shared>,
    reported: bool,
}

pin_project! {
    /// The body of a response from a balanced channel.
    pub(crate) struct ResponseBody {
        #[pin]
        inner: Incoming,
        in_flight: InFlight,
    }
}

// === impl InFlight ===

impl InFlight {
    pub(crate) fn new(endpoint: Arc<Endpoint>, balancer: Arc<Shared>) -> Self {
        endpoint.load().start();
        InFlight {
            endpoint,
            balancer,
            reported: false,
        }
    }

    /// Reports the outcome, once.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if !self.reported {
            self.reported = true;
            self.balancer.record(&self.endpoint, outcome);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.load().end();
    }
}

// === impl ResponseBody ===

impl ResponseBody {
    pub(crate) fn wrap(response: Response<Incoming>, mut in_flight: InFlight) -> Response<Self> {
        if !response.status().is_success() {
            in_flight.finish(Outcome::Failure);
        } else if let Some(outcome) = outcome(response.headers()) {
            // A trailers-only response: the status is in the headers.
            in_flight.finish(outcome);
        }
        response.map(|inner| ResponseBody { inner, in_flight })
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(outcome) = frame.trailers_ref().and_then(outcome) {
                    this.in_flight.finish(outcome);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.in_flight.finish(Outcome::Failure);
                let endpoint = &this.in_flight.endpoint;
                let message = crate::client::endpoint::describe(
                    endpoint.addr(),
                    &error,
                    endpoint.recent_failure(),
                );
                // The response had begun: the server processed the request.
                Poll::Ready(Some(Err(unsent::unavailable(
                    format!("the response broke off: {message}"),
                    false,
                ))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("endpoint", &self.in_flight.endpoint.addr())
            .finish_non_exhaustive()
    }
}

/// The outcome a `grpc-status` header says, if there is one.
fn outcome(headers: &HeaderMap) -> Option<Outcome> {
    let code = Code::in_headers(headers)?;
    Some(if is_endpoint_failure(code) {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(entries: &[(&'static str, &'static str)]) -> HeaderMap {
        entries
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn the_outcome_is_read_from_grpc_status_among_other_entries() {
        let answered = |status| {
            outcome(&headers(&[
                ("content-type", "application/grpc"),
                ("grpc-message", "x"),
                ("grpc-status", status),
                ("grpc-statuses", "14"),
            ]))
        };
        assert_eq!(answered("0"), Some(Outcome::Success));
        assert_eq!(
            answered("5"),
            Some(Outcome::Success),
            "NOT_FOUND is the request's"
        );
        for failure in ["13", "14", "15"] {
            assert_eq!(answered(failure), Some(Outcome::Failure), "{failure}");
        }
        assert_eq!(answered("x"), Some(Outcome::Success), "unreadable: UNKNOWN");
        assert_eq!(outcome(&headers(&[("grpc-statuses", "14")])), None);
        assert_eq!(outcome(&HeaderMap::new()), None);
    }
}
