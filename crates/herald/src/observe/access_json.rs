//! The JSON log format, with a direct path for the access log's line.
//!
//! tracing-subscriber's JSON formatter first collects every field of an event into a
//! `serde_json` map (an allocation per field, a tree of nodes) and serializes that: most of the
//! cost of an access-log line, which every request pays. The access log's events are written
//! here straight into the line instead, in the same shape as `json().flatten_event(true)`
//! writes them (`timestamp`, `level`, the fields, `target`); every other event goes through
//! tracing-subscriber's formatter unchanged.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the access log's events (server/observe.rs).
pub(crate) const ACCESS_TARGET: &str = "herald::access";

/// JSON lines: the access log's written directly, the rest by tracing-subscriber.
pub(crate) struct JsonLines {
    general: Format<Json>,
}

thread_local! {
    /// Each thread's access line under construction, and its timestamp cache.
    static LINE: RefCell<Line> = RefCell::new(Line::default());
}

/// Runs `f` with this thread's line buffer (a fresh one when an event is logged while the
/// thread formats another, from a field's `Debug`).
pub(crate) fn with_line<R>(f: impl FnOnce(&mut Line) -> R) -> R {
    LINE.with(|line| match line.try_borrow_mut() {
        Ok(mut line) => f(&mut line),
        Err(_) => f(&mut Line::default()),
    })
}

/// An access line built in one string (then handed to the writer in one piece, rather than
/// as a dozen dynamically dispatched pieces).
#[derive(Default)]
pub(crate) struct Line {
    pub(crate) text: String,
    pub(crate) stamp: Stamp,
}

/// RFC 3339 timestamps as tracing-subscriber writes them (`2026-11-24T09:33:27.123456Z`),
/// with the date and time of day worked out once per second.
#[derive(Default)]
pub(crate) struct Stamp {
    second: Option<u64>,
    /// `2026-11-24T09:33:27.` for `second`.
    prefix: String,
}

/// Writes an event's fields as `,"name":value` pairs.
struct FieldWriter<'a> {
    out: &'a mut String,
}

// === impl JsonLines ===

impl JsonLines {
    pub(crate) fn new() -> Self {
        JsonLines {
            general: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_target(true),
        }
    }

    /// The field formatter the general path expects for span fields.
    pub(crate) fn fields() -> JsonFields {
        JsonFields::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() != ACCESS_TARGET {
            return self.general.format_event(ctx, writer, event);
        }
        with_line(|line| line.write(event, &mut writer))
    }
}

// === impl Line ===

impl Line {
    fn write(&mut self, event: &Event<'_>, out: &mut Writer<'_>) -> fmt::Result {
        let meta = event.metadata();
        let text = &mut self.text;
        text.clear();
        text.push_str("{\"timestamp\":\"");
        self.stamp.push(text, SystemTime::now())?;
        text.push_str("\",\"level\":\"");
        text.push_str(meta.level().as_str());
        text.push('"');
        event.record(&mut FieldWriter { out: text });
        text.push_str(",\"target\":");
        push_json_str(text, meta.target());
        text.push_str("}\n");
        out.write_str(text)
    }
}

// === impl Stamp ===

impl Stamp {
    pub(crate) fn push(&mut self, text: &mut String, now: SystemTime) -> fmt::Result {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let (second, micros) = Self::clamped(since.as_secs(), since.subsec_micros());
        text.push_str(self.prefix(second)?);
        text.push_str(six_digits(micros, &mut itoa::Buffer::new()));
        text.push('Z');
        Ok(())
    }

    /// `nanos` since the Unix epoch (an access line's time, worked out without `SystemTime`),
    /// without the zone's `Z`: the access line's next piece starts with it.
    pub(crate) fn push_unix_nanos(&mut self, out: &mut Vec<u8>, nanos: u64) {
        // Divisions by constants: multiplications.
        let micros = (nanos % 1_000_000_000 / 1_000) as u32;
        let (second, micros) = Self::clamped(nanos / 1_000_000_000, micros);
        // Writing to a String cannot fail.
        if let Ok(prefix) = self.prefix(second) {
            out.extend_from_slice(prefix.as_bytes());
        }
        out.extend_from_slice(six_digits(micros, &mut itoa::Buffer::new()).as_bytes());
    }

