//! The benchmark results this tool reads, as the scripts write them. Every field that an
//! older or partial run may lack is an `Option`: the report shows "—" rather than failing.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::BoxError;

/// `target/bench/results.json`, written by `bench/run`.
#[derive(Debug, Deserialize)]
pub struct Results {
    pub meta: RunMeta,
    /// In the order the run measured them.
    pub scenarios: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct RunMeta {
    pub started: String,
    pub finished: Option<String>,
    pub cpus: Option<u32>,
    pub kernel: Option<String>,
    pub h2load: Option<String>,
    pub rounds: u32,
    pub duration_s: f64,
    pub warm_up_time_s: Option<f64>,
    pub cpu_busy_before: Option<f64>,
    pub git_rev: Option<String>,
    /// Label to command line, the first being run.py's baseline.
    pub servers: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Scenario {
    pub config: ScenarioConfig,
    pub rounds: Vec<Round>,
    pub summary: Summary,
}

#[derive(Debug, Deserialize)]
pub struct ScenarioConfig {
    /// `load`, `latency` or `idle`; results from before scenario kinds are `load`.
    #[serde(default = "load")]
    pub kind: String,
    pub conns: u64,
    pub streams: u64,
    pub payload: u64,
}

fn load() -> String {
    "load".to_owned()
}

/// One server's round of a scenario.
#[derive(Debug, Deserialize)]
pub struct Round {
    pub server: String,
    pub round: u32,
    pub error: Option<String>,
    /// Successful requests in h2load's log; run.py counts a load round without any as invalid.
    pub logged_ok: Option<u64>,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub foreign_cpu: Option<f64>,
}

/// What a round measured, and the medians over rounds in `Summary`.
#[derive(Debug, Default, Deserialize)]
pub struct Metrics {
    pub rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub cpu_us_per_call: Option<f64>,
    pub kib_per_conn: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Summary {
    pub servers: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct ServerSummary {
    pub valid_rounds: u32,
    pub rounds: u32,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// `target/bench/overload.json`, written by `bench/overload`.
#[derive(Debug, Deserialize)]
pub struct Overload {
    pub options: OverloadOptions,
    pub rounds: Vec<OverloadRound>,
    pub summary: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct OverloadOptions {
    pub work_us: u64,
    pub steps: Vec<f64>,
    pub duration: f64,
    pub rounds: u32,
    pub queue_timeout_ms: u64,
    pub max_concurrency: u64,
    pub queue: String,
    pub event_interval: u64,
}

#[derive(Debug, Deserialize)]
pub struct OverloadRound {
    pub label: String,
    pub steps: Vec<OverloadRoundStep>,
}

#[derive(Debug, Deserialize)]
pub struct OverloadRoundStep {
    pub codes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct OverloadServer {
    pub capacity: f64,
    pub steps: Vec<OverloadStep>,
}

#[derive(Debug, Deserialize)]
pub struct OverloadStep {
    pub multiple: f64,
    pub goodput_fraction: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// `target/bench/handshakes.json`, written by `handshake-bench`.
#[derive(Debug, Deserialize)]
pub struct Handshakes {
    pub meta: HandshakesMeta,
    pub kinds: Vec<HandshakeKind>,
}

#[derive(Debug, Deserialize)]
pub struct HandshakesMeta {
    pub rounds: u32,
    pub seconds: f64,
    pub concurrency: u32,
}

#[derive(Debug, Deserialize)]
pub struct HandshakeKind {
    /// `ecdsa-full` (the baseline of the ratios), `rsa-full` or `ecdsa-resumed`.
    pub kind: String,
    pub label: String,
    pub handshakes_per_s_median: Option<f64>,
    pub ratio_vs_ecdsa_full_median: Option<f64>,
    pub server_cpu_median: Option<f64>,
    pub mismatches: Vec<String>,
}

/// `target/bench/streaming.json`, written by `stream-bench`.
#[derive(Debug, Deserialize)]
pub struct Streaming {
    #[serde(default)]
    pub meta: StreamingMeta,
    pub results: Vec<StreamingResult>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamingMeta {
    pub rounds: Option<u32>,
    pub seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct StreamingResult {
    pub server: String,
    pub transport: String,
    pub mb_per_s_median: Option<f64>,
    /// MB/s of each round; the i-th round of every case is the same interleaved round.
    #[serde(default)]
    pub rounds: Vec<serde_json::Value>,
}

// === impl Results ===

impl Results {
    /// The server labels in the order of the run.
    pub fn labels(&self) -> Vec<String> {
        self.meta.servers.keys().cloned().collect()
    }

    /// The scenarios in the order of the run, each with its name.
    pub fn scenarios(&self) -> Result<Vec<(String, Scenario)>, BoxError> {
        self.scenarios
            .iter()
            .map(|(name, value)| {
                let scenario =
                    Scenario::deserialize(value).map_err(|e| format!("scenario {name}: {e}"))?;
                Ok((name.clone(), scenario))
            })
            .collect()
    }
}

// === impl Scenario ===

impl Scenario {
    /// The median of each metric over `label`'s valid rounds, as run.py summarized them.
    pub fn summary(&self, label: &str) -> Option<ServerSummary> {
        ServerSummary::deserialize(self.summary.servers.get(label)?).ok()
    }

    /// The median over rounds of `label`'s value ÷ `reference`'s value in the same round; `None`
    /// when no round has both.
    pub fn paired_ratio(
        &self,
        label: &str,
        reference: &str,
        metric: fn(&Metrics) -> Option<f64>,
    ) -> Option<f64> {
        median(self.paired_ratios(label, reference, metric))
    }

    /// `label`'s value ÷ `reference`'s value in each round where both are valid, in round order:
    /// run.py's `summarize` takes the median of these.
    pub fn paired_ratios(
        &self,
        label: &str,
        reference: &str,
        metric: fn(&Metrics) -> Option<f64>,
    ) -> Vec<f64> {
        let value = |server: &str, round: u32| {
            self.rounds
                .iter()
                .find(|r| r.server == server && r.round == round && r.is_valid())
                .and_then(|r| metric(&r.metrics))
        };
        self.rounds
            .iter()
            .filter(|r| r.server == label)
            .filter_map(|r| {
                let ours = value(label, r.round)?;
                let theirs = value(reference, r.round)?;
                (theirs > 0.0).then(|| ours / theirs)
            })
            .collect()
    }
}

// === impl Round ===

impl Round {
    /// As run.py's `valid`: no error, and some successful requests (or, idle, a memory figure).
    pub fn is_valid(&self) -> bool {
        self.error.is_none()
            && (self.logged_ok.is_some_and(|n| n > 0) || self.metrics.kib_per_conn.is_some())
    }
}

// === impl Streaming ===

impl Streaming {
    pub fn find(&self, server: &str, transport: &str) -> Option<&StreamingResult> {
        self.results
            .iter()
            .find(|r| r.server == server && r.transport == transport)
    }

    /// The median over rounds of `a`'s MB/s ÷ `b`'s in the same round; each is (server, transport).
    pub fn paired_ratio(&self, a: (&str, &str), b: (&str, &str)) -> Option<f64> {
        let rounds = |(server, transport)| {
            let result = self.find(server, transport)?;
            Some(
                result
                    .rounds
                    .iter()
                    .map(serde_json::Value::as_f64)
                    .collect::<Vec<_>>(),
            )
        };
        let (a, b) = (rounds(a)?, rounds(b)?);
        median(
            a.iter()
                .zip(&b)
                .filter_map(|(a, b)| Some(a.as_ref()? / b.filter(|b| *b > 0.0)?))
                .collect(),
        )
    }

    /// The transports measured, in the order of the results.
    pub fn transports(&self) -> Vec<&str> {
        let mut transports: Vec<&str> = Vec::new();
        for result in &self.results {
            if !transports.contains(&result.transport.as_str()) {
                transports.push(&result.transport);
            }
        }
        transports
    }
}

// === impl Overload ===

impl Overload {
    pub fn server(&self, label: &str) -> Option<OverloadServer> {
        OverloadServer::deserialize(self.summary.get(label)?).ok()
    }

    /// Failed calls per round at step `index` by status code, e.g. "RESOURCE_EXHAUSTED 3,950".
    pub fn failures(&self, label: &str, index: usize) -> String {
        let rounds: Vec<&OverloadRound> = self.rounds.iter().filter(|r| r.label == label).collect();
        let mut codes: Vec<(String, u64)> = Vec::new();
        for step in rounds.iter().filter_map(|r| r.steps.get(index)) {
            for (code, count) in &step.codes {
                if code == "OK" {
                    continue;
                }
                let count = count.as_u64().unwrap_or(0);
                match codes.iter_mut().find(|(c, _)| c == code) {
                    Some((_, total)) => *total += count,
                    None => codes.push((code.clone(), count)),
                }
            }
        }
        codes.sort();
        let per_round = rounds.len().max(1) as u64;
        let text: Vec<String> = codes
            .iter()
            .map(|(code, total)| {
                format!("{code} {}", crate::markdown::thousands(total / per_round))
            })
            .collect();
        if text.is_empty() {
            "none".to_owned()
        } else {
            text.join(", ")
        }
    }
}

/// Reads and parses `path`; `None` when the file does not exist.
///
/// # Errors
///
/// When the file exists but cannot be read or does not parse as `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, BoxError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()).into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

/// The median (mean of the middle two for an even count); `None` for no values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}
