//! Hostile HTTP/2 peers (`interop/hostile/`, Python h2/hyperframe) against a herald server over
//! mutual TLS: rapid reset, CONTINUATION floods, oversized headers, HPACK bomb, PING and
//! SETTINGS floods, tiny and empty DATA frames, the stream cap, a slow preface. Each must end
//! in a refusal or GOAWAY (or stay bounded), the server's memory must stay bounded, and an
//! honest client calling at the same time must see no failure. Bounded: each attack stops
//! itself within 10 s.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn hostile_peers_are_refused_and_an_honest_client_sees_no_failure() {
    let venv = std::env::var_os("HERALD_INTEROP_VENV")
        .map_or_else(|| repo().join(".venv-interop"), PathBuf::from);
    let setup = Command::new(repo().join("interop/python/setup-venv"))
        .status()
        .expect("run setup-venv");
    assert!(setup.success(), "setup-venv failed");
    let certs = std::env::temp_dir().join(format!("herald-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&certs);
    let made = Command::new(repo().join("interop/python/make-test-certs"))
        .arg(&certs)
        .status()
        .expect("run make-test-certs");
    assert!(made.success());
    let file = |name: &str| certs.join(name).display().to_string();

    let mut server = Command::new(env!("CARGO_BIN_EXE_herald-interop-server"))
        .args([
            "--port",
            "0",
            "--tls",
            "--cert",
            &file("leaf.pem"),
            "--key",
            &file("leaf.key"),
        ])
        .args(["--ca", &file("ca.pem")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the herald interop server");
    let stdout = BufReader::new(server.stdout.take().expect("stdout"));
    let port = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("LISTENING ").map(str::to_owned))
        .expect("the server listens");

    let output = Command::new(venv.join("bin/python"))
        .arg(repo().join("interop/hostile/run.py"))
        .args(["--port", port.trim(), "--server-name", "localhost"])
        .args([
            "--ca",
            &file("ca.pem"),
            "--cert",
            &file("leaf.pem"),
            "--key",
            &file("leaf.key"),
        ])
        .args(["--server-pid", &server.id().to_string()])
        .output()
        .expect("run the hostile peers");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&certs);

    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    let summary = report.lines().last().unwrap_or_default();
    assert!(
        output.status.success() && summary.ends_with(" 0 failed"),
        "hostile peers: {summary}\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
