//! REPORT.md: where the numbers come from, a summary table of herald against the references,
//! then one section per benchmark with its charts and full tables.

mod layers;
mod sections;
mod summary;

use std::fmt::Write as _;

use crate::metric::Metric;
use crate::{Inputs, Roles, Run};

/// The whole report.
pub fn report(inputs: &Inputs, roles: &Roles, charts: &[&str]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# herald benchmark report\n\n\
         Written by `bench/report` from the results in this directory; `bench/all` reruns every \
         benchmark and this report (see bench/README.md).\n\n\
         **Ratios are herald ÷ reference**: `herald ÷ tonic` against bare tonic, `herald ÷ cpp` \
         against gRPC C++. For bench/run's scenarios and stream-bench each ratio is taken per \
         round against the same round's reference, then the median of those (interleaved rounds \
         cancel slow drift of the machine); for the overload steps it is the ratio of the \
         medians. Above 1 is better for req/s, MB/s and goodput; below 1 is better for latency, \
         CPU per call and memory. Compare ratios within one run, never absolute numbers across \
         runs.\n"
    );
    sources(&mut out, inputs);
    summary::summary(&mut out, inputs, roles);
    if let Some(run) = &inputs.run {
        sections::load(&mut out, run, roles, charts);
        sections::idle(&mut out, run, roles, charts);
    }
    if let Some(run) = &inputs.layers {
        layers::layers(&mut out, run, charts);
    }
    if let Some(overload) = &inputs.overload {
        sections::overload(&mut out, overload, charts);
    }
    sections::handshakes(&mut out, inputs, charts);
    sections::streaming(&mut out, inputs, roles, charts);
    out
}

fn sources(out: &mut String, inputs: &Inputs) {
    let _ = writeln!(out, "Inputs:\n");
    run_source(out, "results.json", "bench/run", inputs.run.as_ref());
    run_source(
        out,
        crate::layers::FILE,
        "bench/layers",
        inputs.layers.as_ref(),
    );
    let missing = |file: &str, by: &str| format!("- `{file}` ({by}): not found");
    let overload = inputs.overload.as_ref().map(|o| {
        format!(
            "- `overload.json` (bench/overload): {} round(s) × {} s per step",
            o.options.rounds, o.options.duration
        )
    });
    let handshakes = inputs.handshakes.as_ref().map(|h| {
        format!(
            "- `handshakes.json` (handshake-bench): {} round(s) × {} s per kind",
            h.meta.rounds, h.meta.seconds
        )
    });
    let streaming = inputs.streaming.as_ref().map(|s| {
        format!(
            "- `streaming.json` (stream-bench): {} round(s) × {} s per case",
            s.meta.rounds.map_or("?".to_owned(), |r| r.to_string()),
            s.meta.seconds.map_or("?".to_owned(), |s| s.to_string())
        )
    });
    let _ = writeln!(
        out,
        "{}\n{}\n{}\n",
        overload.unwrap_or_else(|| missing("overload.json", "bench/overload")),
        handshakes.unwrap_or_else(|| missing("handshakes.json", "handshake-bench")),
        streaming.unwrap_or_else(|| missing("streaming.json", "stream-bench")),
    );
}

/// One line for a results.json in bench/run's format, with its servers' commands.
fn run_source(out: &mut String, file: &str, by: &str, run: Option<&Run>) {
    let Some(run) = run else {
        let _ = writeln!(out, "- `{file}` ({by}): not found");
        return;
    };
    let m = &run.meta;
    let _ = writeln!(
        out,
        "- `{file}` ({by}): started {}{}, {} interleaved round(s) × ({} s warm-up \
         + {} s measured) per server per scenario, {} CPUs, Linux {}, {}{}{}",
        m.started,
        m.finished
            .as_deref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default(),
        m.rounds,
        m.warm_up_time_s.unwrap_or(0.0),
        m.duration_s,
        m.cpus.map_or("?".to_owned(), |c| c.to_string()),
        m.kernel.as_deref().unwrap_or("?"),
        m.h2load.as_deref().unwrap_or("h2load"),
        m.git_rev
            .as_deref()
            .map(|r| format!(", git {}", &r[..r.len().min(12)]))
            .unwrap_or_default(),
        match m.cpu_busy_before {
            Some(busy) if busy > 0.10 => format!(
                " — **the CPUs were {:.0}% busy before the run: numbers skewed**",
                busy * 100.0
            ),
            _ => String::new(),
        },
    );
    for (label, command) in &m.servers {
        let _ = writeln!(out, "  - `{label}`: `{}`", command.as_str().unwrap_or("?"));
    }
}

fn better(higher: bool) -> String {
    if higher { "higher" } else { "lower" }.to_owned()
}

fn embed(out: &mut String, charts: &[&str], file: &str, alt: &str) {
    if charts.contains(&file) {
        let _ = writeln!(out, "![{alt}]({file})\n");
    }
}

/// A metric's value in a table: latencies below 1 ms get a third decimal.
fn cell(value: Option<f64>, metric: Metric) -> String {
    match value {
        Some(v) if metric.digits == 2 && v < 1.0 => number(value, 3),
        _ => number(value, metric.digits),
    }
}

fn number(value: Option<f64>, digits: usize) -> String {
    match value {
        None => "—".to_owned(),
        Some(v) if digits == 0 && v >= 0.0 => thousands(v.round() as u64),
        Some(v) => format!("{v:.digits$}"),
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("—".to_owned(), |r| format!("{r:.2}"))
}

fn quotient(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b.filter(|b| *b > 0.0)?)
}

/// 1234567 as "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn quotient_needs_both_and_a_positive_divisor() {
        assert_eq!(quotient(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(quotient(Some(3.0), Some(0.0)), None);
        assert_eq!(quotient(None, Some(2.0)), None);
    }
}
