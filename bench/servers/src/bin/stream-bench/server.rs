//! The servers under test. Each is this binary re-executed as `--serve CASE --certs DIR`
//! under `taskset` on the server CPU: one tokio worker, `bench.Echo/Stream` from
//! `payloads.rs` (the same work per message as herald-echo and tonic-echo), on 127.0.0.1.
//! It prints `LISTENING <port>` and exits at the end of its stdin.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{BoxError, Case, SERVER_CPU, Server, TRUST_DOMAIN, Transport, payloads};

/// The files of the certificate directory.
pub(crate) const CA: &str = "ca.pem";
pub(crate) const CERT: &str = "server.pem";
pub(crate) const KEY: &str = "server.key";

/// How long a server may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit once its stdin closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server child process; stopped when dropped.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

/// herald's handler.
struct HeraldStreamer;

/// tonic's handler.
struct TonicStreamer;

// === impl ServerProcess ===

impl ServerProcess {
    /// Starts the server of `case` and waits until it listens.
    pub(crate) fn start(case: Case, certs: &Path) -> Result<ServerProcess, BoxError> {
        let mut child = Command::new("taskset")
            .args(["-c", SERVER_CPU])
            .arg(std::env::current_exe()?)
            .args(["--serve", &case.name(), "--certs"])
            .arg(certs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // Dropped on every path from here: a server that fails to start is stopped too.
        let mut server = ServerProcess {
            child,
            stdin,
            port: 0,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| format!("{} did not start in time", case.label()))??;
        server.port = line
            .trim()
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("{} said {line:?}, not LISTENING <port>", case.label()))?
            .parse()?;
        Ok(server)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's own process: taskset executes it in its place.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.stdin.take()); // end of stdin: the server shuts down
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === the child process ===

/// Serves `case` until stdin closes.
pub(crate) fn serve(case: Case, certs: &Path) -> Result<(), BoxError> {
    match case.server {
        Server::Herald => serve_herald(case.transport, certs),
        Server::Tonic => serve_tonic(case.transport, certs),
    }
}

fn serve_herald(transport: Transport, certs: &Path) -> Result<(), BoxError> {
    use crate::herald_pb::echo_server::EchoServer;
    use herald::tls::{ServerTls, TrustDomain};

    // herald's recommended runtime, one worker as in herald-echo.
    let runtime = herald::runtime::builder().worker_threads(1).build()?;
    runtime.block_on(async move {
        let builder = herald::Server::builder();
        let builder = match transport {
            Transport::Plaintext => builder.insecure_plaintext(),
            Transport::Mtls => builder.tls(ServerTls::from_pem(
                &read(certs, CERT)?,
                &read(certs, KEY)?,
                &read(certs, CA)?,
                TrustDomain::new(TRUST_DOMAIN)?,
            )?),
        };
        let server = builder
            .allow_all_callers()
            .add_service(EchoServer::new(HeraldStreamer))
            .bind("127.0.0.1:0")
            .await?;
        listening(server.local_addr().port())?;
        let _ = stdin_closed().await;
        server.shutdown().await;
        Ok(())
    })
}

fn serve_tonic(transport: Transport, certs: &Path) -> Result<(), BoxError> {
    use crate::tonic_pb::echo_server::EchoServer;
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};

    // Bare tonic as in tonic-echo: tokio's default runtime, one worker.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut builder = tonic::transport::Server::builder();
        if transport == Transport::Mtls {
            // tonic takes rustls's process-wide provider: choose it, as herald does (*ring*).
            let _ = rustls::crypto::ring::default_provider().install_default();
            builder = builder.tls_config(
                ServerTlsConfig::new()
                    .identity(Identity::from_pem(read(certs, CERT)?, read(certs, KEY)?))
                    .client_ca_root(Certificate::from_pem(read(certs, CA)?)),
            )?;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        listening(listener.local_addr()?.port())?;
        builder
            .add_service(EchoServer::new(TonicStreamer))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stdin_closed().await;
                },
            )
            .await?;
        Ok(())
    })
}

fn read(dir: &Path, name: &str) -> Result<String, BoxError> {
    Ok(std::fs::read_to_string(dir.join(name))?)
}

fn listening(port: u16) -> Result<(), BoxError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "LISTENING {port}")?;
    out.flush()?;
    Ok(())
}

/// Resolves when stdin reaches its end: the parent is done with this server.
fn stdin_closed() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    rx
}

// === impl HeraldStreamer ===

impl crate::herald_pb::echo_server::Echo for HeraldStreamer {
    async fn call(
        &self,
        _ctx: &herald::Context,
        request: crate::herald_pb::Msg,
    ) -> Result<crate::herald_pb::Msg, herald::Error> {
        Ok(request)
    }

    type StreamStream = herald::BoxStream<crate::herald_pb::Msg>;

    async fn stream(
        &self,
        _ctx: &herald::Context,
        request: crate::herald_pb::StreamRequest,
    ) -> Result<Self::StreamStream, herald::Error> {
        let payloads = payloads::payloads(request.message_size, request.count, request.duration_ms)
            .map_err(herald::Error::invalid_argument)?;
        Ok(Box::pin(tokio_stream::iter(
            payloads.map(|payload| Ok(crate::herald_pb::Msg { payload })),
        )))
    }
}

// === impl TonicStreamer ===

#[tonic::async_trait]
impl crate::tonic_pb::echo_server::Echo for TonicStreamer {
    async fn call(
        &self,
        request: tonic::Request<crate::tonic_pb::Msg>,
    ) -> Result<tonic::Response<crate::tonic_pb::Msg>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }

    type StreamStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<crate::tonic_pb::Msg, tonic::Status>> + Send>,
    >;

    async fn stream(
        &self,
        request: tonic::Request<crate::tonic_pb::StreamRequest>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        let request = request.into_inner();
        let payloads = payloads::payloads(request.message_size, request.count, request.duration_ms)
            .map_err(tonic::Status::invalid_argument)?;
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(
            payloads.map(|payload| Ok(crate::tonic_pb::Msg { payload })),
        ))))
    }
}
