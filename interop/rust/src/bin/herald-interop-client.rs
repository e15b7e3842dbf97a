//! The interop client cases on herald, against any grpc.testing.TestService server.
//!
//!     herald-interop-client --port N [--cases all | a,b,c]
//!     herald-interop-client --port N --tls --cert C --key K --ca CA [--server-identity interop]
//!     herald-interop-client --port N --soak 1000
//!
//! Prints one line per case, "PASS name", "FAIL name: reason" or "SKIP name: reason" (a case
//! herald's client cannot express; never counted as passed), then "N passed, M failed[, K
//! skipped]" — the format of the Python and Node peers. With --soak, large_unary N times: a
//! FAIL line per failed call (the first 20), then "N passed, M failed". Exit code 0 only when
//! nothing failed. Over TLS the server must prove the SPIFFE identity --server-identity (herald
//! checks identities, not host names; --server-name is accepted for the peers' flag set).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use herald::client::Channel;
use herald::tls::{ClientTls, TlsFiles, TrustDomain};
use herald_interop::cases::{CASES, NotPassed, Peer, channels};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// "all", or a comma-separated list of cases.
    #[arg(long, default_value = "all")]
    cases: String,
    /// Mutual TLS (with --cert, --key, --ca).
    #[arg(long, requires_all = ["cert", "key", "ca"])]
    tls: bool,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The SPIFFE identity the server must prove.
    #[arg(long, default_value = "interop")]
    server_identity: String,
    /// Accepted for the peers' flag set; herald checks the server's SPIFFE identity instead.
    #[arg(long)]
    server_name: Option<String>,
    #[arg(long, default_value = "herald.local")]
    trust_domain: String,
    /// Deadline of each call, in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Instead of the cases: this many large_unary calls.
    #[arg(long)]
    soak: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let names: Vec<&str> = if args.cases == "all" {
        CASES.to_vec()
    } else {
        args.cases
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect()
    };
    if let Some(unknown) = names.iter().find(|n| !CASES.contains(n)) {
        anyhow::bail!("unknown case {unknown}; known: {}", CASES.join(", "));
    }
    let address = format!("{}:{}", args.host, args.port);
    let tls = match (&args.cert, &args.key, &args.ca) {
        (Some(cert), Some(key), Some(ca)) if args.tls => Some(ClientTls::from_files(
            TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            },
            TrustDomain::new(&args.trust_domain)?,
        )?),
        _ => None,
    };
    let server: std::net::SocketAddr = address.parse()?;
    let (plain, gzip) = channels(|| {
        let one = herald::client::Discovery::fixed([server]).expect("one address is a valid set");
        let builder = Channel::builder(one);
        match &tls {
            Some(tls) => builder.tls(tls, args.server_identity.as_str()),
            None => builder.insecure_plaintext(),
        }
    })?;
    let peer = Peer::new(plain, gzip, Duration::from_secs_f64(args.timeout));

    let failed = match args.soak {
        Some(calls) => soak(&peer, calls).await,
        None => cases(&peer, &names).await,
    };
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn cases(peer: &Peer, names: &[&str]) -> u32 {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for name in names {
        match peer.run(name).await {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(NotPassed::Skipped(why)) => {
                skipped += 1;
                println!("SKIP {name}: {why}");
            }
            Err(NotPassed::Failed(why)) => {
                failed += 1;
                println!("FAIL {name}: {}", one_line(&why));
            }
        }
    }
    let skipped_note = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    println!("{passed} passed, {failed} failed{skipped_note}");
    failed
}

async fn soak(peer: &Peer, calls: u32) -> u32 {
    let mut failed = 0;
    for i in 0..calls {
        if let Err(NotPassed::Failed(why) | NotPassed::Skipped(why)) = peer.run("large_unary").await
        {
            failed += 1;
            if failed <= 20 {
                println!("FAIL large_unary#{i}: {}", one_line(&why));
            }
        }
    }
    println!("{} passed, {failed} failed", calls - failed);
    failed
}

fn one_line(reason: &str) -> String {
    reason.replace('\r', "\\r").replace('\n', "\\n")
}
