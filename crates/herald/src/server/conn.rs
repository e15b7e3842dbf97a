//! Accepting connections and serving HTTP/2 on each, with graceful drain.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::body::Body;
use tower::Service;

use crate::identity::Identity;
use crate::server::call::Call;
use crate::server::router::{RouteFuture, Router};
use crate::server::stats::ServerStats;
use crate::tls::ServerTls;

/// What the server knows of a connection's peer.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) identity: Option<Identity>,
}

/// The per-connection hyper service: routes each request with the connection's info.
struct ConnService<S> {
    router: Arc<Router<S>>,
    conn: Arc<ConnInfo>,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = RouteFuture<S>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        self.router.route(request.map(Body::new), &self.conn)
    }
}

/// How a connection is secured.
#[derive(Clone, Debug)]
pub(crate) enum Security {
    InsecurePlaintext,
    Tls(ServerTls),
}

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` flips, then drains: each connection gets a GOAWAY,
/// in-flight calls finish within `grace`, stragglers are cut.
pub(crate) async fn accept_loop<S>(
    listener: TcpListener,
    security: Security,
    router: Arc<Router<S>>,
    http: hyper::server::conn::http2::Builder<TokioExecutor>,
    stats: Arc<ServerStats>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let http = Arc::new(http);
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
        ServerStats::count(&stats.connections_accepted);
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            http: http.clone(),
            stats: stats.clone(),
            shutdown: shutdown.clone(),
        };
        // The handshake runs in the connection's own task: a slow client never holds up
        // the accept loop.
        connections.spawn(connection.run(stream, peer, security.clone()));
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

/// What one connection's task needs.
struct Connection<S> {
    router: Arc<Router<S>>,
    http: Arc<hyper::server::conn::http2::Builder<TokioExecutor>>,
    stats: Arc<ServerStats>,
    shutdown: watch::Receiver<bool>,
}

impl<S> Connection<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    async fn run(self, stream: TcpStream, peer: SocketAddr, security: Security) {
        match security {
            Security::InsecurePlaintext => {
                self.serve(
                    TokioIo::new(stream),
                    ConnInfo {
                        peer,
                        identity: None,
                    },
                )
                .await;
            }
            Security::Tls(tls) => {
                let accept = tls.acceptor().accept(stream).into_fallible();
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err((error, tcp))) => {
                        self.stats.handshakes.record_failure();
                        let reason = crate::tls::describe(&error);
                        tracing::info!(%peer, %reason, "TLS handshake refused");
                        linger(tcp).await;
                        return;
                    }
                    Err(_) => {
                        self.stats.handshakes.record_failure();
                        tracing::info!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let (_, session) = stream.get_ref();
                self.stats.handshakes.record(session.handshake_kind());
                // The verifier already refused any certificate without a valid identity.
                let identity = session
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| tls.trust_domain().identity_in_cert(leaf).ok());
                self.serve(TokioIo::new(stream), ConnInfo { peer, identity })
                    .await;
            }
        }
    }

    async fn serve<I>(self, io: I, conn: ConnInfo)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Connection {
            router,
            http,
            mut shutdown,
            ..
        } = self;
        let peer = conn.peer;
        let service = ConnService {
            router,
            conn: Arc::new(conn),
        };
        let connection = http.serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            }
            _ = shutdown.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

/// Closes a refused connection so that the peer reads our alert: dropping a socket with
/// unread input makes the kernel send a reset, which destroys the alert in flight. Bounded:
/// a peer that keeps sending is cut after a second.
async fn linger(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
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
