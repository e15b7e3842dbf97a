//! Opening connections for a channel: TCP, then TLS when the channel is secure.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tower::Service;

use crate::tls::HandshakeStats;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects TCP, and TLS on top when configured.
#[derive(Clone)]
pub(crate) enum Connector {
    Plaintext(HttpConnector),
    Tls {
        http: HttpConnector,
        tls: tokio_rustls::TlsConnector,
        stats: Arc<HandshakeStats>,
    },
}

/// A connection, plain or secured.
pub(crate) enum Io {
    Plaintext(TokioIo<TcpStream>),
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

// === impl Connector ===

impl Connector {
    pub(crate) fn plaintext() -> Self {
        Connector::Plaintext(tcp())
    }

    pub(crate) fn tls(config: Arc<rustls::ClientConfig>, stats: Arc<HandshakeStats>) -> Self {
        Connector::Tls {
            http: tcp(),
            tls: tokio_rustls::TlsConnector::from(config),
            stats,
        }
    }
}

fn tcp() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    // The scheme is ours to choose: TLS is layered here, not by the URI.
    http.enforce_http(false);
    http
}

impl Service<Uri> for Connector {
    type Response = Io;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Io, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            match this {
                Connector::Plaintext(mut http) => Ok(Io::Plaintext(http.call(uri).await?)),
                Connector::Tls {
                    mut http,
                    tls,
                    stats,
                } => {
                    let host = uri
                        .host()
                        .unwrap_or("localhost")
                        .trim_matches(|c| c == '[' || c == ']');
                    let name = ServerName::try_from(host.to_owned())?;
                    let tcp = http.call(uri).await?.into_inner();
                    match tls.connect(name, tcp).await {
                        Ok(stream) => {
                            stats.record(stream.get_ref().1.handshake_kind());
                            Ok(Io::Tls(Box::new(TokioIo::new(stream))))
                        }
                        Err(error) => {
                            stats.record_failure();
                            let reason = crate::tls::describe(&error);
                            Err(Box::new(io::Error::other(format!(
                                "TLS handshake failed: {reason}"
                            ))) as BoxError)
                        }
                    }
                }
            }
        })
    }
}

// === impl Io ===

impl Connection for Io {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plaintext(io) => Pin::new(io).poll_read(cx, buf),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plaintext(io) => Pin::new(io).poll_write(cx, buf),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plaintext(io) => Pin::new(io).poll_flush(cx),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plaintext(io) => Pin::new(io).poll_shutdown(cx),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plaintext(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Io::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plaintext(io) => io.is_write_vectored(),
            Io::Tls(io) => io.is_write_vectored(),
        }
    }
}
