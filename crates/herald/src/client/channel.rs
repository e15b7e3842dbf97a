//! A channel: connections to one server.

use std::fmt;

use tonic::transport::Endpoint;

/// Connections to one server; cheap to clone, and clones share the connections.
#[derive(Clone, Debug)]
pub struct Channel {
    pub(crate) inner: tonic::transport::Channel,
}

/// The target of a channel could not be used.
#[derive(Debug)]
pub struct ChannelError {
    target: String,
    source: tonic::transport::Error,
}

// === impl Channel ===

impl Channel {
    /// A plaintext channel to `addr` (`host:port`), connected on first use. No server
    /// identity is checked: for tests and local experiments only, as the name says.
    ///
    /// # Errors
    /// `addr` is not a valid authority.
    pub fn insecure_plaintext(addr: impl fmt::Display) -> Result<Channel, ChannelError> {
        let target = format!("http://{addr}");
        let endpoint = Endpoint::from_shared(target.clone())
            .map_err(|source| ChannelError {
                target: target.clone(),
                source,
            })?
            .tcp_nodelay(true);
        Ok(Channel {
            inner: endpoint.connect_lazy(),
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
