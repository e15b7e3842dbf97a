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

use crate::admin::{AdminAddr, AdminConfig, AdminError, AdminState};
use crate::context::Propagation;
use crate::limits::{Limits, LimitsStatus, LiveLimits};
use crate::observe::LogControl;
use crate::observe::server_collector::ServerCollector;
use crate::observe::server_metrics::ServerMetrics;
use crate::server::ServiceMethods;
use crate::server::acl::AclLayer;
use crate::server::admit::AdmitLayer;
use crate::server::bridge::{Bridge, BridgeMetrics, Schemas};
use crate::server::conn::{
    Alpn, Front, Http, Security, Shared, accept_loop, auto_builder, http1_builder, http2_builder,
};
use crate::server::connections::Connections;
use crate::server::deadline::DeadlineLayer;
use crate::server::dispatch::{Dispatch, Env};
use crate::server::health::Health;
use crate::server::http2::Http2Limits;
use crate::server::methods::IntoService;
use crate::server::observe::ObserveLayer;
use crate::server::pool::HandlerPool;
use crate::server::rate_limit::RateLimitLayer;
use crate::server::router::Router;
use crate::server::standard::{set_health, standard_services};
use crate::server::stats::ServerStats;
use crate::server::web::GrpcWeb;
use crate::tls::ServerTls;
use prometheus_client::registry::Registry;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server;

/// Configures a server.
///
/// ```no_run
/// # async fn run(service: impl herald::server::IntoService) -> Result<(), Box<dyn std::error::Error>> {
/// let server = herald::Server::builder()
///     .insecure_plaintext() // tests and local demos only
///     .allow_all_callers()  // likewise: real services give a limits file
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
    access: Option<Access>,
    admin: Option<AdminConfig>,
    logging: Option<LogControl>,
    compression: Option<crate::Compression>,
    grpc_web: Option<GrpcWeb>,
    bridge: Option<SocketAddr>,
    observe_requests: bool,
    handler_threads: usize,
}

/// Who may call: the limits file, or (explicitly) everyone.
#[derive(Debug)]
enum Access {
    Limits(Limits),
    AllowAll,
}

/// A server accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    /// The legacy bridge's address and accept loop, when it is on.
    bridge: Option<(SocketAddr, JoinHandle<()>)>,
    stats: Arc<ServerStats>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    limits: Arc<LiveLimits>,
    registry: Arc<Registry>,
    admin_addr: Option<AdminAddr>,
    health: Arc<Health>,
    reporter: HealthReporter,
    names: Vec<&'static str>,
    /// Flushed at shutdown, so the last requests' access lines are written.
    logging: Option<LogControl>,
}

/// Why a server could not start.
pub struct BuildError {
    kind: BuildErrorKind,
}

enum BuildErrorKind {
    NoTransport,
    NoAccessPolicy,
    Limits(String),
    Admin(AdminError),
    DuplicateMethod(&'static str),
    Bind(std::io::Error),
    Schemas(String),
    Pool(std::io::Error),
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
            access: None,
            admin: None,
            logging: None,
            compression: None,
            grpc_web: None,
            bridge: None,
            observe_requests: true,
            handler_threads: 0,
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

    /// Applies a limits file: ACLs (default deny), rate limits and admission, reloaded live.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.access = Some(Access::Limits(limits));
        self
    }

    /// Lets every caller call every method, unlimited. For tests and local experiments: a
    /// real service names its callers in a limits file ([`Builder::limits`]).
    pub fn allow_all_callers(mut self) -> Self {
        self.access = Some(Access::AllowAll);
        self
    }

