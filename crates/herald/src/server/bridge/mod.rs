//! The legacy bridge: the service's methods over HTTP/1.1, on a second port of the same
//! server, for callers that cannot speak gRPC yet (Courier's migration path).
//!
//! ```text
//! POST /cache.Cache/Get HTTP/1.1
//! content-type: application/x-protobuf      (or application/json: protobuf's JSON mapping)
//! grpc-timeout: 250m                        (optional; x-request-id, herald-* travel as in gRPC)
//!
//! <one encoded GetRequest>
//! ```
//!
//! The request becomes a gRPC call and goes through the very same path — identity from the
//! same mutual TLS, ACL, rate limit, admission, deadline, handler, metrics — then the answer
//! comes back as one message (or JSON) with the HTTP status of its gRPC code, and the gRPC
//! status in headers: `grpc-status`, `grpc-message`, `grpc-status-details-bin` (the app error),
//! plus `x-herald-status` (the code's name) and `x-herald-app-error` (the app error's name).
//! JSON errors also come as a body: `{"code": "NOT_FOUND", "message": "...", "app_error": "..."}`.
//!
//! Unary methods only; streams are gRPC's (and gRPC-Web's). Every bridged call is also
//! counted in `herald_bridge_requests`, by method, caller and format, so a service owner can
//! see legacy traffic fall to zero before removing the bridge.

pub(crate) mod json;
mod metrics;
pub(crate) mod wire;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tonic::body::Body;
use tower::Service;

use crate::Code;
use crate::contract::RpcKind;
use crate::server::call::{Call, CallStack};
use crate::server::conn::{ConnInfo, FrontFuture};
use crate::server::router::Router;

pub(crate) use self::json::Schemas;
pub(crate) use self::metrics::BridgeMetrics;
use self::wire::{frame, http_status, status_of, unframe};

/// Bodies of the legacy protocol.
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Request headers that belong to the HTTP/1.1 hop, not to the call.
const HOP: [HeaderName; 6] = [
    http::header::CONNECTION,
    http::header::HOST,
    http::header::TRANSFER_ENCODING,
    http::header::TE,
    http::header::ACCEPT,
    http::header::ACCEPT_ENCODING,
];

/// Translates the legacy protocol for one server.
#[derive(Debug)]
pub(crate) struct Bridge {
    schemas: Schemas,
    max_body: usize,
    metrics: BridgeMetrics,
}

/// The body format a caller chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Protobuf,
    Json,
}

/// A refusal made by the bridge itself, before any handler.
pub(crate) struct Refusal {
    http: StatusCode,
    code: Code,
    message: String,
}

// === impl Bridge ===

impl Bridge {
    pub(crate) fn new(schemas: Schemas, max_body: usize, metrics: BridgeMetrics) -> Bridge {
        Bridge {
            schemas,
            max_body,
            metrics,
        }
    }

    pub(crate) fn call<S>(
        self: Arc<Self>,
        router: Arc<Router<S>>,
        conn: Arc<ConnInfo>,
        request: http::Request<Body>,
    ) -> FrontFuture
    where
        S: CallStack,
    {
        Box::pin(async move { Ok(self.serve(&router, &conn, request).await) })
    }

    async fn serve<S>(
        &self,
        router: &Router<S>,
        conn: &ConnInfo,
        request: http::Request<Body>,
    ) -> http::Response<Body>
    where
        S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone,
    {
        let format = match format_of(request.headers()) {
            Ok(format) => format,
            Err(refusal) => return refusal.into_response(Format::Json),
        };
        let path = request.uri().path().to_owned();
        let answer = match self.translate(router, conn, request, format).await {
            Ok(answer) => answer,
            Err(refusal) => {
                self.metrics.note(&path, conn, format, refusal.code);
                return refusal.into_response(format);
            }
        };
        self.metrics
            .note(&path, conn, format, Code::from_tonic(answer.status.code()));
        answer.into_response(format)
    }

