//! The contract read back from real descriptors, and every rule's refusal text.

use std::path::Path;
use std::time::Duration;

use prost::Message as _;

use crate::{Builder, load};

/// Writes `source` as `test.proto` in a fresh folder and loads it.
fn check(source: &str) -> Result<crate::Checked, crate::Error> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("test.proto"), source).expect("write proto");
    Builder::new().check(&["test.proto"], &[dir.path()])
}

fn problems(source: &str) -> Vec<String> {
    match check(source) {
        Ok(_) => panic!("the contract was accepted"),
        Err(e) => {
            assert!(!e.problems().is_empty(), "not a contract error: {e}");
            e.problems().to_vec()
        }
    }
}

fn contains(problems: &[String], needles: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "no problem mentions all of {needles:?}: {problems:#?}"
    );
}

const HEADER: &str =
    "syntax = \"proto3\";\npackage t;\nimport \"herald/options.proto\";\nmessage M {}\n";

#[test]
fn options_survive_the_descriptor_path_with_their_values() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cache/proto");
    let loaded =
        load(&["cache.proto", "accounts.proto"], &[example], None).expect("the example is valid");
    // Reflection clients need every import, herald's options included.
    let everything =
        prost_types::FileDescriptorSet::decode(loaded.everything.as_slice()).expect("decodes");
    let names: Vec<&str> = everything.file.iter().map(|f| f.name()).collect();
    for name in [
        "herald/options.proto",
        "google/protobuf/descriptor.proto",
        "cache.proto",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let model = loaded.model;
    let cache = model
        .services
        .iter()
        .find(|s| s.full_name == "cache.Cache")
        .expect("Cache");
    let method = |name: &str| {
        cache
            .methods
            .iter()
            .find(|m| m.name == name)
            .expect("method")
    };

    assert_eq!(method("Get").deadline, Some(Duration::from_millis(100)));
    assert_eq!(method("Store").deadline, Some(Duration::from_millis(300)));
    // Inherits the service default.
    assert_eq!(
        method("StoreMany").deadline,
        Some(Duration::from_millis(500))
    );
    assert_eq!(method("GetMany").deadline, None);
    assert!(method("GetMany").client_streaming && method("GetMany").server_streaming);

    // Per-method override of one scalar keeps the service's retry policy.
    assert!(method("Get").client.idempotent);
    assert!(!method("Store").client.idempotent);
    let retry = method("Store")
        .client
        .retry
        .clone()
        .expect("retry inherited");
    assert_eq!(retry.max_attempts, 3);
    assert_eq!(retry.initial_backoff, Duration::from_millis(20));
    assert_eq!(retry.max_backoff, Duration::from_millis(200));
    assert!((retry.multiplier - 2.0).abs() < f64::EPSILON);
    assert_eq!(retry.retriable, ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]);

    let accounts = model
        .services
        .iter()
        .find(|s| s.full_name == "accounts.Accounts")
        .expect("Accounts");
    let get = &accounts.methods[0];
    assert_eq!(get.client.timeout, Some(Duration::from_millis(100)));
    let breaker = get.client.circuit_breaker.clone().expect("breaker");
    assert_eq!(breaker.window, Duration::from_millis(10_000));
    assert!((breaker.failure_ratio - 0.5).abs() < f64::EPSILON);
    assert_eq!(breaker.minimum_requests, 20);
    assert_eq!(breaker.open_for, Duration::from_millis(5_000));

    let error = model
        .app_errors
        .iter()
        .find(|e| e.full_name == "cache.CacheError")
        .expect("CacheError");
    assert_eq!(error.rust_path, "CacheError");
    assert_eq!(
        error.codes,
        [
            (1, "NOT_FOUND".to_owned()),
            (2, "FAILED_PRECONDITION".to_owned()),
            (3, "UNAUTHENTICATED".to_owned())
        ]
    );
    assert_eq!(
        cache.app_error.as_ref().map(|e| e.full_name.as_str()),
        Some("cache.CacheError")
    );
}

#[test]
fn a_method_without_any_deadline_is_refused_naming_the_method_and_the_fix() {
    let p = problems(&format!("{HEADER}service S {{ rpc Get(M) returns (M); }}"));
    contains(
        &p,
        &[
            "method t.S.Get has no deadline",
            "(herald.deadline_ms)",
            "(herald.default_deadline_ms)",
            "(herald.no_deadline)",
        ],
    );
}

