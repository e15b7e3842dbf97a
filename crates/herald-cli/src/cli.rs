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
