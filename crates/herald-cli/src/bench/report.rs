//! The report of a run: a table for a person, JSON for a program (the benchmark runner).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::record::{Recorder, Tally, window};

/// What a run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) target: String,
    pub(crate) method: String,
    pub(crate) security: String,
    /// "closed" or "open".
    pub(crate) mode: &'static str,
    pub(crate) concurrency: Option<usize>,
    pub(crate) connections: usize,
    /// Open loop: latency counts from when each call was due, not when it was sent.
    pub(crate) coordinated_omission_corrected: bool,
    pub(crate) warmup_calls: u64,
    pub(crate) total: Part,
    pub(crate) steps: Vec<Part>,
    /// Second by second, from the start of measurement (by when calls were due).
    pub(crate) timeline: Vec<Part>,
}

/// One part of a run: the whole, a step or a second.
#[derive(Debug, Serialize)]
pub(crate) struct Part {
    /// The offered rate (open loop).
    pub(crate) rate: Option<f64>,
    pub(crate) seconds: f64,
    pub(crate) calls: u64,
    pub(crate) ok: u64,
    pub(crate) calls_per_second: f64,
    /// Calls answered OK per second: of a step, those answered during it.
    pub(crate) goodput: f64,
    pub(crate) codes: BTreeMap<&'static str, u64>,
    /// Of calls answered OK.
    pub(crate) latency_ms: Option<Latency>,
    /// Of failed calls.
    pub(crate) failed_latency_ms: Option<Latency>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
    pub(crate) mean: f64,
}

// === impl Part ===

impl Part {
    /// `tally` over its own window, or `seconds` when given (a step, a second).
    pub(crate) fn new(tally: &Tally, rate: Option<f64>, seconds: Option<f64>) -> Part {
        let seconds = seconds.unwrap_or_else(|| window(tally).as_secs_f64());
        let per_second = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Part {
            rate,
            seconds,
            calls: tally.calls(),
            ok: tally.ok.len(),
            calls_per_second: per_second(tally.calls()),
            goodput: per_second(tally.ok.len()),
            codes: tally.codes.clone(),
            latency_ms: Latency::of(&tally.ok),
            failed_latency_ms: Latency::of(&tally.failed),
        }
    }
}

// === impl Latency ===

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Option<Latency> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        })
    }

    fn line(&self) -> String {
        format!(
            "p50 {} · p90 {} · p99 {} · p99.9 {} · max {} · mean {}",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            ms(self.mean)
        )
    }
}

fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.1} ms")
    }
}

// === impl Report ===

impl Report {
    /// The parts of `recorder`'s run. `step_seconds` is each step's planned length (open loop).
    pub(crate) fn parts(
        recorder: &Recorder,
        rates: &[Option<f64>],
        step_seconds: Option<f64>,
    ) -> (Part, Vec<Part>, Vec<Part>) {
        let total = Part::new(
            &recorder.total(),
            None,
            step_seconds.map(|s| s * rates.len() as f64),
        );
        let steps = recorder
            .steps
            .iter()
            .zip(rates)
            .zip(&recorder.answered_ok)
            .map(|((tally, rate), answered)| {
                let mut part = Part::new(tally, *rate, step_seconds);
                if let Some(seconds) = step_seconds.filter(|s| *s > 0.0) {
                    part.goodput = *answered as f64 / seconds;
                }
                part
            })
            .collect();
        let timeline = recorder
            .seconds
            .iter()
            .map(|tally| Part::new(tally, None, Some(1.0)))
            .collect();
        (total, steps, timeline)
    }

    /// The table a person reads.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let how = match self.concurrency {
            Some(n) => format!("closed loop, {n} callers"),
            None => "open loop (latency from when each call was due)".to_owned(),
        };
        let _ = writeln!(
            out,
            "herald bench: {} on {} ({})\n{how}, {} connection{}, {:.2} s measured",
            self.method,
            self.target,
            self.security,
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.total.seconds,
        );
        let total = &self.total;
        let _ = writeln!(
            out,
            "  calls      {:>10}  {:>10.1}/s",
            total.calls, total.calls_per_second
        );
        let _ = writeln!(
            out,
            "  OK         {:>10}  {:>10.1}/s",
            total.ok, total.goodput
        );
        let codes: Vec<String> = total
            .codes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let _ = writeln!(out, "  codes      {}", codes.join(" · "));
        if let Some(latency) = &total.latency_ms {
            let _ = writeln!(out, "  latency    {} (OK)", latency.line());
        }
        if let Some(latency) = &total.failed_latency_ms {
            let _ = writeln!(out, "  latency    {} (failed)", latency.line());
        }
        if self.steps.len() > 1 {
            let _ = writeln!(
                out,
                "\n  {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "rate/s", "calls", "OK/s", "failed", "p50", "p99"
            );
            for step in &self.steps {
                let (p50, p99) = step
                    .latency_ms
                    .as_ref()
                    .map_or(("-".to_owned(), "-".to_owned()), |l| (ms(l.p50), ms(l.p99)));
                let _ = writeln!(
                    out,
                    "  {:>10.0} {:>10} {:>10.1} {:>10} {:>10} {:>10}",
                    step.rate.unwrap_or(0.0),
                    step.calls,
                    step.goodput,
                    step.calls - step.ok,
                    p50,
                    p99
                );
            }
        }
        out
    }
}
