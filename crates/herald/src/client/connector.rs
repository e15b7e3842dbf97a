//! Opening connections for a channel: TCP, then TLS when the channel is secure.

use crate::client::keepalive::Keepalive;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
pub(crate) struct Connector {
    http: HttpConnector,
    tls: Option<(tokio_rustls::TlsConnector, Arc<HandshakeStats>)>,
    /// The TLS server name (SNI) when the service has a DNS name; else the address's IP.
    server_name: Option<Arc<str>>,
    last_failure: LastFailure,
    keepalive: Keepalive,
}

/// The last I/O failure of any connection of a channel. hyper reports a connection that
/// died under a request as "channel closed"; this keeps the reason (a TLS alert from the
/// server, a reset) so the call's error can say it.
#[derive(Clone, Debug, Default)]
pub(crate) struct LastFailure(Arc<Mutex<Option<(Instant, String)>>>);

/// The first I/O failure of one connection, for whoever drives it: see [`Io::failure`].
#[derive(Clone, Debug, Default)]
pub(crate) struct IoFailure(Arc<OnceLock<String>>);

/// A connection, plain or secured.
pub(crate) struct Io {
    stream: Stream,
    last_failure: LastFailure,
    failure: IoFailure,
}

enum Stream {
    Plaintext(TokioIo<TcpStream>),
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

// === impl Connector ===

impl Connector {
    pub(crate) fn plaintext() -> Self {
        Connector {
            http: tcp(),
            tls: None,
            server_name: None,
            last_failure: LastFailure::default(),
            keepalive: Keepalive::default(),
        }
    }

    pub(crate) fn tls(config: Arc<rustls::ClientConfig>, stats: Arc<HandshakeStats>) -> Self {
        let tls = Some((tokio_rustls::TlsConnector::from(config), stats));
        Connector {
            http: tcp(),
            tls,
            server_name: None,
            last_failure: LastFailure::default(),
            keepalive: Keepalive::default(),
        }
    }

    /// The same, presenting `host` as the TLS server name (when it is a DNS name: an IP
    /// address says nothing the connection's address does not).
    pub(crate) fn with_server_name(mut self, host: &str) -> Self {
        let host = host.trim_matches(|c| c == '[' || c == ']');
        if host.parse::<std::net::IpAddr>().is_err() {
            self.server_name = Some(host.into());
        }
        self
    }

    /// The same, recording I/O failures apart: one endpoint's failure must not explain
    /// another's.
    pub(crate) fn with_own_failures(&self) -> Self {
        Connector {
            last_failure: LastFailure::default(),
            ..self.clone()
        }
    }

    /// The same, pinging its connections as `keepalive` says.
    pub(crate) fn with_keepalive(mut self, keepalive: Keepalive) -> Self {
        keepalive.apply_to_tcp(&mut self.http);
        self.keepalive = keepalive;
        self
    }

    pub(crate) fn keepalive(&self) -> Keepalive {
        self.keepalive
    }

    pub(crate) fn last_failure(&self) -> LastFailure {
        self.last_failure.clone()
    }
}

// === impl LastFailure ===

impl LastFailure {
    /// How long a failure explains later errors.
    const RELEVANT: Duration = Duration::from_secs(5);

    /// Keeps `why` a connection failed (an HTTP/2 error, an unanswered keepalive PING), for
    /// the calls it broke: their own errors only say the stream ended.
    pub(crate) fn note(&self, why: String) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((Instant::now(), why));
        }
    }

    /// The failure of the last few seconds, if any.
    pub(crate) fn recent(&self) -> Option<String> {
        let last = self.0.lock().ok()?;
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < Self::RELEVANT)
            .map(|(_, why)| why.clone())
    }
}

