//! Where a channel's servers are: a [`Discovery`] is a stream of endpoint sets.
//!
//! The channel never asks "where is the service?" per call. A discovery source pushes the
//! *whole current set* of endpoints whenever it changes; the balancer diffs it against the
//! set it has: new endpoints get connections, removed ones stop taking new calls and close
//! once their calls in flight are done, so a change fails no request.
//!
//! Full sets rather than add/remove events keep every source honest: a source that missed an
//! event (a DNS answer lost, an xDS stream reconnected) converges at its next update, and
//! the diffing lives in one place. Three sources come with herald:
//!
//! - [`Discovery::fixed`]: a static list.
//! - [`Discovery::dns`] (A/AAAA) and [`Discovery::dns_srv`] (SRV, then A/AAAA of each
//!   target), through hickory's resolver, re-resolved when the answer's TTL runs out.
//! - [`Discovery::from_stream`]: anything else — a file watcher, an xDS EDS client — that
//!   can produce `Result<Vec<SocketAddr>, DiscoveryError>` items.
//!
//! An error from a source keeps the last good set (a DNS server down for a minute must not
//! take the service down with it); before any good set, calls wait for one until their
//! deadline.

mod dns;
mod fixed;

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;

use futures_util::Stream;
use http::uri::Authority;

pub use dns::Dns;

/// Items of a discovery stream: the complete set of endpoints now, or why it is unknown.
pub type Update = Result<Vec<SocketAddr>, DiscoveryError>;

/// A boxed stream of endpoint-set updates.
pub(crate) type Updates = Pin<Box<dyn Stream<Item = Update> + Send + 'static>>;

/// Where a channel finds its endpoints: a name for the service (sent as `:authority`, and
/// the TLS server name) and a source of endpoint sets.
pub struct Discovery {
    pub(crate) authority: Authority,
    pub(crate) source: Source,
}

pub(crate) enum Source {
    Fixed(Vec<SocketAddr>),
    Dns(Dns),
    Stream(Updates),
}

/// A discovery source could not say where the endpoints are.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DiscoveryError {
    message: String,
}

// === impl Discovery ===

impl Discovery {
    /// A fixed set of endpoints. The first one names the service (`:authority`).
    ///
    /// # Errors
    /// An empty list.
    pub fn fixed(
        endpoints: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Discovery, DiscoveryError> {
        let endpoints: Vec<_> = endpoints.into_iter().collect();
        let first = endpoints
            .first()
            .ok_or_else(|| DiscoveryError::new("a fixed discovery needs at least one endpoint"))?;
        Ok(Discovery {
            authority: authority(&first.to_string())?,
            source: Source::Fixed(endpoints),
        })
    }

    /// DNS A/AAAA records of `target` (`host:port`), with the system's resolver
    /// configuration, re-resolved when the TTL runs out. See [`Dns`] for the knobs.
    ///
    /// # Errors
    /// `target` is not a `host:port`.
    pub fn dns(target: &str) -> Result<Dns, DiscoveryError> {
        Dns::a_aaaa(target)
    }

    /// DNS SRV records of `name` (e.g. `_grpc._tcp.accounts.internal`), then the A/AAAA
    /// records of each target of the lowest priority; re-resolved when a TTL runs out.
    ///
    /// # Errors
    /// `name` is not a valid DNS name.
    pub fn dns_srv(name: &str) -> Result<Dns, DiscoveryError> {
        Dns::srv(name)
    }

    /// Any other source: `updates` yields the complete set of endpoints each time it
    /// changes. `authority` names the service (`:authority`, TLS server name).
    ///
    /// # Errors
    /// `authority` is not a valid authority.
    pub fn from_stream(
        authority: &str,
        updates: impl Stream<Item = Update> + Send + 'static,
    ) -> Result<Discovery, DiscoveryError> {
        Ok(Discovery {
            authority: self::authority(authority)?,
            source: Source::Stream(Box::pin(updates)),
        })
    }

    /// The name of the service, as sent in `:authority`.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    /// The source as a stream of updates. Must be called within a tokio runtime.
    pub(crate) fn into_updates(self) -> Updates {
        match self.source {
            Source::Fixed(endpoints) => fixed::updates(endpoints),
            Source::Dns(dns) => dns.into_updates(),
            Source::Stream(updates) => updates,
        }
    }
}

impl From<Dns> for Discovery {
    fn from(dns: Dns) -> Self {
        Discovery {
            authority: dns.authority().clone(),
            source: Source::Dns(dns),
        }
    }
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Fixed(endpoints) => format!("fixed {endpoints:?}"),
            Source::Dns(dns) => format!("{dns:?}"),
            Source::Stream(_) => "stream".to_owned(),
        };
        f.debug_struct("Discovery")
            .field("authority", &self.authority)
            .field("source", &source)
            .finish()
    }
}

// === impl DiscoveryError ===

impl DiscoveryError {
    /// An error with this message (for sources outside herald).
    pub fn new(message: impl Into<String>) -> Self {
        DiscoveryError {
            message: message.into(),
        }
    }
}

pub(crate) fn authority(target: &str) -> Result<Authority, DiscoveryError> {
    target
        .parse()
        .map_err(|e| DiscoveryError::new(format!("invalid target {target:?}: {e}")))
}
