//! A channel: connections to one server.

use std::fmt;

use http::uri::Authority;

use crate::client::transport::Transport;

/// Connections to one server; cheap to clone, and clones share the connections.
#[derive(Clone, Debug)]
pub struct Channel {
    pub(crate) transport: Transport,
}

/// The target of a channel could not be used.
#[derive(Debug)]
pub struct ChannelError {
    target: String,
    source: http::uri::InvalidUri,
}

// === impl Channel ===

impl Channel {
    /// A plaintext channel to `addr` (`host:port`), connected on first use. No server
    /// identity is checked: for tests and local experiments only, as the name says.
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn insecure_plaintext(addr: impl fmt::Display) -> Result<Channel, ChannelError> {
        let target = addr.to_string();
        let authority: Authority = target.parse().map_err(|source| ChannelError {
            target: target.clone(),
            source,
        })?;
        Ok(Channel {
            transport: Transport::plaintext(authority),
        })
    }
}
// === impl ChannelError ===

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target {}: {}", self.target, self.source)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
