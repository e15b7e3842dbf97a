//! The build itself: a crate whose `build.rs` compiles a contract with herald-build fails to
//! build, with the rule's text, when the contract is bad — and builds with no `protoc`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace")
}

/// A crate in a temp folder with `proto/contract.proto` = `proto` and a build.rs that
/// compiles it; `cargo build` run on it with a booby-trapped `protoc` first on PATH and in
/// `PROTOC`: if anything calls a protoc, the build fails saying so.
fn build_fixture(proto: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let herald_build = workspace().join("crates/herald-build");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::create_dir_all(root.join("proto")).expect("mkdir");
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fixture\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [build-dependencies]\nherald-build = {{ path = {:?} }}\n\n[workspace]\n",
            herald_build
        ),
    )
    .expect("write Cargo.toml");
    // The workspace's lock file: the same dependency versions, resolved offline.
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).expect("copy lock");
    std::fs::write(
        root.join("build.rs"),
        "fn main() -> Result<(), herald_build::Error> {\n    \
         herald_build::compile_protos(&[\"proto/contract.proto\"], &[\"proto\"])\n}\n",
    )
    .expect("write build.rs");
    std::fs::write(root.join("src/lib.rs"), "").expect("write lib.rs");
    std::fs::write(root.join("proto/contract.proto"), proto).expect("write proto");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(root)
        // Shared between runs so herald-build compiles once, apart from the workspace's own
        // target folder whose lock the running `cargo test` holds.
        .env("CARGO_TARGET_DIR", workspace().join("target/fixtures"))
        .env("PATH", path_with_trapped_protoc(root))
        .env("PROTOC", root.join("trap/protoc"))
        .output()
        .expect("run cargo")
}

/// PATH with `{root}/trap` first, holding a `protoc` that fails loudly: if anything in the
/// build calls a protoc, by PATH or by `PROTOC`, the build fails saying so.
fn path_with_trapped_protoc(root: &Path) -> std::ffi::OsString {
    let trap = root.join("trap");
    std::fs::create_dir_all(&trap).expect("mkdir");
    let protoc = trap.join("protoc");
    std::fs::write(&protoc, "#!/bin/sh\necho 'PROTOC WAS CALLED' >&2\nexit 1\n")
        .expect("write trap");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&protoc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(trap).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).expect("valid PATH")
}

const HEADER: &str =
    "syntax = \"proto3\";\npackage fx;\nimport \"herald/options.proto\";\nmessage M {}\n";

#[test]
fn contracts_build_or_fail_with_the_rule_in_cargo_output() {
    // One test, run in sequence: the fixtures share one target folder.
    let good = build_fixture(&format!(
        "{HEADER}service S {{\n  option (herald.default_deadline_ms) = 100;\n  rpc Get(M) returns (M);\n}}\n\
         enum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_GONE = 1 [(herald.grpc_code) = \"NOT_FOUND\"]; }}\n"
    ));
    let stderr = String::from_utf8_lossy(&good.stderr);
    assert!(
        good.status.success(),
        "a valid contract must build without protoc: {stderr}"
    );
    assert!(!stderr.contains("PROTOC WAS CALLED"));

    let missing_deadline = build_fixture(&format!(
        "{HEADER}service S {{\n  rpc Get(M) returns (M);\n}}\n"
    ));
    assert!(!missing_deadline.status.success());
    let stderr = String::from_utf8_lossy(&missing_deadline.stderr);
    assert!(
        stderr
            .contains("method fx.S.Get has no deadline: add `option (herald.deadline_ms) = <ms>;`"),
        "{stderr}"
    );

    let bad_code = build_fixture(&format!(
        "{HEADER}enum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_GONE = 1 [(herald.grpc_code) = \"GONE\"]; }}\n"
    ));
    assert!(!bad_code.status.success());
    let stderr = String::from_utf8_lossy(&bad_code.stderr);
    assert!(
        stderr.contains("value E_GONE of enum fx.E: unknown gRPC code name \"GONE\""),
        "{stderr}"
    );
}
