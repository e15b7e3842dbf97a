//! Accepting connections and serving HTTP/2 on each, with graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
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
use crate::server::connections::{ConnEntry, Connections, CountingIo};
use crate::server::preface::{self, PrefaceWatch};
use crate::server::router::{RouteFuture, Router};
use crate::server::stats::ServerStats;
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

/// How long a client may take to finish its TLS handshake.
/// How long a peer has for the TLS handshake, and again for the HTTP/2 preface.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the accept loop shares with every connection.
pub(crate) struct Shared<S> {
    pub(crate) router: Arc<Router<S>>,
    pub(crate) http: hyper::server::conn::http2::Builder<TokioExecutor>,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) security: Security,
}

/// The per-connection hyper service: routes each request with the connection's info.
struct ConnService<S> {
    router: Arc<Router<S>>,
    conn: Arc<ConnInfo>,
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

impl<S> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Tracked<RouteFuture<S>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let entry = &self.conn.entry;
        entry.requests.fetch_add(1, Relaxed);
        entry.active.fetch_add(1, Relaxed);
        Tracked {
            inner: self.router.route(request.map(Body::new), &self.conn),
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
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
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
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
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
            let accept = tls.acceptor().accept(stream).into_fallible();
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

async fn serve<S, I>(shared: &Shared<S>, io: I, conn: ConnInfo, mut shutdown: watch::Receiver<bool>)
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.entry.peer;
    let service = ConnService {
        router: shared.router.clone(),
        conn: Arc::new(conn),
    };
    let (io, preface_seen) = PrefaceWatch::new(io);
    let connection = shared.http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
        () = preface::missed(preface_seen, HANDSHAKE_TIMEOUT) => {
            ServerStats::count(&shared.stats.preface_timeouts);
            tracing::info!(%peer, "no HTTP/2 preface in time: connection closed");
        }
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
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
