//! Which charts the results make, and what goes in them.

use std::path::Path;

use plotters::chart::SeriesLabelPosition;

use crate::chart::{self, Bar, Bars, Lines, Series};
use crate::input::{OverloadStep, Scenario};
use crate::layers::{self, Layers};
use crate::metric::{self, Metric};
use crate::{BoxError, Inputs, Roles, Run};

pub const THROUGHPUT: &str = "throughput.svg";
pub const LATENCY: &str = "latency.svg";
pub const CPU: &str = "cpu-per-call.svg";
pub const IDLE: &str = "idle-memory.svg";
pub const OVERLOAD: &str = "overload.svg";
pub const HANDSHAKES: &str = "handshakes.svg";
pub const STREAMING: &str = "streaming.svg";
pub const LAYERS: &str = "layers.svg";

/// Writes every chart the inputs have data for into `dir`; returns the file names written.
///
/// # Errors
///
/// When a chart cannot be written.
pub fn write_all(
    dir: &Path,
    inputs: &Inputs,
    roles: &Roles,
) -> Result<Vec<&'static str>, BoxError> {
    let mut written = Vec::new();
    let mut bars = |name: &'static str, title: &str, panels: Vec<Bars>| {
        let panels: Vec<Bars> = panels.into_iter().filter(|p| !p.bars.is_empty()).collect();
        if panels.is_empty() {
            return Ok::<_, BoxError>(());
        }
        chart::bars(&dir.join(name), title, &panels)?;
        written.push(name);
        Ok(())
    };
    if let Some(run) = &inputs.run {
        let load = scenarios(run, &["load"]);
        bars(
            THROUGHPUT,
            "Throughput (median req/s; ratio to bare tonic, paired per round)",
            metric_panels(run, &load, roles, metric::RPS),
        )?;
        bars(
            CPU,
            "Server CPU per call (median µs of user + system time; ratio to bare tonic)",
            metric_panels(
                run,
                &scenarios(run, &["load", "latency"]),
                roles,
                metric::CPU,
            ),
        )?;
        bars(
            IDLE,
            "Memory per idle connection (median KiB of RSS; ratio to bare tonic)",
            metric_panels(run, &scenarios(run, &["idle"]), roles, metric::KIB_PER_CONN),
        )?;
    }
    if let Some(layers) = inputs.layers.as_ref().and_then(Layers::of) {
        bars(
            LAYERS,
            "Layers and observability (median req/s; ratio to observe-off, paired per round)",
            vec![layers_panel(&layers)],
        )?;
    }
    if let Some(handshakes) = &inputs.handshakes {
        let panel = Bars {
            title: format!(
                "herald, one server core, {} client connections in flight",
                handshakes.meta.concurrency
            ),
            unit: "handshakes/s".to_owned(),
            bars: handshakes
                .kinds
                .iter()
                .filter_map(|kind| {
                    Some(Bar {
                        label: kind.label.clone(),
                        value: kind.handshakes_per_s_median?,
                        note: (kind.kind != "ecdsa-full")
                            .then_some(kind.ratio_vs_ecdsa_full_median)
                            .flatten()
                            .map(|r| format!("{r:.2}× ECDSA full")),
                        color: chart::color("herald", 0),
                    })
                })
                .collect(),
        };
        bars(
            HANDSHAKES,
            "Mutual-TLS handshakes per second (median)",
            vec![panel],
        )?;
    }
    if let Some(streaming) = &inputs.streaming {
        let panel = Bars {
            title: "one connection, ratio to bare tonic over the same transport (paired per round)"
                .to_owned(),
            unit: "MB/s".to_owned(),
            bars: streaming
                .results
                .iter()
                .enumerate()
                .filter_map(|(i, result)| {
                    let transport = result.transport.as_str();
                    let ratio = (result.server != roles.tonic)
                        .then(|| {
                            streaming.paired_ratio(
                                (&result.server, transport),
                                (&roles.tonic, transport),
                            )
                        })
                        .flatten();
                    Some(Bar {
                        label: format!("{} ({transport})", result.server),
                        value: result.mb_per_s_median?,
                        note: ratio.map(|r| format!("{r:.2}× tonic")),
                        color: chart::color(&result.server, i),
                    })
                })
                .collect(),
        };
        bars(STREAMING, "Streaming MB/s (median)", vec![panel])?;
    }
    if let Some(run) = &inputs.run {
        let panels = latency_panels(run, &scenarios(run, &["load", "latency"]));
        if !panels.is_empty() {
            let title = "Latency percentiles per request (median over rounds, ms, log scale)";
            chart::lines(&dir.join(LATENCY), title, &panels, 2)?;
            written.push(LATENCY);
        }
    }
    if let Some(overload) = &inputs.overload {
        let labels: Vec<&str> = ["herald", "tonic"]
            .into_iter()
            .filter(|l| overload.server(l).is_some())
            .collect();
        let categories: Vec<String> = overload
            .options
            .steps
            .iter()
            .map(|m| format!("{m}× capacity"))
            .collect();
        let series = |get: fn(&OverloadStep) -> Option<f64>| -> Vec<Series> {
            labels
                .iter()
                .enumerate()
                .filter_map(|(i, label)| {
                    let server = overload.server(label)?;
                    Some(Series {
                        name: (*label).to_owned(),
                        values: server.steps.iter().map(get).collect(),
                        color: chart::color(label, i),
                    })
                })
                .collect()
        };
        let panels = [
            Lines {
                title: "Goodput ÷ capacity".to_owned(),
                categories: categories.clone(),
                unit: "goodput ÷ capacity".to_owned(),
                log_scale: false,
                series: series(|s| s.goodput_fraction),
                reference: Some((1.0, "capacity".to_owned())),
                legend: SeriesLabelPosition::LowerLeft,
            },
            Lines {
                title: "Served p99 (ms, log scale)".to_owned(),
                categories,
                unit: "ms".to_owned(),
                log_scale: true,
                series: series(|s| s.p99_ms),
                reference: Some((
                    overload.options.queue_timeout_ms as f64,
                    "herald's queue timeout".to_owned(),
                )),
                legend: SeriesLabelPosition::UpperLeft,
            },
        ];
        let title = format!(
            "Overload: a {} µs handler offered multiples of its capacity",
            overload.options.work_us
        );
        chart::lines(&dir.join(OVERLOAD), &title, &panels, 2)?;
        written.push(OVERLOAD);
    }
    Ok(written)
}

