//! Instructions per call, counted by valgrind's callgrind: what each client executes for one
//! call. A count moves 2–3 % from run to run (batching under load varies), where throughput
//! on a shared 2-core machine moves 5–10 % from round to round; a median over repeats is
//! about twice as precise as throughput's and sees the client alone.
//!
//! A load run's count includes what is done once — starting, connecting, the one-second
//! warm-up — so each client runs twice, for a short and a long measured window: the
//! difference of the counts over the difference of the calls answered is the cost of a call.
//! Only the client process's user-space instructions count: not the kernel's, not the
//! server's, and not how fast they run (cache misses, stalls). It complements the throughput
//! rounds; it does not replace them.

use std::process::Command;

use crate::{BoxError, KINDS, load_command, load_result, median, start_server};

/// The measured seconds of the short and the long run (under callgrind a client runs some
/// 50 times slower: a few thousand calls a second).
const SHORT: u64 = 2;
const LONG: u64 = 12;

/// `instructions [repeats=3] [calls in flight=32]`.
pub(crate) fn run(args: &[String]) -> Result<(), BoxError> {
    let repeats: usize = args.first().map_or(Ok(3), |a| a.parse())?;
    let concurrency: usize = args.get(1).map_or(Ok(32), |a| a.parse())?;
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("instructions needs valgrind (Debian: apt-get install valgrind)".into());
    }
    let (mut server, addr) = start_server()?;
    println!(
        "server {addr} on CPU 0; each client under callgrind on CPU 1 with {concurrency} calls in \
         flight, measured for {SHORT} s and {LONG} s; {repeats} repeats"
    );
    let mut per_call: [Vec<f64>; 3] = Default::default();
    for repeat in 1..=repeats {
        for turn in 0..KINDS.len() {
            let slot = (turn + repeat - 1) % KINDS.len();
            let kind = KINDS[slot];
            let short = counted(&addr, kind, SHORT, concurrency)?;
            let long = counted(&addr, kind, LONG, concurrency)?;
            if long.calls <= short.calls {
                return Err(
                    format!("{kind}: the long run answered no more calls than the short").into(),
                );
            }
            let instructions = (long.instructions as f64 - short.instructions as f64)
                / (long.calls - short.calls) as f64;
            println!(
                "repeat {repeat} {kind:>9}: {instructions:>7.0} instructions per call ({} and {} calls)",
                short.calls, long.calls
            );
            per_call[slot].push(instructions);
        }
    }
    drop(server.stdin.take());
    server.wait()?;
    let [tonic, with_context, herald] = per_call.map(median);
    println!(
        "median instructions per call: tonic {tonic:.0}, tonic+ctx {with_context:.0}, herald {herald:.0}"
    );
    println!(
        "herald / bare tonic {:.3}, herald / tonic+ctx {:.3}",
        herald / tonic,
        herald / with_context
    );
    Ok(())
}

/// What one load run under callgrind did.
struct Counted {
    /// Calls answered in the measured window.
    calls: u64,
    /// Instructions the whole process executed.
    instructions: u64,
}

fn counted(addr: &str, kind: &str, seconds: u64, concurrency: usize) -> Result<Counted, BoxError> {
    let out_file =
        std::env::temp_dir().join(format!("client_bench-callgrind.{}", std::process::id()));
    let out_option = format!("--callgrind-out-file={}", out_file.display());
    let output = load_command(
        &["valgrind", "--tool=callgrind", &out_option],
        None,
        addr,
        kind,
        seconds,
        concurrency,
    )?
    .output();
    // Only the total is wanted, not the profile.
    let _ = std::fs::remove_file(&out_file);
    let output = output?;
    // The load's line: calls/s, errors, then latencies and CPU (meaningless here).
    let fields = load_result(&output, kind)?;
    let (rate, errors) = (fields[0], fields[1]);
    if errors > 0.0 {
        // Failed calls cost other instructions than answered ones: the count would mix them.
        return Err(format!("{kind}: {errors} calls failed under valgrind").into());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // valgrind's summary: "==PID== Collected : N".
    let instructions = stderr
        .lines()
        .find_map(|l| {
            l.split_once("Collected : ")
                .map(|(_, n)| n.trim().parse::<u64>())
        })
        .ok_or("no instruction count in valgrind's output")??;
    Ok(Counted {
        calls: (rate * seconds as f64).round() as u64,
        instructions,
    })
}
