//! The command line, as clap types. Doc comments are the help text.

use clap::{Parser, Subcommand};

/// herald: gRPC between services, safe and uniform by default.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the Cache and Accounts example services on loopback and walk through what
    /// herald does for them, with real calls.
    Demo(DemoArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Keep the services running after the walk-through, until Ctrl-C.
    #[arg(long)]
    pub(crate) serve: bool,
}
