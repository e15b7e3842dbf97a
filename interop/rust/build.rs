//! grpc.testing has no herald options (it is not ours to annotate): every method gets a
//! fallback deadline, longer than any case's own.

use std::time::Duration;

fn main() -> Result<(), herald_build::Error> {
    herald_build::Builder::new()
        .fallback_deadline(Duration::from_secs(60))
        .compile(&["grpc/testing/test.proto"], &["../proto"])
}
