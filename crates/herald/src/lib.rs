//! herald: gRPC between services, safe and uniform by default.
//!
//! A service's `.proto` is its contract — messages, and the rules of the conversation:
//! deadlines, retries, circuit breaking, error codes. `herald-build` turns it into a handler
//! trait, a typed client and a static contract table; this crate runs them:
//!
//! - [`Server`]: routes by path, reads the [`Context`] before decoding, refuses requests whose
//!   deadline has passed, cancels handlers at their deadline, turns a panic into INTERNAL.
//! - [`client::Channel`]: every call applies the method's contract and the caller's context.
//! - [`Error`] / [`CallError`]: typed app errors on both ends, and Courier's rule that an
//!   unmapped downstream error becomes UNKNOWN at the API boundary.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod admin;
mod app_error;
mod call_metadata;
pub mod client;
mod code;
#[doc(hidden)]
pub mod codegen;
mod compression;
mod context;
pub mod contract;
mod cow_map;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod header_names;
mod identity;
pub mod limits;
pub mod observe;
pub mod runtime;
pub mod server;
pub mod timeout;
pub mod tls;

pub use app_error::{AppError, NoAppError};
pub use call_metadata::MetadataCapture;
pub use code::{Code, UnknownCodeName};
pub use compression::Compression;
pub use context::{Context, DRY_RUN, Propagation, REQUEST_ID, TENANT};
pub use error::{CallError, Error};
pub use identity::Identity;
pub use server::{RequestStream, Server, StreamError};

/// A boxed stream of a handler's responses, for the `...Stream` associated types.
pub type BoxStream<T, E = NoAppError> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Error<E>>> + Send + 'static>>;
