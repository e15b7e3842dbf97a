//! The `herald` binary, run as a user runs it.

use assert_cmd::Command;

fn herald() -> Command {
    Command::cargo_bin("herald").expect("the herald binary is built")
}

#[test]
fn demo_walks_through_every_step_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = herald()
        .arg("demo")
        .current_dir(dir.path())
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Accounts listening on 127.0.0.1:",
        "(mutual TLS, identity \"accounts\")",
        "certificate comes from another CA → UNAVAILABLE",
        "UnknownCA",
        "means to call accounts but reaches cache → UNAVAILABLE",
        "the server is \"cache\", but this channel calls \"accounts\"",
        "Get \"greeting\" → \"hello\"",
        "Dump streams 2 entries",
        "Get \"nothing-here\" → NOT_FOUND with app error Some(NotFound)",
        "alice stores \"d\" → FAILED_PRECONDITION with app error Some(KeyLimitExceeded)",
        "(dry_run: true); Get \"draft\" afterwards → NOT_FOUND",
        "Store as tok-slow → DEADLINE_EXCEEDED",
        "budget is already spent → DEADLINE_EXCEEDED without being sent (local: true)",
        "Store as mallory (suspended in Accounts) → UNKNOWN",
        "(mapped on purpose) → UNAUTHENTICATED with app error Some(InvalidToken)",
        "user.intruder (valid certificate, named nowhere in the ACL) → PERMISSION_DENIED",
        "10 calls at once → 1 served, 9 RESOURCE_EXHAUSTED",
        "reload applied: true; user.intruder's Get → OK",
        "A broken file (a typo) → refused, the previous limits stay",
        "unknown field `max_concurency`",
        "user.intruder's Get after the bad edit → OK",
        "Channel::legacy_bridge(..) → Get \"greeting\" = \"hello\" (POST /cache.Cache/Get on 127.0.0.1:",
        "1 resumed, 2 refused",
        "both servers drained and stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(dir.path().join(".herald-demo/ca.pem").exists());
}

#[test]
fn certs_init_then_issue_writes_spiffe_certificates_with_private_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let certs_arg = certs.to_str().expect("utf-8 path");
    let out = herald()
        .args([
            "certs",
            "init",
            "--dir",
            certs_arg,
            "--trust-domain",
            "acme.internal",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("trust domain acme.internal"));

    for (flag, name, identity) in [
        ("--service", "cache", "cache"),
        ("--user", "boo", "user.boo"),
        ("--host", "web-1", "host.web-1"),
    ] {
        let out = herald()
            .args(["certs", "issue", "--dir", certs_arg, flag, name])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("identity {identity}")), "{stdout}");
        // The certificate carries the identity the CLI said.
        let pem = std::fs::read_to_string(certs.join(format!("{identity}.pem"))).expect("cert");
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
        let td = herald::tls::TrustDomain::new("acme.internal").expect("td");
        assert_eq!(
            td.identity_in_cert(&der).expect("identity").as_str(),
            identity
        );
    }
    #[cfg(unix)]
    for key in ["ca.key", "cache.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(certs.join(key))
            .expect("key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key} is readable by others");
    }

    // An RSA certificate for comparison.
    let out = herald()
        .args([
            "certs",
            "issue",
            "--dir",
            certs_arg,
            "--service",
            "big",
            "--rsa",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("RSA-2048"));
}

use rustls_pki_types::pem::PemObject;

/// Bad input: one line on stderr, a non-zero exit, nothing half-written.
#[test]
fn certs_errors_are_one_line_hints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let certs_arg = certs.to_str().expect("utf-8 path");
    let one_line_error = |args: &[&str], says: &str| {
        let out = herald().args(args).output().expect("runs");
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?}: expected {says:?} in {stderr}"
        );
    };
    one_line_error(
        &["certs", "issue", "--dir", certs_arg, "--service", "cache"],
        "run `herald certs init",
    );
    one_line_error(
        &[
            "certs",
            "init",
            "--dir",
            certs_arg,
            "--trust-domain",
            "Bad Domain",
        ],
        "invalid trust domain",
    );
    herald()
        .args(["certs", "init", "--dir", certs_arg])
        .assert()
        .success();
    one_line_error(
        &["certs", "init", "--dir", certs_arg],
        "pass --force to replace it",
    );
    one_line_error(
        &[
            "certs",
            "issue",
            "--dir",
            certs_arg,
            "--service",
            "Cache.Svc",
        ],
        "invalid identity",
    );
    assert!(!certs.join("Cache.Svc.pem").exists());
}

#[test]
fn an_unknown_subcommand_fails_with_a_hint() {
    let output = herald().arg("frobnicate").output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
}

#[test]
fn config_check_accepts_a_valid_file_and_names_the_line_of_a_bad_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "limits:\n  cache.Cache:\n    default:\n      max_concurrency: 4\n      rate_acls: { web: -1, user.boo: 10 }\n    methods:\n      Dump: { max_concurrency: 1 }\n").expect("write");
    let out = herald()
        .args(["config", "check"])
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "good.yaml: valid",
        "cache.Cache: 2 caller rule(s), max_concurrency 4",
        "user.boo: 10/s",
        "web: unlimited",
        "method Dump",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in {stdout}"
        );
    }

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "limits:\n  cache.Cache:\n    default:\n      rate_acls: { web: -7 }\n",
    )
    .expect("write");
    let out = herald()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.yaml: limits.cache.Cache.default.rate_acls.web: -7 is not a rate"),
        "{stderr}"
    );

    let out = herald()
        .args(["config", "check", "/nonexistent/limits.yaml"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
