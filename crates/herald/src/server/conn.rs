//! Accepting connections and serving HTTP/2 on each, with graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::body::Body;

use crate::identity::Identity;
use crate::server::bridge::Bridge;
use crate::server::call::CallStack;
use crate::server::connections::{ConnEntry, Connections, CountingIo};
use crate::server::preface;
use crate::server::router::{RouteFuture, Router};
use crate::server::stats::ServerStats;
use crate::server::stream_watch::StreamWatch;
use crate::server::web::WebFront;
pub(crate) use crate::tls::Alpn;
use crate::tls::ServerTls;

/// What the server knows of a connection's peer.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) identity: Option<Identity>,
    pub(crate) entry: Arc<ConnEntry>,
}

/// How a connection is secured.
#[derive(Clone, Debug)]
pub(crate) enum Security {
    InsecurePlaintext,
    Tls(ServerTls),
}

/// How long a peer has for the TLS handshake, and again for the HTTP/2 preface.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the accept loop shares with every connection.
pub(crate) struct Shared<S> {
    pub(crate) router: Arc<Router<S>>,
    pub(crate) http: Http,
    pub(crate) front: Front,
    /// The application protocols TLS offers.
    pub(crate) alpn: Alpn,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) security: Security,
    /// Idle time before TCP keepalive probes, when on.
    pub(crate) tcp_keepalive: Option<Duration>,
}

/// Between TCP keepalive probes.
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The HTTP versions a listener speaks.
pub(crate) enum Http {
    /// gRPC: HTTP/2 only.
    H2(hyper::server::conn::http2::Builder<TokioExecutor>),
    /// gRPC and gRPC-Web: HTTP/2, and HTTP/1.1 for browsers without it.
    Auto(hyper_util::server::conn::auto::Builder<TokioExecutor>),
    /// The legacy bridge: HTTP/1.1.
    H1(hyper::server::conn::http1::Builder),
}

/// What a listener does with a request before the router.
#[derive(Clone)]
pub(crate) enum Front {
    /// gRPC as it comes.
    Grpc,
    /// gRPC, and gRPC-Web translated to it.
    GrpcWeb(Arc<WebFront>),
    /// The legacy HTTP/1.1 protocol (protobuf or JSON bodies), translated to gRPC.
    Bridge(Arc<Bridge>),
}

/// The per-connection hyper service: routes each request with the connection's info.
struct ConnService<S> {
    router: Arc<Router<S>>,
    conn: Arc<ConnInfo>,
    front: Front,
}

pin_project_lite::pin_project! {
    /// A request's response future, counted as active on its connection until it resolves.
    struct Tracked<F> {
        #[pin]
        inner: F,
        entry: Arc<ConnEntry>,
    }

    impl<F> PinnedDrop for Tracked<F> {
        fn drop(this: Pin<&mut Self>) {
            this.entry.active.fetch_sub(1, Relaxed);
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// A response made by a front (gRPC-Web, the bridge) rather than by the router directly.
pub(crate) type FrontFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<S> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: CallStack,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Tracked<Either<RouteFuture<S>, FrontFuture>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let entry = &self.conn.entry;
        entry.requests.fetch_add(1, Relaxed);
        entry.active.fetch_add(1, Relaxed);
        let request = request.map(Body::new);
        let inner = match &self.front {
            Front::GrpcWeb(web) if WebFront::handles(&request) => {
                Either::Right(web.call(self.router.clone(), self.conn.clone(), request))
            }
            Front::Bridge(bridge) => Either::Right(bridge.clone().call(
                self.router.clone(),
                self.conn.clone(),
                request,
            )),
            _ => Either::Left(self.router.route(request, &self.conn)),
        };
        Tracked {
            inner,
            entry: entry.clone(),
        }
    }
}

/// Accepts connections until `shutdown` flips, then drains: each connection gets a GOAWAY,
/// in-flight calls finish within `grace`, stragglers are cut.
pub(crate) async fn accept_loop<S>(
    listener: TcpListener,
    shared: Arc<Shared<S>>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) where
    S: CallStack,
{
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        ServerStats::count(&shared.stats.connections_accepted);
        let _ = stream.set_nodelay(true);
        if let Some(idle) = shared.tcp_keepalive {
            let probes = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(TCP_KEEPALIVE_INTERVAL);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&probes);
        }
        // The handshake runs in the connection's own task: a slow client never holds up
        // the accept loop.
        connections.spawn(run_connection(
            shared.clone(),
            stream,
            peer,
            shutdown.clone(),
        ));
    }
    drop(listener);
    if tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            remaining = connections.len(),
            "grace period over, closing connections"
        );
        connections.shutdown().await;
    }
}

