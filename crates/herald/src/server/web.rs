//! gRPC-Web on the service port, opt-in: browsers (and anything without HTTP/2 trailers) call
//! the same methods, through the same layers, with the same contract.
//!
//! A gRPC-Web request (`content-type: application/grpc-web…`, over HTTP/1.1 or HTTP/2) is
//! translated to gRPC by tonic-web and routed like any other call; CORS (tower-http) answers
//! browsers' preflight requests for the origins the service allows. Plain gRPC requests skip
//! both: enabling gRPC-Web costs them one header comparison.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::server::call::{Call, CallStack};
use crate::server::conn::{ConnInfo, FrontFuture};
use crate::server::router::{RouteFuture, Router};

/// Which web pages may call the service with gRPC-Web (their origins, for CORS).
#[derive(Clone, Debug)]
pub struct GrpcWeb {
    origins: Origins,
}

#[derive(Clone, Debug)]
enum Origins {
    /// Only these, e.g. `https://app.example.com`.
    List(Vec<HeaderValue>),
    /// Any page on the web.
    Any,
}

/// An origin that is not a valid header value.
#[derive(Debug, thiserror::Error)]
#[error("invalid origin {0:?}: write it as scheme://host[:port]")]
pub struct InvalidOrigin(String);

/// Translates gRPC-Web for one server.
pub(crate) struct WebFront {
    cors: CorsLayer,
}

/// The router as a tower service, for tonic-web to wrap.
struct RouteService<S> {
    router: Arc<Router<S>>,
    conn: Arc<ConnInfo>,
}

/// Request headers a browser may send, beyond the CORS-safe ones.
const REQUEST_HEADERS: [&str; 7] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
    "herald-dry-run",
    "herald-tenant",
];

/// Response headers a page may read.
const RESPONSE_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
];

// === impl GrpcWeb ===

impl GrpcWeb {
    /// gRPC-Web for pages of these origins (e.g. `https://app.example.com`). Pages elsewhere
    /// are refused by the browser; non-browser clients are not affected by CORS.
    ///
    /// # Errors
    /// An origin that cannot be a header value.
    pub fn allow_origins<I, O>(origins: I) -> Result<GrpcWeb, InvalidOrigin>
    where
        I: IntoIterator<Item = O>,
        O: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|o| {
                let o = o.as_ref();
                if !o.contains("://") {
                    return Err(InvalidOrigin(o.to_owned()));
                }
                HeaderValue::from_str(o).map_err(|_| InvalidOrigin(o.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(GrpcWeb {
            origins: Origins::List(origins),
        })
    }

    /// gRPC-Web for pages of any origin: for public APIs whose callers authenticate
    /// otherwise. Mutual TLS and ACLs still apply.
    pub fn allow_any_origin() -> GrpcWeb {
        GrpcWeb {
            origins: Origins::Any,
        }
    }

    pub(crate) fn front(&self) -> WebFront {
        let allow = match &self.origins {
            Origins::Any => AllowOrigin::any(),
            Origins::List(list) => AllowOrigin::list(list.iter().cloned()),
        };
        let cors = CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::POST])
            .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
            .expose_headers(RESPONSE_HEADERS.map(HeaderName::from_static))
            .max_age(Duration::from_secs(24 * 60 * 60));
        WebFront { cors }
    }
}

// === impl WebFront ===

impl WebFront {
    /// Whether `request` is gRPC-Web, a browser's preflight for it, or anything over HTTP/1
    /// (which only gRPC-Web may use: tonic-web refuses the rest with 400).
    pub(crate) fn handles(request: &http::Request<Body>) -> bool {
        request.method() == Method::OPTIONS
            || request.version() != http::Version::HTTP_2
            || request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc-web"))
    }

    pub(crate) fn call<S>(
        &self,
        router: Arc<Router<S>>,
        conn: Arc<ConnInfo>,
        request: http::Request<Body>,
    ) -> FrontFuture
    where
        S: CallStack,
    {
        let web = tonic_web::GrpcWebLayer::new().layer(RouteService { router, conn });
        let service = self.cors.layer(web);
        Box::pin(service.oneshot(request))
    }
}

impl fmt::Debug for WebFront {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebFront").finish_non_exhaustive()
    }
}

// === impl RouteService ===

impl<S> Clone for RouteService<S> {
    fn clone(&self) -> Self {
        RouteService {
            router: self.router.clone(),
            conn: self.conn.clone(),
        }
    }
}

impl<S> Service<http::Request<Body>> for RouteService<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = RouteFuture<S>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.router.route(request, &self.conn)
    }
}
