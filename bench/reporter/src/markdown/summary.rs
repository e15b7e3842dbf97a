//! The summary table: herald against both references, the headline numbers of every benchmark.

use std::fmt::Write as _;

use super::{better, cell, number, quotient, ratio};
use crate::input::OverloadStep;
use crate::metric::{self, Metric};
use crate::{Inputs, Roles};

/// What the summary shows of an overload step.
struct StepMetric {
    title: &'static str,
    higher_is_better: bool,
    digits: usize,
    get: fn(&OverloadStep) -> Option<f64>,
}

const STEP_METRICS: [StepMetric; 2] = [
    StepMetric {
        title: "goodput ÷ capacity",
        higher_is_better: true,
        digits: 2,
        get: |s| s.goodput_fraction,
    },
    StepMetric {
        title: "served p99 ms",
        higher_is_better: false,
        digits: 1,
        get: |s| s.p99_ms,
    },
];

/// herald against the references in one table: the headline numbers of every scenario.
pub(super) fn summary(out: &mut String, inputs: &Inputs, roles: &Roles) {
    let mut rows = Vec::new();
    if let Some(run) = &inputs.run {
        for (name, scenario) in &run.scenarios {
            let metrics: &[Metric] = match scenario.config.kind.as_str() {
                "idle" => &[metric::KIB_PER_CONN],
                "latency" => &[metric::P50, metric::P99, metric::CPU],
                _ => &[metric::RPS, metric::P99, metric::CPU],
            };
            for metric in metrics {
                let median = |label: &str| {
                    scenario
                        .summary(label)
                        .and_then(|s| (metric.get)(&s.metrics))
                };
                if [&roles.herald, &roles.tonic, &roles.cpp]
                    .iter()
                    .all(|label| median(label).is_none())
                {
                    continue; // not measured by this run, e.g. CPU in results from before it was
                }
                let value = |label: &str| cell(median(label), *metric);
                let ratio = |reference: &str| {
                    ratio(scenario.paired_ratio(&roles.herald, reference, metric.get))
                };
                rows.push([
                    format!("`{name}`"),
                    metric.title.to_owned(),
                    better(metric.higher_is_better),
                    value(&roles.herald),
                    value(&roles.tonic),
                    value(&roles.cpp),
                    ratio(&roles.tonic),
                    ratio(&roles.cpp),
                ]);
            }
        }
    }
    if let Some(overload) = &inputs.overload {
        for (i, multiple) in overload.options.steps.iter().enumerate() {
            let step = |label| {
                overload
                    .server(label)
                    .and_then(|s| s.steps.into_iter().nth(i))
            };
            let (herald, tonic) = (step("herald"), step("tonic"));
            for metric in STEP_METRICS {
                let (h, t) = (
                    herald.as_ref().and_then(metric.get),
                    tonic.as_ref().and_then(metric.get),
                );
                rows.push([
                    format!("overload {multiple}×"),
                    metric.title.to_owned(),
                    better(metric.higher_is_better),
                    number(h, metric.digits),
                    number(t, metric.digits),
                    "—".to_owned(),
                    ratio(quotient(h, t)),
                    "—".to_owned(),
                ]);
            }
        }
    }
    if let Some(streaming) = &inputs.streaming {
        for transport in streaming.transports() {
            let value = |label: &str| {
                streaming
                    .find(label, transport)
                    .and_then(|r| r.mb_per_s_median)
            };
            let ratio_to = |reference: &str| {
                ratio(streaming.paired_ratio((&roles.herald, transport), (reference, transport)))
            };
            rows.push([
                format!("streaming ({transport})"),
                "MB/s".to_owned(),
                better(true),
                number(value(&roles.herald), 0),
                number(value(&roles.tonic), 0),
                number(value(&roles.cpp), 0),
                ratio_to(&roles.tonic),
                ratio_to(&roles.cpp),
            ]);
        }
        let over_plaintext =
            |label: &str| streaming.paired_ratio((label, "mtls"), (label, "plaintext"));
        let (herald, tonic) = (over_plaintext(&roles.herald), over_plaintext(&roles.tonic));
        if herald.is_some() || tonic.is_some() {
            rows.push([
                "streaming".to_owned(),
                "mTLS ÷ plaintext".to_owned(),
                better(true),
                ratio(herald),
                ratio(tonic),
                "—".to_owned(),
                ratio(quotient(herald, tonic)),
                "—".to_owned(),
            ]);
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Summary\n\nMedians over rounds; the last two columns are the ratios, **herald ÷ \
         reference**.\n\n\
         | scenario | metric | better | herald (`{}`) | tonic (`{}`) | gRPC C++ (`{}`) | **herald ÷ tonic** | **herald ÷ cpp** |\n\
         |---|---|---|---:|---:|---:|---:|---:|",
        roles.herald, roles.tonic, roles.cpp
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    let _ = writeln!(out);
}
