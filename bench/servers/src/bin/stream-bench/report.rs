//! The results: a Markdown report for people, JSON for bench/report.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::cli::Options;
use crate::client::{CONNECTION_WINDOW, MAX_FRAME, STREAM_WINDOW};
use crate::round::Measured;
use crate::{CLIENT_CPU, Case, SERVER_CPU, Server, Transport};

/// herald's target: mutual-TLS streaming at least this share of plaintext's.
const MTLS_TARGET: f64 = 0.8;

/// Below this server CPU the server was not what limited the rate.
const SATURATED: f64 = 0.9;

/// Above this share of the CPUs used by other programs a round is flagged (as bench/run does).
pub(crate) const OTHER_CPU_LIMIT: f64 = 0.05;

/// A paired ratio: per round, numerator ÷ denominator measured in the same round.
struct Ratio {
    key: &'static str,
    label: &'static str,
    numerator: Case,
    denominator: Case,
    target: Option<f64>,
}

const RATIOS: [Ratio; 4] = [
    Ratio {
        key: "herald_mtls_over_plaintext",
        label: "herald: mTLS ÷ plaintext",
        numerator: Case::new(Server::Herald, Transport::Mtls),
        denominator: Case::new(Server::Herald, Transport::Plaintext),
        target: Some(MTLS_TARGET),
    },
    Ratio {
        key: "tonic_mtls_over_plaintext",
        label: "tonic: mTLS ÷ plaintext",
        numerator: Case::new(Server::Tonic, Transport::Mtls),
        denominator: Case::new(Server::Tonic, Transport::Plaintext),
        target: None,
    },
    Ratio {
        key: "herald_over_tonic_plaintext",
        label: "plaintext: herald ÷ tonic",
        numerator: Case::new(Server::Herald, Transport::Plaintext),
        denominator: Case::new(Server::Tonic, Transport::Plaintext),
        target: None,
    },
    Ratio {
        key: "herald_over_tonic_mtls",
        label: "mTLS: herald ÷ tonic",
        numerator: Case::new(Server::Herald, Transport::Mtls),
        denominator: Case::new(Server::Tonic, Transport::Mtls),
        target: None,
    },
];

/// The report's numbers for one case.
struct Summary {
    case: Case,
    mb_per_s: Vec<f64>,
    messages_per_s: Vec<f64>,
    server_cpu: Vec<f64>,
    client_cpu: Vec<f64>,
    other_cpu: Vec<f64>,
    steal_cpu: Vec<f64>,
    negotiated: Option<String>,
}

// === impl Ratio ===

impl Ratio {
    /// The per-round ratios, when both cases were measured.
    fn per_round(&self, summaries: &[Summary]) -> Option<Vec<f64>> {
        let find = |case| summaries.iter().find(|s| s.case == case);
        let (n, d) = (find(self.numerator)?, find(self.denominator)?);
        Some(
            n.mb_per_s
                .iter()
                .zip(&d.mb_per_s)
                .map(|(n, d)| n / d)
                .collect(),
        )
    }
}

// === impl Summary ===

impl Summary {
    fn all(rounds: &[Vec<Measured>], options: &Options) -> Vec<Summary> {
        let column = |i: usize, f: fn(&Measured) -> f64| rounds.iter().map(|r| f(&r[i])).collect();
        options
            .cases
            .iter()
            .enumerate()
            .map(|(i, case)| Summary {
                case: *case,
                mb_per_s: column(i, Measured::mb_per_s),
                messages_per_s: column(i, Measured::messages_per_s),
                server_cpu: column(i, |m| m.server_cpu),
                client_cpu: column(i, |m| m.client_cpu),
                other_cpu: column(i, |m| m.other_cpu),
                steal_cpu: column(i, |m| m.steal_cpu),
                negotiated: rounds.iter().find_map(|r| r[i].negotiated.clone()),
            })
            .collect()
    }
}

