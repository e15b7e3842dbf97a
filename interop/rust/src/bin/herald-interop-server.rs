//! grpc.testing.TestService on herald, for other implementations' interop clients.
//!
//!     herald-interop-server --port N                          # plaintext
//!     herald-interop-server --port N --tls --cert C --key K --ca CA
//!
//! With `--port 0` it picks a free port. Prints "LISTENING <port>" once bound, serves until
//! SIGTERM or Ctrl-C, then drains. Responses are gzip-compressed for callers that accept it
//! (unless a request asks otherwise); every caller is allowed (an interop peer, not a service
//! with a limits file). Mutual TLS requires a client certificate with a SPIFFE identity in
//! the trust domain herald.local (`interop/python/make-test-certs` makes such certificates).

use std::path::PathBuf;

use clap::Parser;
use herald::tls::{ServerTls, TlsFiles, TrustDomain};
use herald::{Compression, Server};
use herald_interop::pb::test_service_server::TestServiceServer;
use herald_interop::service::TestServiceImpl;

#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Mutual TLS (with --cert, --key, --ca).
    #[arg(long, requires_all = ["cert", "key", "ca"])]
    tls: bool,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long)]
    ca: Option<PathBuf>,
    /// SPIFFE trust domain of client identities.
    #[arg(long, default_value = "herald.local")]
    trust_domain: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let builder = Server::builder()
        .allow_all_callers()
        .compression(Compression::Gzip)
        .add_service(TestServiceServer::new(TestServiceImpl));
    let builder = match (&args.cert, &args.key, &args.ca) {
        (Some(cert), Some(key), Some(ca)) if args.tls => {
            let files = TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            };
            builder.tls(ServerTls::from_files(
                files,
                TrustDomain::new(&args.trust_domain)?,
            )?)
        }
        _ => builder.insecure_plaintext(),
    };
    let server = builder.bind(("127.0.0.1", args.port)).await?;
    println!("LISTENING {}", server.local_addr().port());
    herald::server::termination_signal().await?;
    server.shutdown().await;
    Ok(())
}
