//! The JSON log format, with a direct path for the access log's line.
//!
//! tracing-subscriber's JSON formatter first collects every field of an event into a
//! `serde_json` map (an allocation per field, a tree of nodes) and serializes that: most of the
//! cost of an access-log line, which every request pays. The access log's events are written
//! here straight into the line instead, in the same shape as `json().flatten_event(true)`
//! writes them (`timestamp`, `level`, the fields, `target`); every other event goes through
//! tracing-subscriber's formatter unchanged.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the access log's events (server/observe.rs).
pub(crate) const ACCESS_TARGET: &str = "herald::access";

/// JSON lines: the access log's written directly, the rest by tracing-subscriber.
pub(crate) struct JsonLines {
    general: Format<Json>,
}

/// Writes an event's fields as `,"name":value` pairs.
struct FieldWriter<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
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
        let meta = event.metadata();
        if meta.target() != ACCESS_TARGET {
            return self.general.format_event(ctx, writer, event);
        }
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = FieldWriter {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_json_str(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

// === impl FieldWriter ===

impl FieldWriter<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.out.write_char(',')?;
        write_json_str(self.out, field.name())?;
        self.out.write_char(':')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.out));
        }
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |out| write_json_str(out, value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.put(field, |out| write!(out, "{value}"));
        } else {
            self.put(field, |out| out.write_str("null"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |out| write!(out, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |out| {
            out.write_char('"')?;
            write!(JsonEscaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `value` as a JSON string, quotes included.
fn write_json_str(out: &mut Writer<'_>, value: &str) -> fmt::Result {
    out.write_char('"')?;
    JsonEscaped(out).write_str(value)?;
    out.write_char('"')
}

/// Escapes what passes through it for the inside of a JSON string.
struct JsonEscaped<'a, 'w>(&'a mut Writer<'w>);

impl Write for JsonEscaped<'_, '_> {
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
            self.0.write_str(&s[clean..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            clean = i + 1;
        }
        self.0.write_str(&s[clean..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonLines::fields())
                .event_format(JsonLines::new())
                .with_writer(move || sink.clone()),
        );
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
            .collect()
    }

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
        assert!(stamp.len() >= 20 && stamp.ends_with('Z'), "{stamp}");
        let keys = |v: &serde_json::Value| {
            let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(fast), keys(general));
    }
}
