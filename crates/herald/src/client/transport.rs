//! HTTP/2 connections to one server, on hyper-util's pooled client.
//!
//! herald does not use tonic's `transport::Channel`: it applies its own timeout from the
//! `grpc-timeout` header and fails with CANCELLED, racing herald's deadline (which answers
//! DEADLINE_EXCEEDED and knows whether anything was sent).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::{Authority, Scheme};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tonic::body::Body;

use crate::client::connector::{Connector, LastFailure};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends requests to one origin over pooled HTTP/2 connections.
#[derive(Clone)]
pub(crate) struct Transport {
    client: Client<Connector, Body>,
    authority: Authority,
    last_failure: LastFailure,
}

// === impl Transport ===

impl Transport {
    pub(crate) fn new(authority: Authority, connector: Connector) -> Self {
        let last_failure = connector.last_failure();
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .build(connector);
        Transport {
            client,
            authority,
            last_failure,
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl tower::Service<http::Request<Body>> for Transport {
    type Response = http::Response<Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pool opens or reuses a connection per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
        let response = self.client.request(request);
        let authority = self.authority.clone();
        let last_failure = self.last_failure.clone();
        Box::pin(async move {
            response.await.map_err(|error| {
                // tonic finds a Status in the error and keeps its code: a transport failure
                // is UNAVAILABLE, as gRPC specifies, with the whole cause chain in words.
                let mut message = format!("cannot reach {authority}: {error}");
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                if let Some(why) = last_failure.recent() {
                    message.push_str(&format!(" (the connection failed: {why})"));
                }
                Box::new(tonic::Status::unavailable(message)) as BoxError
            })
        })
    }
}
