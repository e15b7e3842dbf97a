//! A channel: the calls of one service's clients, balanced over its endpoints.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::Identity;
use crate::client::balance::Balance;
use crate::client::breaker::BreakerState;
use crate::client::builder::Builder;
use crate::client::discover::{Discovery, DiscoveryError};
use crate::client::methods::Methods;
use crate::client::observe::Observer;
use crate::client::retry::RetryBudget;
use crate::contract::MethodContract;
use crate::tls::ClientTls;

/// Calls to one service: endpoints from discovery, connections to each, load balancing,
/// retries, circuit breakers — all as the called method's contract says. Cheap to clone;
/// clones share everything (connections, budget, breakers).
///
/// Built with [`Channel::builder`], or for one address with [`Channel::tls`] /
/// [`Channel::insecure_plaintext`]. Connections open on first use, so a channel can be
/// built before the runtime runs.
#[derive(Clone)]
pub struct Channel {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) balance: Balance,
    /// Per method: its parsed path and its breaker.
    pub(crate) methods: Methods,
    pub(crate) budget: RetryBudget,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) compression: Option<crate::Compression>,
    /// What responses may be compressed with (said on every call).
    pub(crate) accepted: Option<crate::Compression>,
    /// Unary calls go through a server's legacy HTTP/1.1 bridge instead.
    pub(crate) legacy: Option<crate::client::legacy::Legacy>,
}

/// A channel could not be built.
#[derive(Debug)]
pub struct ChannelError {
    target: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

// === impl Channel ===

impl Channel {
    /// A channel to the endpoints `discovery` finds; choose its security on the builder.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use herald::client::{Channel, Discovery, LoadBalancing};
    ///
    /// let channel = Channel::builder(Discovery::dns("accounts.internal:8443")?)
    ///     .insecure_plaintext()
    ///     .load_balancing(LoadBalancing::P2cPeakEwma)
    ///     .build()?;
    /// # drop(channel);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(discovery: impl Into<Discovery>) -> Builder {
        Builder::new(discovery.into())
    }

    /// A plaintext channel to `addr` (`host:port`; a host name is resolved by DNS and
    /// re-resolved on its TTL), connected on first use. No server identity is checked: for
    /// tests and local experiments only, as the name says.
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn insecure_plaintext(addr: impl fmt::Display) -> Result<Channel, ChannelError> {
        Channel::builder(one(addr)?).insecure_plaintext().build()
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
        Channel::builder(one(addr)?).tls(tls, server).build()
    }

    /// A mutual-TLS channel through the legacy HTTP/1.1 bridge at `addr` (a server's
    /// `legacy_bridge` port), proving `server` as [`Channel::tls`] does: the same generated
    /// clients work on it, unary methods only. Switching a caller from the bridge to gRPC is
    /// changing this call to [`Channel::tls`] (and the port).
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn legacy_bridge(
        addr: impl fmt::Display,
        tls: &ClientTls,
        server: impl Into<Identity>,
    ) -> Result<Channel, ChannelError> {
        Channel::builder(one(addr)?)
            .tls(tls, server)
            .through_legacy_bridge()
            .build()
    }

    /// A plaintext channel through the legacy bridge at `addr`: tests and local experiments.
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn legacy_bridge_plaintext(addr: impl fmt::Display) -> Result<Channel, ChannelError> {
        Channel::builder(one(addr)?)
            .insecure_plaintext()
            .through_legacy_bridge()
            .build()
    }

    /// The endpoints discovery lists now (empty before the first call starts discovery).
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.inner.balance.endpoints()
    }

    /// The channel's retry budget (shared by its clones).
    pub fn retry_budget(&self) -> &RetryBudget {
        &self.inner.budget
    }

    /// The state of `method`'s circuit breaker; `None` when its contract has none.
    pub fn breaker_state(&self, method: &'static MethodContract) -> Option<BreakerState> {
        self.inner.methods.get(method).breaker.map(|b| b.state())
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("balance", &self.inner.balance)
            .field("retry_budget", &self.inner.budget)
            .field("methods", &self.inner.methods)
            .finish_non_exhaustive()
    }
}

/// The discovery of a channel to one `host:port`: the address itself, or DNS for a name.
fn one(addr: impl fmt::Display) -> Result<Discovery, ChannelError> {
    let target = addr.to_string();
    let discovery = match target.parse::<SocketAddr>() {
        Ok(addr) => Discovery::fixed([addr]),
        Err(_) => Discovery::dns(&target).map(Discovery::from),
    };
    discovery.map_err(|e| ChannelError::new(target, e))
}

// === impl ChannelError ===

impl ChannelError {
    pub(crate) fn new(
        target: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ChannelError {
            target: target.into(),
            source: Box::new(source),
        }
    }
}

impl From<DiscoveryError> for ChannelError {
    fn from(error: DiscoveryError) -> Self {
        ChannelError::new("discovery", error)
    }
}

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
