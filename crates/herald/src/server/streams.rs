//! Streams on the server side: the request stream a handler reads, and the guard around the
//! response stream a handler returns (deadline, panics).

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::stream::CatchUnwind;
use futures_util::{Stream, StreamExt};
use pin_project_lite::pin_project;
use std::future::Future;
use tokio::time::Sleep;

use crate::Code;
use crate::app_error::AppError;
use crate::context::Context;
use crate::error::Error;
use crate::server::dispatch::{Env, deadline_exceeded, panicked};

/// The stream of requests of a client- or bidi-streaming call.
pub struct RequestStream<T> {
    inner: tonic::Streaming<T>,
}

/// A request stream failed: the caller cancelled, or sent a malformed or oversized message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("request stream failed with {code}: {message}")]
pub struct StreamError {
    code: Code,
    message: String,
}

pin_project! {
    /// A handler's response stream, ended with DEADLINE_EXCEEDED at the deadline and with
    /// INTERNAL if the handler's stream panics.
    pub(crate) struct GuardedStream<S> {
        #[pin]
        inner: CatchUnwind<AssertUnwindSafe<S>>,
        deadline: Option<Pin<Box<Sleep>>>,
        ctx: Context,
        env: Arc<Env>,
        done: bool,
    }
}

// === impl RequestStream ===

impl<T> RequestStream<T> {
    pub(crate) fn new(inner: tonic::Streaming<T>) -> Self {
        RequestStream { inner }
    }

    /// The next request, or `None` once the caller closed its side.
    ///
    /// # Errors
    /// The caller cancelled, or sent a malformed or oversized message.
    pub async fn message(&mut self) -> Result<Option<T>, StreamError> {
        self.inner.message().await.map_err(StreamError::from)
    }
}

impl<T> Stream for RequestStream<T> {
    type Item = Result<T, StreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(StreamError::from)))
    }
}

impl<T> fmt::Debug for RequestStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStream").finish_non_exhaustive()
    }
}

// === impl StreamError ===

impl StreamError {
    /// The gRPC code.
    pub fn code(&self) -> Code {
        self.code
    }
}

impl From<tonic::Status> for StreamError {
    fn from(status: tonic::Status) -> Self {
        StreamError {
            code: Code::from_tonic(status.code()),
            message: status.message().to_owned(),
        }
    }
}

/// A broken request stream ends the call with the stream's own code.
impl<E: AppError> From<StreamError> for Error<E> {
    fn from(error: StreamError) -> Self {
        Error::new(error.code, error.message)
    }
}

// === impl GuardedStream ===

impl<S> GuardedStream<S> {
    pub(crate) fn new(inner: S, ctx: Context, env: Arc<Env>) -> Self
    where
        S: Stream,
    {
        GuardedStream {
            inner: AssertUnwindSafe(inner).catch_unwind(),
            deadline: ctx
                .deadline()
                .map(|d| Box::pin(tokio::time::sleep_until(d))),
            ctx,
            env,
            done: false,
        }
    }
}

impl<S, T> Stream for GuardedStream<S>
where
    S: Stream<Item = Result<T, tonic::Status>>,
{
    type Item = Result<T, tonic::Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            *this.done = true;
            return Poll::Ready(Some(Err(deadline_exceeded(this.ctx))));
        }
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(Ok(item))) => Poll::Ready(Some(item)),
            Poll::Ready(Some(Err(panic))) => {
                *this.done = true;
                Poll::Ready(Some(Err(panicked(this.env, this.ctx, panic.as_ref()))))
            }
            Poll::Ready(None) => {
                *this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