    /// The request as a gRPC call, its answer as the bridge sends it.
    async fn translate<S>(
        &self,
        router: &Router<S>,
        conn: &ConnInfo,
        request: http::Request<Body>,
        format: Format,
    ) -> Result<Answer, Refusal>
    where
        S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone,
    {
        if request.method() != Method::POST {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                "the bridge takes POST /package.Service/Method",
            ));
        }
        let path = request.uri().path();
        let Some(contract) = router.contract(path) else {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                Code::Unimplemented,
                format!("no method {path}"),
            ));
        };
        if contract.kind != RpcKind::Unary {
            return Err(Refusal::new(
                StatusCode::NOT_IMPLEMENTED,
                Code::Unimplemented,
                format!(
                    "{} streams: the bridge serves unary methods; use gRPC or gRPC-Web",
                    contract.full_name()
                ),
            ));
        }
        let messages = self.schemas.method(path);
        let (head, body) = request.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Err(Refusal::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::ResourceExhausted,
                    format!("the body is larger than {} bytes", self.max_body),
                ));
            }
            Err(error) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    Code::Internal,
                    format!("the body could not be read: {error}"),
                ));
            }
        };
        let message = match format {
            Format::Protobuf => body,
            Format::Json => {
                let (input, _) = messages.as_ref().ok_or_else(no_schema)?;
                json::to_protobuf(input, &body)
                    .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, e))?
            }
        };

        let mut grpc = http::Request::builder()
            .method(Method::POST)
            .uri(head.uri)
            .version(http::Version::HTTP_2)
            .body(Body::new(Full::new(frame(&message))))
            .map_err(|e| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    Code::InvalidArgument,
                    e.to_string(),
                )
            })?;
        let headers = grpc.headers_mut();
        for (name, value) in &head.headers {
            if !HOP.contains(name) && name != CONTENT_TYPE && name != CONTENT_LENGTH {
                headers.append(name, value.clone());
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));

        let Ok(response) = router.route(grpc, conn).await;
        let (head, body) = response.into_parts();
        let collected = body.collect().await.map_err(|e| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                e.to_string(),
            )
        })?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        // A trailers-only answer carries its status in the head.
        let status = match &trailers {
            Some(trailers) if trailers.contains_key("grpc-status") => status_of(trailers),
            _ => status_of(&head.headers),
        };
        let mut extra = head.headers;
        if let Some(trailers) = trailers {
            extra.extend(trailers);
        }
        let body = if status.code() == tonic::Code::Ok {
            let message = unframe(data)
                .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e))?;
            match format {
                Format::Protobuf => message,
                Format::Json => {
                    let (_, output) = messages.as_ref().ok_or_else(no_schema)?;
                    Bytes::from(json::to_json(output, message).map_err(|e| {
                        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e)
                    })?)
                }
            }
        } else {
            Bytes::new()
        };
        Ok(Answer {
            status,
            headers: extra,
            body,
        })
    }
}

fn no_schema() -> Refusal {
    Refusal::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::Unimplemented,
        "this service has no descriptors for JSON; send application/x-protobuf",
    )
}

/// The caller's body format, from `content-type`.
pub(crate) fn format_of(headers: &HeaderMap) -> Result<Format, Refusal> {
    let kind = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match kind.as_deref() {
        Some(PROTOBUF | "application/protobuf") => Ok(Format::Protobuf),
        Some(JSON) => Ok(Format::Json),
        other => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            format!(
                "content-type {} is not served here: send {PROTOBUF} or {JSON}",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

/// What the call answered, ready for the legacy caller.
struct Answer {
    status: tonic::Status,
    /// The call's response headers and trailers (gRPC's own among them).
    headers: HeaderMap,
    /// The message (or JSON), when OK.
    body: Bytes,
}

// === impl Answer ===

impl Answer {
    fn into_response(self, format: Format) -> http::Response<Body> {
        let Answer {
            status,
            headers,
            body,
        } = self;
        let code = Code::from_tonic(status.code());
        let mut response = if code == Code::Ok {
            http::Response::new(Body::new(Full::new(body)))
        } else {
            error_response(
                http_status(code),
                code,
                status.message(),
                status.details(),
                format,
            )
        };
        let out = response.headers_mut();
        for (name, value) in &headers {
            let grpc_framing = name == CONTENT_TYPE
                || name.as_str() == "grpc-encoding"
                || name.as_str() == "grpc-accept-encoding";
            if !grpc_framing {
                out.append(name, value.clone());
            }
        }
        out.insert(CONTENT_TYPE, content_type(format));
        response
    }
}

// === impl Refusal ===

impl Refusal {
    fn new(http: StatusCode, code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            http,
            code,
            message: message.into(),
        }
    }

    fn into_response(self, format: Format) -> http::Response<Body> {
        let mut response = error_response(self.http, self.code, &self.message, &[], format);
        let headers = response.headers_mut();
        // The same status headers a gRPC answer gets, percent-encoded as gRPC does.
        let _ = tonic::Status::new(self.code.to_tonic(), self.message).add_header(headers);
        headers.insert(CONTENT_TYPE, content_type(format));
        response
    }
}

fn content_type(format: Format) -> HeaderValue {
    HeaderValue::from_static(match format {
        Format::Protobuf => PROTOBUF,
        Format::Json => JSON,
    })
}

/// An error answer: `x-herald-status` (and `x-herald-app-error`) always; a JSON body for JSON
/// callers, the message as text for protobuf callers.
fn error_response(
    http: StatusCode,
    code: Code,
    message: &str,
    details: &[u8],
    format: Format,
) -> http::Response<Body> {
    let app_error = (!details.is_empty())
        .then(|| crate::app_error::error_reason(details))
        .flatten();
    let body = match format {
        Format::Json => {
            let mut json = serde_json::json!({ "code": code.name(), "message": message });
            if let Some((domain, reason)) = &app_error {
                json["app_error"] = serde_json::json!(reason);
                json["app_error_domain"] = serde_json::json!(domain);
            }
            Bytes::from(json.to_string())
        }
        Format::Protobuf => Bytes::new(),
    };
    let mut response = http::Response::new(Body::new(Full::new(body)));
    *response.status_mut() = http;
    let headers = response.headers_mut();
    headers.insert("x-herald-status", HeaderValue::from_static(code.name()));
    if let Some((_, reason)) = app_error
        && let Ok(reason) = HeaderValue::from_str(&reason)
    {
        headers.insert("x-herald-app-error", reason);
    }
    response
}