async fn run_connection<S>(
    shared: Arc<Shared<S>>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) where
    S: CallStack,
{
    let registration = shared.connections.register(peer);
    let entry = registration.entry.clone();
    let stream = CountingIo::new(stream, entry.clone());
    match &shared.security {
        Security::InsecurePlaintext => {
            serve(
                &shared,
                stream,
                ConnInfo {
                    identity: None,
                    entry,
                },
                shutdown,
            )
            .await;
        }
        Security::Tls(tls) => {
            let accept = tls.acceptor(shared.alpn).accept(stream).into_fallible();
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                Ok(Ok(stream)) => stream,
                Ok(Err((error, tcp))) => {
                    shared.stats.handshakes.record_failure();
                    let reason = crate::tls::describe(&error);
                    tracing::info!(%peer, %reason, "TLS handshake refused");
                    linger(tcp).await;
                    return;
                }
                Err(_) => {
                    shared.stats.handshakes.record_failure();
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let (_, session) = stream.get_ref();
            shared.stats.handshakes.record(session.handshake_kind());
            // The verifier already refused any certificate without a valid identity.
            let identity = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| tls.trust_domain().identity_in_cert(leaf).ok());
            if let Some(identity) = &identity {
                let _ = entry.identity.set(identity.clone());
            }
            serve(&shared, stream, ConnInfo { identity, entry }, shutdown).await;
        }
    }
    drop(registration);
}

async fn serve<S, I>(shared: &Shared<S>, io: I, conn: ConnInfo, shutdown: watch::Receiver<bool>)
where
    S: CallStack,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.entry.peer;
    let (io, preface_seen) = StreamWatch::new(io, conn.entry.clone());
    let service = ConnService {
        router: shared.router.clone(),
        conn: Arc::new(conn),
        front: shared.front.clone(),
    };
    let io = TokioIo::new(io);
    let silent = preface::missed(preface_seen, HANDSHAKE_TIMEOUT);
    let ended = match &shared.http {
        Http::H2(http) => drive(http.serve_connection(io, service), silent, shutdown).await,
        Http::Auto(http) => drive(http.serve_connection(io, service), silent, shutdown).await,
        Http::H1(http) => drive(http.serve_connection(io, service), silent, shutdown).await,
    };
    match ended {
        Ended::Error(error) => tracing::debug!(%peer, %error, "connection ended with an error"),
        Ended::Silent => {
            ServerStats::count(&shared.stats.preface_timeouts);
            tracing::info!(%peer, "nothing spoken in time (no HTTP/2 preface): connection closed");
        }
        Ended::Done => {}
    }
}

/// How a connection ended.
enum Ended {
    Done,
    Error(String),
    /// The peer said nothing in time.
    Silent,
}

/// A hyper connection that can be asked to finish gracefully (GOAWAY, or Connection: close).
trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for hyper::server::conn::http2::Connection<I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

impl<I, S> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S> Graceful for hyper_util::server::conn::auto::Connection<'_, I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper_util::server::conn::auto::Connection::graceful_shutdown(self);
    }
}

/// Serves `connection` until it ends, the peer stays `silent` too long, or shutdown begins
/// (then in-flight requests finish).
async fn drive<C, E>(
    connection: C,
    silent: impl Future<Output = ()>,
    mut shutdown: watch::Receiver<bool>,
) -> Ended
where
    C: Graceful<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = silent => return Ended::Silent,
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    match result {
        Ok(()) => Ended::Done,
        Err(error) => Ended::Error(error.to_string()),
    }
}

/// Closes a refused connection so that the peer reads our alert: dropping a socket with
/// unread input makes the kernel send a reset, which destroys the alert in flight. Bounded:
/// a peer that keeps sending is cut after a second.
async fn linger<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut tcp: T) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// HTTP/1.1 and HTTP/2 (by the client preface) for gRPC-Web: HTTP/2 with the same limits.
pub(crate) fn auto_builder(
    limits: &crate::server::Http2Limits,
) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut auto = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    auto.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    auto.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.max_local_error_reset_streams)
        .max_header_list_size(limits.max_header_list_size)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    auto
}

/// HTTP/1.1 for the legacy bridge: a slow sender of headers is cut like a silent peer.
pub(crate) fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    http
}

pub(crate) fn http2_builder(
    limits: &crate::server::Http2Limits,
) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut http = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http.timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.max_local_error_reset_streams)
        .max_header_list_size(limits.max_header_list_size)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    http
}
