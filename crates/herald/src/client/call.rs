//! The four call shapes, with the method's contract applied.
//!
//! Every call takes the same way, top to bottom:
//!
//! ```text
//! deadline   = min(caller's remaining budget, method deadline, contract timeout);
//!              already spent → DEADLINE_EXCEEDED, nothing sent
//! breaker    = the method's circuit breaker; open → UNAVAILABLE at once, nothing sent
//! retries    = attempts per the contract (unary), under the deadline, within the budget
//! attempt    = tonic's codec over the balancer: pick an endpoint, send, read
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::Stream;
use http::uri::PathAndQuery;
use tokio::time::Instant;
use tonic::codec::Codec;
use tonic::metadata::MetadataMap;
use tonic_prost::ProstCodec;

use crate::Code;
use crate::MetadataCapture;
use crate::app_error::AppError;
use crate::client::balance::{Balance, CallHeaders};
use crate::client::channel::Channel;
use crate::client::methods::Method;
use crate::client::observe::{BreakerEvent, CallEvent};
use crate::client::replay::{Replay, Requests};
use crate::client::response_stream::ResponseStream;
use crate::client::retry::Retries;
use crate::client::unsent::is_unsent;
use crate::context::Context;
use crate::contract::MethodContract;
use crate::error::CallError;

type Grpc = tonic::client::Grpc<Balance>;

// === impl Channel ===

