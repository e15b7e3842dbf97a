//! gRPC status codes, herald's own so that users never name a transport crate's type.

use std::fmt;
use std::str::FromStr;

/// A gRPC status code, as listed in gRPC's `statuscodes.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Code {
    /// Not an error.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, or an error from another service that nobody mapped.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity that a client attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted: a rate limit, a queue, a quota.
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation's execution.
    FailedPrecondition = 9,
    /// The operation was aborted, typically due to a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// An invariant expected by the system was broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

/// Every code with its canonical name, in numeric order.
const NAMES: [(Code, &str); 17] = [
    (Code::Ok, "OK"),
    (Code::Cancelled, "CANCELLED"),
    (Code::Unknown, "UNKNOWN"),
    (Code::InvalidArgument, "INVALID_ARGUMENT"),
    (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (Code::NotFound, "NOT_FOUND"),
    (Code::AlreadyExists, "ALREADY_EXISTS"),
    (Code::PermissionDenied, "PERMISSION_DENIED"),
    (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
    (Code::FailedPrecondition, "FAILED_PRECONDITION"),
    (Code::Aborted, "ABORTED"),
    (Code::OutOfRange, "OUT_OF_RANGE"),
    (Code::Unimplemented, "UNIMPLEMENTED"),
    (Code::Internal, "INTERNAL"),
    (Code::Unavailable, "UNAVAILABLE"),
    (Code::DataLoss, "DATA_LOSS"),
    (Code::Unauthenticated, "UNAUTHENTICATED"),
];

/// The error of [`Code::from_str`]: the name is not one of gRPC's code names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gRPC status code name {0:?} (expected one like \"NOT_FOUND\" or \"UNAVAILABLE\")")]
pub struct UnknownCodeName(String);

// === impl Code ===

impl Code {
    /// The code's canonical name, e.g. `"NOT_FOUND"`.
    pub const fn name(self) -> &'static str {
        NAMES[self as usize].1
    }

    /// The code with this number; numbers outside gRPC's range are [`Code::Unknown`], as the
    /// gRPC specification asks.
    pub const fn from_i32(n: i32) -> Code {
        if n >= 0 && (n as usize) < NAMES.len() {
            NAMES[n as usize].0
        } else {
            Code::Unknown
        }
    }

    /// Every code, in numeric order.
    pub fn all() -> impl Iterator<Item = Code> {
        NAMES.iter().map(|(code, _)| *code)
    }

    /// The code a response's head or trailers give in `grpc-status`, if they have one; a value
    /// that is not a number is UNKNOWN.
    ///
    /// Found by walking the map rather than by a hashed lookup: a response's head and
    /// trailers hold a few entries, and the walk (one comparison of lengths for most names)
    /// costs less than hashing the name — on every call, on both sides.
    pub(crate) fn in_headers(headers: &http::HeaderMap) -> Option<Code> {
        let (_, status) = headers
            .iter()
            .find(|(name, _)| **name == crate::header_names::GRPC_STATUS)?;
        Some(Code::from_status_value(status.as_bytes()))
    }

    /// The code a `grpc-status` value names: one or two digits as every implementation sends
    /// them, read directly (a generic integer parse costs more than the rest of reading the
    /// trailers); anything else as `i32` text, UNKNOWN when it is not a number.
    fn from_status_value(value: &[u8]) -> Code {
        match *value {
            [digit @ b'0'..=b'9'] => Code::from_i32((digit - b'0') as i32),
            [tens @ b'1'..=b'9', ones @ b'0'..=b'9'] => {
                Code::from_i32(((tens - b'0') * 10 + (ones - b'0')) as i32)
            }
            _ => std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<i32>().ok())
                .map_or(Code::Unknown, Code::from_i32),
        }
    }

    pub(crate) fn to_tonic(self) -> tonic::Code {
        tonic::Code::from_i32(self as i32)
    }

    pub(crate) fn from_tonic(code: tonic::Code) -> Code {
        Code::from_i32(code as i32)
    }
}

impl FromStr for Code {
    type Err = UnknownCodeName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(code, _)| *code)
            .ok_or_else(|| UnknownCodeName(name.to_owned()))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for (i, code) in Code::all().enumerate() {
            assert_eq!(code as usize, i);
            assert_eq!(Code::from_i32(i as i32), code);
            assert_eq!(code.name().parse::<Code>(), Ok(code));
            assert_eq!(code.to_tonic() as i32, i as i32);
        }
        assert_eq!(Code::from_i32(17), Code::Unknown);
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert!("NOTFOUND".parse::<Code>().is_err());
    }

    #[test]
    fn a_status_value_reads_as_an_integer_parse_would() {
        let parsed = |text: &str| {
            text.parse::<i32>()
                .ok()
                .map_or(Code::Unknown, Code::from_i32)
        };
        let mut values: Vec<String> = (0..100).map(|n| n.to_string()).collect();
        values.extend(
            [
                "00",
                "05",
                "016",
                "+5",
                "-1",
                "",
                " 5",
                "5 ",
                "a",
                "1a",
                "17",
                "99",
                "2147483648",
            ]
            .map(String::from),
        );
        for value in values {
            assert_eq!(
                Code::from_status_value(value.as_bytes()),
                parsed(&value),
                "{value:?}"
            );
        }
        assert_eq!(Code::from_status_value(b"\xff"), Code::Unknown);
    }
}