/// The report printed on stdout.
pub(crate) fn markdown(rounds: &[Vec<Measured>], options: &Options) -> String {
    let summaries = Summary::all(rounds, options);
    let mut out = String::new();
    let order: Vec<String> = options.cases.iter().map(|c| c.label()).collect();
    let _ = writeln!(out, "# Server-streaming throughput, one server core\n");
    let _ = writeln!(
        out,
        "{} round(s) × {} s per case, interleaved ({}), after {} s of warm-up per case. \
         Servers: one tokio worker each, pinned to CPU {SERVER_CPU}. Client: bare HTTP/2 (h2) \
         on one thread pinned to CPU {CLIENT_CPU}, {} stream(s) on one connection, windows \
         {} MiB per stream and {} MiB per connection, {} KiB frames. Messages: `bench.Msg` with \
         a {}-byte payload. CPU: {}.\n",
        options.rounds,
        options.seconds,
        order.join("; "),
        options.warmup,
        options.streams,
        STREAM_WINDOW / (1024 * 1024),
        CONNECTION_WINDOW / (1024 * 1024),
        MAX_FRAME / 1024,
        options.message_size,
        cpu_model(),
    );
    for summary in &summaries {
        if let Some(negotiated) = &summary.negotiated {
            let _ = writeln!(
                out,
                "- {}: {negotiated}, ECDSA P-256 certificates both ways",
                summary.case.label()
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| case | MB/s (median) | messages/s (median) | per-round MB/s | server CPU (median) | client CPU (median) |\n\
         |---|---:|---:|---|---:|---:|"
    );
    for s in &summaries {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | {:.0}% | {:.0}% |",
            s.case.label(),
            median(&s.mb_per_s),
            median(&s.messages_per_s),
            list(&s.mb_per_s, 0),
            median(&s.server_cpu) * 100.0,
            median(&s.client_cpu) * 100.0,
        );
    }
    let ratios: Vec<_> = RATIOS
        .iter()
        .filter_map(|r| Some((r, r.per_round(&summaries)?)))
        .collect();
    if !ratios.is_empty() {
        let _ = writeln!(
            out,
            "\n| ratio | median of per-round | per-round | target |\n|---|---:|---|---|"
        );
        for (ratio, per_round) in &ratios {
            let m = median(per_round);
            let target = ratio.target.map_or(String::new(), |t| {
                format!("≥ {t:.2}: {}", if m >= t { "met" } else { "**missed**" })
            });
            let _ = writeln!(
                out,
                "| {} | {m:.3} | {} | {target} |",
                ratio.label,
                list(per_round, 3)
            );
        }
    }
    let lowest = summaries
        .iter()
        .flat_map(|s| s.server_cpu.iter().copied())
        .fold(f64::INFINITY, f64::min);
    let max = |f: fn(&Summary) -> &Vec<f64>| {
        summaries
            .iter()
            .flat_map(|s| f(s).iter().copied())
            .fold(0.0, f64::max)
    };
    let (other, steal) = (max(|s| &s.other_cpu), max(|s| &s.steal_cpu));
    let skewed: Vec<String> = summaries
        .iter()
        .flat_map(|s| {
            (s.other_cpu.iter().enumerate())
                .filter(|(_, o)| **o > OTHER_CPU_LIMIT)
                .map(|(n, o)| format!("round {} {} {:.0}%", n + 1, s.case.label(), o * 100.0))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nMB/s: payload bytes (10^6 per MB) of the messages completed inside each {} s window; \
         protobuf and gRPC framing not counted. Ratios are per round, then the median. CPU is \
         each process's user+system time over the window (100% = one core busy); the server's \
         lowest in any round was {:.0}%.{}",
        options.seconds,
        lowest * 100.0,
        if lowest < SATURATED {
            " **Below 90%: in some rounds the server was not the limit (the client, flow \
             control or other programs were), so those rates understate the server.**"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "\nOther programs used at most {:.1}% of the CPUs during a window (hypervisor steal at \
         most {:.1}%).{}",
        other * 100.0,
        steal * 100.0,
        if skewed.is_empty() {
            String::new()
        } else {
            format!(
                " **Skewed by other programs (over {:.0}%): {}.**",
                OTHER_CPU_LIMIT * 100.0,
                skewed.join(", ")
            )
        }
    );
    out
}

/// Every round's numbers, the medians and the ratios, for bench/report.
pub(crate) fn json(rounds: &[Vec<Measured>], options: &Options, root: &Path) -> Value {
    let summaries = Summary::all(rounds, options);
    let results: Vec<Value> = summaries
        .iter()
        .map(|s| {
            json!({
                "server": s.case.server.name(),
                "transport": s.case.transport.name(),
                "case": s.case.name(),
                "message_size": options.message_size,
                "streams": options.streams,
                "mb_per_s_median": median(&s.mb_per_s),
                "rounds": s.mb_per_s,
                "messages_per_s_median": median(&s.messages_per_s),
                "server_cpu": s.server_cpu,
                "server_cpu_median": median(&s.server_cpu),
                "client_cpu": s.client_cpu,
                "client_cpu_median": median(&s.client_cpu),
                "other_cpu": s.other_cpu,
                "steal_cpu": s.steal_cpu,
                "negotiated": s.negotiated,
            })
        })
        .collect();
    let ratios: serde_json::Map<String, Value> = RATIOS
        .iter()
        .filter_map(|r| {
            let per_round = r.per_round(&summaries)?;
            let m = median(&per_round);
            let mut ratio = json!({
                "numerator": r.numerator.name(),
                "denominator": r.denominator.name(),
                "median": m,
                "rounds": per_round,
            });
            if let Some(target) = r.target {
                ratio["target"] = json!(target);
                ratio["met"] = json!(m >= target);
            }
            Some((r.key.to_owned(), ratio))
        })
        .collect();
    json!({
        "meta": {
            "tool": "stream-bench",
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            "git_commit": git_commit(root),
            "cpu": cpu_model(),
            "rounds": options.rounds,
            "seconds": options.seconds,
            "warmup_s": options.warmup,
            "streams": options.streams,
            "message_size": options.message_size,
            "cases": options.cases.iter().map(|c| c.name()).collect::<Vec<_>>(),
            "server_pinned_cpu": SERVER_CPU,
            "client_pinned_cpu": CLIENT_CPU,
            "client": "h2, one thread, one connection",
            "stream_window": STREAM_WINDOW,
            "connection_window": CONNECTION_WINDOW,
            "max_frame": MAX_FRAME,
            "mb": 1_000_000,
            "certificates": "ECDSA P-256, herald dev CA, both ways",
        },
        "results": results,
        "ratios": ratios,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn list(values: &[f64], digits: usize) -> String {
    values
        .iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn git_commit(root: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
