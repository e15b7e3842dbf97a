//! Benchmark (not a test): herald's client — balancing, retries and circuit breaker on, as
//! the Accounts contract says — against a bare tonic channel, on the same server.
//!
//! ```sh
//! cargo run --release -p herald-example-cache --example client_bench -- [rounds] [seconds] [concurrency]
//! cargo run --release -p herald-example-cache --example client_bench -- instructions [repeats] [concurrency]
//! cargo run --release -p herald-example-cache --example client_bench -- together [rounds] [seconds] [concurrency]
//! ```
//!
//! The server runs in its own process pinned to CPU 0, each load run in its own process pinned to
//! CPU 1 (`taskset`), so that the client's cost shows as throughput and tail latency rather than as
//! the machine's wake-up latency. Each round runs bare tonic, "tonic+ctx" (tonic sending herald's
//! per-call context by hand: request id, grpc-timeout, a local deadline) and herald, in an order
//! rotated from round to round; each a fixed number of calls in flight for a fixed time after a
//! one-second warm-up. The report gives per-round ratios (herald ÷ the other within a round) and
//! their median.
//!
//! `instructions` counts instead the instructions each client executes per call, under
//! valgrind (see `instructions.rs`): the client's work alone, steadier than throughput on this
//! noisy machine, for changes too small for throughput to show.
//!
//! `together [rounds] [seconds] [concurrency]` runs herald's and bare tonic's clients at the
//! same time, each against a server of its own (see `together.rs`): the CPU per call of each
//! pair, client and server, compared under the same conditions at every moment.

mod instructions;
mod together;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use herald::client::{Channel, Discovery};
use herald::{Context, Server};
use herald_example_cache::AccountsService;
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::accounts::{Account, GetByTokenRequest};
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(),
        Some("load") => load(&args[1..]),
        Some("instructions") => instructions::run(&args[1..]),
        Some("together") => together::run(&args[1..]),
        _ => orchestrate(&args),
    }
}

/// The server: Accounts on 127.0.0.1, its port on stdout, until stdin closes.
fn serve() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Server::builder()
            .insecure_plaintext()
            .allow_all_callers()
            .add_service(AccountsServer::new(AccountsService::demo()))
            .bind("127.0.0.1:0")
            .await?;
        println!("{}", server.local_addr());
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await?;
        server.shutdown().await;
        Ok(())
    })
}

/// One load run: `load ADDR herald|tonic|tonic+ctx SECONDS CONCURRENCY`; prints `calls/s errors p50 p99
/// client-CPU-µs/call server-CPU-µs/call` (latencies in µs) for the measured window.
fn load(args: &[String]) -> Result<(), BoxError> {
    let [addr, kind, seconds, concurrency] = args else {
        return Err("usage: load ADDR herald|tonic|tonic+ctx SECONDS CONCURRENCY".into());
    };
    let addr: std::net::SocketAddr = addr.parse()?;
    let duration = Duration::from_secs(seconds.parse()?);
    let concurrency: usize = concurrency.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The server's process, for its CPU time (0: not measured).
    let server: u32 = std::env::var("CLIENT_BENCH_SERVER_PID")
        .ok()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or(0);
    let (ok, errors, mut latencies, cpu) = runtime.block_on(async move {
        let client = Client::new(kind, addr).await?;
        // The first call connects. Under a tool that slows the client down many times
        // (valgrind, to count instructions per call) that can outlast the contract's 100 ms
        // deadline: a few tries.
        for tries_left in (0..5).rev() {
            match client.call().await {
                Ok(()) => break,
                Err(error) if tries_left == 0 => return Err(error),
                Err(_) => {}
            }
        }
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, measuring, stop) = (client.clone(), measuring.clone(), stop.clone());
                tokio::spawn(async move {
                    let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        let result = client.call().await;
                        if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                            match result {
                                Ok(()) => {
                                    ok += 1;
                                    latencies.push(start.elapsed().as_micros() as u32);
                                }
                                Err(_) => errors += 1,
                            }
                        }
                    }
                    (ok, errors, latencies)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cpu_before = cpu_times(server);
        measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let cpu_after = cpu_times(server);
        let (mut ok, mut errors, mut latencies) = (0, 0, Vec::new());
        for task in tasks {
            let (o, e, l) = task.await?;
            ok += o;
            errors += e;
            latencies.extend(l);
        }
        let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        Ok::<_, BoxError>((ok, errors, latencies, cpu))
    })?;
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    };
    let per_call = |seconds: f64| seconds * 1e6 / ok.max(1) as f64;
    println!(
        "{} {errors} {} {} {:.3} {:.3}",
        ok as f64 / duration.as_secs_f64(),
        at(0.5),
        at(0.99),
        per_call(cpu.0),
        per_call(cpu.1)
    );
    Ok(())
}

