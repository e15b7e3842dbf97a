//! One access line per answered request (target `herald::access`).
//!
//! When the process's logger was installed by herald with a [`BufferedLog`] and JSON lines
//! (the usual setup: [`LogControl::install`](crate::observe::LogControl::install)), the line
//! is written straight into that log's buffer: no tracing event, no field visitor, no float
//! formatting, no second copy, and its timestamp comes from the clock read that measured the
//! request. The line is the one the event would have produced. Whether it is written still
//! follows the log filter (`herald::access=info`, changeable at runtime). Under any other
//! logger the line is a tracing event, formatted by that logger.
//!
//! [`BufferedLog`]: crate::observe::BufferedLog

use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing_core::callsite::DefaultCallsite;
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::{Level, Metadata};

use crate::Code;
use crate::observe::access_json::{Stamp, push_json_bytes, push_json_str, six_digits, with_line};
use crate::observe::buffered_log::LineSink;

/// The buffer access lines go straight into, when herald installed the logger.
static DIRECT: OnceLock<Arc<dyn LineSink>> = OnceLock::new();

/// The access line's callsite: whether the filter lets it through is the subscriber's answer
/// when the callsite registered, kept by tracing and asked again whenever the filter changes
/// (a reload rebuilds every callsite's interest) — as tracing's own event macros decide. The
/// `enabled!` macro would instead walk the filter on every request (~1/4 % of a small call).
static CALLSITE: DefaultCallsite = DefaultCallsite::new(&META);
static META: Metadata<'static> = Metadata::new(
    "herald access line",
    crate::observe::ACCESS_TARGET,
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(&[], tracing_core::identify_callsite!(&CALLSITE)),
    Kind::EVENT,
);

/// What one access line says.
pub(crate) struct AccessLine<'a> {
    pub(crate) method: &'a str,
    pub(crate) caller: &'a str,
    /// What the line says between its timestamp's digits and its latency, as it spells it:
    /// [`middle`]'s text, made once per caller and code.
    pub(crate) middle: &'a str,
    pub(crate) code: Code,
    pub(crate) took: Duration,
    pub(crate) request_id: &'a str,
    /// When the request was done (the clock read that measured `took`).
    pub(crate) at: Instant,
}

thread_local! {
    /// Wall-clock time (nanoseconds since the Unix epoch) at a monotonic instant, so that a
    /// line's timestamp needs no clock read of its own; re-read every second, so that clock
    /// adjustments show within a second.
    static WALL: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// Sends access lines straight to `sink` (called once, when herald installs the logger).
pub(crate) fn write_directly_to(sink: Arc<dyn LineSink>) {
    let _ = DIRECT.set(sink);
}

/// Logs `line`, if the log filter lets `herald::access` lines through.
pub(crate) fn log(line: &AccessLine<'_>) {
    if !enabled() {
        return;
    }
    let Some(sink) = DIRECT.get() else {
        tracing::info!(
            target: crate::observe::ACCESS_TARGET,
            method = line.method,
            caller = line.caller,
            code = line.code.name(),
            latency_ms = line.took.as_secs_f64() * 1000.0,
            request_id = line.request_id,
        );
        return;
    };
    let at = wall_unix_nanos(line.at);
    with_line(|buffer| {
        // Formatted in the log's own buffer, under its lock: no copy of the line of its own.
        sink.append_with(&mut |out| line.write(&mut buffer.stamp, at, out));
    });
}

/// Whether access lines are wanted: always or never as the filter said for the callsite, or
/// (a filter that depends on spans) as it says now.
fn enabled() -> bool {
    if !tracing::level_enabled!(Level::INFO) {
        return false;
    }
    let interest = CALLSITE.interest();
    interest.is_always()
        || (!interest.is_never() && tracing::dispatcher::get_default(|d| d.enabled(&META)))
}

// === impl AccessLine ===

impl AccessLine<'_> {
    /// The JSON line, as `JsonLines` formats the event (timestamp, level, fields, target),
    /// at the end of `out`; `at`: its time, in nanoseconds since the Unix epoch.
    fn write(&self, stamp: &mut Stamp, at: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        stamp.push_unix_nanos(out, at);
        out.extend_from_slice(self.middle.as_bytes());
        push_millis(out, self.took);
        out.extend_from_slice(b",\"request_id\":");
        push_json_bytes(out, self.request_id);
        out.extend_from_slice(b",\"target\":\"herald::access\"}\n");
    }
}

/// What an access line says between its timestamp's digits and its latency:
/// `Z","level":"INFO","method":…,"caller":…,"code":"…","latency_ms":` (method and caller
/// escaped as JSON strings; a code's name is capitals and underscores).
pub(crate) fn middle(method: &str, caller: &str, code: Code) -> String {
    let mut text = String::from("Z\",\"level\":\"INFO\",\"method\":");
    push_json_str(&mut text, method);
    text.push_str(",\"caller\":");
    push_json_str(&mut text, caller);
    text.push_str(",\"code\":\"");
    text.push_str(code.name());
    text.push_str("\",\"latency_ms\":");
    text
}

