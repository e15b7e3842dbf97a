//! herald's client and bare tonic's measured at the same time: each drives a server of its own,
//! the two servers share CPU 0 and the two clients CPU 1, so whatever slows a CPU slows both
//! pairs alike. On these shared machines a CPU's speed wanders 10–30 % from one run to the
//! next, which one-after-the-other rounds cannot separate from the clients' own costs.
//!
//! A pair's cost is its CPU time per call, client and server together (the server's too: what
//! a client sends, the server must decode); the result is tonic's pair's CPU per call over
//! herald's — herald's calls per CPU-second relative to tonic's, > 1 when herald is cheaper —
//! per round and as a median, beside the raw calls/s ratio (which also depends on how the
//! scheduler shared the CPUs). The servers swap clients from round to round.

use std::process::{Child, Stdio};

use crate::{BoxError, load_command, load_result, median, start_server};

/// `together [rounds=6] [seconds=5] [calls in flight=32]`.
pub(crate) fn run(args: &[String]) -> Result<(), BoxError> {
    let rounds: usize = args.first().map_or(Ok(6), |a| a.parse())?;
    let seconds: u64 = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let concurrency: usize = args.get(2).map_or(Ok(32), |a| a.parse())?;
    let mut servers = [start_server()?, start_server()?];
    println!(
        "two servers on CPU 0, tonic's and herald's clients at the same time on CPU 1; {rounds} rounds × \
         {seconds} s, {concurrency} calls in flight each"
    );
    let (mut per_cpu_second, mut throughput) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Which server each client drives: swapped every round.
        let (tonic_server, herald_server) = if round % 2 == 1 { (0, 1) } else { (1, 0) };
        let tonic = spawn_load(&servers[tonic_server], "tonic", seconds, concurrency)?;
        let herald = spawn_load(&servers[herald_server], "herald", seconds, concurrency)?;
        let tonic = finish(tonic, "tonic")?;
        let herald = finish(herald, "herald")?;
        for (kind, r) in [("tonic", &tonic), ("herald", &herald)] {
            println!(
                "round {round} {kind:>6}: {:>8.0} calls/s, {} errors, p50 {} µs, p99 {} µs, CPU µs/call client {:.2} server {:.2}",
                r[0], r[1], r[2], r[3], r[4], r[5]
            );
        }
        per_cpu_second.push((tonic[4] + tonic[5]) / (herald[4] + herald[5]));
        throughput.push(herald[0] / tonic[0]);
    }
    for (server, _) in &mut servers {
        drop(server.stdin.take());
        server.wait()?;
    }
    println!(
        "herald / bare tonic, calls per CPU-second (client + server), per round: {per_cpu_second:.3?}"
    );
    println!("herald / bare tonic, calls/s, per round: {throughput:.3?}");
    println!(
        "median herald / bare tonic: calls per CPU-second {:.3}, calls/s {:.3}",
        median(per_cpu_second),
        median(throughput)
    );
    Ok(())
}

/// A load run of `kind` against `server`, started now.
fn spawn_load(
    (server, addr): &(Child, String),
    kind: &str,
    seconds: u64,
    concurrency: usize,
) -> Result<Child, BoxError> {
    Ok(
        load_command(&[], Some(server.id()), addr, kind, seconds, concurrency)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    )
}

/// A load run's numbers (see [`load_result`]), when every call was answered.
fn finish(load: Child, kind: &str) -> Result<Vec<f64>, BoxError> {
    let fields = load_result(&load.wait_with_output()?, kind)?;
    if fields[1] > 0.0 || fields[4] + fields[5] <= 0.0 {
        return Err(format!("{kind}: unusable load run {fields:?}").into());
    }
    Ok(fields)
}
