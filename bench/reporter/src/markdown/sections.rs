//! One section per benchmark: what it measures, its charts and its full tables.

use std::fmt::Write as _;

use super::{cell, embed, number, ratio};
use crate::figures::{self, CPU, HANDSHAKES, IDLE, LATENCY, OVERLOAD, STREAMING, THROUGHPUT};
use crate::input::{Overload, Scenario};
use crate::metric::{self, Metric};
use crate::{Inputs, Roles, Run};

/// The share of all CPUs other programs may use during a round before it is flagged (as bench/run).
const FOREIGN_CPU_LIMIT: f64 = 0.05;

pub(super) fn load(out: &mut String, run: &Run, roles: &Roles, charts: &[&str]) {
    let scenarios = figures::scenarios(run, &["load", "latency"]);
    if scenarios.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Throughput, latency and CPU per call (`bench/run`)\n\n\
         h2load on one core, the server pinned to the other, plaintext h2c on loopback. \
         Latencies per request from h2load's log; CPU µs/call is the server's user + system \
         time over the measured window ÷ the calls completed in it.\n"
    );
    embed(
        out,
        charts,
        THROUGHPUT,
        "Throughput per scenario and server",
    );
    embed(
        out,
        charts,
        LATENCY,
        "Latency percentiles per scenario and server",
    );
    embed(out, charts, CPU, "Server CPU per call");
    for (name, scenario) in scenarios {
        let _ = writeln!(out, "### `{name}` ({})\n", figures::shape(scenario));
        skew(out, scenario);
        table(out, run, scenario, roles, &metric::LOAD);
    }
}

pub(super) fn idle(out: &mut String, run: &Run, roles: &Roles, charts: &[&str]) {
    for (name, scenario) in figures::scenarios(run, &["idle"]) {
        let _ = writeln!(
            out,
            "## Memory per idle connection (`{name}`)\n\n\
             The server's resident set (VmRSS) before and after opening {} connections that each \
             completed the HTTP/2 SETTINGS exchange and one call, then stayed idle, ÷ the number \
             of connections.\n",
            scenario.config.conns
        );
        embed(out, charts, IDLE, "Memory per idle connection");
        skew(out, scenario);
        table(out, run, scenario, roles, &[metric::KIB_PER_CONN]);
    }
}

/// One scenario's medians per server, then the ratio rows, clearly apart.
fn table(out: &mut String, run: &Run, scenario: &Scenario, roles: &Roles, metrics: &[Metric]) {
    let titles: Vec<&str> = metrics.iter().map(|m| m.title).collect();
    let _ = writeln!(
        out,
        "| server | {} | valid rounds |\n|---|{}---:|",
        titles.join(" | "),
        "---:|".repeat(metrics.len())
    );
    for label in &run.labels {
        let Some(summary) = scenario.summary(label) else {
            continue;
        };
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| cell((m.get)(&summary.metrics), *m))
            .collect();
        let _ = writeln!(
            out,
            "| `{label}` | {} | {}/{} |",
            cells.join(" | "),
            summary.valid_rounds,
            summary.rounds
        );
    }
    for (reference, what) in roles.references() {
        if reference == roles.herald || !run.labels.iter().any(|l| l == reference) {
            continue;
        }
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| ratio(scenario.paired_ratio(&roles.herald, reference, m.get)))
            .collect();
        let _ = writeln!(
            out,
            "| **herald ÷ {reference}** ({what}, paired) | {} | |",
            cells.join(" | ")
        );
    }
    let _ = writeln!(out);
}

