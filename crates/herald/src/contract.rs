//! The contract of each method, as generated from the service's `.proto` options.
//!
//! `herald-build` emits one `static` [`MethodContract`] per method and one
//! [`ServiceContract`] per service. Everything that needs per-method state — limits, stats,
//! breakers — is created once at start-up from these tables, so the hot path never looks a
//! method up by its name.

use std::time::Duration;

use crate::Code;

/// The shape of an RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    BidiStreaming,
}

/// A service's contract: its name and its methods.
#[derive(Debug)]
pub struct ServiceContract {
    /// Full protobuf name, e.g. `cache.Cache`.
    pub name: &'static str,
    /// The methods, in `.proto` order.
    pub methods: &'static [&'static MethodContract],
    /// Full protobuf name of the service's application error enum, if it has one.
    pub app_error: Option<&'static str>,
    /// The encoded `FileDescriptorSet` holding the service (for server reflection).
    pub descriptor_set: &'static [u8],
}

/// A method's contract: where it lives, how long it may take, how clients must call it.
#[derive(Debug)]
pub struct MethodContract {
    /// Full protobuf name of the service, e.g. `cache.Cache`.
    pub service: &'static str,
    /// The method's name as in the `.proto`, e.g. `Get`.
    pub method: &'static str,
    /// The HTTP/2 path, e.g. `/cache.Cache/Get`.
    pub path: &'static str,
    /// The RPC's shape.
    pub kind: RpcKind,
    /// The deadline the server enforces and clients cap `grpc-timeout` at; `None` only when
    /// the method says `no_deadline`.
    pub deadline: Option<Duration>,
    /// How clients call this method.
    pub client: ClientPolicy,
}

/// Client behaviour of a method (Hermes' `ServiceClientConfig`).
#[derive(Debug)]
pub struct ClientPolicy {
    /// Response timeout of one call, before the deadline and caller's budget cap it.
    pub timeout: Option<Duration>,
    /// The method may safely run more than once for one logical call.
    pub idempotent: bool,
    /// Retries, if any.
    pub retry: Option<RetryPolicy>,
    /// Circuit breaking, if any.
    pub circuit_breaker: Option<BreakerPolicy>,
}

/// Retry policy of a method.
#[derive(Debug)]
pub struct RetryPolicy {
    /// Attempts including the first, 1 to 5.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Growth of the backoff between attempts.
    pub multiplier: f64,
    /// Codes that may be retried.
    pub retriable: &'static [Code],
}

/// Circuit-breaker policy of a method.
#[derive(Debug)]
pub struct BreakerPolicy {
    /// The window failures are counted over.
    pub window: Duration,
    /// Share of failures in the window that opens the breaker, in (0, 1].
    pub failure_ratio: f64,
    /// Calls needed in the window before the ratio counts.
    pub minimum_requests: u32,
    /// How long the breaker stays open before letting a probe through.
    pub open_for: Duration,
}

/// The hard cap on attempts of one call, whatever a contract says.
pub const MAX_ATTEMPTS: u32 = 5;

// === impl MethodContract ===

impl MethodContract {
    /// A contract that says only where the method lives and its shape: no deadline and no
    /// client policy (no timeout, not idempotent, no retries, no breaker). What a client
    /// knows of a method found by reflection rather than generated from its `.proto`
    /// (`herald call`), and the plainest contract for tests and fuzzing.
    pub const fn bare(
        service: &'static str,
        method: &'static str,
        path: &'static str,
        kind: RpcKind,
    ) -> MethodContract {
        MethodContract {
            service,
            method,
            path,
            kind,
            deadline: None,
            client: ClientPolicy {
                timeout: None,
                idempotent: false,
                retry: None,
                circuit_breaker: None,
            },
        }
    }

    /// `service/method`, the name used in logs and stats.
    pub fn full_name(&self) -> &'static str {
        // The path is "/{service}/{method}": skipping the slash gives the readable form.
        &self.path[1..]
    }
}
