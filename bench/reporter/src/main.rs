//! bench-report: one Markdown report with SVG charts from whatever the benchmark scripts left in
//! `target/bench`: `results.json` (bench/run), `layers/results.json` (bench/layers: herald's
//! layers and observability on and off), `overload.json` (bench/overload), `handshakes.json`
//! (handshake-bench) and `streaming.json` (the streaming benchmark). Missing files are skipped
//! and named in the report. Writes `REPORT.md` and the charts next to them.
//!
//! Ratios compare herald with the references, herald ÷ bare tonic and herald ÷ gRPC C++,
//! taken per round against the same round's reference and then the median, as bench/run does:
//! interleaved rounds cancel slow drift of the machine.
//!
//! Usage: `bench/report [--dir DIR] [--herald LABEL] [--tonic LABEL] [--cpp LABEL]`; the labels
//! are the `LABEL=COMMAND` names given to bench/run (default herald, tonic, cpp).

mod chart;
mod figures;
mod input;
mod layers;
mod markdown;
mod metric;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use input::{Handshakes, Overload, Results, RunMeta, Scenario, Streaming};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The labels of herald and of the two references in bench/run's results.
#[derive(Debug)]
struct Roles {
    herald: String,
    tonic: String,
    cpp: String,
}

/// Everything found in the results directory.
#[derive(Debug)]
struct Inputs {
    run: Option<Run>,
    /// bench/layers' run, in bench/run's format.
    layers: Option<Run>,
    overload: Option<Overload>,
    handshakes: Option<Handshakes>,
    streaming: Option<Streaming>,
}

/// bench/run's results (or bench/layers', which runs bench/run), parsed.
#[derive(Debug)]
struct Run {
    meta: RunMeta,
    labels: Vec<String>,
    scenarios: Vec<(String, Scenario)>,
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-report: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), BoxError> {
    let mut dir = repo_root()?.join("target/bench");
    let mut roles = Roles {
        herald: "herald".to_owned(),
        tonic: "tonic".to_owned(),
        cpp: "cpp".to_owned(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => dir = PathBuf::from(value()?),
            "--herald" => roles.herald = value()?,
            "--tonic" => roles.tonic = value()?,
            "--cpp" => roles.cpp = value()?,
            "-h" | "--help" => {
                println!(
                    "usage: bench-report [--dir DIR (target/bench)] [--herald LABEL (herald)] \
                     [--tonic LABEL (tonic)] [--cpp LABEL (cpp)]\n\n\
                     Reads what exists of DIR/results.json (bench/run), DIR/{} (bench/layers), \
                     DIR/overload.json (bench/overload), DIR/handshakes.json (handshake-bench) \
                     and DIR/streaming.json (stream-bench); writes DIR/REPORT.md and SVG charts \
                     next to it. The labels are bench/run's LABEL=COMMAND names.",
                    layers::FILE
                );
                return Ok(());
            }
            _ => return Err(format!("unknown argument {arg:?} (see --help)").into()),
        }
    }
    let inputs = read_inputs(&dir)?;
    if inputs.run.is_none()
        && inputs.layers.is_none()
        && inputs.overload.is_none()
        && inputs.handshakes.is_none()
        && inputs.streaming.is_none()
    {
        return Err(format!(
            "no results in {}: run bench/run, bench/layers, bench/overload or handshake-bench first",
            dir.display()
        )
        .into());
    }
    let charts = figures::write_all(&dir, &inputs, &roles)?;
    let report = markdown::report(&inputs, &roles, &charts);
    let path = dir.join("REPORT.md");
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "bench-report: wrote {} and {} chart(s) in {}",
        path.display(),
        charts.len(),
        dir.display()
    );
    Ok(())
}

fn read_inputs(dir: &Path) -> Result<Inputs, BoxError> {
    Ok(Inputs {
        run: read_run(&dir.join("results.json"))?,
        layers: read_run(&dir.join(layers::FILE))?,
        overload: input::read(&dir.join("overload.json"))?,
        handshakes: input::read(&dir.join("handshakes.json"))?,
        streaming: input::read(&dir.join("streaming.json"))?,
    })
}

/// A results.json in bench/run's format; `None` when there is none.
fn read_run(path: &Path) -> Result<Option<Run>, BoxError> {
    let Some(results) = input::read::<Results>(path)? else {
        return Ok(None);
    };
    let scenarios = results
        .scenarios()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(Run {
        labels: results.labels(),
        scenarios,
        meta: results.meta,
    }))
}

fn repo_root() -> Result<PathBuf, BoxError> {
    // bench/reporter is two levels below the repository root.
    Ok(Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .ok_or("no repository root")?
        .to_path_buf())
}

// === impl Roles ===

impl Roles {
    /// The references herald is compared with, as (label, what it is).
    fn references(&self) -> [(&str, &'static str); 2] {
        [
            (self.tonic.as_str(), "bare tonic"),
            (self.cpp.as_str(), "gRPC C++"),
        ]
    }
}
