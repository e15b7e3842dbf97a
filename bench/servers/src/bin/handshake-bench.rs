//! TLS handshakes per second on one server core: full ECDSA P-256, full RSA-2048 and resumed
//! (ECDSA, TLS 1.3 ticket), side by side in interleaved rounds, reported as paired ratios.
//!
//! The servers are herald servers with herald's own TLS (`ServerTls` from a `DevCa`), each in a
//! child process pinned to CPU 0 (this binary re-executed with `--serve DIR`). The client is
//! plain rustls (tokio-rustls) on one thread pinned to CPU 1, presenting a client certificate
//! from the same dev CA. Each connection: TCP connect, TLS handshake (ALPN h2), write the
//! HTTP/2 preface and SETTINGS, read the server's first frame (so TLS 1.3 tickets have been
//! processed), close. The server's handshake counters are checked against the client's view
//! of every round. See bench/README.md.

#[allow(dead_code)] // the generated client is unused
mod pb {
    include!(concat!(env!("OUT_DIR"), "/herald/bench.rs"));
}

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::tls::{DevCa, KeyAlgorithm, ServerTls, TrustDomain};
use herald::{Context, Error, Server};
use pb::Msg;
use pb::echo_server::{Echo, EchoServer};
use rustls::client::Resumption;
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TRUST_DOMAIN: &str = "bench.test";
const SERVER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";
/// The HTTP/2 client preface followed by an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
const REPORT: &str = "target/bench/handshakes.md";
/// Where the JSON results go unless `--json PATH` says otherwise (bench/report reads them).
const JSON_REPORT: &str = "target/bench/handshakes.json";

struct Echoer;

impl Echo for Echoer {
    async fn call(&self, _ctx: &Context, request: Msg) -> Result<Msg, Error> {
        Ok(request)
    }

    type StreamStream = herald::BoxStream<Msg>;

    // Handshakes only: stream-bench measures streams.
    async fn stream(
        &self,
        _ctx: &Context,
        _request: pb::StreamRequest,
    ) -> Result<Self::StreamStream, Error> {
        Err(Error::new(
            herald::Code::Unimplemented,
            "handshake-bench serves no streams",
        ))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = if let Some(dir) = flag(&args, "--serve") {
        serve(Path::new(&dir))
    } else {
        run(&args)
    };
    if let Err(error) = result {
        eprintln!("handshake-bench: {error}");
        std::process::exit(1);
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().skip_while(|a| *a != name).nth(1).cloned()
}

// === the server (child process) ===

/// Serves echo over herald's TLS with the certificates in `dir`, prints `LISTENING <port>`,
/// then answers each `STATS` line on stdin with `STATS full resumed failed cpu_ticks`. Exits
/// at the end of stdin.
fn serve(dir: &Path) -> Result<(), BoxError> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let tls = ServerTls::from_pem(
        &read("server.pem")?,
        &read("server.key")?,
        &read("ca.pem")?,
        TrustDomain::new(TRUST_DOMAIN)?,
    )?;
    // One worker, like bench/servers' herald-echo: one core's worth of server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = Server::builder()
            .tls(tls)
            .allow_all_callers()
            .add_service(EchoServer::new(Echoer))
            .bind("127.0.0.1:0")
            .await?;
        println!("LISTENING {}", server.local_addr().port());
        std::io::stdout().flush()?;
        let stats = server.stats().clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut out = std::io::stdout().lock();
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "STATS" {
                    let h = stats.handshakes();
                    let cpu = cpu_ticks("self").unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "STATS {} {} {} {cpu}",
                        h.full(),
                        h.resumed(),
                        h.failed()
                    );
                    let _ = out.flush();
                }
            }
            let _ = done_tx.send(());
        });
        let _ = done_rx.await;
        server.shutdown().await;
        Ok(())
    })
}

/// User + system CPU time of a process (all threads), in clock ticks (100 per second).
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Clone, Copy, Debug, Default)]
struct ServerCounters {
    full: u64,
    resumed: u64,
    failed: u64,
    cpu: u64,
}

