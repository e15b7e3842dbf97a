//! Server-streaming throughput on one server core, in MB/s: herald over plaintext and over
//! mutual TLS, and bare tonic over both, side by side in interleaved rounds, reported with
//! paired ratios (herald's target: mutual TLS ≥ 0.8 × plaintext).
//!
//! Each server is this binary re-executed with `--serve CASE --certs DIR`, one tokio worker,
//! pinned to CPU 0. The client is bare HTTP/2 (h2, tokio-rustls) on one thread pinned to
//! CPU 1: it opens server streams of `bench.Echo/Stream` and counts the payload bytes of the
//! messages that arrive inside each measured window. See bench/README.md.

mod cli;
mod client;
mod report;
mod round;
mod server;

#[path = "../../payloads.rs"]
mod payloads;

#[allow(dead_code)] // the generated client is unused
mod herald_pb {
    include!(concat!(env!("OUT_DIR"), "/herald/bench.rs"));
}

mod tonic_pb {
    include!(concat!(env!("OUT_DIR"), "/tonic/bench.rs"));
}

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use herald::tls::{DevCa, KeyAlgorithm, TrustDomain};

use crate::cli::Options;
use crate::round::Measured;
use crate::server::ServerProcess;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TRUST_DOMAIN: &str = "bench.test";
const SERVER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";
/// Set in the re-executed client, which runs pinned to `CLIENT_CPU`.
const PINNED_ENV: &str = "STREAM_BENCH_PINNED";

/// The server implementation under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Herald,
    Tonic,
}

/// How the client reaches it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Plaintext,
    /// TLS 1.3, both sides presenting ECDSA P-256 certificates of one dev CA.
    Mtls,
}

/// One server over one transport: a row of the report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Case {
    server: Server,
    transport: Transport,
}

/// Every case, in the order each round runs them unless `--cases` says otherwise.
const CASES: [Case; 4] = [
    Case::new(Server::Herald, Transport::Plaintext),
    Case::new(Server::Herald, Transport::Mtls),
    Case::new(Server::Tonic, Transport::Plaintext),
    Case::new(Server::Tonic, Transport::Mtls),
];

// === impl Server ===

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Herald => "herald",
            Server::Tonic => "tonic",
        }
    }
}

// === impl Transport ===

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Plaintext => "plaintext",
            Transport::Mtls => "mtls",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Transport::Plaintext => "plaintext",
            Transport::Mtls => "mTLS",
        }
    }
}

// === impl Case ===

impl Case {
    const fn new(server: Server, transport: Transport) -> Case {
        Case { server, transport }
    }

    /// `herald-mtls`: on the command line and in the JSON results.
    fn name(self) -> String {
        format!("{}-{}", self.server.name(), self.transport.name())
    }

    /// `herald, mTLS`: in the report.
    fn label(self) -> String {
        format!("{}, {}", self.server.name(), self.transport.label())
    }

    fn parse(name: &str) -> Option<Case> {
        CASES.into_iter().find(|case| case.name() == name)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match cli::value(&args, "--serve") {
        Some(case) => serve(&args, &case),
        None => run(&args),
    };
    if let Err(error) = result {
        eprintln!("stream-bench: {error}");
        std::process::exit(1);
    }
}

// === the server (child process) ===

fn serve(args: &[String], case: &str) -> Result<(), BoxError> {
    let case = Case::parse(case).ok_or_else(|| format!("--serve {case:?}: no such case"))?;
    let certs = cli::value(args, "--certs").ok_or("--serve needs --certs DIR")?;
    server::serve(case, Path::new(&certs))
}

// === the benchmark (this process, the client) ===

fn run(args: &[String]) -> Result<(), BoxError> {
    // Pin the client to its CPU: re-execute under taskset once.
    if std::env::var_os(PINNED_ENV).is_none() {
        let error = Command::new("taskset")
            .args(["-c", CLIENT_CPU])
            .arg(std::env::current_exe()?)
            .args(&args[1..])
            .env(PINNED_ENV, "1")
            .exec();
        return Err(format!("taskset: {error}").into());
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", cli::USAGE);
        return Ok(());
    }
    let root = repo_root()?;
    let options = Options::parse(args, &root)?;
    let certs = std::env::temp_dir().join(format!("herald-stream-bench-{}", std::process::id()));
    let result = benchmark(&options, &certs);
    let _ = std::fs::remove_dir_all(&certs);
    let rounds = result?;
    print!("{}", report::markdown(&rounds, &options));
    let json = report::json(&rounds, &options, &root);
    if let Some(dir) = options.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.json, format!("{json:#}\n"))?;
    eprintln!("results written to {}", options.json.display());
    Ok(())
}

