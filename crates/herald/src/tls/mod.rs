//! Mutual TLS with service identities, on by default.
//!
//! Every server and client holds a certificate issued by an internal CA, carrying one SPIFFE
//! ID (`spiffe://<trust domain>/service/<name>`); both sides verify each other; the
//! identity is the caller's global name for ACLs, rate limits and stats, and the client
//! checks that the server is the service it meant to call. TLS is locked down (TLS 1.2+,
//! ECDHE, AEAD only, ALPN h2; see [`provider`]), sessions resume, and certificates rotate
//! without a restart.

mod client;
pub mod dev_ca;
mod material;
mod provider;
mod server;
pub(crate) mod spiffe;
mod stats;
mod verify;

use std::fmt;

pub use client::ClientTls;
pub use dev_ca::{DevCa, KeyAlgorithm};
pub use material::TlsFiles;
pub use server::ServerTls;
pub use spiffe::{IdentityError, InvalidTrustDomain, TrustDomain};
pub use stats::HandshakeStats;

/// The application protocols a TLS listener offers in ALPN.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Alpn {
    /// gRPC.
    H2,
    /// gRPC and gRPC-Web (browsers may speak HTTP/1.1).
    H2AndHttp11,
    /// The legacy bridge.
    Http11,
}

/// TLS could not be set up.
#[derive(Clone)]
pub struct TlsError {
    message: String,
}

// === impl TlsError ===

impl TlsError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        TlsError {
            message: message.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsError({:?})", self.message)
    }
}

impl std::error::Error for TlsError {}

/// A TLS failure in words a person can act on: our own refusal reasons as written, alerts
/// from the peer named as such.
pub(crate) fn describe(error: &std::io::Error) -> String {
    use rustls::{CertificateError, Error};
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return error.to_string();
    };
    match tls {
        Error::InvalidCertificate(CertificateError::Other(other)) => other.0.to_string(),
        Error::InvalidCertificate(reason) => format!("peer certificate refused: {reason:?}"),
        Error::AlertReceived(alert) => format!("the peer refused the handshake: alert {alert:?}"),
        other => other.to_string(),
    }
}
