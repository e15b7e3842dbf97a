//! Puts what a handler added to its [`Context`] onto the HTTP response: initial metadata into
//! the head, trailing metadata into the trailers (tonic writes its own trailers, the status,
//! and has no place for a handler's).

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::body::Body;

use crate::context::Context;

pin_project! {
    /// A response body whose trailers get the handler's trailing metadata.
    struct WithTrailers {
        #[pin]
        inner: Body,
        source: Source,
        done: bool,
    }
}

/// Where the trailing metadata comes from.
enum Source {
    /// Known when the head was sent (unary, client streaming).
    Fixed(HeaderMap),
    /// Read at the end of the stream: a streaming handler may add some until then.
    Late(Context),
}

/// The response with the handler's metadata. `streams`: the response body is a stream the
/// handler may still add trailers to.
pub(crate) fn apply(
    ctx: &Context,
    mut response: http::Response<Body>,
    streams: bool,
) -> http::Response<Body> {
    // A trailers-only response (an error before any message): its head is its trailers.
    let trailers_only = response
        .headers()
        .contains_key(&crate::header_names::GRPC_STATUS);
    if streams && !trailers_only {
        if let Some(headers) = ctx.take_response_headers() {
            append(response.headers_mut(), headers);
        }
        return wrap(response, Source::Late(ctx.clone()));
    }
    let Some(added) = ctx.take_response_metadata() else {
        return response;
    };
    append(response.headers_mut(), added.headers);
    if trailers_only {
        append(response.headers_mut(), added.trailers);
        return response;
    }
    if added.trailers.is_empty() {
        return response;
    }
    wrap(response, Source::Fixed(added.trailers))
}

fn append(to: &mut HeaderMap, from: HeaderMap) {
    for (name, value) in &from {
        to.append(name, value.clone());
    }
}

fn wrap(response: http::Response<Body>, source: Source) -> http::Response<Body> {
    response.map(|inner| {
        Body::new(WithTrailers {
            inner,
            source,
            done: false,
        })
    })
}

// === impl Source ===

impl Source {
    fn take(&mut self) -> Option<HeaderMap> {
        match self {
            Source::Fixed(map) => (!map.is_empty()).then(|| std::mem::take(map)),
            Source::Late(ctx) => ctx.take_response_trailers(),
        }
    }
}

// === impl WithTrailers ===

impl HttpBody for WithTrailers {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    *this.done = true;
                    if let Some(added) = this.source.take() {
                        append(&mut trailers, added);
                    }
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Some(Err(error)) => Poll::Ready(Some(Err(error))),
            None => {
                *this.done = true;
                Poll::Ready(this.source.take().map(|t| Ok(Frame::trailers(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || (self.inner.is_end_stream()
                && matches!(&self.source, Source::Fixed(m) if m.is_empty()))
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
