//! The admin endpoint: a separate listener, on loopback or a Unix socket, never on the
//! service port and never public unless explicitly asked.
//!
//! `/` links everything: `/metrics`, `/healthz`, `/readyz`, `/info`, `/config`, `/logging`,
//! `/connections`, `/certs`, `/deps`, `/debug/pprof/profile?seconds=N`, `/debug/heap`.

mod config;
mod pages;
mod pprof_proto;
mod profile;
mod routes;
mod state;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::sync::watch;

pub use config::{AdminConfig, AdminError};
pub(crate) use state::AdminState;

/// Where a running admin endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAddr {
    /// A TCP address (loopback unless explicitly made public).
    Tcp(SocketAddr),
    /// A Unix socket path (mode 0600).
    Unix(PathBuf),
}

impl fmt::Display for AdminAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminAddr::Tcp(addr) => write!(f, "http://{addr}"),
            AdminAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Binds the admin listener and serves it until `shutdown` flips.
pub(crate) fn start(
    config: AdminConfig,
    state: Arc<AdminState>,
    shutdown: watch::Receiver<bool>,
) -> Result<AdminAddr, AdminError> {
    let (listener, addr) = match config.bind()? {
        config::Bound::Tcp(listener) => {
            let addr = listener.local_addr().map_err(AdminError::io)?;
            (Listener::Tcp(listener), AdminAddr::Tcp(addr))
        }
        #[cfg(unix)]
        config::Bound::Unix(listener, path) => (Listener::Unix(listener), AdminAddr::Unix(path)),
    };
    let tls = match &config.tls {
        Some(tls) => Some(
            tls.http1_acceptor()
                .map_err(|e| AdminError::io(std::io::Error::other(e.to_string())))?,
        ),
        None => None,
    };
    tokio::spawn(serve(listener, tls, state, shutdown));
    Ok(addr)
}

/// A TCP or Unix listener.
enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

/// A connection of either kind.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Listener {
    async fn accept(&self) -> std::io::Result<Box<dyn Io>> {
        match self {
            Listener::Tcp(listener) => Ok(Box::new(listener.accept().await?.0)),
            #[cfg(unix)]
            Listener::Unix(listener) => Ok(Box::new(listener.accept().await?.0)),
        }
    }
}

async fn serve(
    listener: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::handle(&state, request).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                // Behind mutual TLS: the same verification as the service port.
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                    Err(error) => {
                        tracing::info!(reason = %crate::tls::describe(&error), "admin TLS handshake refused");
                    }
                },
            }
        });
    }
}
