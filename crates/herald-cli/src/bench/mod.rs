//! `herald bench`: a load generator for any unary method of a running server.
//!
//! Closed loop (N callers, each waiting for its answer) measures what callers experience;
//! open loop (`--rate`) sends on schedule whatever the server does, and counts each call's
//! latency from when it was due, so a server that stalls cannot hide the stall by slowing the
//! generator down (coordinated omission). A list of rates runs steps, e.g. the overload steps
//! 0.5× → 2× → 5× → 0.5× of capacity, with a per-step and per-second breakdown.

mod load;
mod plan;
mod record;
mod report;

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::call::parse_requests;
use crate::cli::BenchArgs;
use crate::connect::Server;
use crate::reflect::{self, contract_for};

use self::load::Call;
use self::plan::Plan;
use self::report::Report;

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let timeout = positive_seconds("--timeout", args.timeout)?;
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be zero or more seconds");
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    if args.max_in_flight == 0 {
        bail!("--max-in-flight must be at least 1");
    }

    let server = Server::resolve(&args.target, &args.connect)?;
    let channel = server.channel(args.connections)?;
    let method = reflect::method(&channel, &args.schema, &args.method).await?;
    if method.is_client_streaming() || method.is_server_streaming() {
        bail!(
            "herald bench loads unary methods; {} streams",
            method.full_name()
        );
    }
    let text = match args.data.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => args.data.clone(),
    };
    let mut requests = parse_requests(&method.input(), &text)?;
    if requests.len() != 1 {
        bail!(
            "--data must hold exactly one request; it holds {}",
            requests.len()
        );
    }
    let call = Call {
        channel,
        method: contract_for(&method),
        request: requests.remove(0),
        timeout,
    };

    let progress = progress_bar(&args, &plan);
    let recorder = load::run(&call, &plan, warmup, args.max_in_flight, &progress).await;

    let step_seconds = match &plan {
        Plan::Open { step, .. } => Some(step.as_secs_f64()),
        Plan::Closed { .. } => None,
    };
    let (total, steps, timeline) = Report::parts(&recorder, &plan.step_rates(), step_seconds);
    let report = Report {
        target: server.address.clone(),
        method: format!("{}/{}", method.parent_service().full_name(), method.name()),
        security: server.security(),
        mode: match plan {
            Plan::Closed { .. } => "closed",
            Plan::Open { .. } => "open",
        },
        concurrency: match plan {
            Plan::Closed { callers, .. } => Some(callers),
            Plan::Open { .. } => None,
        },
        connections: args.connections.max(1),
        coordinated_omission_corrected: matches!(plan, Plan::Open { .. }),
        warmup_calls: recorder.warmup_calls,
        total,
        steps,
        timeline,
    };
    print!("{}", report.text());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn positive_seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        bail!("{flag} must be a positive number of seconds")
    }
}

/// A progress bar on a terminal; nothing otherwise (or with --no-progress).
fn progress_bar(args: &BenchArgs, plan: &Plan) -> ProgressBar {
    if args.no_progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (length, template) = match plan.length() {
        Some(length) => (
            length.as_millis() as u64,
            "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}",
        ),
        None => (
            args.requests.unwrap_or(0),
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        ),
    };
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
