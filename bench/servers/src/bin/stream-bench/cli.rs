//! The command line.

use std::path::{Path, PathBuf};

use crate::payloads::MAX_PAYLOAD;
use crate::{BoxError, CASES, Case};

pub(crate) const USAGE: &str = "\
usage: stream-bench [--rounds N (5)] [--seconds S (5)] [--warmup S (2)] [--streams N (1)]
                    [--message-size BYTES (16384)] [--cases NAME,... (all)] [--json PATH]

Cases: herald-plaintext, herald-mtls, tonic-plaintext, tonic-mtls.
--json defaults to target/bench/streaming.json under the repository root.";

/// Flags that take a value; nothing else is accepted.
const FLAGS: [&str; 7] = [
    "--rounds",
    "--seconds",
    "--warmup",
    "--streams",
    "--message-size",
    "--cases",
    "--json",
];

/// The longest stream a round may ask for, well inside the method's 10-minute deadline.
const MAX_STREAM_SECONDS: f64 = 300.0;

/// The most streams on the one connection (herald's server allows 256 at once).
const MAX_STREAMS: usize = 100;

/// What to measure.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) rounds: usize,
    /// Measured seconds per case per round.
    pub(crate) seconds: f64,
    /// Unrecorded seconds per case before the first round.
    pub(crate) warmup: f64,
    /// Server streams at once, on one connection.
    pub(crate) streams: usize,
    /// Payload bytes of each message.
    pub(crate) message_size: u32,
    pub(crate) cases: Vec<Case>,
    pub(crate) json: PathBuf,
}

// === impl Options ===

impl Options {
    /// Reads `args` (the whole command line); `root` is the repository's root.
    pub(crate) fn parse(args: &[String], root: &Path) -> Result<Options, BoxError> {
        let mut rest = args.iter().skip(1);
        while let Some(flag) = rest.next() {
            if !FLAGS.contains(&flag.as_str()) {
                return Err(format!("unknown argument {flag:?}\n{USAGE}").into());
            }
            if rest.next().is_none() {
                return Err(format!("{flag} needs a value").into());
            }
        }
        let options = Options {
            rounds: parsed(args, "--rounds", 5)?,
            seconds: parsed(args, "--seconds", 5.0)?,
            warmup: parsed(args, "--warmup", 2.0)?,
            streams: parsed(args, "--streams", 1)?,
            message_size: parsed(args, "--message-size", 16 * 1024)?,
            cases: match value(args, "--cases") {
                None => CASES.to_vec(),
                Some(names) => names
                    .split(',')
                    .map(|name| {
                        Case::parse(name.trim()).ok_or_else(|| format!("--cases: no case {name:?}"))
                    })
                    .collect::<Result<_, _>>()?,
            },
            json: value(args, "--json")
                .map_or_else(|| root.join("target/bench/streaming.json"), PathBuf::from),
        };
        options.check()?;
        Ok(options)
    }

    fn check(&self) -> Result<(), String> {
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if !(self.seconds > 0.0 && self.seconds <= MAX_STREAM_SECONDS) {
            return Err(format!(
                "--seconds must be above 0 and at most {MAX_STREAM_SECONDS}"
            ));
        }
        if !(self.warmup >= 0.0 && self.warmup <= MAX_STREAM_SECONDS) {
            return Err(format!(
                "--warmup must be between 0 and {MAX_STREAM_SECONDS}"
            ));
        }
        if !(1..=MAX_STREAMS).contains(&self.streams) {
            return Err(format!("--streams must be between 1 and {MAX_STREAMS}"));
        }
        if !(1..=MAX_PAYLOAD).contains(&self.message_size) {
            return Err(format!(
                "--message-size must be between 1 and {MAX_PAYLOAD}"
            ));
        }
        if self.cases.is_empty() {
            return Err("--cases names no case".into());
        }
        for (i, case) in self.cases.iter().enumerate() {
            if self.cases[..i].contains(case) {
                return Err(format!("--cases names {} twice", case.name()));
            }
        }
        Ok(())
    }
}

/// The value after `name` on the command line.
pub(crate) fn value(args: &[String], name: &str) -> Option<String> {
    args.iter().skip_while(|a| *a != name).nth(1).cloned()
}

fn parsed<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match value(args, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name}: cannot parse {v:?}")),
    }
}
