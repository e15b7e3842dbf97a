//! `herald call` and `herald bench` against a running `herald demo --serve`, as a user runs
//! them: mutual TLS from demo.json, types learnt by server reflection.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use assert_cmd::Command;

fn herald() -> Command {
    Command::cargo_bin("herald").expect("the herald binary is built")
}

/// The demo, serving; killed when dropped.
struct Demo(Child);

impl Demo {
    fn start(dir: &Path) -> Demo {
        let mut demo = Demo(
            std::process::Command::new(assert_cmd::cargo::cargo_bin("herald"))
                .args(["demo", "--serve", "--state-dir"])
                .arg(dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the demo"),
        );
        let stdout = BufReader::new(demo.0.stdout.take().expect("stdout"));
        for line in stdout.lines() {
            if line
                .expect("read the demo's output")
                .contains("Serving until")
            {
                return demo;
            }
        }
        panic!("the demo ended before serving");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs herald with `args`; (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = herald().args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `herald bench` with `args` and `--json`; its stdout and the JSON report.
fn bench(dir: &Path, name: &str, args: &[&str]) -> (String, serde_json::Value) {
    let report = dir.join(format!("{name}.json"));
    let mut all = vec!["bench"];
    all.extend(args);
    all.extend(["--json", report.to_str().expect("utf-8")]);
    let (ok, out, err) = run(&all);
    assert!(ok, "{err}");
    let json = std::fs::read_to_string(&report).expect("report");
    (out, serde_json::from_str(&json).expect("JSON"))
}

/// Fails with exactly one line on stderr saying `says`.
fn one_line_error(args: &[&str], says: &str) {
    let (ok, _, stderr) = run(args);
    assert!(!ok, "{args:?} succeeded");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.contains(says),
        "{args:?}: expected {says:?} in {stderr}"
    );
}

#[test]
fn call_and_bench_a_running_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _demo = Demo::start(dir.path());
    let demo = dir.path().to_str().expect("utf-8 path");

    // Services, by reflection.
    let (ok, out, err) = run(&["call", "--demo", demo, "cache"]);
    assert!(ok, "{err}");
    let services: Vec<&str> = out.lines().collect();
    assert_eq!(
        services,
        [
            "cache.Cache",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );

    // A unary call: JSON in, JSON out (bytes as base64, as protobuf's JSON mapping says).
    let (ok, out, err) = run(&[
        "call",
        "--demo",
        demo,
        "cache",
        "cache.Cache/Get",
        "-d",
        r#"{"key": "greeting"}"#,
    ]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        answer,
        serde_json::json!({"key": "greeting", "value": "aGVsbG8="})
    );

    // The same call with the types from the .proto file instead of reflection.
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cache/proto");
    let proto_file = format!("{protos}/cache.proto");
    let (ok, out, err) = run(&[
        "call",
        "--demo",
        demo,
        "--proto",
        &proto_file,
        "--import-path",
        protos,
        "cache",
        "cache.Cache/Get",
        "-d",
        r#"{"key": "greeting"}"#,
    ]);
    assert!(ok, "{err}");
    let from_proto: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(from_proto, answer);
    one_line_error(
        &[
            "call",
            "--demo",
            demo,
            "--proto",
            "nonexistent.proto",
            "cache",
            "cache.Cache/Get",
        ],
        "nonexistent.proto",
    );

    // A server stream: one compact line per message.
    let (ok, out, err) = run(&[
        "call",
        "--demo",
        demo,
        "cache",
        "cache.Cache.Dump",
        "--compact",
    ]);
    assert!(ok, "{err}");
    let keys: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON line")["key"].to_string()
        })
        .collect();
    assert!(keys.contains(&r#""greeting""#.to_owned()), "{out}");

    // A bidirectional stream, several requests in a row.
    let (ok, out, err) = run(&[
        "call",
        "--demo",
        demo,
        "cache",
        "cache.Cache/GetMany",
        "--compact",
        "-d",
        r#"{"key": "greeting"} {"key": "farewell"}"#,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");

    // The signature.
    let (ok, out, _) = run(&[
        "call",
        "--demo",
        demo,
        "cache",
        "cache.Cache/Get",
        "--describe",
    ]);
    assert!(ok);
    assert!(out.contains("rpc cache.Cache.Get(cache.GetRequest) returns (cache.GetResponse)"));
    assert!(out.contains("string key = 1;"), "{out}");

    // Failures: one line each, non-zero exit.
    one_line_error(
        &[
            "call",
            "--demo",
            demo,
            "cache",
            "cache.Cache/Get",
            "-d",
            r#"{"key": "nope"}"#,
        ],
        "NOT_FOUND: no entry for key \"nope\"",
    );
    one_line_error(
        &[
            "call",
            "--demo",
            demo,
            "cache",
            "cache.Cache/Get",
            "-d",
            r#"{"kee": 1}"#,
        ],
        "request 1 is not a valid cache.GetRequest",
    );
    one_line_error(
        &["call", "--demo", demo, "cache", "cache.Cache/Gte"],
        "cache.Cache has no method Gte; it has: Store, Get, Dump, StoreMany, GetMany",
    );
    one_line_error(
        &["call", "--demo", demo, "cache", "Get"],
        "is not a method name",
    );
    one_line_error(
        &["call", "--demo", demo, "kache"],
        "the demo has no service \"kache\"",
    );
    one_line_error(
        &[
            "call",
            "--demo",
            demo,
            "cache",
            "cache.Cache/Get",
            "--timeout",
            "0",
        ],
        "--timeout must be a positive number of seconds",
    );

    // Closed loop, a fixed count.
    let (out, json) = bench(
        dir.path(),
        "closed",
        &[
            "--demo",
            demo,
            "cache",
            "cache.Cache/Get",
            "-d",
            r#"{"key": "greeting"}"#,
            "-n",
            "300",
            "-c",
            "8",
        ],
    );
    assert!(out.contains("closed loop, 8 callers"), "{out}");
    assert_eq!(json["total"]["calls"], 300);
    assert_eq!(json["total"]["codes"]["OK"], 300);
    assert_eq!(json["coordinated_omission_corrected"], false);
    let latency = &json["total"]["latency_ms"];
    let (p50, p99, max) = (
        latency["p50"].as_f64().expect("p50"),
        latency["p99"].as_f64().expect("p99"),
        latency["max"].as_f64().expect("max"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{latency}");

    // Open loop, two steps: the schedule sends exactly rate × duration calls per step, and
    // failures are counted by status: NOT_FOUND for a missing key.
    let (out, json) = bench(
        dir.path(),
        "open",
        &[
            "--demo",
            demo,
            "cache",
            "cache.Cache/Get",
            "-d",
            r#"{"key": "missing"}"#,
            "--rate",
            "50,100",
            "--duration",
            "1",
        ],
    );
    assert!(out.contains("open loop"), "{out}");
    assert_eq!(json["coordinated_omission_corrected"], true);
    assert_eq!(json["steps"][0]["calls"], 50);
    assert_eq!(json["steps"][1]["calls"], 100);
    assert_eq!(json["total"]["codes"]["NOT_FOUND"], 150);
    assert_eq!(json["total"]["ok"], 0);
    assert!(json["total"]["failed_latency_ms"]["p99"].as_f64().is_some());
    assert_eq!(json["timeline"].as_array().map(Vec::len), Some(2));

    one_line_error(
        &[
            "bench",
            "--demo",
            demo,
            "cache",
            "cache.Cache/Dump",
            "-n",
            "1",
        ],
        "herald bench loads unary methods; cache.Cache.Dump streams",
    );
    one_line_error(
        &[
            "bench",
            "--demo",
            demo,
            "cache",
            "cache.Cache/Get",
            "--rate",
            "0",
        ],
        "--rate must be positive",
    );
}

#[test]
fn connection_flags_are_checked_before_anything_is_sent() {
    one_line_error(
        &["call", "127.0.0.1:9", "cache.Cache/Get"],
        "mutual TLS needs --cert, --key and --ca",
    );
    one_line_error(
        &[
            "call",
            "--cert",
            "a.pem",
            "--key",
            "a.key",
            "--ca",
            "ca.pem",
            "127.0.0.1:9",
        ],
        "mutual TLS needs --server-identity NAME",
    );
    one_line_error(
        &[
            "call",
            "--cert",
            "/nonexistent/a.pem",
            "--key",
            "a.key",
            "--ca",
            "ca.pem",
            "--server-identity",
            "cache",
            "127.0.0.1:9",
        ],
        "cannot read /nonexistent/a.pem",
    );
    one_line_error(
        &["call", "--demo", "/nonexistent", "cache"],
        "is `herald demo --serve",
    );
    // Nothing listens on port 9 of loopback: the failure names the address.
    one_line_error(&["call", "--plaintext", "127.0.0.1:9"], "server reflection");
}
