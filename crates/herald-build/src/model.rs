//! The contract as read from a `.proto`: services, methods and app error enums, with every
//! option validated. Code generation works from this model only.

use std::time::Duration;

/// Every contract in a set of `.proto` files.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) services: Vec<Service>,
    pub(crate) app_errors: Vec<AppErrorEnum>,
}

#[derive(Debug)]
pub(crate) struct Service {
    /// `cache.Cache`.
    pub(crate) full_name: String,
    pub(crate) methods: Vec<Method>,
    /// Rust path of the app error enum, relative to the package module, e.g. `CacheError`.
    pub(crate) app_error: Option<AppErrorRef>,
}

#[derive(Debug, Clone)]
pub(crate) struct AppErrorRef {
    pub(crate) full_name: String,
    pub(crate) rust_path: String,
}

#[derive(Debug)]
pub(crate) struct Method {
    /// `Get`, as in the `.proto`.
    pub(crate) name: String,
    pub(crate) client_streaming: bool,
    pub(crate) server_streaming: bool,
    /// `None` only for a `no_deadline` method.
    pub(crate) deadline: Option<Duration>,
    pub(crate) client: ClientPolicy,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ClientPolicy {
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotent: bool,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) circuit_breaker: Option<BreakerPolicy>,
}

#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) multiplier: f64,
    /// gRPC code names, validated, e.g. `UNAVAILABLE`.
    pub(crate) retriable: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct BreakerPolicy {
    pub(crate) window: Duration,
    pub(crate) failure_ratio: f64,
    pub(crate) minimum_requests: u32,
    pub(crate) open_for: Duration,
}

#[derive(Debug)]
pub(crate) struct AppErrorEnum {
    /// `cache.CacheError`.
    pub(crate) full_name: String,
    pub(crate) package: String,
    /// Rust path relative to the package module.
    pub(crate) rust_path: String,
    /// (number, gRPC code name) of each value that names one.
    pub(crate) codes: Vec<(i32, String)>,
}

/// The gRPC code names, in numeric order.
pub(crate) const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];
