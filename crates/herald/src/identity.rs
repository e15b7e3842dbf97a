//! The caller's identity: the global name used by ACLs, rate limits and stats.

use std::fmt;
use std::sync::Arc;

/// A service or user identity, e.g. `cache`, `user.boo` or `host.web-1`.
///
/// It comes from the peer's certificate (its SPIFFE URI SAN) once mutual TLS is on; over an
/// explicitly insecure plaintext listener there is none.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(Arc<str>);

// === impl Identity ===

impl Identity {
    /// An identity with this name.
    pub fn new(name: impl Into<Arc<str>>) -> Identity {
        Identity(name.into())
    }

    /// The identity's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Identity {
    fn from(name: &str) -> Self {
        Identity::new(name)
    }
}

impl From<String> for Identity {
    fn from(name: String) -> Self {
        Identity::new(name)
    }
}