/// This program's `load` run of `kind` against `addr` (see [`load`]), pinned to CPU 1, under
/// `wrapper` (a tool such as valgrind, with its options) when one is given; `server`: the
/// server's PID, whose CPU time the run reports.
fn load_command(
    wrapper: &[&str],
    server: Option<u32>,
    addr: &str,
    kind: &str,
    seconds: u64,
    concurrency: usize,
) -> Result<Command, BoxError> {
    let mut command = Command::new("taskset");
    if let Some(server) = server {
        command.env("CLIENT_BENCH_SERVER_PID", server.to_string());
    }
    command
        .args(["-c", "1"])
        .args(wrapper)
        .arg(std::env::current_exe()?)
        .args([
            "load",
            addr,
            kind,
            &seconds.to_string(),
            &concurrency.to_string(),
        ]);
    Ok(command)
}

/// A finished load run's line: calls/s, errors, p50 and p99 (µs), client and server CPU µs
/// per call.
fn load_result(output: &std::process::Output, kind: &str) -> Result<Vec<f64>, BoxError> {
    if !output.status.success() {
        return Err(format!(
            "{kind} load failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let fields: Vec<f64> = std::str::from_utf8(&output.stdout)?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if fields.len() != 6 {
        return Err(format!("{kind}: no result line from the load run").into());
    }
    Ok(fields)
}

/// The upper middle of `values` (not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The clients compared, in the order of the first round.
const KINDS: [&str; 3] = ["tonic", "tonic+ctx", "herald"];

/// This program's server (`serve`) pinned to CPU 0, and its address.
fn start_server() -> Result<(Child, String), BoxError> {
    let mut server = Command::new("taskset")
        .args(["-c", "0"])
        .arg(std::env::current_exe()?)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut addr = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().ok_or("no stdout")?),
        &mut addr,
    )?;
    Ok((server, addr.trim().to_owned()))
}

/// CPU seconds (user + system) used so far by this process and by process `server` (0 if
/// none), from `/proc/PID/stat`.
fn cpu_times(server: u32) -> (f64, f64) {
    let seconds = |pid: &str| -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return 0.0;
        };
        // Fields after the command name, which ends at the last ')': utime and stime are
        // the 14th and 15th fields of the line, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    };
    let server = if server == 0 {
        0.0
    } else {
        seconds(&server.to_string())
    };
    (seconds("self"), server)
}

/// The client under test.
#[derive(Clone)]
enum Client {
    Herald(AccountsClient),
    Tonic(tonic::client::Grpc<tonic::transport::Channel>),
    /// tonic doing by hand what every herald call does whatever the runtime: a fresh
    /// request id, `grpc-timeout`, and a deadline enforced locally. Separates the cost of
    /// balancing, retries and breaker from that of the per-call context.
    TonicWithContext(tonic::client::Grpc<tonic::transport::Channel>),
}

impl Client {
    async fn new(kind: &str, addr: std::net::SocketAddr) -> Result<Client, BoxError> {
        Ok(match kind {
            // The generated client over a balanced channel: P2C, outlier detection, the
            // contract's retries (3 attempts on UNAVAILABLE), breaker and deadline.
            "herald" => Client::Herald(AccountsClient::new(
                Channel::builder(Discovery::fixed([addr])?)
                    .insecure_plaintext()
                    .build()?,
            )),
            "tonic" | "tonic+ctx" => {
                let grpc = tonic::client::Grpc::new(
                    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                        .connect()
                        .await?,
                );
                if kind == "tonic" {
                    Client::Tonic(grpc)
                } else {
                    Client::TonicWithContext(grpc)
                }
            }
            other => return Err(format!("unknown client {other}").into()),
        })
    }