/// The scenarios of the given kinds, in the order of the run.
pub fn scenarios<'a>(run: &'a Run, kinds: &[&str]) -> Vec<&'a (String, Scenario)> {
    run.scenarios
        .iter()
        .filter(|(_, s)| kinds.contains(&s.config.kind.as_str()))
        .collect()
}

/// A scenario's shape in a few words, for titles.
pub fn shape(scenario: &Scenario) -> String {
    let c = &scenario.config;
    if c.kind == "idle" {
        format!("{} idle connections", c.conns)
    } else {
        let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        format!(
            "{} × {}, {} B",
            plural(c.conns, "connection"),
            plural(c.streams, "stream"),
            crate::markdown::thousands(c.payload)
        )
    }
}

fn metric_panels(
    run: &Run,
    scenarios: &[&(String, Scenario)],
    roles: &Roles,
    metric: Metric,
) -> Vec<Bars> {
    scenarios
        .iter()
        .map(|(name, scenario)| Bars {
            title: format!("{name} ({})", shape(scenario)),
            unit: metric.title.to_owned(),
            bars: run
                .labels
                .iter()
                .enumerate()
                .filter_map(|(i, label)| {
                    let value = (metric.get)(&scenario.summary(label)?.metrics)?;
                    let note = (*label != roles.tonic)
                        .then(|| scenario.paired_ratio(label, &roles.tonic, metric.get))
                        .flatten()
                        .map(|r| format!("{r:.2}× tonic"));
                    Some(Bar {
                        label: label.clone(),
                        value,
                        note,
                        color: chart::color(label, i),
                    })
                })
                .collect(),
        })
        .collect()
}

/// bench/layers' servers: herald's configurations in herald's colour, tonic in its own.
fn layers_panel(layers: &Layers<'_>) -> Bars {
    Bars {
        title: format!("{} ({})", layers::SCENARIO, shape(layers.scenario)),
        unit: metric::RPS.title.to_owned(),
        bars: layers
            .labels
            .iter()
            .enumerate()
            .filter_map(|(i, label)| {
                let value = (metric::RPS.get)(&layers.scenario.summary(label)?.metrics)?;
                let note = (label != layers::OFF)
                    .then(|| layers.ratio(label, layers::OFF, metric::RPS.get))
                    .flatten()
                    .map(|r| format!("{:.2}× {}", r.median, layers::OFF));
                let server = if label == layers::TONIC {
                    layers::TONIC
                } else {
                    "herald"
                };
                Some(Bar {
                    label: label.clone(),
                    value,
                    note,
                    color: chart::color(server, i),
                })
            })
            .collect(),
    }
}

fn latency_panels(run: &Run, scenarios: &[&(String, Scenario)]) -> Vec<Lines> {
    scenarios
        .iter()
        .map(|(name, scenario)| Lines {
            title: format!("{name} ({})", shape(scenario)),
            categories: metric::PERCENTILES
                .iter()
                .map(|m| m.title.trim_end_matches(" ms").to_owned())
                .collect(),
            unit: "ms".to_owned(),
            log_scale: true,
            series: run
                .labels
                .iter()
                .enumerate()
                .filter_map(|(i, label)| {
                    let summary = scenario.summary(label)?;
                    let values = metric::PERCENTILES
                        .iter()
                        .map(|m| (m.get)(&summary.metrics))
                        .collect();
                    Some(Series {
                        name: label.clone(),
                        values,
                        color: chart::color(label, i),
                    })
                })
                .collect(),
            reference: None,
            legend: SeriesLabelPosition::UpperLeft,
        })
        .collect()
}