struct ServerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl ServerProcess {
    fn start(dir: &Path) -> Result<ServerProcess, BoxError> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new("taskset")
            .args(["-c", SERVER_CPU])
            .arg(exe)
            .arg("--serve")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("server said {line:?}, not LISTENING <port>"))?
            .parse()?;
        Ok(ServerProcess {
            child,
            stdin,
            stdout,
            port,
        })
    }

    fn counters(&mut self) -> Result<ServerCounters, BoxError> {
        writeln!(self.stdin, "STATS")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let n: Vec<u64> = line
            .trim()
            .strip_prefix("STATS ")
            .ok_or_else(|| format!("server said {line:?}, not STATS"))?
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        match n[..] {
            [full, resumed, failed, cpu] => Ok(ServerCounters {
                full,
                resumed,
                failed,
                cpu,
            }),
            _ => Err(format!("bad STATS line {line:?}").into()),
        }
    }

    fn stop(self) {
        let ServerProcess {
            mut child, stdin, ..
        } = self;
        drop(stdin); // end of stdin: the server shuts down
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

// === the client (this process) ===

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    EcdsaFull,
    RsaFull,
    EcdsaResumed,
}

const KINDS: [Kind; 3] = [Kind::EcdsaFull, Kind::RsaFull, Kind::EcdsaResumed];

impl Kind {
    /// The kind's name in the JSON results.
    fn id(self) -> &'static str {
        match self {
            Kind::EcdsaFull => "ecdsa-full",
            Kind::RsaFull => "rsa-full",
            Kind::EcdsaResumed => "ecdsa-resumed",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::EcdsaFull => "full, ECDSA P-256",
            Kind::RsaFull => "full, RSA-2048",
            Kind::EcdsaResumed => "resumed (TLS 1.3 ticket), ECDSA P-256",
        }
    }

    fn resumed(self) -> bool {
        self == Kind::EcdsaResumed
    }
}

struct Options {
    rounds: usize,
    seconds: f64,
    warmup: f64,
    concurrency: usize,
}

/// What one round (or warm-up) of one kind saw.
#[derive(Default)]
struct Round {
    /// Handshakes completed inside the measured window.
    in_window: u64,
    /// Every handshake completed, by the client's view of its kind.
    full: u64,
    resumed: u64,
    errors: u64,
    first_error: Option<String>,
    window: f64,
    server_before: ServerCounters,
    server_after: ServerCounters,
    client_cpu: u64,
    negotiated: Option<String>,
}

impl Round {
    fn rate(&self) -> f64 {
        self.in_window as f64 / self.window
    }

    fn server_cpu(&self) -> f64 {
        (self.server_after.cpu - self.server_before.cpu) as f64 / TICKS_PER_SECOND / self.window
    }

    fn client_cpu(&self) -> f64 {
        self.client_cpu as f64 / TICKS_PER_SECOND / self.window
    }

    fn server_delta(&self) -> (u64, u64, u64) {
        (
            self.server_after.full - self.server_before.full,
            self.server_after.resumed - self.server_before.resumed,
            self.server_after.failed - self.server_before.failed,
        )
    }