/// Certificates, the servers, then the warm-up and the rounds. Returns each round's results in
/// `options.cases` order; the servers are stopped on every path.
fn benchmark(options: &Options, certs: &Path) -> Result<Vec<Vec<Measured>>, BoxError> {
    let client_tls = certificates(certs)?;
    let mut servers = Vec::new();
    for case in &options.cases {
        servers.push(ServerProcess::start(*case, certs)?);
    }
    let targets: Vec<round::Target> = options
        .cases
        .iter()
        .zip(&servers)
        .map(|(case, server)| round::Target {
            port: server.port(),
            pid: server.pid(),
            tls: (case.transport == Transport::Mtls).then(|| client_tls.clone()),
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(&targets, options))
}

/// A dev CA, a server leaf and a client leaf, all ECDSA P-256, as `herald certs` makes them:
/// the server's in `dir`, the client's in the returned configuration.
fn certificates(dir: &Path) -> Result<Arc<rustls::ClientConfig>, BoxError> {
    let algorithm = KeyAlgorithm::EcdsaP256;
    let ca = DevCa::generate(TrustDomain::new(TRUST_DOMAIN)?, algorithm)?;
    let server = ca.issue("bench-server", algorithm)?;
    let client = ca.issue("bench-client", algorithm)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(server::CA), ca.cert_pem())?;
    std::fs::write(dir.join(server::CERT), &server.cert_pem)?;
    std::fs::write(dir.join(server::KEY), &server.key_pem)?;
    client::tls_config(ca.cert_pem(), &client.cert_pem, &client.key_pem)
}

/// Warm-up, then the interleaved rounds.
async fn measure(
    targets: &[round::Target],
    options: &Options,
) -> Result<Vec<Vec<Measured>>, BoxError> {
    let shape = |seconds| round::Shape {
        streams: options.streams,
        message_size: options.message_size,
        seconds,
    };
    if options.warmup > 0.0 {
        for (case, target) in options.cases.iter().zip(targets) {
            let measured = round::run(target, &shape(options.warmup))
                .await
                .map_err(|e| format!("warm-up, {}: {e}", case.label()))?;
            eprintln!(
                "warm-up {:<16} {:>8.0} MB/s",
                case.label(),
                measured.mb_per_s()
            );
        }
    }
    let mut rounds = Vec::new();
    for n in 1..=options.rounds {
        let mut this = Vec::new();
        for (case, target) in options.cases.iter().zip(targets) {
            let measured = round::run(target, &shape(options.seconds))
                .await
                .map_err(|e| format!("round {n}, {}: {e}", case.label()))?;
            eprintln!(
                "round {n}/{} {:<16} {:>8.0} MB/s (server CPU {:.0}%, client CPU {:.0}%){}",
                options.rounds,
                case.label(),
                measured.mb_per_s(),
                measured.server_cpu * 100.0,
                measured.client_cpu * 100.0,
                if measured.other_cpu > report::OTHER_CPU_LIMIT {
                    format!(
                        "  WARNING other programs used {:.0}% of the CPUs",
                        measured.other_cpu * 100.0
                    )
                } else {
                    String::new()
                },
            );
            this.push(measured);
        }
        rounds.push(this);
    }
    Ok(rounds)
}

fn repo_root() -> Result<PathBuf, BoxError> {
    // bench/servers is two levels below the repository root.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .and_then(Path::parent)
        .ok_or("no repository root")?
        .to_path_buf())
}