impl Channel {
    /// A unary call, retried as the method's contract allows (the request is cloned for
    /// each attempt).
    ///
    /// # Errors
    /// The server's status, or a local failure (budget spent, breaker open, no endpoint
    /// reachable).
    pub async fn unary<Req, Resp, E>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: Req,
    ) -> Result<Resp, CallError<E>>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
        E: AppError,
    {
        if let Some(legacy) = &self.inner.legacy {
            return self.legacy_unary(legacy, ctx, method, &request).await;
        }
        self.unary_with::<ProstCodec<Req, Resp>, E>(ctx, method, request)
            .await
    }

    /// A unary call through a legacy bridge: deadline and metrics as any call.
    async fn legacy_unary<Req, Resp, E>(
        &self,
        legacy: &crate::client::legacy::Legacy,
        ctx: &Context,
        method: &'static MethodContract,
        request: &Req,
    ) -> Result<Resp, CallError<E>>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
        E: AppError,
    {
        let started = Instant::now();
        let result = match self.deadline(ctx, method, started) {
            Ok(deadline) => legacy.unary(ctx, method, deadline, request).await,
            Err(error) => Err(error),
        };
        let code = result.as_ref().err().map_or(Code::Ok, CallError::code);
        self.report(method, code, started, Instant::now(), 1, false);
        result
    }

    /// A unary call with codec `C`, retried as the method's contract allows.
    pub(crate) async fn unary_with<C, E>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: C::Encode,
    ) -> Result<C::Decode, CallError<E>>
    where
        C: Codec + Default + Send + 'static,
        C::Encode: Clone + Sync,
        C::Decode: Sync,
        E: AppError,
    {
        self.call(ctx, method, &|| true, |mut grpc, attempt| {
            let request = tonic::Request::new(request.clone());
            let capture = attempt.ctx.capture().cloned();
            let path = attempt.path.clone();
            async move {
                let result = grpc.unary(request, path, C::default()).await;
                record_head(capture.as_ref(), &result);
                result.map(tonic::Response::into_inner)
            }
        })
        .await
    }

    /// A server-streaming call: the responses arrive on the returned stream. Retried as the
    /// contract allows until the response begins; a stream that breaks later is not.
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
        Req: Clone,
    {
        self.server_streaming_with::<ProstCodec<Req, Resp>, E>(ctx, method, request)
            .await
    }

    /// A server-streaming call with `codec`.
    pub(crate) async fn server_streaming_with<C, E>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: C::Encode,
    ) -> Result<ResponseStream<C::Decode, E>, CallError<E>>
    where
        C: Codec + Default + Send + 'static,
        C::Encode: Clone + Sync,
        C::Decode: Sync,
        E: AppError,
    {
        self.call(ctx, method, &|| true, |mut grpc, attempt| {
            let request = tonic::Request::new(request.clone());
            let deadline = attempt.deadline;
            let capture = attempt.ctx.capture().cloned();
            let path = attempt.path.clone();
            async move {
                let result = grpc.server_streaming(request, path, C::default()).await;
                started(result, method, deadline, capture)
            }
        })
        .await
    }

    /// A client-streaming call: `requests` are sent as they come; one response. Retried as
    /// the contract allows until the response begins, re-sending the requests sent so far
    /// (up to 256 KiB of them; more makes the call a single attempt).
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
        Req: Clone,
    {
        let requests = Requests::new(requests, method.client.retry.is_some());
        let replayable = || requests.replayable();
        self.call(ctx, method, &replayable, |mut grpc, attempt| {
            let request = requests.next_attempt().map(tonic::Request::new);
            let replay = requests.replay();
            let capture = attempt.ctx.capture().cloned();
            let path = attempt.path.clone();
            async move {
                let request = request.ok_or_else(spent)?;
                let result = one_response(
                    grpc.streaming(request, path, ProstCodec::<Req, Resp>::default()),
                    replay,
                )
                .await;
                record_head(capture.as_ref(), &result);
                result.map(tonic::Response::into_inner)
            }
        })
        .await
    }

    /// A bidirectional-streaming call. Retried as the contract allows until the response
    /// begins, re-sending the requests sent so far (up to 256 KiB of them).
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
        Req: Clone,
    {
        self.streaming_with::<ProstCodec<Req, Resp>, E, S>(ctx, method, requests)
            .await
    }

    /// A bidirectional-streaming call with `codec`, retried as [`Channel::bidi_streaming`].
    pub(crate) async fn streaming_with<C, E, S>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        requests: S,
    ) -> Result<ResponseStream<C::Decode, E>, CallError<E>>
    where
        C: Codec + Default + Send + 'static,
        C::Encode: prost::Message + Clone + Sync,
        C::Decode: Sync,
        E: AppError,
        S: Stream<Item = C::Encode> + Send + 'static,
    {
        let requests = Requests::new(requests, method.client.retry.is_some());
        let replayable = || requests.replayable();
        self.call(ctx, method, &replayable, |mut grpc, attempt| {
            let request = requests.next_attempt().map(tonic::Request::new);
            let replay = requests.replay();
            let deadline = attempt.deadline;
            let capture = attempt.ctx.capture().cloned();
            let path = attempt.path.clone();
            async move {
                let request = request.ok_or_else(spent)?;
                let result = grpc.streaming(request, path, C::default()).await;
                if let (Ok(_), Some(replay)) = (&result, replay) {
                    replay.commit();
                }
                started(result, method, deadline, capture)
            }
        })
        .await
    }

    /// The call's deadline; or DEADLINE_EXCEEDED when the caller's budget is already spent
    /// (nothing is sent then). `now`: the call's start, read once.
    fn deadline<E: AppError>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        now: Instant,
    ) -> Result<Option<Instant>, CallError<E>> {
        if ctx.deadline().is_some_and(|d| d <= now) {
            return Err(CallError::local(
                method.full_name(),
                Code::DeadlineExceeded,
                "the caller's deadline passed before the call was made",
            ));
        }
        Ok(ctx.child_deadline(now, cap(method)))
    }

    /// One call: deadline, breaker, attempts. `attempt` gets a fresh tonic client, and what
    /// makes its request.
    async fn call<T, E, F, Fut>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        replayable: &(dyn Fn() -> bool + Sync),
        mut attempt: F,
    ) -> Result<T, CallError<E>>
    where
        E: AppError,
        F: FnMut(Grpc, &Attempt<'_>) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        if self.inner.legacy.is_some() {
            return Err(CallError::local(
                method.full_name(),
                Code::Unimplemented,
                "the legacy bridge serves unary methods only: call streams over gRPC",
            ));
        }
        let started = Instant::now();
        let inner = &self.inner;
        // Who calls whom, for /deps: the service whose handler made this call, if any.
        crate::observe::deps::note_call(ctx.method(), method);
        let span = crate::observe::trace::client_span(ctx.trace(), method, ctx.request_id());
        let end_span = |code| {
            if let Some(span) = &span {
                crate::observe::trace::end(span, code);
            }
        };
        let deadline = match self.deadline(ctx, method, started) {
            Ok(deadline) => deadline,
            Err(error) => {
                end_span(error.code());
                self.report(method, error.code(), started, Instant::now(), 0, false);
                return Err(error);
            }
        };
        let Method { path, breaker } = inner.methods.get(method);
        let permit = match breaker.map(|b| b.acquire(started)) {
            None => None,
            Some((acquired, transition)) => {
                self.breaker_changed(method, transition);
                match acquired {
                    Ok(permit) => Some(permit),
                    Err(why) => {
                        end_span(Code::Unavailable);
                        self.report(method, Code::Unavailable, started, Instant::now(), 0, true);
                        return Err(CallError::local(method.full_name(), Code::Unavailable, why));
                    }
                }
            }
        };
        let attempts = AtomicU32::new(0);
        let retries = Retries {
            method,
            deadline,
            budget: &inner.budget,
            observer: inner.observer.as_ref(),
            replayable,
            started: &attempts,
            call_started: started,
        };
        // A deadline not the caller's is the method's, counted from `started`.
        let own_timeout = deadline
            .filter(|&d| Some(d) != ctx.deadline())
            .map(|d| d - started);
        let context = Attempt {
            ctx,
            deadline,
            steady: AtomicBool::new(own_timeout.is_some()),
            own_timeout,
            path,
            trace: span.as_ref(),
        };
        // Each attempt's future boxed: tonic's is kilobytes, and unboxed it would make every
        // future above it (the caller's included) as large, moved by copying at each level.
        let attempts_made = retries.run(|| Box::pin(attempt(self.grpc(&context), &context)));
        let (result, ended) = match within(deadline, attempts_made).await {
            Some((result, ended)) => (result.map_err(|status| call_error(method, &status)), ended),
            None => (
                Err(CallError::local(
                    method.full_name(),
                    Code::DeadlineExceeded,
                    "deadline exceeded waiting for the response",
                )),
                Instant::now(),
            ),
        };
        let code = result.as_ref().err().map_or(Code::Ok, CallError::code);
        end_span(code);
        if let Some(permit) = permit {
            let transition = permit.record(code, ended);
            self.breaker_changed(method, transition);
        }
        self.report(
            method,
            code,
            started,
            ended,
            attempts.load(Ordering::Relaxed),
            false,
        );
        result
    }

    /// A tonic client over the balancer, with the channel's compression; the balancer writes
    /// what the attempt's request carries from the context.
    fn grpc(&self, attempt: &Attempt<'_>) -> Grpc {
        let balance = &self.inner.balance;
        let call = CallHeaders {
            ctx: attempt.ctx.clone(),
            deadline: attempt.deadline,
            steady: attempt
                .own_timeout
                .filter(|_| attempt.steady.swap(false, Ordering::Relaxed)),
            trace: attempt.trace.cloned(),
        };
        let mut grpc = Grpc::with_origin(balance.for_call(call), balance.origin().clone());
        if let Some(accepted) = self.inner.accepted {
            grpc = grpc.accept_compressed(accepted.encoding());
        }
        if let Some(compression) = self.inner.compression {
            grpc = grpc.send_compressed(compression.encoding());
        }
        grpc
    }

    pub(crate) fn report(
        &self,
        method: &'static MethodContract,
        code: Code,
        started: Instant,
        ended: Instant,
        attempts: u32,
        breaker_open: bool,
    ) {
        self.inner.observer.call(&CallEvent {
            method,
            code,
            latency: ended.saturating_duration_since(started),
            attempts,
            breaker_open,
        });
    }

    fn breaker_changed(
        &self,
        method: &'static MethodContract,
        transition: Option<crate::client::breaker::Transition>,
    ) {
        if let Some((from, to)) = transition {
            tracing::info!(method = method.full_name(), ?from, ?to, "circuit breaker");
            self.inner
                .observer
                .breaker(&BreakerEvent { method, from, to });
        }
    }
}

