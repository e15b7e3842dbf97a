//! The `herald` binary, run as a user runs it.

use assert_cmd::Command;

fn herald() -> Command {
    Command::cargo_bin("herald").expect("the herald binary is built")
}

#[test]
fn demo_walks_through_every_step_and_exits_cleanly() {
    let output = herald()
        .arg("demo")
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
        "Get \"greeting\" → \"hello\"",
        "Dump streams 2 entries",
        "Get \"nothing-here\" → NOT_FOUND with app error Some(NotFound)",
        "alice stores \"d\" → FAILED_PRECONDITION with app error Some(KeyLimitExceeded)",
        "(dry_run: true); Get \"draft\" afterwards → NOT_FOUND",
        "Store as tok-slow → DEADLINE_EXCEEDED",
        "budget is already spent → DEADLINE_EXCEEDED without being sent (local: true)",
        "Store as mallory (suspended in Accounts) → UNKNOWN",
        "(mapped on purpose) → UNAUTHENTICATED with app error Some(InvalidToken)",
        "both servers drained and stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
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
