//! Handlers on threads of their own, apart from the threads that read and write connections
//! (Courier's work pool behind its admission queue).
//!
//! On one tokio runtime, a handler that computes for a millisecond holds its worker for that
//! millisecond: requests that arrived meanwhile are not read, so admission can neither queue
//! nor shed them until it is done. Under overload the wait before admission grows with the
//! backlog, and the queue's time bound no longer bounds latency. With a handler pool, the
//! connection threads only read, admit or shed, and write, and the operating system shares the
//! cores between them and the handlers: a refused call is refused in microseconds whatever the
//! handlers are doing.
//!
//! A unary call's whole handler runs on the pool (decoding, the handler, encoding); a stream's
//! handler runs there until it returns its stream, whose items are then produced as the
//! connection sends them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use crate::server::methods::ResponseFuture;

/// The handlers' threads.
#[derive(Debug)]
pub(crate) struct HandlerPool {
    /// Taken on drop to shut down without blocking (a server may be dropped on a runtime).
    runtime: Option<Runtime>,
    handle: Handle,
}

/// A handler running on the pool; aborted if the call is dropped (the caller went away, or its
/// deadline passed).
struct Running(JoinHandle<http::Response<tonic::body::Body>>);

// === impl HandlerPool ===

impl HandlerPool {
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = crate::runtime::builder()
            .worker_threads(threads.max(1))
            .thread_name("herald-handler")
            .build()?;
        Ok(HandlerPool {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// `response` computed on the pool.
    pub(crate) fn run(&self, response: ResponseFuture) -> ResponseFuture {
        let running = Running(self.handle.spawn(response));
        Box::pin(running)
    }
}

impl Drop for HandlerPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

// === impl Running ===

impl Future for Running {
    type Output = http::Response<tonic::body::Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match std::task::ready!(Pin::new(&mut self.0).poll(cx)) {
            Ok(response) => response,
            // Handlers' own panics are caught inside (dispatch.rs); one around them is herald's.
            Err(failed) if failed.is_panic() => {
                tonic::Status::internal("the call's task panicked").into_http()
            }
            Err(_) => tonic::Status::unavailable("the server is shutting down").into_http(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}