/// What an attempt's request carries from the call (the balancer writes it: [`CallHeaders`]).
struct Attempt<'a> {
    ctx: &'a Context,
    deadline: Option<Instant>,
    /// Until the first attempt takes it: whether the deadline is the method's own, so that
    /// the first attempt's budget is about the same on every call.
    steady: AtomicBool,
    /// The method's timeout, when the deadline is it counted from the call's start.
    own_timeout: Option<Duration>,
    /// The method's path, parsed once per channel.
    path: PathAndQuery,
    /// The call's span, when tracing is on: the callee's parent.
    trace: Option<&'a crate::observe::trace::Trace>,
}

/// The call error of a failed attempt; local when it provably reached no handler.
fn call_error<E: AppError>(
    method: &'static MethodContract,
    status: &tonic::Status,
) -> CallError<E> {
    let error = CallError::from_status(method.full_name(), status);
    if is_unsent(status) {
        error.into_local()
    } else {
        error
    }
}

/// The response stream of a started streaming call, its head recorded when asked.
fn started<T, E: AppError>(
    result: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
    method: &'static MethodContract,
    deadline: Option<Instant>,
    capture: Option<MetadataCapture>,
) -> Result<ResponseStream<T, E>, tonic::Status> {
    record_head(capture.as_ref(), &result);
    result.map(|r| ResponseStream::new(r.into_inner(), method, deadline, capture))
}

