//! Building and running a server.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;

use crate::context::Propagation;
use crate::server::ServiceMethods;
use crate::server::conn::{Security, accept_loop, http2_builder};
use crate::server::deadline::DeadlineLayer;
use crate::server::dispatch::{Dispatch, Env};
use crate::server::http2::Http2Limits;
use crate::server::methods::IntoService;
use crate::server::router::Router;
use crate::server::stats::ServerStats;
use crate::tls::ServerTls;

/// Entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server;

/// Configures a server.
///
/// ```no_run
/// # async fn run(service: impl herald::server::IntoService) -> Result<(), Box<dyn std::error::Error>> {
/// let server = herald::Server::builder()
///     .insecure_plaintext() // tests and local demos only
///     .add_service(service)
///     .bind("127.0.0.1:0")
///     .await?;
/// println!("serving on {}", server.local_addr());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Debug)]
pub struct Builder {
    services: Vec<ServiceMethods>,
    limits: Http2Limits,
    propagation: Propagation,
    grace: Duration,
    security: Option<Security>,
}

/// A server accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stats: Arc<ServerStats>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Why a server could not start.
pub struct BuildError {
    kind: BuildErrorKind,
}

enum BuildErrorKind {
    NoTransport,
    DuplicateMethod(&'static str),
    Bind(std::io::Error),
}

// === impl Server ===

impl Server {
    /// A builder with herald's defaults.
    pub fn builder() -> Builder {
        Builder {
            services: Vec::new(),
            limits: Http2Limits::default(),
            propagation: Propagation::default(),
            grace: Duration::from_secs(30),
            security: None,
        }
    }
}

// === impl Builder ===

impl Builder {
    /// Serves plaintext HTTP/2 with no peer identity. Never use this between services: it is
    /// for tests and local experiments, and says so in its name.
    pub fn insecure_plaintext(mut self) -> Self {
        self.security = Some(Security::InsecurePlaintext);
        self
    }

    /// Serves mutual TLS: every caller must present a certificate of `tls`'s CA carrying one
    /// identity of its trust domain. The default every real service should use.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.security = Some(Security::Tls(tls));
        self
    }

    /// Adds a service (a generated `FooServer::new(handler)`).
    pub fn add_service(mut self, service: impl IntoService) -> Self {
        self.services.push(service.into_methods());
        self
    }

    /// Replaces the HTTP/2 limits.
    pub fn http2_limits(mut self, limits: Http2Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the set of headers copied from requests into their [`Context`](crate::Context)
    /// and onto child calls.
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// How long in-flight calls may run after a shutdown starts.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Binds `addr` and starts serving.
    ///
    /// # Errors
    /// No transport chosen, two services with one method path, or the address can't be bound.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<RunningServer, BuildError> {
        self.check()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(BuildErrorKind::Bind)?;
        self.serve_on(listener)
    }

    /// Starts serving on a bound listener.
    ///
    /// # Errors
    /// As [`Builder::bind`].
    pub fn serve_on(self, listener: TcpListener) -> Result<RunningServer, BuildError> {
        self.check()?;
        let local_addr = listener.local_addr().map_err(BuildErrorKind::Bind)?;
        let stats = Arc::new(ServerStats::default());
        let env = Arc::new(Env {
            limits: self.limits.clone(),
            stats: stats.clone(),
        });

        // The request path, top to bottom. Routing and the Context come first (router.rs).
        let stack = ServiceBuilder::new()
            .layer(DeadlineLayer::new(stats.clone()))
            .service(Dispatch::new(env));

        let names = self.services.iter().map(|s| s.contract.name).collect();
        let methods = self.services.into_iter().flat_map(|s| s.methods).collect();
        let router = Arc::new(Router::new(methods, names, self.propagation, stack));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let http = http2_builder(&self.limits);
        let security = self.security.clone().ok_or(BuildErrorKind::NoTransport)?;
        let task = tokio::spawn(accept_loop(
            listener,
            security,
            router,
            http,
            stats.clone(),
            shutdown_rx,
            self.grace,
        ));
        tracing::info!(%local_addr, "herald server listening");
        Ok(RunningServer {
            local_addr,
            stats,
            shutdown,
            task,
        })
    }

    fn check(&self) -> Result<(), BuildError> {
        if self.security.is_none() {
            return Err(BuildErrorKind::NoTransport.into());
        }
        let mut paths = HashSet::new();
        for method in self.services.iter().flat_map(|s| &s.methods) {
            if !paths.insert(method.contract.path) {
                return Err(BuildErrorKind::DuplicateMethod(method.contract.path).into());
            }
        }
        Ok(())
    }
}

// === impl RunningServer ===

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<ServerStats> {
        &self.stats
    }

    /// Stops accepting, sends GOAWAY on every connection and waits for in-flight calls (up
    /// to the grace period).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

// === impl BuildError ===

impl BuildError {
    /// Whether no transport (TLS or explicit plaintext) was chosen.
    pub fn is_no_transport(&self) -> bool {
        matches!(self.kind, BuildErrorKind::NoTransport)
    }
}

impl From<BuildErrorKind> for BuildError {
    fn from(kind: BuildErrorKind) -> Self {
        BuildError { kind }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::NoTransport => f.write_str(
                "no transport chosen: configure TLS, or call insecure_plaintext() for tests",
            ),
            BuildErrorKind::DuplicateMethod(path) => write!(f, "two services serve {path}"),
            BuildErrorKind::Bind(error) => write!(f, "cannot listen: {error}"),
        }
    }
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BuildErrorKind::Bind(error) => Some(error),
            _ => None,
        }
    }
}
