//! Application errors: enums marked `(herald.rpc_error) = true` in a `.proto`, each value bound
//! to a gRPC code. `herald-build` implements [`AppError`] for them.
//!
//! On the wire an app error travels as gRPC's rich error model: `grpc-status-details-bin`
//! holds a `google.rpc.Status` whose details carry a `google.rpc.ErrorInfo` with the enum's
//! full name as `domain` and the value's name as `reason`. Any gRPC client can read it; a
//! herald client turns it back into the typed enum.

use std::collections::HashMap;
use std::fmt;

use prost::Message;

use crate::Code;

/// An application error enum generated from a `.proto`.
pub trait AppError: Copy + Send + Sync + fmt::Debug + 'static {
    /// The enum's full protobuf name, e.g. `cache.CacheError`: the `domain` on the wire.
    const FULL_NAME: &'static str;

    /// The gRPC code this error travels with.
    fn grpc_code(self) -> Code;

    /// The value's protobuf name, e.g. `CACHE_ERROR_NOT_FOUND`: the `reason` on the wire.
    fn name(self) -> &'static str;

    /// The value with this protobuf name.
    fn from_name(name: &str) -> Option<Self>;
}

/// The app error of a service that declares none: it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoAppError {}

impl AppError for NoAppError {
    const FULL_NAME: &'static str = "";

    fn grpc_code(self) -> Code {
        match self {}
    }

    fn name(self) -> &'static str {
        match self {}
    }

    fn from_name(_: &str) -> Option<Self> {
        None
    }
}

const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.ErrorInfo`.
#[derive(Clone, PartialEq, Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
    #[prost(map = "string, string", tag = "3")]
    metadata: HashMap<String, String>,
}

/// The `grpc-status-details-bin` bytes carrying `error`.
pub(crate) fn encode_details<E: AppError>(error: E, message: &str) -> Vec<u8> {
    let info = ErrorInfo {
        reason: error.name().to_owned(),
        domain: E::FULL_NAME.to_owned(),
        metadata: HashMap::new(),
    };
    RpcStatus {
        code: error.grpc_code() as i32,
        message: message.to_owned(),
        details: vec![Any {
            type_url: ERROR_INFO_TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

/// The app error of type `E` in `grpc-status-details-bin` bytes, if there is one. Errors of
/// another domain, or bytes that do not decode, give `None`: the call still fails with its
/// gRPC code.
pub(crate) fn decode_details<E: AppError>(details: &[u8]) -> Option<E> {
    if details.is_empty() || E::FULL_NAME.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .filter(|any| any.type_url == ERROR_INFO_TYPE_URL)
        .filter_map(|any| ErrorInfo::decode(any.value.as_slice()).ok())
        .find(|info| info.domain == E::FULL_NAME)
        .and_then(|info| E::from_name(&info.reason))
}

/// The app error in encoded `grpc-status-details-bin`, whatever its enum: (domain, reason),
/// e.g. ("cache.CacheError", "CACHE_ERROR_NOT_FOUND").
pub(crate) fn error_reason(details: &[u8]) -> Option<(String, String)> {
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .filter(|any| any.type_url == ERROR_INFO_TYPE_URL)
        .find_map(|any| ErrorInfo::decode(any.value.as_slice()).ok())
        .map(|info| (info.domain, info.reason))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum TestError {
        Missing,
        Full,
    }

    impl AppError for TestError {
        const FULL_NAME: &'static str = "test.TestError";
        fn grpc_code(self) -> Code {
            match self {
                TestError::Missing => Code::NotFound,
                TestError::Full => Code::FailedPrecondition,
            }
        }
        fn name(self) -> &'static str {
            match self {
                TestError::Missing => "TEST_ERROR_MISSING",
                TestError::Full => "TEST_ERROR_FULL",
            }
        }
        fn from_name(name: &str) -> Option<Self> {
            [TestError::Missing, TestError::Full]
                .into_iter()
                .find(|e| e.name() == name)
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum OtherError {
        Missing,
    }

    impl AppError for OtherError {
        const FULL_NAME: &'static str = "other.OtherError";
        fn grpc_code(self) -> Code {
            Code::NotFound
        }
        fn name(self) -> &'static str {
            "TEST_ERROR_MISSING"
        }
        fn from_name(name: &str) -> Option<Self> {
            (name == "TEST_ERROR_MISSING").then_some(OtherError::Missing)
        }
    }

    #[test]
    fn details_round_trip_only_within_their_domain() {
        let bytes = encode_details(TestError::Full, "too many keys");
        assert_eq!(decode_details::<TestError>(&bytes), Some(TestError::Full));
        assert_eq!(decode_details::<OtherError>(&bytes), None);
        assert_eq!(decode_details::<NoAppError>(&bytes), None);
        assert_eq!(decode_details::<TestError>(b"\xff\xff garbage"), None);
    }
}