    /// A clock before 1970 or after 9999 is broken: its lines say the nearest of the two.
    fn clamped(second: u64, micros: u32) -> (u64, u32) {
        if second > LAST_SECOND_OF_9999 {
            (LAST_SECOND_OF_9999, 0)
        } else {
            (second, micros)
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.` for `second`, worked out when the second changes.
    fn prefix(&mut self, second: u64) -> Result<&str, fmt::Error> {
        if self.second != Some(second) {
            self.prefix.clear();
            write_second(&mut self.prefix, second)?;
            self.second = Some(second);
        }
        Ok(&self.prefix)
    }
}

/// `n` (below a million) as six decimal digits, zero-padded: itoa's formatting of
/// 1,000,000 + `n` (two digits per step, from a table), less its leading 1 — on every access
/// line twice, where a digit at a time and a `char` push per digit cost twice as much.
pub(crate) fn six_digits(n: u32, buffer: &mut itoa::Buffer) -> &str {
    // Both callers take `n` as a remainder already: no second one here.
    debug_assert!(n < 1_000_000, "{n} has more than six digits");
    &buffer.format(n + 1_000_000)[1..]
}

/// 9999-12-31T23:59:59Z, the last second with a four-digit year.
const LAST_SECOND_OF_9999: u64 = 253_402_300_799;

/// `YYYY-MM-DDTHH:MM:SS.` for seconds since the Unix epoch.
fn write_second(out: &mut String, second: u64) -> fmt::Result {
    let (days, in_day) = (second / 86_400, second % 86_400);
    let (year, month, day) = civil_date(days);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Shifted to 0000-03-01, so that a leap day ends its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

// === impl FieldWriter ===

impl FieldWriter<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(',');
        push_json_str(self.out, field.name());
        self.out.push(':');
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.out, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            self.out.push_str(zmij::Buffer::new().format_finite(value));
        } else {
            self.out.push_str("null");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.out.push('"');
        // Writing to a String cannot fail.
        let _ = write!(JsonEscaped(self.out), "{value:?}");
        self.out.push('"');
    }
}

/// `value` as a JSON string, quotes included.
pub(crate) fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    if !needs_escape(value) {
        out.push_str(value);
    } else {
        let _ = JsonEscaped(out).write_str(value);
    }
    out.push('"');
}

/// `value` as a JSON string, quotes included, at the end of `out`.
pub(crate) fn push_json_bytes(out: &mut Vec<u8>, value: &str) {
    if needs_escape(value) {
        let mut escaped = String::with_capacity(value.len() + 8);
        push_json_str(&mut escaped, value);
        out.extend_from_slice(escaped.as_bytes());
        return;
    }
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// Whether `value` has a byte JSON escapes inside a string. Method names, identities, codes
/// and request ids have none. (Checked without stopping early, so that the check runs on
/// whole vectors of bytes.)
fn needs_escape(value: &str) -> bool {
    value.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Escapes what passes through it for the inside of a JSON string.
struct JsonEscaped<'a>(&'a mut String);

impl Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut clean = 0;
        for (i, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&s[clean..i]);
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.push_str(escape);
            }
            clean = i + 1;
        }
        self.0.push_str(&s[clean..]);
        Ok(())
    }
}

/// Captured log lines, for the tests of the log's formats.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::JsonLines;

    /// A writer keeping what it is given.
    #[derive(Clone, Default)]
    pub(crate) struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        /// Every line written so far, parsed as JSON.
        pub(crate) fn parsed(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.0.lock().expect("lines").clone()).expect("utf-8");
            text.lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
                .collect()
        }
    }

    /// The lines of the events `emit` logs, formatted by [`JsonLines`].
    pub(crate) fn logged(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonLines::fields())
                .event_format(JsonLines::new())
                .with_writer(move || sink.clone()),
        );
        tracing::subscriber::with_default(subscriber, emit);
        lines.parsed()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::logged;
    use super::*;

    #[test]
    fn an_access_line_is_the_json_the_general_formatter_writes() {
        let lines = logged(|| {
            for target_is_access in [true, false] {
                let method = "cache.Cache/Get \"quoted\"\n\\ \u{1}";
                if target_is_access {
                    tracing::info!(target: "herald::access", method, caller = "user.demo",
                        code = "OK", latency_ms = 1.25, attempts = 3u64, delta = -2i64,
                        dry = true, debug = ?Some("x"));
                } else {
                    tracing::info!(target: "herald::other", method, caller = "user.demo",
                        code = "OK", latency_ms = 1.25, attempts = 3u64, delta = -2i64,
                        dry = true, debug = ?Some("x"));
                }
            }
        });
        assert_eq!(lines.len(), 2);
        let (fast, general) = (&lines[0], &lines[1]);
        assert_eq!(fast["target"], "herald::access");
        assert_eq!(general["target"], "herald::other");
        for key in [
            "level",
            "method",
            "caller",
            "code",
            "latency_ms",
            "attempts",
            "delta",
            "dry",
            "debug",
        ] {
            assert_eq!(fast[key], general[key], "{key}: {fast} vs {general}");
        }
        assert_eq!(fast["method"], "cache.Cache/Get \"quoted\"\n\\ \u{1}");
        assert_eq!(fast["latency_ms"], 1.25);
        let stamp = fast["timestamp"].as_str().expect("timestamp");
        let general_stamp = general["timestamp"].as_str().expect("timestamp");
        assert!(stamp.len() == 27 && stamp.ends_with('Z'), "{stamp}");
        assert_eq!(
            stamp.len(),
            general_stamp.len(),
            "{stamp} vs {general_stamp}"
        );
        let shape = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "9");
        assert_eq!(shape(stamp), shape(general_stamp));
        let keys = |v: &serde_json::Value| {
            let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(fast), keys(general));
    }

    /// What the `time` crate says second `second` is, as `YYYY-MM-DDTHH:MM:SS.`.
    fn expected_second(second: u64) -> String {
        let at = time::OffsetDateTime::from_unix_timestamp(second as i64).expect("in range");
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }

    #[test]
    fn dates_at_the_edges_of_months_years_and_leap_days() {
        for second in [
            0,
            86_399,
            86_400,
            951_782_400,   // 2000-02-29
            951_868_800,   // 2000-03-01
            1_709_164_800, // 2024-02-29
            4_107_542_400, // 2100-03-01 (2100 is not a leap year)
            1_795_000_000,
            super::LAST_SECOND_OF_9999,
        ] {
            let mut out = String::new();
            write_second(&mut out, second).expect("format");
            assert_eq!(out, expected_second(second), "second {second}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_second_has_the_date_the_time_crate_gives(second in 0..=super::LAST_SECOND_OF_9999) {
            let mut out = String::new();
            write_second(&mut out, second).expect("format");
            proptest::prop_assert_eq!(out, expected_second(second));
        }
    }

    #[test]
    fn stamps_carry_microseconds_and_follow_the_clock_across_seconds() {
        let mut stamp = Stamp::default();
        let at = |s: u64, micros: u64| {
            UNIX_EPOCH + std::time::Duration::from_micros(s * 1_000_000 + micros)
        };
        let mut out = String::new();
        stamp.push(&mut out, at(1_795_000_000, 42)).expect("stamp");
        out.push(' ');
        stamp
            .push(&mut out, at(1_795_000_000, 999_999))
            .expect("stamp");
        out.push(' ');
        stamp.push(&mut out, at(1_795_000_001, 0)).expect("stamp");
        assert_eq!(
            out,
            "2026-11-18T11:06:40.000042Z 2026-11-18T11:06:40.999999Z 2026-11-18T11:06:41.000000Z"
        );
        // The access line's way in, nanoseconds since the epoch: the same text, less its `Z`
        // (the next piece of the line starts with it).
        let mut by_nanos = Vec::new();
        stamp.push_unix_nanos(&mut by_nanos, 1_795_000_000_000_042_999);
        assert_eq!(by_nanos, b"2026-11-18T11:06:40.000042");
        let mut before_1970 = String::new();
        stamp
            .push(
                &mut before_1970,
                UNIX_EPOCH - std::time::Duration::from_secs(1),
            )
            .expect("stamp");
        assert_eq!(before_1970, "1970-01-01T00:00:00.000000Z");
        let mut after_9999 = String::new();
        stamp
            .push(
                &mut after_9999,
                UNIX_EPOCH + std::time::Duration::from_secs(super::LAST_SECOND_OF_9999 + 7),
            )
            .expect("stamp");
        assert_eq!(after_9999, "9999-12-31T23:59:59.000000Z");
    }
}