    /// Serves the admin endpoint (metrics, health, config, profiles...) at `admin`.
    pub fn admin(mut self, admin: AdminConfig) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Lets the admin endpoint read and change the process's log filter.
    pub fn log_control(mut self, logging: LogControl) -> Self {
        self.logging = Some(logging);
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

    /// Compresses responses with `compression` for callers that accept it (they say so in
    /// `grpc-accept-encoding`); off by default: compression costs CPU that small messages do
    /// not pay back. Compressed requests are accepted either way.
    pub fn compression(mut self, compression: crate::Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Serves gRPC-Web too, on the same port (HTTP/1.1 and HTTP/2): browsers call the same
    /// methods through the same layers. Off by default.
    pub fn grpc_web(mut self, web: GrpcWeb) -> Self {
        self.grpc_web = Some(web);
        self
    }

    /// Serves the legacy HTTP/1.1 bridge on `addr` too (see [`RunningServer::bridge_addr`]):
    /// unary methods over `POST /package.Service/Method` with protobuf or JSON bodies, through
    /// the same security, limits and handlers, counted apart. Off by default.
    pub fn legacy_bridge(mut self, addr: SocketAddr) -> Self {
        self.bridge = Some(addr);
        self
    }

    /// Stops observing each request: no per-request metrics (counts by method, caller and
    /// code, latency, in flight), no access log line, no server span. Refusals, connections,
    /// handshakes and the admin endpoint still count. On by default; turning it off exists
    /// to measure what it costs (`bench/README.md`), not for services in production.
    pub fn without_request_observability(mut self) -> Self {
        self.observe_requests = false;
        self
    }

    /// Runs handlers on `threads` threads of their own, apart from the threads that read and
    /// write connections (Courier's work pool behind its admission queue): a handler that
    /// computes cannot then delay reading the requests that arrive meanwhile, so admission
    /// queues and sheds them on time under overload. Costs a hand-off between threads per call;
    /// off by default (0), as handlers that mostly wait on I/O do not need it.
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = threads;
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
        let Builder {
            services,
            limits,
            propagation,
            grace,
            security,
            access,
            admin,
            logging,
            compression,
            grpc_web,
            bridge,
            observe_requests,
            handler_threads,
        } = self;
        let (security, access) = match (security, access) {
            (Some(security), Some(access)) => (security, access),
            (None, _) => return Err(BuildErrorKind::NoTransport.into()),
            (_, None) => return Err(BuildErrorKind::NoAccessPolicy.into()),
        };
        let local_addr = listener.local_addr().map_err(BuildErrorKind::Bind)?;
        let stats = Arc::new(ServerStats::default());
        let env = Arc::new(Env {
            limits: limits.clone(),
            stats: stats.clone(),
            compression,
            pool: match handler_threads {
                0 => None,
                threads => Some(HandlerPool::new(threads).map_err(BuildErrorKind::Pool)?),
            },
        });

        let names: Vec<&'static str> = services.iter().map(|s| s.contract.name).collect();
        let standard = standard_services(&services);
        set_health(&standard.health, &names, ServingStatus::Serving);
        let schemas = match bridge {
            None => None,
            Some(_) => Some(
                Schemas::new(services.iter().map(|s| s.contract.descriptor_set))
                    .map_err(BuildErrorKind::Schemas)?,
            ),
        };
        let methods: Vec<_> = services.into_iter().flat_map(|s| s.methods).collect();
        let contracts = methods.iter().map(|m| m.contract).collect();
        let mut registry = Registry::default();
        let metrics = ServerMetrics::register(&mut registry);
        let bridge_metrics = bridge.map(|_| BridgeMetrics::register(&mut registry));
        crate::observe::register_build_info(&mut registry);
        let live = match access {
            Access::AllowAll => LiveLimits::allow_all(contracts),
            Access::Limits(config) => {
                LiveLimits::start(config, contracts).map_err(BuildErrorKind::Limits)?
            }
        };

        // The request path, top to bottom, after routing and reading the Context
        // (router.rs): nothing here decodes the body; only dispatch does.
        registry.register_collector(Box::new(ServerCollector {
            stats: stats.clone(),
            limits: live.clone(),
            started: metrics.started,
        }));
        let stack = ServiceBuilder::new()
            .layer(if observe_requests {
                ObserveLayer::on()
            } else {
                ObserveLayer::off()
            })
            .layer(DeadlineLayer::new(stats.clone()))
            .layer(AclLayer::new(stats.clone()))
            .layer(RateLimitLayer::new(stats.clone()))
            .layer(AdmitLayer::new(stats.clone()))
            .service(Dispatch::new(env));

        let mut router = Router::new(
            methods,
            &metrics,
            live.clone(),
            names.clone(),
            propagation,
            observe_requests,
            stack,
        );
        for (name, service) in standard.services {
            router.add_standard(name, service);
        }
        let router = Arc::new(router);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let connections = Arc::new(Connections::default());
        let health = Arc::new(Health::default());
        let registry = Arc::new(registry);
        let admin_addr = match admin {
            None => None,
            Some(config) => {
                let state = Arc::new(AdminState {
                    registry: registry.clone(),
                    limits: live.clone(),
                    tls: match &security {
                        Security::Tls(tls) => Some(tls.clone()),
                        Security::InsecurePlaintext => None,
                    },
                    connections: connections.clone(),
                    methods: router.methods(),
                    services: router.service_names(),
                    health: health.clone(),
                    logging: logging.clone(),
                    started: metrics.started,
                    started_at: std::time::SystemTime::now(),
                });
                Some(
                    crate::admin::start(config, state, shutdown_rx.clone())
                        .map_err(BuildErrorKind::Admin)?,
                )
            }
        };
        let (http, front, alpn) = match &grpc_web {
            None => (Http::H2(http2_builder(&limits)), Front::Grpc, Alpn::H2),
            Some(web) => (
                Http::Auto(auto_builder(&limits)),
                Front::GrpcWeb(Arc::new(web.front())),
                Alpn::H2AndHttp11,
            ),
        };
        let bridge_task = match (bridge, bridge_metrics, schemas) {
            (Some(addr), Some(metrics), Some(schemas)) => {
                let listener = std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .and_then(TcpListener::from_std)
                    .map_err(BuildErrorKind::Bind)?;
                let bridge_addr = listener.local_addr().map_err(BuildErrorKind::Bind)?;
                let shared = Arc::new(Shared {
                    router: router.clone(),
                    http: Http::H1(http1_builder()),
                    front: Front::Bridge(Arc::new(Bridge::new(
                        schemas,
                        limits.max_decoding_message_size,
                        metrics,
                    ))),
                    alpn: Alpn::Http11,
                    stats: stats.clone(),
                    connections: connections.clone(),
                    security: security.clone(),
                    tcp_keepalive: limits.tcp_keepalive,
                });
                let task = tokio::spawn(accept_loop(listener, shared, shutdown_rx.clone(), grace));
                tracing::info!(%bridge_addr, "herald legacy bridge listening");
                Some((bridge_addr, task))
            }
            _ => None,
        };
        let shared = Arc::new(Shared {
            router,
            http,
            front,
            alpn,
            stats: stats.clone(),
            connections: connections.clone(),
            security,
            tcp_keepalive: limits.tcp_keepalive,
        });
        // One pacing timer per server, on the runtime its connections run on, for as long as
        // it accepts them (see pacer.rs).
        let pacer = crate::server::pacer::start();
        let task = tokio::spawn(async move {
            let _pacer = pacer;
            accept_loop(listener, shared, shutdown_rx, grace).await;
        });
        tracing::info!(%local_addr, "herald server listening");
        Ok(RunningServer {
            local_addr,
            bridge: bridge_task,
            stats,
            shutdown,
            task,
            limits: live,
            registry,
            admin_addr,
            health,
            reporter: standard.health,
            names,
            logging,
        })
    }

    fn check(&self) -> Result<(), BuildError> {
        if self.security.is_none() {
            return Err(BuildErrorKind::NoTransport.into());
        }
        if self.access.is_none() {
            return Err(BuildErrorKind::NoAccessPolicy.into());
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

    /// Where the admin endpoint listens, if it was asked for.
    pub fn admin_addr(&self) -> Option<&AdminAddr> {
        self.admin_addr.as_ref()
    }

    /// Starts draining: readiness and the gRPC health service turn NOT_SERVING while calls
    /// go on being served; [`RunningServer::shutdown`] then sends GOAWAY.
    pub fn start_draining(&self) {
        self.health.start_draining();
        set_health(&self.reporter, &self.names, ServingStatus::NotServing);
    }

    /// Drains and stops: health turns NOT_SERVING, then after `delay` (time for load
    /// balancers and clients to notice) every connection gets a GOAWAY and calls in flight
    /// finish within the grace period.
    pub async fn drain(self, delay: Duration) {
        self.start_draining();
        tokio::time::sleep(delay).await;
        self.shutdown().await;
    }

    /// Serves until SIGTERM or Ctrl-C, then drains (see [`RunningServer::drain`]) with a
    /// one-second delay for load balancers to see NOT_SERVING.
    pub async fn drain_on_signal(self) {
        if let Err(error) = crate::server::termination_signal().await {
            tracing::warn!(%error, "cannot wait for a termination signal; draining now");
        }
        tracing::info!("termination signal: draining");
        self.drain(Duration::from_secs(1)).await;
    }

    /// The server's metrics in Prometheus' text exposition format (what `/metrics` serves).
    pub fn metrics_text(&self) -> String {
        // Writing to a String cannot fail.
        crate::observe::encode_all(&self.registry).unwrap_or_default()
    }

    /// The state of the limits: reloads applied and refused, the last error.
    pub fn limits_status(&self) -> LimitsStatus {
        self.limits.status()
    }

    /// Stops accepting, sends GOAWAY on every connection and waits for in-flight calls (up
    /// to the grace period).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some((_, bridge)) = self.bridge {
            let _ = bridge.await;
        }
        if let Some(logging) = &self.logging {
            logging.flush();
        }
    }

    /// The legacy HTTP/1.1 bridge's address, when [`Builder::legacy_bridge`] turned it on.
    pub fn bridge_addr(&self) -> Option<SocketAddr> {
        self.bridge.as_ref().map(|(addr, _)| *addr)
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
            BuildErrorKind::NoAccessPolicy => f.write_str(
                "no access policy: give a limits file (limits(...)), or call allow_all_callers() for tests",
            ),
            BuildErrorKind::Limits(error) => write!(f, "the limits do not fit this server: {error}"),
            BuildErrorKind::Admin(error) => write!(f, "{error}"),
            BuildErrorKind::DuplicateMethod(path) => write!(f, "two services serve {path}"),
            BuildErrorKind::Bind(error) => write!(f, "cannot listen: {error}"),
            BuildErrorKind::Schemas(error) => write!(f, "the legacy bridge cannot start: {error}"),
            BuildErrorKind::Pool(error) => write!(f, "cannot start the handler threads: {error}"),
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
            BuildErrorKind::Bind(error) | BuildErrorKind::Pool(error) => Some(error),
            _ => None,
        }
    }
}
