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
/// would only churn both ends' header tables and evict the entries that do repeat (a budget
/// that does repeat goes out as [`repeating_header_value`]).
pub fn header_value(timeout: Duration) -> http::HeaderValue {
    let (value, unit) = value_and_unit(timeout);
    let mut header = digits_and_unit(value, unit);
    header.set_sensitive(true);
    header
}

/// `value` (at most 8 digits) and `unit` as a header value, written on the stack.
fn digits_and_unit(mut value: u64, unit: char) -> http::HeaderValue {
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
    http::HeaderValue::from_bytes(&text[start..]).expect("digits and a unit letter")
}

/// The `grpc-timeout` of a budget that repeats from call to call: a method's own deadline,
/// sent as its call starts. Rounded down to three significant figures (at most 1 % less than
/// the budget, never more), so that calls made microseconds apart send the same text, and
/// left indexable: HPACK then sends the value as one byte from the second call on, and the
/// server takes it from its table instead of Huffman-decoding and allocating it per call.
/// (gRPC's C core rounds timeouts to three figures too, upwards, for its own timeout
/// table.) The last value made on this thread is kept, so a repeat costs no allocation.
pub(crate) fn repeating_header_value(budget: Duration) -> http::HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, http::HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    // Past u64's 584 years, a budget is as good as endless.
    let nanos = three_figures(u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX).max(1));
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((made, value)) = last.as_ref()
            && *made == nanos
        {
            return value.clone();
        }
        let (value, unit) = coarsest_exact_unit(u128::from(nanos));
        let header = digits_and_unit(value, unit);
        *last = Some((nanos, header.clone()));
        header
    })
}

/// `nanos` rounded down to its three most significant decimal digits. Two divisions, on
/// every call with a steady budget: the scale is found by multiplying.
fn three_figures(nanos: u64) -> u64 {
    let (mut step, limit) = (1, nanos / 1000);
    while step <= limit {
        step *= 10;
    }
    nanos / step * step
}

/// `nanos` in the coarsest unit that divides it and holds it in 8 digits (the finest that
/// holds it, rounded down, when none divides it).
fn coarsest_exact_unit(nanos: u128) -> (u64, char) {
    for &(unit, per) in UNITS.iter().rev() {
        if nanos.is_multiple_of(per) && nanos / per <= u128::from(MAX_DIGITS_VALUE) {
            return ((nanos / per) as u64, unit);
        }
    }
    finest_unit(nanos)
}

/// The header's units with their nanoseconds, finest first.
const UNITS: [(char, u128); 6] = [
    ('n', 1),
    ('u', 1_000),
    ('m', 1_000_000),
    ('S', 1_000_000_000),
    ('M', 60_000_000_000),
    ('H', 3_600_000_000_000),
];

/// The value and unit [`format`] writes.
fn value_and_unit(timeout: Duration) -> (u64, char) {
    finest_unit(timeout.as_nanos().max(1))
}

/// `nanos` (at least 1) in the finest unit that holds it in 8 digits.
fn finest_unit(nanos: u128) -> (u64, char) {
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
    fn a_repeating_budget_goes_out_rounded_down_to_three_figures_and_indexable() {
        let less = |d: Duration, us| d - Duration::from_micros(us);
        for (budget, text) in [
            (less(Duration::from_millis(100), 3), "99900u"),
            (less(Duration::from_secs(5), 3), "4990m"),
            (Duration::from_millis(300), "300m"),
            (Duration::from_secs(2), "2S"),
            (Duration::from_secs(7200), "2H"),
            (Duration::from_nanos(1234), "1230n"),
            (Duration::ZERO, "1n"),
        ] {
            let value = repeating_header_value(budget);
            assert_eq!(value, text, "{budget:?}");
            assert!(!value.is_sensitive(), "{budget:?}");
        }
        for nanos in [
            1,
            999,
            1000,
            1001,
            99_999,
            123_456_789,
            9_999_999_999,
            u64::MAX / 2,
        ] {
            let budget = Duration::from_nanos(nanos);
            let sent = parse(repeating_header_value(budget).as_bytes()).expect("valid");
            assert!(sent <= budget, "{budget:?} became {sent:?}");
            assert!(
                sent.as_nanos() * 100 >= budget.as_nanos() * 99,
                "{budget:?} became {sent:?}: more than 1 % lost"
            );
        }
    }

    #[test]
    fn calls_made_microseconds_apart_send_the_same_budget() {
        // A call's headers are written some microseconds after its deadline was set.
        let texts: std::collections::HashSet<_> = (1..=50)
            .map(|us| {
                let budget = Duration::from_millis(250) - Duration::from_micros(us);
                repeating_header_value(budget).as_bytes().to_vec()
            })
            .collect();
        assert_eq!(texts.len(), 1, "{texts:?}");
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
