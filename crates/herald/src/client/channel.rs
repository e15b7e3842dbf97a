//! A channel: connections to one server.

use std::fmt;

use http::uri::Authority;

use crate::Identity;
use crate::client::connector::Connector;
use crate::client::transport::Transport;
use crate::tls::ClientTls;

/// Connections to one server; cheap to clone, and clones share the connections.
#[derive(Clone, Debug)]
pub struct Channel {
    pub(crate) transport: Transport,
}

/// The target of a channel could not be used.
#[derive(Debug)]
pub struct ChannelError {
    target: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

// === impl Channel ===

impl Channel {
    /// A plaintext channel to `addr` (`host:port`), connected on first use. No server
    /// identity is checked: for tests and local experiments only, as the name says.
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn insecure_plaintext(addr: impl fmt::Display) -> Result<Channel, ChannelError> {
        let authority = authority(addr)?;
        Ok(Channel {
            transport: Transport::new(authority, Connector::plaintext()),
        })
    }

    /// A mutual-TLS channel to `addr` (`host:port`), connected on first use, that only
    /// talks to a server proving the identity `server` (e.g. `"accounts"`): a certificate
    /// of another service is refused even when the host name matches.
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn tls(
        addr: impl fmt::Display,
        tls: &ClientTls,
        server: impl Into<Identity>,
    ) -> Result<Channel, ChannelError> {
        let authority = authority(addr)?;
        let config = tls
            .config_for(server.into())
            .map_err(|source| ChannelError {
                target: authority.to_string(),
                source: Box::new(source),
            })?;
        let connector = Connector::tls(config, tls.handshakes().clone());
        Ok(Channel {
            transport: Transport::new(authority, connector),
        })
    }
}

fn authority(addr: impl fmt::Display) -> Result<Authority, ChannelError> {
    let target = addr.to_string();
    target
        .parse()
        .map_err(|source: http::uri::InvalidUri| ChannelError {
            target,
            source: Box::new(source),
        })
}

// === impl ChannelError ===

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid target {}: {}", self.target, self.source)
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}
