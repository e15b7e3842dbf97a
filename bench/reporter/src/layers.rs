//! bench/layers' results: the same herald-echo with its limits layers and its request
//! observability switched off and on, plus bare tonic for scale, in interleaved rounds of one
//! bench/run scenario. This knows which label is which and the paired ratios issue #6 judges
//! herald by: all observability on may cost at most 5% of the throughput it has off.
//!
//! The labels are bench/layers' own (it passes them to bench/run), so they are fixed here rather
//! than options like bench/run's `--herald`/`--tonic` roles.

use crate::Run;
use crate::input::{self, Metrics, Scenario};

/// Where bench/layers writes its results, relative to the results directory.
pub const FILE: &str = "layers/results.json";
/// The one scenario bench/layers runs.
pub const SCENARIO: &str = "small-unary-many-streams";
/// The baseline of every ratio (bench/layers' first server): limits on, observability off.
pub const OFF: &str = "observe-off";
/// No limits layers and no observability.
pub const BARE: &str = "bare";
/// herald's defaults: limits and per-request metrics.
pub const DEFAULT: &str = "default";
/// Everything observable on: metrics, access log, sampled OpenTelemetry spans.
pub const ALL: &str = "all";
pub const TONIC: &str = "tonic";
/// Issue #6's target: `all` ÷ `observe-off` req/s at least this, i.e. a cost of at most 5%.
pub const TARGET: f64 = 0.95;

/// What each of bench/layers' servers is.
const SERVERS: [(&str, &str); 6] = [
    (
        OFF,
        "limits (ACL, rate check, admission) on, request observability off",
    ),
    (
        BARE,
        "no limits, no request observability: routing, Context and dispatch alone",
    ),
    (DEFAULT, "limits + per-request metrics: herald's defaults"),
    (
        ALL,
        "default + JSON access log to a file + OpenTelemetry spans, sampled (`--sampling` in its command), over OTLP",
    ),
    ("all-traced", "all, every trace sampled: the worst case"),
    (TONIC, "bare tonic, for scale"),
];

/// bench/layers' scenario in its results.
#[derive(Debug)]
pub struct Layers<'a> {
    /// The servers in the order of the run.
    pub labels: &'a [String],
    pub scenario: &'a Scenario,
}

/// A paired ratio: the median of the per-round ratios, as run.py computes it, and their spread.
#[derive(Debug, PartialEq)]
pub struct Paired {
    pub median: f64,
    pub rounds: usize,
    pub min: f64,
    pub max: f64,
}

/// What a bench/layers label stands for; empty for a label it does not use.
pub fn describe(label: &str) -> &'static str {
    SERVERS
        .iter()
        .find(|(l, _)| *l == label)
        .map_or("", |(_, what)| what)
}

// === impl Layers ===

impl<'a> Layers<'a> {
    /// `None` when the run has no `small-unary-many-streams` scenario.
    pub fn of(run: &'a Run) -> Option<Self> {
        let (_, scenario) = run.scenarios.iter().find(|(name, _)| name == SCENARIO)?;
        Some(Layers {
            labels: &run.labels,
            scenario,
        })
    }

    /// `label`'s metric ÷ `reference`'s in the same round, over the rounds where both are valid;
    /// `None` when there are none.
    pub fn ratio(
        &self,
        label: &str,
        reference: &str,
        metric: fn(&Metrics) -> Option<f64>,
    ) -> Option<Paired> {
        Paired::of(self.scenario.paired_ratios(label, reference, metric))
    }
}

// === impl Paired ===

impl Paired {
    fn of(ratios: Vec<f64>) -> Option<Self> {
        let (min, max) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                (lo.min(*r), hi.max(*r))
            });
        let rounds = ratios.len();
        Some(Paired {
            median: input::median(ratios)?,
            rounds,
            min,
            max,
        })
    }

    /// Whether the ratio reaches issue #6's target.
    pub fn meets_target(&self) -> bool {
        self.median >= TARGET
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn scenario(rounds: serde_json::Value) -> Scenario {
        Scenario::deserialize(serde_json::json!({
            "config": {"kind": "load", "conns": 50, "streams": 20, "payload": 100},
            "rounds": rounds,
            "summary": {"servers": {}},
        }))
        .expect("a scenario in run.py's format")
    }

    fn round(server: &str, round: u32, rps: f64) -> serde_json::Value {
        serde_json::json!({"server": server, "round": round, "rps": rps, "logged_ok": 10})
    }

    #[test]
    fn ratios_pair_rounds_and_skip_invalid_ones() {
        let mut failed = round(OFF, 3, 50.0);
        failed["error"] = "server died".into();
        let mut nothing_logged = round(ALL, 4, 100.0);
        nothing_logged["logged_ok"] = 0.into();
        let scenario = scenario(serde_json::json!([
            round(OFF, 1, 100.0),
            round(ALL, 1, 96.0),
            round(OFF, 2, 200.0),
            round(ALL, 2, 188.0),
            failed,
            round(ALL, 3, 10.0),
            round(OFF, 4, 100.0),
            nothing_logged,
            round(OFF, 5, 100.0),
            round(ALL, 5, 97.0),
        ]));
        let labels = [OFF.to_owned(), ALL.to_owned()];
        let layers = Layers {
            labels: &labels,
            scenario: &scenario,
        };
        let paired = layers
            .ratio(ALL, OFF, |m| m.rps)
            .expect("three paired rounds");
        assert_eq!(paired.rounds, 3);
        assert_eq!(paired.median, 0.96);
        assert_eq!((paired.min, paired.max), (0.94, 0.97));
        assert!(paired.meets_target());
        assert_eq!(layers.ratio(BARE, OFF, |m| m.rps), None);
    }

    #[test]
    fn target_is_five_percent() {
        let paired = |median| Paired {
            median,
            rounds: 1,
            min: median,
            max: median,
        };
        assert!(paired(0.95).meets_target());
        assert!(!paired(0.949).meets_target());
    }
}
