//! The fuzz targets' seed corpora (`fuzz/seeds/<target>/`), replayed through the same
//! properties on stable: every input that was worth keeping, crashes once fixed included,
//! stays checked by the normal test run. Fuzzing itself is `scripts/fuzz` (nightly).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

fn replay(target: &str, property: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable seeds directory").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    let failed: Vec<String> = seeds
        .iter()
        .filter(|seed| {
            let data = std::fs::read(seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            catch_unwind(AssertUnwindSafe(|| property(&data))).is_err()
        })
        .map(|seed| seed.display().to_string())
        .collect();
    assert!(failed.is_empty(), "seeds that fail: {failed:#?}");
}

#[test]
fn limits_config() {
    replay("limits_config", herald::fuzzing::limits_config);
}

#[test]
fn grpc_timeout() {
    replay("grpc_timeout", herald::fuzzing::grpc_timeout);
}

#[test]
fn spiffe_identity() {
    replay("spiffe_identity", herald::fuzzing::spiffe_identity);
}

#[test]
fn request_metadata() {
    replay("request_metadata", herald::fuzzing::request_metadata);
}

#[test]
fn bridge_request() {
    replay("bridge_request", herald::fuzzing::bridge_request);
}
