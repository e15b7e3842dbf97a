//! The bridge's two wires: gRPC underneath (5-byte message frames, status in trailers), and the
//! legacy HTTP/1.1 protocol on top (one message per body, status in headers and HTTP code).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use crate::Code;

/// One message in a gRPC frame: uncompressed flag, big-endian length, bytes.
pub(crate) fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

/// The one message of a unary response body.
///
/// # Errors
/// A body that is not exactly one uncompressed frame (never from herald's own handlers).
pub(crate) fn unframe(mut body: Bytes) -> Result<Bytes, &'static str> {
    if body.len() < 5 {
        return Err("the response has no message");
    }
    if body.get_u8() != 0 {
        return Err("the response message came compressed");
    }
    let len = body.get_u32() as usize;
    if body.len() != len {
        return Err("the response is not exactly one message");
    }
    Ok(body)
}

/// A call's outcome from its trailers (or a trailers-only head); no `grpc-status` at all is an
/// internal error.
pub(crate) fn status_of(headers: &HeaderMap) -> tonic::Status {
    tonic::Status::from_header_map(headers)
        .unwrap_or_else(|| tonic::Status::internal("the call ended without a gRPC status"))
}

/// The HTTP status a legacy caller sees for a gRPC code (the mapping of Google's API design
/// guide, which grpc-gateway and Envoy's transcoder use too).
pub(crate) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_bodies_are_named() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], b"\x00\x00\x00\x00\x03abc");
        assert_eq!(unframe(framed).as_deref(), Ok(&b"abc"[..]));
        assert!(unframe(Bytes::from_static(b"\x00\x00")).is_err());
        assert!(unframe(Bytes::from_static(b"\x01\x00\x00\x00\x00")).is_err());
        assert!(unframe(Bytes::from_static(b"\x00\x00\x00\x00\x05ab")).is_err());
    }

    #[test]
    fn statuses_from_trailers_with_their_message_decoded() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "5".parse().expect("ascii"));
        trailers.insert(
            "grpc-message",
            "no entry %22x%22 %E2%98%BA".parse().expect("ascii"),
        );
        let status = status_of(&trailers);
        assert_eq!(Code::from_tonic(status.code()), Code::NotFound);
        assert_eq!(status.message(), "no entry \"x\" \u{263a}");
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&HeaderMap::new()).code(), tonic::Code::Internal);
    }
}
