//! A channel through a server's legacy HTTP/1.1 bridge (see the server's `legacy_bridge`):
//! the same generated client, so moving a caller between the bridge and gRPC is one line —
//! `Channel::legacy_bridge(addr, &tls, "cache")` or `Channel::tls(addr, &tls, "cache")`.
//!
//! Unary calls only (the bridge serves no streams); each call carries the same deadline
//! (`grpc-timeout`), request id and propagated headers as over gRPC, and its error comes back
//! as the same [`CallError`], app error included. No retries or breaker: the bridge is a
//! migration path, not a second transport to tune.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::Code;
use crate::app_error::AppError;
use crate::client::connector::Connector;
use crate::context::Context;
use crate::contract::MethodContract;
use crate::error::CallError;

/// The largest response body read (the bridge's own limit is the server's message size).
const MAX_RESPONSE: usize = 16 << 20;

/// The bridge of one server.
pub(crate) struct Legacy {
    client: Client<Connector, Full<Bytes>>,
    /// `http://host:port` (the connector adds TLS when configured).
    base: Arc<str>,
}

// === impl Legacy ===

impl Legacy {
    pub(crate) fn new(connector: Connector, authority: &str) -> Legacy {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Legacy {
            client,
            base: format!("http://{authority}").into(),
        }
    }

    /// One unary call; `deadline` is the call's (already capped by the contract).
    pub(crate) async fn unary<Req, Resp, E>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        deadline: Option<Instant>,
        request: &Req,
    ) -> Result<Resp, CallError<E>>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        E: AppError,
    {
        let local = |code, message: String| CallError::local(method.full_name(), code, message);
        let uri: Uri = format!("{}{}", self.base, method.path)
            .parse()
            .map_err(|e| local(Code::Internal, format!("bad bridge address: {e}")))?;
        let mut http = http::Request::new(Full::new(Bytes::from(request.encode_to_vec())));
        *http.method_mut() = Method::POST;
        *http.uri_mut() = uri;
        let headers = http.headers_mut();
        // HTTP/1.1 has no header table: the budget goes out exact.
        ctx.write_child_headers(headers, deadline, None, ctx.trace());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );

        let exchange = async {
            let response = self.client.request(http).await.map_err(|e| {
                local(
                    Code::Unavailable,
                    format!("the legacy bridge is unreachable: {e}"),
                )
            })?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    CallError::from_status(
                        method.full_name(),
                        &tonic::Status::unavailable(format!("the bridge's answer broke off: {e}")),
                    )
                })?
                .to_bytes();
            let status = tonic::Status::from_header_map(&head.headers).unwrap_or_else(|| {
                tonic::Status::unknown(format!(
                    "the bridge answered HTTP {} without a gRPC status",
                    head.status
                ))
            });
            if status.code() != tonic::Code::Ok {
                return Err(CallError::from_status(method.full_name(), &status));
            }
            Resp::decode(body).map_err(|e| {
                CallError::from_status(
                    method.full_name(),
                    &tonic::Status::internal(format!("the bridge's answer does not decode: {e}")),
                )
            })
        };
        match deadline {
            None => exchange.await,
            Some(deadline) => tokio::time::timeout_at(deadline, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(local(
                        Code::DeadlineExceeded,
                        "deadline exceeded waiting for the response".into(),
                    ))
                }),
        }
    }
}

impl std::fmt::Debug for Legacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Legacy").field("base", &self.base).finish()
    }
}
