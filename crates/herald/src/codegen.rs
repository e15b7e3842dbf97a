//! What generated code uses. Not a public API: its insides change freely, which is the
//! point — generated code and users never name a transport crate's types.

pub use std::future::Future;
pub use std::sync::Arc;

pub use futures_util::Stream;
pub use prost;

pub use crate::Code;
pub use crate::app_error::{AppError, NoAppError};
pub use crate::client::{Channel, ResponseStream};
pub use crate::context::Context;
pub use crate::contract::{
    BreakerPolicy, ClientPolicy, MethodContract, RetryPolicy, RpcKind, ServiceContract,
};
pub use crate::error::{CallError, Error};
pub use crate::server::{IntoService, RequestStream, ServiceMethods};

/// `Duration::from_millis`, for contract tables.
pub const fn millis(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}