#[test]
fn a_fallback_deadline_covers_contracts_without_herald_options_and_no_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let foreign =
        "syntax = \"proto3\";\npackage v;\nmessage M {}\nservice S { rpc Get(M) returns (M); }\n";
    std::fs::write(dir.path().join("test.proto"), foreign).expect("write proto");
    let checked = Builder::new()
        .fallback_deadline(Duration::from_secs(10))
        .check(&["test.proto"], &[dir.path()])
        .expect("a fallback deadline satisfies the rule");
    assert_eq!(checked.services, ["v.S"]);
    let refused = Builder::new().check(&["test.proto"], &[dir.path()]);
    assert!(refused.is_err(), "without the fallback the rule holds");
    let loaded = load(
        &["test.proto"],
        &[dir.path()],
        Some(Duration::from_millis(1500)),
    )
    .expect("loads");
    let method = &loaded.model.services[0].methods[0];
    assert_eq!(method.deadline, Some(Duration::from_millis(1500)));
}

#[test]
fn a_service_default_or_no_deadline_satisfies_the_rule() {
    check(&format!(
        "{HEADER}service S {{ option (herald.default_deadline_ms) = 50; rpc Get(M) returns (M); }}"
    ))
    .expect("default deadline");
    check(&format!(
        "{HEADER}service S {{ rpc Watch(M) returns (stream M) {{ option (herald.no_deadline) = true; }} }}"
    ))
    .expect("no_deadline");
}

#[test]
fn negative_or_zero_durations_are_refused() {
    let p = problems(&format!(
        "{HEADER}service S {{ rpc Get(M) returns (M) {{ option (herald.deadline_ms) = -5; }} }}"
    ));
    contains(
        &p,
        &[
            "t.S.Get",
            "deadline_ms must be a positive number of milliseconds, not -5",
        ],
    );
    let p = problems(&format!(
        "{HEADER}service S {{ option (herald.default_deadline_ms) = 0; rpc Get(M) returns (M) {{ option (herald.deadline_ms) = 5; }} }}"
    ));
    contains(&p, &["t.S", "default_deadline_ms", "not 0"]);
}

#[test]
fn deadline_and_no_deadline_together_are_refused() {
    let p = problems(&format!(
        "{HEADER}service S {{ rpc Get(M) returns (M) {{ option (herald.deadline_ms) = 5; option (herald.no_deadline) = true; }} }}"
    ));
    contains(&p, &["t.S.Get sets both"]);
}

#[test]
fn unknown_grpc_code_names_are_refused() {
    let p = problems(&format!(
        "{HEADER}enum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_GONE = 1 [(herald.grpc_code) = \"NOTFOUND\"]; }}"
    ));
    contains(
        &p,
        &[
            "value E_GONE of enum t.E",
            "unknown gRPC code name \"NOTFOUND\"",
            "NOT_FOUND",
        ],
    );
    let p = problems(&format!(
        "{HEADER}service S {{ option (herald.default_deadline_ms) = 5; option (herald.default_client) = {{ retry: {{ max_attempts: 2 initial_backoff_ms: 1 max_backoff_ms: 2 backoff_multiplier: 2 retriable_codes: [\"UNAVAILABLE\", \"FLAKY\"] }} }}; rpc Get(M) returns (M); }}"
    ));
    contains(&p, &["t.S", "\"FLAKY\""]);
}

#[test]
fn app_error_rules_are_enforced() {
    let p = problems(&format!(
        "{HEADER}enum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_GONE = 1; }}"
    ));
    contains(&p, &["value E_GONE of enum t.E has no gRPC code"]);
    let p = problems(&format!(
        "{HEADER}enum E {{ E_UNSPECIFIED = 0; E_GONE = 1 [(herald.grpc_code) = \"NOT_FOUND\"]; }}"
    ));
    contains(
        &p,
        &[
            "value E_GONE of enum t.E has (herald.grpc_code)",
            "lacks `option (herald.rpc_error) = true;`",
        ],
    );
    let p = problems(&format!(
        "{HEADER}enum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_FINE = 1 [(herald.grpc_code) = \"OK\"]; }}"
    ));
    contains(&p, &["cannot travel as OK"]);
    let p = problems(&format!(
        "{HEADER}service S {{ option (herald.default_deadline_ms) = 5; option (herald.app_error) = \"t.Missing\"; rpc Get(M) returns (M); }}"
    ));
    contains(&p, &["service t.S", "\"t.Missing\", which is no enum"]);
}

