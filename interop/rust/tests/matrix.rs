//! The interop matrix: herald's client and server against gRPC's C core (Python grpcio) and
//! grpc-js (Node), both directions, plaintext and mutual TLS, every case of the interop
//! description; a 1,000-call soak each way with grpcio; and TLS handshakes that must fail.
//!
//! The peers are installed by `interop/python/setup-venv` and `interop/node/setup` (run here
//! too; both are quick when already done). Every peer process is bounded by a timeout and
//! killed when its test ends.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Cases known not to pass, by (client, server), with why. A case listed here must FAIL
/// (so the list is updated when it starts passing); every other case must PASS or SKIP.
const KNOWN_FAILURES: &[(Impl, Impl, &str, &str)] = &[
    (
        Impl::Python,
        Impl::Herald,
        "server_compressed_streaming",
        "tonic compresses a server stream as a whole: no per-message choice",
    ),
    (
        Impl::Node,
        Impl::Herald,
        "server_compressed_streaming",
        "tonic compresses a server stream as a whole: no per-message choice",
    ),
    (
        Impl::Herald,
        Impl::Node,
        "server_compressed_unary",
        "a grpc-js server never compresses responses",
    ),
    (
        Impl::Herald,
        Impl::Node,
        "server_compressed_streaming",
        "a grpc-js server never compresses responses",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Impl {
    Herald,
    Python,
    Node,
}

/// Certificates from `make-test-certs`: a CA and a leaf (SPIFFE id "interop", DNS localhost).
struct Certs {
    dir: PathBuf,
}

/// A running server, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv_python() -> PathBuf {
    std::env::var_os("HERALD_INTEROP_VENV")
        .map_or_else(|| repo().join(".venv-interop"), PathBuf::from)
        .join("bin/python")
}

/// The peers installed, once per test binary.
fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for script in ["interop/python/setup-venv", "interop/node/setup"] {
            let status = Command::new(repo().join(script))
                .status()
                .unwrap_or_else(|e| panic!("run {script}: {e}"));
            assert!(status.success(), "{script} failed");
        }
    });
}

impl Certs {
    fn make(dir: &Path) -> Certs {
        let status = Command::new(repo().join("interop/python/make-test-certs"))
            .arg(dir)
            .status()
            .expect("run make-test-certs");
        assert!(status.success(), "make-test-certs failed");
        Certs {
            dir: dir.to_path_buf(),
        }
    }

    fn flags(&self) -> Vec<String> {
        let path = |name: &str| self.dir.join(name).display().to_string();
        vec![
            "--tls".into(),
            "--cert".into(),
            path("leaf.pem"),
            "--key".into(),
            path("leaf.key"),
            "--ca".into(),
            path("ca.pem"),
        ]
    }
}

fn command(implementation: Impl, role: &str) -> Command {
    match implementation {
        Impl::Herald => Command::new(match role {
            "server" => env!("CARGO_BIN_EXE_herald-interop-server"),
            _ => env!("CARGO_BIN_EXE_herald-interop-client"),
        }),
        Impl::Python => {
            let mut command = Command::new(venv_python());
            command.arg(repo().join(format!("interop/python/{role}.py")));
            command
        }
        Impl::Node => {
            let mut command = Command::new("node");
            command.arg(repo().join(format!("interop/node/{role}.js")));
            command
        }
    }
}

