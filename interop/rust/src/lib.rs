//! gRPC's interop test service on herald, for checking herald against other implementations
//! (Python's grpcio on gRPC's C core, Node's grpc-js) in both directions:
//!
//! - [`service::TestServiceImpl`]: `grpc.testing.TestService` as the interop description says
//!   (echoed metadata, requested statuses, compression on request);
//! - [`cases`]: the client cases, run against any TestService server;
//! - the binaries `herald-interop-server` and `herald-interop-client`, with the same flags and
//!   output as the Python and Node peers in `interop/python` and `interop/node`.

pub mod cases;
pub mod service;

/// Generated from `interop/proto/grpc/testing/*.proto`.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.testing.rs"));
}

/// Initial metadata a server echoes.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Trailing metadata a server echoes (binary).
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// A payload of `size` zero bytes, as the cases send and expect.
pub fn zeros(size: usize) -> pb::Payload {
    pb::Payload {
        r#type: pb::PayloadType::Compressable.into(),
        body: vec![0; size],
    }
}