pub(super) fn overload(out: &mut String, overload: &Overload, charts: &[&str]) {
    let o = &overload.options;
    let _ = writeln!(
        out,
        "## Overload (`bench/overload`)\n\n\
         A handler burning {} µs of CPU per call, offered {} its measured capacity by an open \
         loop, {} s per step, {} round(s). herald's admission: max_concurrency {}, {} queue, \
         queue timeout {} ms; both servers on one tokio worker with event_interval {}. Goodput: \
         OK answers per second ÷ capacity. Served p50/p99: latency of the calls answered OK, \
         from when each was due.\n",
        o.work_us,
        o.steps
            .iter()
            .map(|m| format!("{m}×"))
            .collect::<Vec<_>>()
            .join(", "),
        o.duration,
        o.rounds,
        o.max_concurrency,
        o.queue,
        o.queue_timeout_ms,
        o.event_interval
    );
    embed(
        out,
        charts,
        OVERLOAD,
        "Overload: goodput and served p99 per step",
    );
    let _ = writeln!(
        out,
        "| server | capacity/s | step | goodput ÷ capacity | served p50 ms | served p99 ms | failures per round |\n\
         |---|---:|---:|---:|---:|---:|---|"
    );
    for label in ["herald", "tonic"] {
        let Some(server) = overload.server(label) else {
            continue;
        };
        for (i, step) in server.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {label} | {} | {}× | {} | {} | {} | {} |",
                number(Some(server.capacity), 0),
                step.multiple,
                number(step.goodput_fraction, 2),
                number(step.p50_ms, 1),
                number(step.p99_ms, 1),
                overload.failures(label, i)
            );
        }
    }
    let _ = writeln!(out);
}

pub(super) fn handshakes(out: &mut String, inputs: &Inputs, charts: &[&str]) {
    let Some(handshakes) = &inputs.handshakes else {
        return;
    };
    let _ = writeln!(
        out,
        "## Mutual-TLS handshakes per second (`handshake-bench`)\n\n\
         herald's TLS on one server core, {} connections in flight from a rustls client on the \
         other; every connection a full handshake (or a resumed one) and the HTTP/2 SETTINGS \
         exchange. Ratios are against the same round's full ECDSA handshakes.\n",
        handshakes.meta.concurrency
    );
    embed(out, charts, HANDSHAKES, "Handshakes per second");
    let _ = writeln!(
        out,
        "| kind | handshakes/s | ratio vs ECDSA full | server CPU | counters |\n|---|---:|---:|---:|---|"
    );
    for kind in &handshakes.kinds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            kind.label,
            number(kind.handshakes_per_s_median, 0),
            ratio(kind.ratio_vs_ecdsa_full_median),
            kind.server_cpu_median
                .map_or("—".to_owned(), |c| format!("{:.0}%", c * 100.0)),
            if kind.mismatches.is_empty() {
                "OK".to_owned()
            } else {
                format!("**MISMATCH** {}", kind.mismatches.join("; "))
            }
        );
    }
    let _ = writeln!(out);
}

pub(super) fn streaming(out: &mut String, inputs: &Inputs, roles: &Roles, charts: &[&str]) {
    let Some(streaming) = &inputs.streaming else {
        return;
    };
    let _ = writeln!(
        out,
        "## Streaming throughput (`stream-bench`)\n\n\
         Server-streamed payload MB/s on one server core, one connection, plaintext and mutual \
         TLS. Ratios are paired per round.\n"
    );
    embed(out, charts, STREAMING, "Streaming MB/s");
    let _ = writeln!(
        out,
        "| server | transport | MB/s | rounds | **÷ tonic** (same transport) | mTLS ÷ plaintext |\n\
         |---|---|---:|---:|---:|---:|"
    );
    for result in &streaming.results {
        let transport = result.transport.as_str();
        let server = result.server.as_str();
        let _ = writeln!(
            out,
            "| `{server}` | {transport} | {} | {} | {} | {} |",
            number(result.mb_per_s_median, 0),
            result.rounds.len(),
            if server == roles.tonic {
                "—".to_owned()
            } else {
                ratio(streaming.paired_ratio((server, transport), (&roles.tonic, transport)))
            },
            if transport == "mtls" {
                ratio(streaming.paired_ratio((server, "mtls"), (server, "plaintext")))
            } else {
                "—".to_owned()
            }
        );
    }
    let _ = writeln!(out);
}

/// A warning when other programs took a noticeable share of the CPUs during a round.
pub(super) fn skew(out: &mut String, scenario: &Scenario) {
    let worst = scenario
        .rounds
        .iter()
        .filter_map(|r| Some((r.foreign_cpu?, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((share, round)) = worst.filter(|(share, _)| *share > FOREIGN_CPU_LIMIT) {
        let _ = writeln!(
            out,
            "**Skewed: other programs used up to {:.0}% of the CPUs during a round (round {} \
             `{}`); rerun on an idle machine.**\n",
            share * 100.0,
            round.round,
            round.server
        );
    }
}