impl Server {
    fn start(implementation: Impl, tls: Option<&Certs>) -> Server {
        let mut command = command(implementation, "server");
        command.args(["--port", "0"]);
        if let Some(certs) = tls {
            command.args(certs.flags());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start the {implementation:?} server: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut server = Server { child, port: 0 };
        for line in stdout.lines() {
            let line = line.expect("read the server's output");
            if let Some(port) = line.strip_prefix("LISTENING ") {
                server.port = port.trim().parse().expect("a port number");
                return server;
            }
        }
        panic!("the {implementation:?} server exited before listening");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client to completion (at most `limit`); its stdout and whether it exited 0.
fn run_client(
    implementation: Impl,
    port: u16,
    tls: Option<&Certs>,
    extra: &[&str],
    limit: Duration,
) -> (String, bool) {
    let mut command = command(implementation, "client");
    command.args(["--port", &port.to_string()]);
    command.args(extra);
    if let Some(certs) = tls {
        command.args(certs.flags());
        command.args(["--server-name", "localhost"]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {implementation:?} client: {e}"));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                std::io::Read::read_to_string(&mut stdout, &mut out).expect("read stdout");
            }
            return (out, status.success());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {implementation:?} client ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Case → (verdict, reason) from a client's output.
fn verdicts(output: &str) -> BTreeMap<String, (String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let (verdict, rest) = line.split_once(' ')?;
            if !matches!(verdict, "PASS" | "FAIL" | "SKIP") {
                return None;
            }
            let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            Some((name.to_owned(), (verdict.to_owned(), reason.to_owned())))
        })
        .collect()
}

/// One cell of the matrix: every case, checked against the known failures. Returns
/// (passed, failed as known, skipped).
fn cell(client: Impl, server: Impl, tls: Option<&Certs>) -> (usize, usize, usize) {
    let running = Server::start(server, tls);
    let (output, _) = run_client(
        client,
        running.port,
        tls,
        &["--cases", "all"],
        Duration::from_secs(120),
    );
    let found = verdicts(&output);
    assert_eq!(
        found.len(),
        18,
        "{client:?} → {server:?}: expected 18 case lines, got:\n{output}"
    );
    let (mut passed, mut known, mut skipped) = (0, 0, 0);
    for (name, (verdict, reason)) in &found {
        let expected_failure = KNOWN_FAILURES
            .iter()
            .find(|(c, s, case, _)| *c == client && *s == server && case == name);
        match (verdict.as_str(), expected_failure) {
            ("PASS", None) => passed += 1,
            ("SKIP", None) => skipped += 1,
            ("FAIL", Some(_)) => known += 1,
            ("FAIL", None) => {
                panic!(
                    "{client:?} → {server:?} ({}): {name} failed: {reason}",
                    security(tls)
                )
            }
            (_, Some((_, _, _, why))) => panic!(
                "{client:?} → {server:?}: {name} was listed as failing ({why}) but came {verdict}: \
                 update KNOWN_FAILURES"
            ),
            (other, None) => panic!("unexpected verdict {other}"),
        }
    }
    println!(
        "{client:?} → {server:?} ({}): {passed} passed, {known} failed as known, {skipped} skipped",
        security(tls)
    );
    (passed, known, skipped)
}

fn security(tls: Option<&Certs>) -> &'static str {
    if tls.is_some() {
        "mutual TLS"
    } else {
        "plaintext"
    }
}

const DIRECTIONS: [(Impl, Impl); 5] = [
    (Impl::Herald, Impl::Herald),
    (Impl::Herald, Impl::Python),
    (Impl::Python, Impl::Herald),
    (Impl::Herald, Impl::Node),
    (Impl::Node, Impl::Herald),
];

fn matrix(tls: Option<&Certs>) {
    let mut totals = (0, 0, 0);
    for (client, server) in DIRECTIONS {
        let (passed, known, skipped) = cell(client, server, tls);
        totals = (totals.0 + passed, totals.1 + known, totals.2 + skipped);
    }
    println!(
        "interop matrix ({}): {} passed, {} failed as known (KNOWN_FAILURES), {} skipped",
        security(tls),
        totals.0,
        totals.1,
        totals.2
    );
}

#[test]
fn interop_matrix_plaintext() {
    setup();
    matrix(None);
}

#[test]
fn interop_matrix_mutual_tls() {
    setup();
    let dir = tempfile_dir("tls");
    let certs = Certs::make(&dir);
    matrix(Some(&certs));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn soak_1000_calls_each_way_with_grpcio() {
    setup();
    for (client, server) in [(Impl::Herald, Impl::Python), (Impl::Python, Impl::Herald)] {
        let running = Server::start(server, None);
        let (output, ok) = run_client(
            client,
            running.port,
            None,
            &["--soak", "1000"],
            Duration::from_secs(300),
        );
        let summary = output.lines().last().unwrap_or_default();
        println!("soak {client:?} → {server:?}: {summary}");
        assert!(ok && summary == "1000 passed, 0 failed", "{output}");
    }
}

#[test]
fn handshakes_that_must_fail_do() {
    setup();
    let good = Certs::make(&tempfile_dir("good"));
    let other = Certs::make(&tempfile_dir("other"));
    let running = Server::start(Impl::Herald, Some(&good));
    // A client certificate from another CA: the herald server refuses it.
    let stranger = Certs {
        dir: other.dir.clone(),
    };
    let mut flags = stranger.flags();
    let ca = flags.len() - 1;
    flags[ca] = good.dir.join("ca.pem").display().to_string();
    let mut args: Vec<&str> = vec!["--cases", "empty_unary", "--timeout", "5"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--server-name", "localhost"]);
    let (output, ok) = run_client(
        Impl::Python,
        running.port,
        None,
        &args,
        Duration::from_secs(60),
    );
    assert!(
        !ok,
        "a client certificate of an unknown CA was accepted:\n{output}"
    );
    // The herald client refuses a server proving another identity than the one it calls.
    let server = Server::start(Impl::Python, Some(&good));
    let mut args: Vec<String> = [
        "--cases",
        "empty_unary",
        "--timeout",
        "5",
        "--server-identity",
        "someone-else",
    ]
    .map(String::from)
    .to_vec();
    args.extend(good.flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (output, ok) = run_client(
        Impl::Herald,
        server.port,
        None,
        &args,
        Duration::from_secs(60),
    );
    assert!(
        !ok,
        "a server proving another identity was accepted:\n{output}"
    );
    assert!(output.contains("FAIL empty_unary"), "{output}");
}

/// A fresh directory under the target dir (cleaned by the next run).
fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "herald-interop-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
