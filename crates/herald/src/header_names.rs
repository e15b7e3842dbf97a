//! Names of the headers every call reads or writes, made once.
//!
//! Looking a header up by `&str` first checks and parses the name (`parse_hdr`), every time:
//! a visible share of a small call. A `HeaderName` made once is only hashed.

use http::HeaderName;

pub(crate) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub(crate) static GRPC_TIMEOUT: HeaderName = HeaderName::from_static(crate::timeout::GRPC_TIMEOUT);
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static(crate::context::REQUEST_ID);
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