/// `took` in milliseconds, to the nanosecond: `3.267757`, `12`, `0.000042`.
fn push_millis(out: &mut Vec<u8>, took: Duration) {
    // In u64, which divides in one instruction (584 years of nanoseconds).
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    out.extend_from_slice(itoa::Buffer::new().format(nanos / 1_000_000).as_bytes());
    let fraction = (nanos % 1_000_000) as u32;
    if fraction == 0 {
        return;
    }
    out.push(b'.');
    let mut buffer = itoa::Buffer::new();
    let digits = six_digits(fraction, &mut buffer).trim_end_matches('0');
    out.extend_from_slice(digits.as_bytes());
}

/// The wall-clock time at `at`, in nanoseconds since the Unix epoch, from the thread's
/// anchor (re-read when a second old): one subtraction of instants, the rest in integers.
fn wall_unix_nanos(at: Instant) -> u64 {
    if let Some((instant, nanos)) = WALL.get()
        && let Some(since) = at.checked_duration_since(instant)
        && since < Duration::from_secs(1)
    {
        // Under a second: its nanoseconds fit in a u64 sum for 584 years.
        return nanos + since.subsec_nanos() as u64;
    }
    let (instant, time) = (Instant::now(), SystemTime::now());
    let nanos = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    WALL.set(Some((instant, nanos)));
    // `at` is a moment ago (or now): step back from the fresh anchor.
    let back = u64::try_from(instant.saturating_duration_since(at).as_nanos()).unwrap_or(u64::MAX);
    nanos.saturating_sub(back)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::access_json::testing::{Lines, logged};
    use crate::observe::buffered_log::BufferedLog;

    fn sample(took: Duration, middle: &str) -> AccessLine<'_> {
        AccessLine {
            method: "cache.Cache/Get",
            caller: "user.\"demo\"",
            middle,
            code: Code::NotFound,
            took,
            // A caller's id may hold any printable character: this one needs escaping.
            request_id: "0123456789abcdef\"\\0123456789",
            at: Instant::now(),
        }
    }

    #[test]
    fn the_direct_line_is_the_line_the_tracing_event_makes() {
        // The event through herald's JSON formatter...
        let took = Duration::from_nanos(3_267_757);
        let middle = middle("cache.Cache/Get", "user.\"demo\"", Code::NotFound);
        let events = logged(|| log(&sample(took, &middle)));
        // ...and the line written straight into a buffered log.
        let direct = Lines::default();
        let log = BufferedLog::new(direct.clone(), Duration::from_secs(3600));
        let line = sample(took, &middle);
        let at = wall_unix_nanos(line.at);
        log.sink()
            .append_with(&mut |out| line.write(&mut Stamp::default(), at, out));
        log.flush().expect("flush");

        let direct = direct.parsed();
        let (event, line) = (&events[0], &direct[0]);
        let keys = |v: &serde_json::Value| {
            let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(event), keys(line));
        for key in ["level", "method", "caller", "code", "request_id", "target"] {
            assert_eq!(event[key], line[key], "{key}");
        }
        assert_eq!(line["latency_ms"], 3.267757);
        let (a, b) = (event["latency_ms"].as_f64(), line["latency_ms"].as_f64());
        assert!((a.expect("number") - b.expect("number")).abs() < 1e-9);
        let stamp = |v: &serde_json::Value| {
            v["timestamp"]
                .as_str()
                .expect("timestamp")
                .replace(|c: char| c.is_ascii_digit(), "9")
        };
        assert_eq!(stamp(event), stamp(line));
    }

    #[test]
    fn milliseconds_to_the_nanosecond_without_trailing_zeros() {
        let text = |nanos| {
            let mut text = Vec::new();
            push_millis(&mut text, Duration::from_nanos(nanos));
            String::from_utf8(text).expect("ascii")
        };
        assert_eq!(text(3_267_757), "3.267757");
        assert_eq!(text(12_000_000), "12");
        assert_eq!(text(42_000), "0.042");
        assert_eq!(text(1), "0.000001");
        assert_eq!(text(0), "0");
        assert_eq!(text(1_500_000_000), "1500");
    }

    #[test]
    fn wall_time_follows_the_monotonic_clock_within_a_second() {
        let unix_nanos = |t: SystemTime| {
            u64::try_from(t.duration_since(UNIX_EPOCH).expect("after 1970").as_nanos())
                .expect("before 2554")
        };
        let before = unix_nanos(SystemTime::now());
        let now = Instant::now();
        let stamped = wall_unix_nanos(now);
        let after = unix_nanos(SystemTime::now());
        assert!(stamped >= before - 1_000_000 && stamped <= after);
        // Later instants keep their distance (exactly from one anchor; within the two clocks'
        // drift if this thread slept long enough for a fresh one).
        let later = wall_unix_nanos(now + Duration::from_millis(300));
        let apart = later.checked_sub(stamped).expect("later");
        assert!(apart.abs_diff(300_000_000) < 5_000_000, "{apart} ns apart");
        // An instant before the anchor steps back from it.
        let earlier = wall_unix_nanos(now - Duration::from_millis(2));
        assert!(stamped - earlier > 1_000_000 && stamped - earlier < 5_000_000);
    }
}
