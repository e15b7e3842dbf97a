//! The herald server: every request goes through the same checks, in this order, before its
//! body is decoded:
//!
//! ```text
//! accept ─► HTTP/2 (hyper, explicit limits) ─► Router: method by path, Context from headers
//!   ─► deadline: already passed? DEADLINE_EXCEEDED, the handler never runs
//!   ─► acl: may this identity call this method? else PERMISSION_DENIED (default deny)
//!   ─► rate: within the caller's rate? else RESOURCE_EXHAUSTED + grpc-retry-pushback-ms
//!   ─► admission: a slot of max_concurrency, or a bounded LIFO/CoDel wait; else shed
//!   ─► dispatch: decode ─► handler(ctx, request) under its deadline, panics caught ─► encode
//! ```
//!
//! The chain of checks is one `ServiceBuilder` in [`builder`]; each check is a tower layer.

mod acl;
mod admit;
pub(crate) mod bridge;
mod builder;
pub(crate) mod call;
mod conn;
pub(crate) mod connections;
mod deadline;
mod dispatch;
pub(crate) mod health;
mod http2;
mod metadata;
mod methods;
mod observe;
mod pacer;
mod pool;
mod preface;
mod rate_limit;
mod refuse;
mod router;
mod signal;
mod standard;
mod stats;
mod stream_watch;
mod streams;
mod web;

pub use acl::{Acl, AclLayer};
pub use admit::{Admit, AdmitLayer};
pub use builder::{BuildError, Builder, RunningServer, Server};
pub use call::Call;
pub use deadline::{Deadline, DeadlineLayer};
pub use http2::Http2Limits;
pub use methods::{IntoService, ServiceMethods};
pub use observe::{Observe, ObserveLayer};
pub use rate_limit::{RateLimit, RateLimitLayer};
pub use signal::termination_signal;
pub use stats::ServerStats;
pub use streams::{RequestStream, StreamError};
pub use web::{GrpcWeb, InvalidOrigin};
