//! The `grpc-timeout` header: `TimeoutValue TimeoutUnit`, at most 8 ASCII digits followed by
//! one of `H M S m u n` (gRPC's `PROTOCOL-HTTP2.md`).

use std::time::Duration;

/// The header's name.
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The largest value the header can carry in any unit.
const MAX_DIGITS_VALUE: u64 = 99_999_999;

/// Why a `grpc-timeout` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed grpc-timeout {0:?}: expected 1 to 8 digits and a unit of H, M, S, m, u or n")]
pub struct MalformedTimeout(pub(crate) String);

/// Parses a `grpc-timeout` value.
///
/// # Errors
/// A value that is not 1 to 8 ASCII digits followed by a valid unit.
pub fn parse(value: &[u8]) -> Result<Duration, MalformedTimeout> {
    let malformed = || MalformedTimeout(String::from_utf8_lossy(value).into_owned());
    let (&unit, digits) = value.split_last().ok_or_else(malformed)?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return Err(malformed()),
    })
}

/// Formats a duration as a `grpc-timeout` value in the finest unit that fits in 8 digits,
/// rounded down so the receiver never sees more budget than the sender had, and never less
/// than one nanosecond (zero is not a valid value on the wire).
pub fn format(timeout: Duration) -> String {
    let (value, unit) = value_and_unit(timeout);
    format!("{value}{unit}")
}

/// [`format`] as a header value, written on the stack: every call with a deadline sends one.
///
/// Marked never-indexed for HPACK: the value differs on almost every call, so indexing it
/// would only churn both ends' header tables and evict the entries that do repeat.
pub fn header_value(timeout: Duration) -> http::HeaderValue {
    let (mut value, unit) = value_and_unit(timeout);
    // At most 8 digits, then the unit.
    let mut text = [0u8; 9];
    let mut start = 8;
    text[8] = unit as u8;
    loop {
        start -= 1;
        text[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let mut header =
        http::HeaderValue::from_bytes(&text[start..]).expect("digits and a unit letter");
    header.set_sensitive(true);
    header
}

/// The value and unit [`format`] writes.
fn value_and_unit(timeout: Duration) -> (u64, char) {
    let nanos = timeout.as_nanos().max(1);
    // (unit, nanoseconds per unit), finest first.
    const UNITS: [(char, u128); 6] = [
        ('n', 1),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ];
    for (unit, per) in UNITS {
        // Round down: sending a little less budget than we have is safe; more is not.
        let value = nanos / per;
        if value <= u128::from(MAX_DIGITS_VALUE) && value > 0 {
            return (value as u64, unit);
        }
    }
    (MAX_DIGITS_VALUE, 'H')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse(b"2H"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse(b"3M"), Ok(Duration::from_secs(180)));
        assert_eq!(parse(b"4S"), Ok(Duration::from_secs(4)));
        assert_eq!(parse(b"5m"), Ok(Duration::from_millis(5)));
        assert_eq!(parse(b"6u"), Ok(Duration::from_micros(6)));
        assert_eq!(parse(b"7n"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse(b"99999999m"), Ok(Duration::from_millis(99_999_999)));
        assert_eq!(parse(b"0m"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            &b""[..],
            b"m",
            b"1",
            b"123456789m",
            b"1x",
            b"-1m",
            b"1.5S",
            b" 1S",
            b"1 S",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} was accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn formats_never_more_than_the_budget() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_micros(1500),
            Duration::from_millis(250),
            Duration::from_secs(99),
            Duration::from_secs(86_400 * 365),
        ] {
            let sent = parse(format(d).as_bytes()).expect("formatted value parses");
            assert!(sent <= d, "{d:?} became {sent:?}");
            // Precision: the finest unit that fits keeps 7+ significant digits.
            assert!(
                d - sent <= d / 1_000_000 + Duration::from_nanos(1),
                "{d:?} became {sent:?}"
            );
        }
        assert_eq!(format(Duration::ZERO), "1n");
    }

    #[test]
    fn the_header_value_is_the_formatted_text() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(7),
            Duration::from_micros(1500),
            Duration::from_millis(99_999_999),
            Duration::from_millis(100_000_000),
            Duration::from_secs(86_400 * 365 * 1000),
        ] {
            assert_eq!(header_value(d).as_bytes(), format(d).as_bytes(), "{d:?}");
        }
    }
}
