//! Building a [`Channel`]: discovery, security, and the knobs that are the channel's, not a
//! method's (those come from the contract).

use std::fmt;
use std::sync::Arc;

use crate::Identity;
use crate::client::balance::{Balance, LoadBalancing, OutlierDetection, Settings};
use crate::client::channel::{Channel, ChannelError, Inner};
use crate::client::connector::Connector;
use crate::client::discover::Discovery;
use crate::client::keepalive::Keepalive;
use crate::client::methods::Methods;
use crate::client::observe::Observer;
use crate::client::retry::RetryBudget;
use crate::tls::ClientTls;

/// Connections per endpoint, at most: h2's per-connection lock is the reason for more than
/// one, and a handful already removes it.
const MAX_CONNECTIONS_PER_ENDPOINT: usize = 16;

/// Builds a [`Channel`]; from [`Channel::builder`].
#[must_use]
pub struct Builder {
    discovery: Discovery,
    security: Option<Security>,
    load_balancing: LoadBalancing,
    outlier: OutlierDetection,
    connections: usize,
    budget: RetryBudget,
    observer: Arc<dyn Observer>,
    compression: Option<crate::Compression>,
    accepted: Option<crate::Compression>,
    keepalive: Keepalive,
    legacy: bool,
}

enum Security {
    Plaintext,
    Tls(ClientTls, Identity),
}

/// No security was chosen on the builder.
#[derive(Debug, thiserror::Error)]
#[error("no transport chosen: call tls(...), or insecure_plaintext() for tests")]
struct NoTransport;

// === impl Builder ===

impl Builder {
    pub(crate) fn new(discovery: Discovery) -> Self {
        Builder {
            discovery,
            security: None,
            load_balancing: LoadBalancing::default(),
            outlier: OutlierDetection::default(),
            connections: 1,
            budget: RetryBudget::default(),
            // Every channel feeds the process's Prometheus client metrics unless told otherwise.
            observer: crate::observe::client_metrics(),
            compression: None,
            accepted: None,
            keepalive: Keepalive::default(),
            legacy: false,
        }
    }

    /// Calls go through the server's legacy HTTP/1.1 bridge at the target's address instead
    /// of gRPC (see [`Channel::legacy_bridge`]).
    pub fn through_legacy_bridge(mut self) -> Self {
        self.legacy = true;
        self
    }

    /// Compresses every request with `compression` (the server must accept it; herald's and
    /// gRPC's all accept gzip), and accepts responses compressed with it.
    pub fn compression(mut self, compression: crate::Compression) -> Self {
        self.compression = Some(compression);
        self.accepted = Some(compression);
        self
    }

    /// Accepts responses compressed with `compression`, requests staying uncompressed: calls
    /// say so in `grpc-accept-encoding`, and a server set to compress then may. Off by default,
    /// as in tonic and grpc-go: a server compresses only what its caller accepts, and saying
    /// it costs every call tonic's building of the header (about 1 % of a small call).
    pub fn accept_compressed(mut self, compression: crate::Compression) -> Self {
        self.accepted = Some(compression);
        self
    }

    /// Mutual TLS, talking only to servers that prove the identity `server`.
    pub fn tls(mut self, tls: &ClientTls, server: impl Into<Identity>) -> Self {
        self.security = Some(Security::Tls(tls.clone(), server.into()));
        self
    }

    /// Plaintext, checking no identity: for tests and local experiments only.
    pub fn insecure_plaintext(mut self) -> Self {
        self.security = Some(Security::Plaintext);
        self
    }

    /// How endpoints are chosen (default: power of two choices on outstanding requests).
    pub fn load_balancing(mut self, load_balancing: LoadBalancing) -> Self {
        self.load_balancing = load_balancing;
        self
    }

    /// When failing endpoints are ejected (default: [`OutlierDetection::default`]).
    pub fn outlier_detection(mut self, outlier: OutlierDetection) -> Self {
        self.outlier = outlier;
        self
    }

    /// HTTP/2 connections per endpoint (default 1, at most 16).
    pub fn connections_per_endpoint(mut self, connections: usize) -> Self {
        self.connections = connections.clamp(1, MAX_CONNECTIONS_PER_ENDPOINT);
        self
    }

    /// The retry budget shared by all methods of the channel (default: gRPC's token bucket
    /// of 10 tokens, 0.1 per success).
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Receives the channel's events, for metrics.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// How the channel finds dead peers on its connections (see [`Keepalive`]: by default
    /// TCP's own probes and `TCP_USER_TIMEOUT`, no HTTP/2 PINGs).
    pub fn keepalive(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// The channel. Nothing connects until the first call.
    ///
    /// # Errors
    /// No security chosen, or the TLS configuration cannot be made.
    pub fn build(self) -> Result<Channel, ChannelError> {
        let target = self.discovery.authority().to_owned();
        let (connector, legacy_connector) = match self.security {
            None => return Err(ChannelError::new(target, NoTransport)),
            Some(Security::Plaintext) => (Connector::plaintext(), Connector::plaintext()),
            Some(Security::Tls(tls, server)) => {
                let config = tls
                    .config_for(server)
                    .map_err(|e| ChannelError::new(target.clone(), e))?;
                // The bridge speaks HTTP/1.1: the same checks, another ALPN.
                let mut http1 = (*config).clone();
                http1.alpn_protocols = vec![b"http/1.1".to_vec()];
                (
                    Connector::tls(config, tls.handshakes().clone()),
                    Connector::tls(Arc::new(http1), tls.handshakes().clone()),
                )
            }
        };
        let host = self.discovery.authority.host().to_owned();
        let legacy = self.legacy.then(|| {
            crate::client::legacy::Legacy::new(
                legacy_connector.with_server_name(&host),
                self.discovery.authority.as_str(),
            )
        });
        let settings = Settings {
            policy: self.load_balancing,
            outlier: self.outlier,
            connections: self.connections,
            connector: connector
                .with_server_name(&host)
                .with_keepalive(self.keepalive),
            observer: self.observer.clone(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        Ok(Channel {
            inner: Arc::new(Inner {
                balance: Balance::new(self.discovery, settings),
                methods: Methods::default(),
                budget: self.budget,
                observer: self.observer,
                compression: self.compression,
                accepted: self.accepted,
                legacy,
            }),
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("discovery", &self.discovery)
            .field("load_balancing", &self.load_balancing)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}