#[test]
fn client_policy_bounds_are_enforced() {
    let p = problems(&format!(
        "{HEADER}service S {{ option (herald.default_deadline_ms) = 5; rpc Get(M) returns (M) {{ option (herald.client) = {{ retry: {{ max_attempts: 3 initial_backoff_ms: 10 max_backoff_ms: 5 backoff_multiplier: 0.5 retriable_codes: [\"UNAVAILABLE\"] }} circuit_breaker: {{ window_ms: 1000 failure_ratio: 1.5 minimum_requests: 0 open_ms: 100 }} }}; }} }}"
    ));
    contains(&p, &["t.S.Get", "backoff_multiplier must be at least 1"]);
    contains(
        &p,
        &["t.S.Get", "max_backoff_ms is below initial_backoff_ms"],
    );
    contains(&p, &["t.S.Get", "failure_ratio must be in (0, 1]"]);
    contains(&p, &["t.S.Get", "minimum_requests must be at least 1"]);
}

#[test]
fn every_broken_rule_is_reported_at_once() {
    let p = problems(&format!(
        "{HEADER}service S {{ rpc A(M) returns (M); rpc B(M) returns (M); }}\nenum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_X = 1 [(herald.grpc_code) = \"NOPE\"]; }}"
    ));
    assert_eq!(p.len(), 3, "{p:#?}");
}

#[test]
fn attempts_above_five_are_capped_with_a_warning() {
    let checked = check(&format!(
        "{HEADER}service S {{ option (herald.default_deadline_ms) = 5; rpc Get(M) returns (M) {{ option (herald.client) = {{ idempotent: true retry: {{ max_attempts: 9 initial_backoff_ms: 1 max_backoff_ms: 2 backoff_multiplier: 2 retriable_codes: [\"UNAVAILABLE\"] }} }}; }} }}"
    ))
    .expect("valid");
    assert!(
        checked
            .warnings
            .iter()
            .any(|w| w.contains("max_attempts 9 is capped at 5")),
        "{:?}",
        checked.warnings
    );
}

#[test]
fn a_proto_that_does_not_compile_says_so() {
    let error = check("syntax = \"proto3\"; message {").expect_err("syntax error");
    assert!(error.is_compile(), "{error}");
    let error = check(&format!(
        "{HEADER}service S {{ option (herald.deadline) = 5; }}"
    ))
    .expect_err("unknown option");
    assert!(error.is_compile(), "{error}");
}

/// Generated code names only what `herald::codegen` exports: every `::herald::codegen::X`
/// in the output of a contract with and without an app error exists in the runtime's module.
#[test]
fn generated_code_names_only_exported_codegen_items() {
    let exported = include_str!("../../herald/src/codegen.rs");
    for proto in [
        format!(
            "{HEADER}service S {{ option (herald.default_deadline_ms) = 5; rpc A(M) returns (M); rpc B(stream M) returns (stream M); }}"
        ),
        format!(
            "{HEADER}service S {{ option (herald.default_deadline_ms) = 5; option (herald.app_error) = \"t.E\"; rpc A(M) returns (stream M); rpc B(stream M) returns (M); }}\n\
             enum E {{ option (herald.rpc_error) = true; E_UNSPECIFIED = 0; E_GONE = 1 [(herald.grpc_code) = \"NOT_FOUND\"]; }}"
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("test.proto"), &proto).expect("write proto");
        let out = dir.path().join("out");
        Builder::new()
            .out_dir(&out)
            .compile(&["test.proto"], &[dir.path()])
            .expect("valid contract");
        let generated = std::fs::read_to_string(out.join("t.rs")).expect("generated file");
        let mut names: Vec<&str> = generated
            .split("::herald::codegen::")
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("")
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() > 5, "{names:?}");
        // Every `pub use ...;` statement (possibly over several lines) and `pub fn` name.
        let statements: Vec<&str> = exported
            .split("pub ")
            .skip(1)
            .filter(|s| s.starts_with("use ") || s.starts_with("fn ") || s.starts_with("const fn "))
            .map(|s| s.split(['(', ';']).next().unwrap_or(""))
            .collect();
        for name in names {
            let exported_here = statements.iter().any(|s| {
                s.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|word| word == name)
            });
            assert!(
                exported_here,
                "generated code names ::herald::codegen::{name}, which herald::codegen does not export"
            );
        }
    }
}
