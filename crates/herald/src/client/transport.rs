//! HTTP/2 connections to one server, on hyper-util's pooled client.
//!
//! herald does not use tonic's `transport::Channel`: it applies its own timeout from the
//! `grpc-timeout` header and fails with CANCELLED, racing herald's deadline (which answers
//! DEADLINE_EXCEEDED and knows whether anything was sent).

use std::task::{Context, Poll};

use http::uri::{Authority, Scheme};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tonic::body::Body;

/// Sends requests to one origin over pooled HTTP/2 connections.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: Client<HttpConnector, Body>,
    scheme: Scheme,
    authority: Authority,
}

// === impl Transport ===

impl Transport {
    pub(crate) fn plaintext(authority: Authority) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .build(connector);
        Transport {
            client,
            scheme: Scheme::HTTP,
            authority,
        }
    }
}

impl tower::Service<http::Request<Body>> for Transport {
    type Response = http::Response<Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pool opens or reuses a connection per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
        self.client.request(request)
    }
}
