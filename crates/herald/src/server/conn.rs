//! Accepting connections and serving HTTP/2 on each, with graceful drain.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::body::Body;
use tower::Service;

use crate::identity::Identity;
use crate::server::call::Call;
use crate::server::router::{RouteFuture, Router};
use crate::server::stats::ServerStats;

/// What the server knows of a connection's peer.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    #[allow(dead_code)] // read by the admin endpoints
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

/// Accepts connections until `shutdown` flips, then drains: each connection gets a GOAWAY,
/// in-flight calls finish within `grace`, stragglers are cut.
pub(crate) async fn accept_loop<S>(
    listener: TcpListener,
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
        let service = ConnService {
            router: router.clone(),
            conn: Arc::new(ConnInfo {
                peer,
                identity: None,
            }),
        };
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut shutdown = shutdown.clone();
        connections.spawn(async move {
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
        });
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