/// Records a response's metadata (or its error's) when the caller asked.
fn record_head<T>(
    capture: Option<&MetadataCapture>,
    result: &Result<tonic::Response<T>, tonic::Status>,
) {
    if let Some(capture) = capture {
        capture.reset(match result {
            Ok(response) => response.metadata().as_ref(),
            Err(status) => status.metadata().as_ref(),
        });
    }
}

/// The single response of a client-streaming call that began as `started`: once its head
/// arrives the call is committed (no more attempts), then the message and trailers are read
/// (as tonic's `client_streaming` does).
async fn one_response<T, Req>(
    started: impl Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
    replay: Option<Replay<Req>>,
) -> Result<tonic::Response<T>, tonic::Status>
where
    Req: prost::Message + Clone + Send + 'static,
{
    let (mut head, mut body, extensions) = started.await?.into_parts();
    if let Some(replay) = replay {
        replay.commit();
    }
    let message = body
        .message()
        .await
        .map_err(|mut status| {
            let trailers = std::mem::take(status.metadata_mut());
            *status.metadata_mut() = merged(head.clone(), trailers);
            status
        })?
        .ok_or_else(|| tonic::Status::internal("the server sent no response message"))?;
    if let Some(trailers) = body.trailers().await? {
        head = merged(head, trailers);
    }
    Ok(tonic::Response::from_parts(head, message, extensions))
}

/// A response's head and trailers as one map, as the caller reads them.
fn merged(head: MetadataMap, trailers: MetadataMap) -> MetadataMap {
    let mut headers = head.into_headers();
    headers.extend(trailers.into_headers());
    MetadataMap::from_headers(headers)
}

/// A retry found the request stream unsendable: a single-use stream went with the first
/// attempt, or more of it was sent than could be kept (the call then makes no more attempts:
/// its retry check finds it not replayable).
fn spent() -> tonic::Status {
    tonic::Status::unavailable(
        "the request stream cannot be sent again: more of it was sent than herald keeps (256 KiB)",
    )
}

/// The longest a call of `method` may take by its contract.
pub(crate) fn cap(method: &MethodContract) -> Option<Duration> {
    match (method.deadline, method.client.timeout) {
        (Some(d), Some(t)) => Some(d.min(t)),
        (d, None) => d,
        (None, t) => t,
    }
}

/// Stops waiting at the deadline (`None` then): the server will have given up too.
async fn within<T>(deadline: Option<Instant>, call: impl Future<Output = T>) -> Option<T> {
    match deadline {
        None => Some(call.await),
        Some(deadline) => tokio::time::timeout_at(deadline, call).await.ok(),
    }
}