fn tcp() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    // The scheme is ours to choose: TLS is layered here, not by the URI.
    http.enforce_http(false);
    Keepalive::default().apply_to_tcp(&mut http);
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
        let Connector {
            mut http,
            tls,
            server_name,
            last_failure,
            ..
        } = self.clone();
        Box::pin(async move {
            let tcp = http.call(uri.clone()).await?;
            let Some((tls, stats)) = tls else {
                return Ok(Io {
                    stream: Stream::Plaintext(tcp),
                    last_failure,
                    failure: IoFailure::default(),
                });
            };
            let host = match &server_name {
                Some(name) => name,
                None => uri
                    .host()
                    .unwrap_or("localhost")
                    .trim_matches(|c| c == '[' || c == ']'),
            };
            let name = ServerName::try_from(host.to_owned())?;
            match tls.connect(name, tcp.into_inner()).await {
                Ok(stream) => {
                    stats.record(stream.get_ref().1.handshake_kind());
                    Ok(Io {
                        stream: Stream::Tls(Box::new(TokioIo::new(stream))),
                        last_failure,
                        failure: IoFailure::default(),
                    })
                }
                Err(error) => {
                    stats.record_failure();
                    let reason = crate::tls::describe(&error);
                    Err(
                        Box::new(io::Error::other(format!("TLS handshake failed: {reason}")))
                            as BoxError,
                    )
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

impl Io {
    /// This connection's first I/O failure, once it has one. hyper's HTTP/2 client can end a
    /// connection whose I/O failed as if it had closed cleanly: its dispatch task may see
    /// the connection's task gone before that task's error reaches it (seen with a server
    /// refusing the client's certificate, whose alert arrives after a TLS 1.3 client's side of
    /// the handshake is done). This says what really happened.
    pub(crate) fn failure(&self) -> IoFailure {
        self.failure.clone()
    }

    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(error)) = &poll {
            let why = crate::tls::describe(error);
            self.failure.0.get_or_init(|| why.clone());
            self.last_failure.note(why);
        }
        poll
    }
}

// === impl IoFailure ===

impl IoFailure {
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plaintext(io) => Pin::new(io).poll_read(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        };
        this.note(poll)
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plaintext(io) => Pin::new(io).poll_write(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        };
        this.note(poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plaintext(io) => Pin::new(io).poll_flush(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        };
        this.note(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plaintext(io) => Pin::new(io).poll_shutdown(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream::Plaintext(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        };
        this.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plaintext(io) => io.is_write_vectored(),
            Stream::Tls(io) => io.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::SockRef;

    /// What the kernel was told about a plaintext connection `connector` opens.
    #[derive(Debug, PartialEq)]
    struct Probes {
        keepalive: bool,
        idle: Duration,
        interval: Duration,
        user_timeout: Option<Duration>,
    }

    async fn probes_of(mut connector: Connector) -> Probes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri = format!("http://{}", listener.local_addr().expect("address"))
            .parse()
            .expect("URI");
        let io = connector.call(uri).await.expect("connect");
        let Stream::Plaintext(tcp) = &io.stream else {
            panic!("a plaintext connector made a TLS stream");
        };
        let socket = SockRef::from(tcp.inner());
        Probes {
            keepalive: socket.keepalive().expect("SO_KEEPALIVE"),
            idle: socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            interval: socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            user_timeout: socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
        }
    }

    #[tokio::test]
    async fn every_connection_lets_tcp_find_a_dead_peer() {
        let tcp = |user_timeout| Probes {
            keepalive: true,
            idle: Keepalive::TCP_IDLE,
            interval: Keepalive::TCP_PROBE_INTERVAL,
            user_timeout: Some(user_timeout),
        };
        assert_eq!(
            probes_of(Connector::plaintext()).await,
            tcp(Keepalive::DEFAULT_TIMEOUT)
        );
        // With PINGs asked for, TCP's probes stay and share the PINGs' timeout.
        let pinging = Keepalive::every(Duration::from_secs(30)).timeout(Duration::from_secs(5));
        assert_eq!(
            probes_of(Connector::plaintext().with_keepalive(pinging)).await,
            tcp(Duration::from_secs(5))
        );
    }
}
