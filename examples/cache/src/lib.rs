//! The example from the "gRPC in production" talk, on herald: `Accounts` knows who owns a
//! token and how many keys they may store; `Cache` stores, reads and dumps entries, checking
//! each store against the caller's account through `Accounts` with the request's context.

pub mod accounts_service;
pub mod cache_service;

/// Generated from `proto/accounts.proto`.
#[allow(missing_docs, clippy::all)]
pub mod accounts {
    include!(concat!(env!("OUT_DIR"), "/accounts.rs"));
}

/// Generated from `proto/cache.proto`.
#[allow(missing_docs, clippy::all)]
pub mod cache {
    include!(concat!(env!("OUT_DIR"), "/cache.rs"));
}

pub use accounts_service::AccountsService;
pub use cache_service::CacheService;
