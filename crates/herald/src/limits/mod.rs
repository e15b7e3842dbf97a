//! Access control and overload protection, from a limits file that reloads live.
//!
//! Per service and method: which identities may call and how often (`rate_acls`, default
//! deny), and how many requests run at once (`max_concurrency`) with a bounded queue for the
//! rest. All of it is decided from the request's headers and the caller's certificate,
//! before the body is decoded (the layers are in [`crate::server`]).

pub(crate) mod admission;
pub(crate) mod buckets;
mod config;
pub(crate) mod gcra;
pub(crate) mod policy;
mod reload;

pub use config::{
    AUTHENTICATED, ConfigError, LimitsConfig, MethodLimits, QueueKind, Rate, ServiceLimits,
    UNAUTHENTICATED,
};
pub(crate) use reload::LiveLimits;
pub use reload::{Limits, LimitsStatus};