    async fn call(&self) -> Result<(), BoxError> {
        let request = GetByTokenRequest {
            token: "tok-bob".into(),
        };
        match self {
            Client::Herald(client) => {
                client.get_by_token(&Context::background(), request).await?;
            }
            Client::Tonic(grpc) => {
                let mut grpc = grpc.clone();
                grpc.ready().await?;
                grpc.unary::<_, Account, _>(
                    tonic::Request::new(request),
                    "/accounts.Accounts/GetByToken".parse()?,
                    tonic_prost::ProstCodec::default(),
                )
                .await?;
            }
            Client::TonicWithContext(grpc) => {
                let ctx = Context::background();
                let deadline = Instant::now() + Duration::from_millis(100);
                let mut grpc = grpc.clone();
                let mut request = tonic::Request::new(request);
                let metadata = request.metadata_mut();
                metadata.insert("x-request-id", ctx.request_id().parse()?);
                let timeout = herald::timeout::format(deadline - Instant::now());
                metadata.insert("grpc-timeout", timeout.parse()?);
                tokio::time::timeout_at(deadline, async {
                    grpc.ready().await?;
                    grpc.unary::<_, Account, _>(
                        request,
                        "/accounts.Accounts/GetByToken".parse()?,
                        tonic_prost::ProstCodec::default(),
                    )
                    .await?;
                    Ok::<_, BoxError>(())
                })
                .await??;
            }
        }
        Ok(())
    }
}

/// Starts the server, runs the rounds, prints the report.
fn orchestrate(args: &[String]) -> Result<(), BoxError> {
    let rounds: usize = args.first().map_or(Ok(3), |a| a.parse())?;
    let seconds: u64 = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let concurrency: usize = args.get(2).map_or(Ok(32), |a| a.parse())?;
    let (mut server, addr) = start_server()?;
    println!(
        "server {addr} on CPU 0; load on CPU 1; {rounds} rounds × {seconds} s per client, {concurrency} calls in flight"
    );
    let mut ratios = Vec::new();
    // herald ÷ bare tonic: client CPU per call, and client + server CPU per call.
    let mut cpu = Vec::new();
    for round in 1..=rounds {
        let mut results: [Vec<f64>; 3] = Default::default();
        // Each round starts with the next kind, so that none always runs first or after the
        // same one: whatever drifts within a round (the machine's other load, the server
        // warming) falls on every kind alike.
        for turn in 0..KINDS.len() {
            let slot = (turn + round - 1) % KINDS.len();
            let kind = KINDS[slot];
            let output = load_command(&[], Some(server.id()), &addr, kind, seconds, concurrency)?
                .output()?;
            let fields = load_result(&output, kind)?;
            println!(
                "round {round} {kind:>9}: {:>8.0} calls/s, {} errors, p50 {} µs, p99 {} µs, CPU µs/call client {:.2} server {:.2}",
                fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
            );
            results[slot] = fields;
        }
        let (tonic, with_context, herald) = (&results[0], &results[1], &results[2]);
        ratios.push((
            herald[0] / tonic[0],
            herald[3] / tonic[3],
            herald[0] / with_context[0],
            herald[3] / with_context[3],
        ));
        cpu.push((
            herald[4] / tonic[4],
            (herald[4] + herald[5]) / (tonic[4] + tonic[5]),
        ));
    }
    drop(server.stdin.take());
    server.wait()?;
    let column =
        |i: usize| -> Vec<f64> { ratios.iter().map(|r| [r.0, r.1, r.2, r.3][i]).collect() };
    println!(
        "herald / bare tonic, per round:  throughput {:.3?}, p99 {:.3?}",
        column(0),
        column(1)
    );
    println!(
        "herald / tonic+ctx, per round:   throughput {:.3?}, p99 {:.3?}",
        column(2),
        column(3)
    );
    println!(
        "median herald / bare tonic: throughput ratio {:.3} (target ≥ 0.95), p99 ratio {:.3}",
        median(column(0)),
        median(column(1))
    );
    println!(
        "median herald / tonic+ctx:  throughput ratio {:.3}, p99 ratio {:.3}",
        median(column(2)),
        median(column(3))
    );
    println!(
        "median herald / bare tonic CPU per call: client {:.3}, client + server {:.3}",
        median(cpu.iter().map(|c| c.0).collect()),
        median(cpu.iter().map(|c| c.1).collect())
    );
    Ok(())
}