    /// Why the counts are not what this kind should give, if they are not.
    fn mismatch(&self, kind: Kind) -> Option<String> {
        let (full, resumed, failed) = self.server_delta();
        let mut problems = Vec::new();
        if (full, resumed) != (self.full, self.resumed) {
            problems.push(format!(
                "server counted {full} full + {resumed} resumed, client completed {} full + {} resumed",
                self.full, self.resumed
            ));
        }
        if failed != 0 {
            problems.push(format!("server counted {failed} failed handshakes"));
        }
        if self.errors != 0 {
            problems.push(format!(
                "{} client errors (first: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        let wrong = if kind.resumed() { full } else { resumed };
        if wrong != 0 {
            problems.push(format!(
                "{wrong} handshakes of the wrong kind (expected all {})",
                if kind.resumed() { "resumed" } else { "full" }
            ));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// One server and the client configurations that talk to it.
struct Target {
    server: ServerProcess,
    /// Resumption disabled: every handshake full.
    full: Arc<ClientConfig>,
    /// One configuration (so one session store) per client task: each task resumes the
    /// session of its own previous connection, never runs out of tickets.
    resuming: Vec<Arc<ClientConfig>>,
}

fn run(args: &[String]) -> Result<(), BoxError> {
    // Pin the client side to its CPU: re-execute under taskset once.
    if std::env::var_os("HANDSHAKE_BENCH_PINNED").is_none() {
        use std::os::unix::process::CommandExt;
        let error = Command::new("taskset")
            .args(["-c", CLIENT_CPU])
            .arg(std::env::current_exe()?)
            .args(&args[1..])
            .env("HANDSHAKE_BENCH_PINNED", "1")
            .exec();
        return Err(format!("taskset: {error}").into());
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: handshake-bench [--rounds N (5)] [--seconds S (3)] [--warmup S (2)] [--concurrency C (16)] \
             [--json PATH ({JSON_REPORT})]"
        );
        return Ok(());
    }
    let options = Options {
        rounds: flag(args, "--rounds").map_or(Ok(5), |v| v.parse())?,
        seconds: flag(args, "--seconds").map_or(Ok(3.0), |v| v.parse())?,
        warmup: flag(args, "--warmup").map_or(Ok(2.0), |v| v.parse())?,
        concurrency: flag(args, "--concurrency").map_or(Ok(16), |v| v.parse())?,
    };
    let json_path = flag(args, "--json").map(PathBuf::from);
    if options.rounds == 0 || options.seconds <= 0.0 || options.concurrency == 0 {
        return Err("--rounds, --seconds and --concurrency must be positive".into());
    }
    let root = repo_root()?;
    let certs = std::env::temp_dir().join(format!("herald-handshake-bench-{}", std::process::id()));
    let result = (|| {
        let mut ecdsa = target(&certs.join("ecdsa"), KeyAlgorithm::EcdsaP256, &options)?;
        let mut rsa = target(&certs.join("rsa"), KeyAlgorithm::Rsa2048, &options)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(measure(&mut ecdsa, &mut rsa, &options));
        ecdsa.server.stop();
        rsa.server.stop();
        let rounds = result?;
        let report = report(&rounds, &options);
        print!("{report}");
        let path = root.join(REPORT);
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        std::fs::write(&path, &report)?;
        let json = json_path.clone().unwrap_or_else(|| root.join(JSON_REPORT));
        if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&json, format!("{:#}\n", json_report(&rounds, &options)))?;
        eprintln!(
            "report written to {} and {}",
            path.display(),
            json.display()
        );
        let failed = rounds
            .iter()
            .flat_map(|r| KINDS.iter().zip(r))
            .any(|(kind, round)| round.mismatch(*kind).is_some());
        if failed {
            return Err(
                "MISMATCH: the handshake counts are not what they should be (see the report)"
                    .into(),
            );
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&certs);
    result
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

/// A CA, a server leaf and a client leaf, all of `algorithm`; a server on them; the client
/// configurations.
fn target(dir: &Path, algorithm: KeyAlgorithm, options: &Options) -> Result<Target, BoxError> {
    let ca = DevCa::generate(TrustDomain::new(TRUST_DOMAIN)?, algorithm)?;
    let server = ca.issue("bench-server", algorithm)?;
    let client = ca.issue("bench-client", algorithm)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
    std::fs::write(dir.join("server.pem"), &server.cert_pem)?;
    std::fs::write(dir.join("server.key"), &server.key_pem)?;
    let server = ServerProcess::start(dir)?;
    let config = |resumption: Resumption| -> Result<Arc<ClientConfig>, BoxError> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())?)?;
        let chain = vec![CertificateDer::from_pem_slice(client.cert_pem.as_bytes())?];
        let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes())?;
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        config.resumption = resumption;
        Ok(Arc::new(config))
    };
    Ok(Target {
        server,
        full: config(Resumption::disabled())?,
        resuming: (0..options.concurrency)
            .map(|_| config(Resumption::in_memory_sessions(16)))
            .collect::<Result<_, _>>()?,
    })
}

/// Warm-up, then the interleaved rounds. Returns each round's results in `KINDS` order.
async fn measure(
    ecdsa: &mut Target,
    rsa: &mut Target,
    options: &Options,
) -> Result<Vec<Vec<Round>>, BoxError> {
    if options.warmup > 0.0 {
        for kind in KINDS {
            let round = one(kind, ecdsa, rsa, options.warmup, options.concurrency).await?;
            eprintln!(
                "warm-up {:<40} {:>8.0} handshakes/s",
                kind.label(),
                round.rate()
            );
        }
    }
    let mut rounds = Vec::new();
    for n in 1..=options.rounds {
        let mut this = Vec::new();
        for kind in KINDS {
            let round = one(kind, ecdsa, rsa, options.seconds, options.concurrency).await?;
            eprintln!(
                "round {n}/{} {:<40} {:>8.0} handshakes/s (server CPU {:.0}%){}",
                options.rounds,
                kind.label(),
                round.rate(),
                round.server_cpu() * 100.0,
                round
                    .mismatch(kind)
                    .map(|m| format!("  MISMATCH: {m}"))
                    .unwrap_or_default()
            );
            this.push(round);
        }
        rounds.push(this);
    }
    Ok(rounds)
}

async fn one(
    kind: Kind,
    ecdsa: &mut Target,
    rsa: &mut Target,
    seconds: f64,
    concurrency: usize,
) -> Result<Round, BoxError> {
    let target = if kind == Kind::RsaFull { rsa } else { ecdsa };
    let port = target.server.port;
    let before = target.server.counters()?;
    let client_before = cpu_ticks("self").ok_or("no /proc/self/stat")?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let config = if kind.resumed() {
                target.resuming[i].clone()
            } else {
                target.full.clone()
            };
            tokio::spawn(connect_loop(config, port, end))
        })
        .collect();
    let mut round = Round {
        window: seconds,
        server_before: before,
        ..Round::default()
    };
    for task in tasks {
        let t = task.await?;
        round.in_window += t.in_window;
        round.full += t.full;
        round.resumed += t.resumed;
        round.errors += t.errors;
        round.first_error = round.first_error.or(t.first_error);
        round.negotiated = round.negotiated.or(t.negotiated);
    }
    round.client_cpu = cpu_ticks("self").ok_or("no /proc/self/stat")? - client_before;
    round.server_after = target.server.counters()?;
    Ok(round)
}

#[derive(Default)]
struct TaskResult {
    in_window: u64,
    full: u64,
    resumed: u64,
    errors: u64,
    first_error: Option<String>,
    negotiated: Option<String>,
}

/// Connects, handshakes, reads the server's first HTTP/2 frame and closes, again and again
/// until `end`.
async fn connect_loop(config: Arc<ClientConfig>, port: u16, end: Instant) -> TaskResult {
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("localhost").expect("valid name");
    let mut result = TaskResult::default();
    while Instant::now() < end {
        match connection(&connector, name.clone(), port).await {
            Ok((kind, negotiated)) => {
                match kind {
                    Some(HandshakeKind::Resumed) => result.resumed += 1,
                    _ => result.full += 1,
                }
                if Instant::now() <= end {
                    result.in_window += 1;
                }
                result.negotiated.get_or_insert(negotiated);
            }
            Err(error) => {
                result.errors += 1;
                result.first_error.get_or_insert(error.to_string());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    result
}

async fn connection(
    connector: &tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    port: u16,
) -> Result<(Option<HandshakeKind>, String), BoxError> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(name, tcp).await?;
    let (_, session) = tls.get_ref();
    let kind = session.handshake_kind();
    let negotiated = format!(
        "{:?}, {:?}, {:?}, ALPN {}",
        session.protocol_version().ok_or("no version")?,
        session.negotiated_cipher_suite().ok_or("no suite")?.suite(),
        session
            .negotiated_key_exchange_group()
            .ok_or("no group")?
            .name(),
        String::from_utf8_lossy(session.alpn_protocol().unwrap_or(b"none"))
    );
    tls.write_all(PREFACE).await?;
    tls.flush().await?;
    // The server's first frame is its SETTINGS; TLS 1.3 tickets come before it.
    let mut header = [0u8; 9];
    tls.read_exact(&mut header).await?;
    if header[3] != 0x4 {
        return Err(format!("first HTTP/2 frame of type {}, not SETTINGS", header[3]).into());
    }
    tls.shutdown().await?;
    Ok((kind, negotiated))
}

// === the report ===

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
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

/// Every round's numbers and the medians the Markdown report shows, for bench/report.
fn json_report(rounds: &[Vec<Round>], options: &Options) -> serde_json::Value {
    let kinds: Vec<serde_json::Value> = KINDS
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let rates: Vec<f64> = rounds.iter().map(|r| r[i].rate()).collect();
            let ratios: Vec<f64> = rounds.iter().map(|r| r[i].rate() / r[0].rate()).collect();
            let mut server: Vec<f64> = rounds.iter().map(|r| r[i].server_cpu()).collect();
            let mut client: Vec<f64> = rounds.iter().map(|r| r[i].client_cpu()).collect();
            let mismatches: Vec<String> =
                rounds.iter().filter_map(|r| r[i].mismatch(*kind)).collect();
            serde_json::json!({
                "kind": kind.id(),
                "label": kind.label(),
                "negotiated": rounds.iter().find_map(|r| r[i].negotiated.clone()),
                "handshakes_per_s": rates,
                "handshakes_per_s_median": median(&mut rates.clone()),
                "ratio_vs_ecdsa_full": ratios,
                "ratio_vs_ecdsa_full_median": median(&mut ratios.clone()),
                "server_cpu_median": median(&mut server),
                "client_cpu_median": median(&mut client),
                "mismatches": mismatches,
            })
        })
        .collect();
    serde_json::json!({
        "meta": {
            "rounds": options.rounds,
            "seconds": options.seconds,
            "warmup_s": options.warmup,
            "concurrency": options.concurrency,
            "server_cpu": SERVER_CPU,
            "client_cpu": CLIENT_CPU,
            "cpu": cpu_model(),
        },
        "kinds": kinds,
    })
}

fn report(rounds: &[Vec<Round>], options: &Options) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let cpu = cpu_model();
    let _ = writeln!(out, "# TLS handshakes per second, one server core\n");
    let _ = writeln!(
        out,
        "{} rounds × {} s per kind, interleaved (ECDSA full, RSA full, resumed), after {} s of \
         warm-up per kind. Server: herald (`ServerTls`, one tokio worker) pinned to CPU {SERVER_CPU}; \
         client: rustls on one thread pinned to CPU {CLIENT_CPU}, {} connections in flight. \
         CPU: {cpu}. Each connection: TCP connect, mutual-TLS handshake, HTTP/2 preface out, \
         server SETTINGS in, close.\n",
        options.rounds, options.seconds, options.warmup, options.concurrency
    );
    for (i, kind) in KINDS.iter().enumerate() {
        if let Some(n) = rounds.iter().find_map(|r| r[i].negotiated.clone()) {
            let _ = writeln!(out, "- {}: {n}", kind.label());
        }
    }
    let _ = writeln!(
        out,
        "\n| kind | median handshakes/s | ratio vs ECDSA full (median of per-round) | per-round handshakes/s | per-round ratios | server CPU (median) | client CPU (median) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---|---:|---:|");
    for (i, kind) in KINDS.iter().enumerate() {
        let rates: Vec<f64> = rounds.iter().map(|r| r[i].rate()).collect();
        let ratios: Vec<f64> = rounds.iter().map(|r| r[i].rate() / r[0].rate()).collect();
        let mut server: Vec<f64> = rounds.iter().map(|r| r[i].server_cpu()).collect();
        let mut client: Vec<f64> = rounds.iter().map(|r| r[i].client_cpu()).collect();
        let list = |v: &[f64], digits: usize| {
            v.iter()
                .map(|x| format!("{x:.digits$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {} | {} | {:.0}% | {:.0}% |",
            kind.label(),
            median(&mut rates.clone()),
            median(&mut ratios.clone()),
            list(&rates, 0),
            list(&ratios, 3),
            median(&mut server) * 100.0,
            median(&mut client) * 100.0,
        );
    }
    let _ = writeln!(
        out,
        "\n## Server handshake counters (all measured rounds)\n\n\
         | kind | server full | server resumed | server failed | client full | client resumed | client errors | check |\n\
         |---|---:|---:|---:|---:|---:|---:|---|"
    );
    for (i, kind) in KINDS.iter().enumerate() {
        let (mut sf, mut sr, mut sx, mut cf, mut cr, mut ce) = (0, 0, 0, 0, 0, 0);
        let mut problems = Vec::new();
        for (n, r) in rounds.iter().enumerate() {
            let round = &r[i];
            let (f, res, x) = round.server_delta();
            sf += f;
            sr += res;
            sx += x;
            cf += round.full;
            cr += round.resumed;
            ce += round.errors;
            if let Some(m) = round.mismatch(*kind) {
                problems.push(format!("round {}: {m}", n + 1));
            }
        }
        let check = if problems.is_empty() {
            "OK".to_owned()
        } else {
            format!("**MISMATCH** {}", problems.join("; "))
        };
        let _ = writeln!(
            out,
            "| {} | {sf} | {sr} | {sx} | {cf} | {cr} | {ce} | {check} |",
            kind.label()
        );
    }
    let saturated = rounds
        .iter()
        .flatten()
        .map(Round::server_cpu)
        .fold(f64::INFINITY, f64::min);
    let _ = writeln!(
        out,
        "\nHandshakes/s counts connections completed inside each {} s window. Ratios are per \
         round (same round's ECDSA full as the baseline), then the median. Server CPU is the \
         server process's user+system time over the window (100% = the one core busy); \
         the lowest of any round was {:.0}%.{}",
        options.seconds,
        saturated * 100.0,
        if saturated < 0.9 {
            " **Below 90%: in some rounds the client, not the server, limited the rate.**"
        } else {
            ""
        }
    );
    out
}
