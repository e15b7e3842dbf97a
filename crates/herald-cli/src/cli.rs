//! The command line, as clap types. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// herald: gRPC between services, safe and uniform by default.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the Cache and Accounts example services on loopback with mutual TLS and walk
    /// through what herald does for them, with real calls.
    Demo(DemoArgs),
    /// Make a development CA and service certificates (SPIFFE identities).
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Draw the service dependency graph from running services' admin endpoints.
    Graph(GraphArgs),
    /// Work with limits files (ACLs, rate limits, admission).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Call a method of a running server, JSON in and out; types are learnt by server
    /// reflection. Without a method, list the server's services.
    ///
    /// Examples:
    ///   herald call --demo .herald-demo cache cache.Cache/Get -d '{"key": "greeting"}'
    ///   herald call --plaintext 127.0.0.1:50051 grpc.testing.TestService/EmptyCall
    ///   herald call --cert me.pem --key me.key --ca ca.pem --server-identity cache \
    ///       10.0.0.7:8443 cache.Cache/Dump -d '{}'
    #[command(verbatim_doc_comment)]
    Call(CallArgs),
    /// Load a unary method of a running server and report throughput, latency percentiles
    /// and status codes. Closed loop (a number of callers, each waiting for its answer) by
    /// default; open loop with --rate (calls sent on schedule, latency counted from when each
    /// call was due, so a stalled server cannot hide its stalls: no coordinated omission).
    ///
    /// Examples:
    ///   herald bench --demo .herald-demo cache cache.Cache/Get -d '{"key":"greeting"}' -n 10000
    ///   herald bench --plaintext 127.0.0.1:50051 echo.Echo/Unary --rate 5000 --duration 10
    ///   herald bench ... --rate 1000,4000,10000,1000 --duration 5 --json report.json
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),
}

/// How to reach a server: an address, and mutual TLS or plaintext.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// Use the running `herald demo --serve` whose state directory is DIR: its client
    /// certificate, CA and service addresses (TARGET may then be a service name, e.g. cache).
    #[arg(long, value_name = "DIR", conflicts_with = "plaintext")]
    pub(crate) demo: Option<PathBuf>,
    /// Our certificate (PEM), with a SPIFFE identity.
    #[arg(long, value_name = "FILE", conflicts_with = "plaintext")]
    pub(crate) cert: Option<PathBuf>,
    /// Our private key (PEM).
    #[arg(long, value_name = "FILE", conflicts_with = "plaintext")]
    pub(crate) key: Option<PathBuf>,
    /// The CA that signs the server's certificate (PEM).
    #[arg(long, value_name = "FILE", conflicts_with = "plaintext")]
    pub(crate) ca: Option<PathBuf>,
    /// The identity the server must prove, e.g. cache; a certificate of any other identity is
    /// refused.
    #[arg(long, value_name = "NAME", conflicts_with = "plaintext")]
    pub(crate) server_identity: Option<String>,
    /// The SPIFFE trust domain of the identities.
    #[arg(long, default_value = "herald.local")]
    pub(crate) trust_domain: String,
    /// No TLS at all: for servers started with `insecure_plaintext` (tests, local experiments).
    #[arg(long)]
    pub(crate) plaintext: bool,
}

