//! The herald server: every request goes through the same checks, in this order, before its
//! body is decoded:
//!
//! ```text
//! accept ─► HTTP/2 (hyper, explicit limits) ─► Router: method by path, Context from headers
//!   ─► deadline: already passed? DEADLINE_EXCEEDED, the handler never runs
//!   ─► dispatch: decode ─► handler(ctx, request) under its deadline, panics caught ─► encode
//! ```
//!
//! The chain of checks is one `ServiceBuilder` in [`builder`]; each check is a tower layer.

mod builder;
mod call;
mod conn;
mod deadline;
mod dispatch;
mod http2;
mod methods;
mod router;
mod stats;
mod streams;

pub use builder::{BuildError, Builder, RunningServer, Server};
pub use call::Call;
pub use deadline::{Deadline, DeadlineLayer};
pub use http2::Http2Limits;
pub use methods::{IntoService, ServiceMethods};
pub use stats::ServerStats;
pub use streams::{RequestStream, StreamError};
