//! The four call shapes, with the method's contract applied.

use std::future::Future;
use std::time::Duration;

use futures_util::Stream;
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic_prost::ProstCodec;

use crate::Code;
use crate::app_error::AppError;
use crate::client::channel::Channel;
use crate::client::response_stream::ResponseStream;
use crate::context::Context;
use crate::contract::MethodContract;
use crate::error::CallError;

// === impl Channel ===

impl Channel {
    /// A unary call.
    ///
    /// # Errors
    /// The server's status, or a local failure (budget spent, connection refused).
    pub async fn unary<Req, Resp, E>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: Req,
    ) -> Result<Resp, CallError<E>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        E: AppError,
    {
        let deadline = child_deadline(ctx, method)?;
        let mut grpc = tonic::client::Grpc::new(self.transport.clone());
        let call = async move {
            grpc.ready().await.map_err(|e| unavailable(method, &e))?;
            let request = with_child_headers(ctx, deadline, request);
            grpc.unary(request, path(method), ProstCodec::<Req, Resp>::default())
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| CallError::from_status(method.full_name(), &status))
        };
        within(deadline, method, call).await
    }

    /// A server-streaming call: the responses arrive on the returned stream.
    ///
    /// # Errors
    /// As [`Channel::unary`], for the call's start; later failures arrive on the stream.
    pub async fn server_streaming<Req, Resp, E>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: Req,
    ) -> Result<ResponseStream<Resp, E>, CallError<E>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        E: AppError,
    {
        let deadline = child_deadline(ctx, method)?;
        let mut grpc = tonic::client::Grpc::new(self.transport.clone());
        let call = async move {
            grpc.ready().await.map_err(|e| unavailable(method, &e))?;
            let request = with_child_headers(ctx, deadline, request);
            grpc.server_streaming(request, path(method), ProstCodec::<Req, Resp>::default())
                .await
                .map(|r| ResponseStream::new(r.into_inner(), method, deadline))
                .map_err(|status| CallError::from_status(method.full_name(), &status))
        };
        within(deadline, method, call).await
    }

    /// A client-streaming call: `requests` are sent as they come; one response.
    ///
    /// # Errors
    /// As [`Channel::unary`].
    pub async fn client_streaming<Req, Resp, E, S>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        requests: S,
    ) -> Result<Resp, CallError<E>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        E: AppError,
        S: Stream<Item = Req> + Send + 'static,
    {
        let deadline = child_deadline(ctx, method)?;
        let mut grpc = tonic::client::Grpc::new(self.transport.clone());
        let call = async move {
            grpc.ready().await.map_err(|e| unavailable(method, &e))?;
            let request = with_child_headers(ctx, deadline, requests);
            grpc.client_streaming(request, path(method), ProstCodec::<Req, Resp>::default())
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| CallError::from_status(method.full_name(), &status))
        };
        within(deadline, method, call).await
    }

    /// A bidirectional-streaming call.
    ///
    /// # Errors
    /// As [`Channel::unary`], for the call's start; later failures arrive on the stream.
    pub async fn bidi_streaming<Req, Resp, E, S>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        requests: S,
    ) -> Result<ResponseStream<Resp, E>, CallError<E>>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        E: AppError,
        S: Stream<Item = Req> + Send + 'static,
    {
        let deadline = child_deadline(ctx, method)?;
        let mut grpc = tonic::client::Grpc::new(self.transport.clone());
        let call = async move {
            grpc.ready().await.map_err(|e| unavailable(method, &e))?;
            let request = with_child_headers(ctx, deadline, requests);
            grpc.streaming(request, path(method), ProstCodec::<Req, Resp>::default())
                .await
                .map(|r| ResponseStream::new(r.into_inner(), method, deadline))
                .map_err(|status| CallError::from_status(method.full_name(), &status))
        };
        within(deadline, method, call).await
    }
}

/// The call's deadline; or DEADLINE_EXCEEDED when the caller's budget is already spent
/// (nothing is sent then).
fn child_deadline<E: AppError>(
    ctx: &Context,
    method: &'static MethodContract,
) -> Result<Option<Instant>, CallError<E>> {
    if ctx.is_expired() {
        return Err(CallError::local(
            method.full_name(),
            Code::DeadlineExceeded,
            "the caller's deadline passed before the call was made",
        ));
    }
    Ok(ctx.child_deadline(cap(method)))
}

/// The request carrying what travels from `ctx`. Built once the connection is ready, so the
/// time spent connecting is not handed to the callee as budget.
fn with_child_headers<T>(
    ctx: &Context,
    deadline: Option<Instant>,
    message: T,
) -> tonic::Request<T> {
    let mut headers = http::HeaderMap::new();
    ctx.write_child_headers(&mut headers, deadline);
    tonic::Request::from_parts(
        MetadataMap::from_headers(headers),
        Default::default(),
        message,
    )
}

/// The longest a call of `method` may take by its contract.
fn cap(method: &MethodContract) -> Option<Duration> {
    match (method.deadline, method.client.timeout) {
        (Some(d), Some(t)) => Some(d.min(t)),
        (d, None) => d,
        (None, t) => t,
    }
}

fn path(method: &'static MethodContract) -> PathAndQuery {
    PathAndQuery::from_static(method.path)
}

fn unavailable<E: AppError>(
    method: &'static MethodContract,
    error: &impl std::fmt::Display,
) -> CallError<E> {
    CallError::local(
        method.full_name(),
        Code::Unavailable,
        format!("no connection: {error}"),
    )
}

/// Stops waiting at the deadline: the server will have given up too.
async fn within<T, E: AppError>(
    deadline: Option<Instant>,
    method: &'static MethodContract,
    call: impl Future<Output = Result<T, CallError<E>>>,
) -> Result<T, CallError<E>> {
    let Some(deadline) = deadline else {
        return call.await;
    };
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(CallError::local(
                method.full_name(),
                Code::DeadlineExceeded,
                "deadline exceeded waiting for the response",
            ))
        })
}
