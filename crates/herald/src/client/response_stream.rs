//! The stream of responses of a server- or bidi-streaming call.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::{FutureExt as _, Stream};
use tokio::time::{Instant, Sleep};

use crate::Code;
use crate::MetadataCapture;
use crate::app_error::AppError;
use crate::contract::MethodContract;
use crate::error::CallError;

/// Responses of a streaming call; ends with an error at the call's deadline.
pub struct ResponseStream<T, E: AppError> {
    inner: tonic::Streaming<T>,
    method: &'static MethodContract,
    deadline: Option<Pin<Box<Sleep>>>,
    done: bool,
    /// Where the stream's trailing metadata goes, when the caller asked.
    capture: Option<MetadataCapture>,
    _error: PhantomData<fn() -> E>,
}

// === impl ResponseStream ===

impl<T, E: AppError> ResponseStream<T, E> {
    pub(crate) fn new(
        inner: tonic::Streaming<T>,
        method: &'static MethodContract,
        deadline: Option<Instant>,
        capture: Option<MetadataCapture>,
    ) -> Self {
        ResponseStream {
            inner,
            method,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            done: false,
            capture,
            _error: PhantomData,
        }
    }

    /// The next response, or `None` when the server ended the stream with OK.
    ///
    /// # Errors
    /// The server's status, or DEADLINE_EXCEEDED at the call's deadline.
    pub async fn message(&mut self) -> Result<Option<T>, CallError<E>>
    where
        T: Unpin,
    {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }
}

impl<T, E: AppError> Unpin for ResponseStream<T, E> {}

impl<T, E: AppError> Stream for ResponseStream<T, E> {
    type Item = Result<T, CallError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.done = true;
            return Poll::Ready(Some(Err(CallError::local(
                self.method.full_name(),
                Code::DeadlineExceeded,
                "deadline exceeded while streaming responses",
            ))));
        }
        let method = self.method;
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(item))) => Poll::Ready(Some(Ok(item))),
            Poll::Ready(Some(Err(status))) => {
                self.done = true;
                if let Some(capture) = &self.capture {
                    capture.extend(status.metadata().as_ref());
                }
                Poll::Ready(Some(Err(CallError::from_status(
                    method.full_name(),
                    &status,
                ))))
            }
            Poll::Ready(None) => {
                self.done = true;
                if let Some(capture) = self.capture.clone() {
                    // The stream has ended: its trailers are already read, nothing waits.
                    if let Some(Ok(Some(trailers))) = self.inner.trailers().now_or_never() {
                        capture.extend(trailers.as_ref());
                    }
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T, E: AppError> fmt::Debug for ResponseStream<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("method", &self.method.path)
            .field("done", &self.done)
            .finish()
    }
}
