//! The client side: a [`Channel`] to a service, and the calls generated clients make on it.
//!
//! The service owns how its clients behave, by its contract; the caller writes no code for
//! it. Every call made with a [`Context`](crate::Context):
//!
//! ```text
//! deadline   min(caller's remaining budget, method deadline, contract timeout) → grpc-timeout;
//!            request id and allow-listed headers travel on; a spent budget fails here
//! breaker    per method, from the contract: open → UNAVAILABLE at once    (breaker/)
//! retries    contract's attempts (≤ 5), full-jitter backoff, retriable codes, idempotent
//!            methods only (or never-sent requests), within deadline and budget  (retry/)
//! balance    P2C on outstanding requests (or peak-EWMA, or round robin) over ready,
//!            un-ejected endpoints                                                (balance/)
//! endpoint   a few HTTP/2 connections per endpoint, reconnecting with gRPC's backoff
//!                                                                               (endpoint/)
//! discovery  a static list, DNS A/AAAA or SRV re-resolved on TTL, or any stream
//!                                                                               (discover/)
//! ```
//!
//! Metrics hook in through an [`Observer`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use herald::client::{Channel, Discovery, OutlierDetection, RetryBudget};
//!
//! let dns = Discovery::dns("accounts.internal:8443")?.min_refresh(Duration::from_secs(5));
//! let channel = Channel::builder(dns)
//!     .insecure_plaintext()
//!     .connections_per_endpoint(2)
//!     .outlier_detection(OutlierDetection::default().consecutive_failures(3))
//!     .retry_budget(RetryBudget::token_bucket(20, 0.1))
//!     .build()?;
//! // AccountsClient::new(channel).get_by_token(&ctx, request).await
//! # drop(channel);
//! # Ok(())
//! # }
//! ```

mod balance;
mod breaker;
mod builder;
mod call;
mod channel;
mod connector;
mod discover;
mod endpoint;
mod keepalive;
mod legacy;
mod methods;
pub mod observe;
mod raw;
mod replay;
mod response_stream;
mod retry;
mod unsent;

pub use balance::{LoadBalancing, OutlierDetection};
pub use breaker::BreakerState;
pub use builder::Builder;
pub use channel::{Channel, ChannelError};
pub use discover::{Discovery, DiscoveryError, Dns, Update};
pub use keepalive::Keepalive;
pub use observe::Observer;
pub use response_stream::ResponseStream;
pub use retry::RetryBudget;