/// Where message types come from.
#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Take the types from this .proto file instead of asking the server by reflection
    /// (repeatable); it may import "herald/options.proto" and Google's types.
    #[arg(long, value_name = "FILE")]
    pub(crate) proto: Vec<PathBuf>,
    /// Where --proto files and their imports are found (repeatable; default: .).
    #[arg(long, value_name = "DIR", requires = "proto")]
    pub(crate) import_path: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The server: host:port, or with --demo a service name.
    pub(crate) target: String,
    /// The method, as package.Service/Method. Without it, list the services.
    pub(crate) method: Option<String>,
    /// The request as JSON (protobuf's JSON mapping); several objects one after another for a
    /// client stream; @FILE reads a file, @- stdin.
    #[arg(short, long, default_value = "{}")]
    pub(crate) data: String,
    /// A header sent with the call, NAME: VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Give up after this many seconds (sent to the server as grpc-timeout).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub(crate) timeout: f64,
    /// Print the method's signature and message fields instead of calling it.
    #[arg(long)]
    pub(crate) describe: bool,
    /// One line of JSON per response instead of indented JSON.
    #[arg(long)]
    pub(crate) compact: bool,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) schema: SchemaArgs,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The server: host:port, or with --demo a service name.
    pub(crate) target: String,
    /// The unary method, as package.Service/Method.
    pub(crate) method: String,
    /// The request every call sends, as JSON; @FILE reads a file.
    #[arg(short, long, default_value = "{}")]
    pub(crate) data: String,
    /// Closed loop: this many callers, each sending its next call when the last one ends.
    #[arg(short, long, default_value_t = 50, conflicts_with = "rate")]
    pub(crate) concurrency: usize,
    /// Open loop: calls per second, sent on schedule whatever the answers; a list (e.g.
    /// 1000,5000,1000) runs one step per rate, each --duration long.
    #[arg(short, long, value_delimiter = ',', value_name = "PER_SECOND")]
    pub(crate) rate: Vec<f64>,
    /// Stop after this many calls (closed loop only).
    #[arg(short = 'n', long, conflicts_with = "rate")]
    pub(crate) requests: Option<u64>,
    /// Seconds to run (per step with a list of rates); 10 unless --requests is given.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub(crate) warmup: f64,
    /// HTTP/2 connections to open.
    #[arg(long, default_value_t = 1)]
    pub(crate) connections: usize,
    /// Each call's deadline, in seconds (sent as grpc-timeout).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub(crate) timeout: f64,
    /// Open loop: the most calls in flight; a call due beyond it waits (its wait is counted
    /// in its latency).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) max_in_flight: usize,
    /// Write the report as JSON to FILE as well.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub(crate) no_progress: bool,
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
    #[command(flatten)]
    pub(crate) schema: SchemaArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// Admin endpoints to read, e.g. http://127.0.0.1:9901 or unix:/run/cache-admin.sock.
    #[arg(required = true)]
    pub(crate) admins: Vec<String>,
    /// Where to write the graph: OUT.dot and OUT.svg.
    #[arg(long, default_value = "herald-graph")]
    pub(crate) out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a limits file offline: exit 0 and a summary if valid, else the error with its
    /// line and key.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ConfigCheckArgs {
    /// The limits file (YAML).
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the services running after the walk-through, until Ctrl-C.
    #[arg(long)]
    pub(crate) serve: bool,
    /// Where the demo keeps its CA and certificates.
    #[arg(long, default_value = ".herald-demo")]
    pub(crate) state_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create a development CA: ca.pem and ca.key (readable by you only) in DIR.
    Init(CertsInitArgs),
    /// Issue a certificate and key for one identity, signed by the CA in DIR.
    Issue(CertsIssueArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CertsInitArgs {
    /// Folder for the CA's files.
    #[arg(long, default_value = "certs")]
    pub(crate) dir: PathBuf,
    /// SPIFFE trust domain of every identity the CA will issue.
    #[arg(long, default_value = "herald.local")]
    pub(crate) trust_domain: String,
    /// RSA-2048 instead of ECDSA P-256 (slower handshakes; for comparison).
    #[arg(long)]
    pub(crate) rsa: bool,
    /// Replace a CA already in DIR.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["service", "user", "host"])))]
pub(crate) struct CertsIssueArgs {
    /// Folder holding the CA (from `herald certs init`); the certificate is written there.
    #[arg(long, default_value = "certs")]
    pub(crate) dir: PathBuf,
    /// A service identity: spiffe://<trust domain>/service/NAME.
    #[arg(long, value_name = "NAME")]
    pub(crate) service: Option<String>,
    /// A user identity: spiffe://<trust domain>/user/NAME (seen as user.NAME).
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// A host identity: spiffe://<trust domain>/host/NAME (seen as host.NAME).
    #[arg(long, value_name = "NAME")]
    pub(crate) host: Option<String>,
    /// RSA-2048 instead of ECDSA P-256.
    #[arg(long)]
    pub(crate) rsa: bool,
}
