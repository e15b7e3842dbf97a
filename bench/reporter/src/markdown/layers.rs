//! The layers and observability section: what each of herald's layers and observability costs
//! (bench/layers), and the verdict on issue #6's ≤ 5% target.

use std::fmt::Write as _;

use super::{cell, embed, sections};
use crate::figures::{self, LAYERS};
use crate::layers::{self, ALL, BARE, DEFAULT, Layers, OFF, Paired, TARGET, TONIC};
use crate::metric::{self, Metric};

pub(super) fn layers(out: &mut String, run: &crate::Run, charts: &[&str]) {
    let _ = writeln!(out, "## Layers and observability (`bench/layers`)\n");
    let Some(layers) = Layers::of(run) else {
        let _ = writeln!(
            out,
            "`{}` has no `{}` scenario.\n",
            layers::FILE,
            layers::SCENARIO
        );
        return;
    };
    let _ = writeln!(
        out,
        "The same herald-echo with its limits layers and its request observability switched \
         off and on, and bare tonic for scale, in interleaved rounds of bench/run's `{}` ({}); \
         the commands are listed under Inputs. Ratios are each round's value ÷ the same round's \
         `{OFF}`, then the median of those.\n",
        layers::SCENARIO,
        figures::shape(layers.scenario)
    );
    verdict(out, &layers);
    embed(out, charts, LAYERS, "Throughput per herald configuration");
    sections::skew(out, layers.scenario);
    table(out, &layers);
}

/// Issue #6's target, met or missed, and the ratios that explain it.
fn verdict(out: &mut String, layers: &Layers<'_>) {
    let rps = |label: &str, reference: &str| layers.ratio(label, reference, metric::RPS.get);
    let headline = match rps(ALL, OFF) {
        Some(all) => {
            let verdict = if all.meets_target() { "met" } else { "missed" };
            let caution = if all.rounds < 3 {
                "; fewer than 3 paired rounds, too few to rely on"
            } else {
                ""
            };
            format!(
                "**{verdict}**: `{ALL}` ÷ `{OFF}` req/s is {}, target ≥ {TARGET:.2}{caution}",
                paired(Some(all))
            )
        }
        None => format!("**not measured**: no round has both `{ALL}` and `{OFF}`"),
    };
    let _ = writeln!(
        out,
        "Issue #6, \"throughput with all observability on vs off costs ≤ 5%\": {headline}.\n\n\
         - `{DEFAULT}` ÷ `{OFF}` req/s (per-request metrics alone): {}\n\
         - `{BARE}` ÷ `{OFF}` req/s (`{BARE}` is without the limits layers, so above 1 is what \
         ACL, rate check and admission cost): {}\n\
         - herald `{DEFAULT}` ÷ `{TONIC}` req/s: {}\n",
        paired(rps(DEFAULT, OFF)),
        paired(rps(BARE, OFF)),
        paired(rps(DEFAULT, TONIC)),
    );
}

/// Medians per server and their paired ratios to the baseline.
fn table(out: &mut String, layers: &Layers<'_>) {
    const COLUMNS: [Metric; 3] = [metric::RPS, metric::P99, metric::CPU];
    const RATIOS: [Metric; 2] = [metric::RPS, metric::CPU];
    let _ = writeln!(
        out,
        "| server | what | req/s | p99 ms | CPU µs/call | **req/s ÷ {OFF}** | **CPU µs/call ÷ {OFF}** | valid rounds |\n\
         |---|---|---:|---:|---:|---:|---:|---:|"
    );
    for label in layers.labels {
        let Some(summary) = layers.scenario.summary(label) else {
            continue;
        };
        let medians = COLUMNS.map(|m| cell((m.get)(&summary.metrics), m));
        let ratios = RATIOS.map(|m| {
            if label == OFF {
                "baseline".to_owned()
            } else {
                super::ratio(layers.ratio(label, OFF, m.get).map(|p| p.median))
            }
        });
        let _ = writeln!(
            out,
            "| `{label}` | {} | {} | {} | {}/{} |",
            layers::describe(label),
            medians.join(" | "),
            ratios.join(" | "),
            summary.valid_rounds,
            summary.rounds
        );
    }
    let _ = writeln!(out);
}

/// A paired ratio with how many rounds it rests on and their spread.
fn paired(ratio: Option<Paired>) -> String {
    match ratio {
        None => "— (no paired rounds)".to_owned(),
        Some(p) if p.rounds == 1 => format!("{:.2} (1 round)", p.median),
        Some(p) => format!(
            "{:.2} (median of {} rounds, {:.2}–{:.2})",
            p.median, p.rounds, p.min, p.max
        ),
    }
}
