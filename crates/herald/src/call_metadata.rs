//! The metadata of the call a handler serves: the request's headers, and what the handler
//! adds to its response (initial metadata, trailing metadata, compression).
//!
//! Kept inside the handler's [`Context`](crate::Context) so that generated handler signatures
//! stay `(&Context, Request) -> Result<Response, Error>`. Nothing is allocated unless a handler
//! sets something: the request's header map is moved in, not copied.

use std::sync::{Mutex, MutexGuard, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};

/// Names gRPC and HTTP/2 own: a handler cannot set them, nor a context carry them.
pub(crate) const RESERVED: [&str; 8] = [
    "content-type",
    "te",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-timeout",
];

/// One call's metadata cells.
#[derive(Debug, Default)]
pub(crate) struct CallMetadata {
    request: OnceLock<HeaderMap>,
    response: Mutex<Option<Box<ResponseMetadata>>>,
}

/// What a handler added to its response.
#[derive(Debug, Default)]
pub(crate) struct ResponseMetadata {
    pub(crate) headers: HeaderMap,
    pub(crate) trailers: HeaderMap,
    /// `Some(false)`: send this response uncompressed whatever was negotiated.
    pub(crate) compress: Option<bool>,
}

// === impl CallMetadata ===

impl CallMetadata {
    /// The request's headers, once the server has handed them over.
    pub(crate) fn request(&self) -> Option<&HeaderMap> {
        self.request.get()
    }

    /// Hands the request's headers over (once; later calls are ignored).
    pub(crate) fn set_request(&self, headers: HeaderMap) {
        let _ = self.request.set(headers);
    }

    /// Adds to the response, unless `name` is one gRPC owns.
    pub(crate) fn add(&self, trailer: bool, name: HeaderName, value: HeaderValue) {
        if RESERVED.contains(&name.as_str()) {
            tracing::debug!(%name, "a handler cannot set a header gRPC owns; ignored");
            return;
        }
        let mut response = self.lock();
        let response = response.get_or_insert_with(Box::default);
        let map = if trailer {
            &mut response.trailers
        } else {
            &mut response.headers
        };
        map.append(name, value);
    }

    pub(crate) fn set_compression(&self, compress: bool) {
        self.lock().get_or_insert_with(Box::default).compress = Some(compress);
    }

    pub(crate) fn compression(&self) -> Option<bool> {
        self.lock().as_ref()?.compress
    }

    /// What the handler added, taken out (the response is being sent).
    pub(crate) fn take_response(&self) -> Option<Box<ResponseMetadata>> {
        self.lock().take()
    }

    /// The initial metadata added so far, taken out (a stream's head is being sent).
    pub(crate) fn take_headers(&self) -> Option<HeaderMap> {
        let mut response = self.lock();
        let headers = std::mem::take(&mut response.as_mut()?.headers);
        (!headers.is_empty()).then_some(headers)
    }

    /// The trailing metadata added so far, taken out (a stream has ended).
    pub(crate) fn take_trailers(&self) -> Option<HeaderMap> {
        let mut response = self.lock();
        let trailers = std::mem::take(&mut response.as_mut()?.trailers);
        (!trailers.is_empty()).then_some(trailers)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Box<ResponseMetadata>>> {
        // Never held across an await or a panic point; a poisoned cell is still valid.
        self.response
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clone for CallMetadata {
    /// A derived context (a child call's) serves no call of its own: it starts empty.
    fn clone(&self) -> Self {
        CallMetadata::default()
    }
}

/// The response metadata of calls made with a context (from
/// [`Context::capture_response_metadata`](crate::Context::capture_response_metadata)):
/// initial and trailing metadata, merged (tonic merges them for unary calls), of the last
/// call that ended. Cheap to clone; clones share the record.
#[derive(Clone, Debug, Default)]
pub struct MetadataCapture(std::sync::Arc<Mutex<HeaderMap>>);

// === impl MetadataCapture ===

impl MetadataCapture {
    /// What the last call's server sent, initial and trailing metadata together.
    pub fn get(&self) -> HeaderMap {
        self.lock().clone()
    }

    /// Starts a call's record.
    pub(crate) fn reset(&self, headers: &HeaderMap) {
        *self.lock() = headers.clone();
    }

    /// Adds to the record (a stream's trailers, a status's metadata).
    pub(crate) fn extend(&self, headers: &HeaderMap) {
        let mut record = self.lock();
        for (name, value) in headers {
            record.append(name, value.clone());
        }
    }

    fn lock(&self) -> MutexGuard<'_, HeaderMap> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_refused_and_the_rest_kept_in_order() {
        let cell = CallMetadata::default();
        assert!(
            cell.take_response().is_none(),
            "nothing until something is set"
        );
        cell.add(
            false,
            HeaderName::from_static("grpc-status"),
            HeaderValue::from_static("0"),
        );
        cell.add(
            false,
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("1"),
        );
        cell.add(
            true,
            HeaderName::from_static("x-b-bin"),
            HeaderValue::from_static("AAE"),
        );
        cell.add(
            true,
            HeaderName::from_static("x-b-bin"),
            HeaderValue::from_static("AAI"),
        );
        let response = cell.take_response().expect("set");
        assert_eq!(response.headers.len(), 1);
        assert_eq!(response.headers["x-a"], "1");
        let values: Vec<_> = response.trailers.get_all("x-b-bin").iter().collect();
        assert_eq!(values, ["AAE", "AAI"]);
        assert!(cell.clone().take_response().is_none());
    }
}
