//! The `herald` command.

mod bench;
mod call;
mod certs;
mod cli;
mod config;
mod connect;
mod demo;
mod graph;
mod reflect;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match herald::runtime::builder().build() {
        Ok(runtime) => runtime,
        Err(error) => return report(&error.into()),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Demo(args) => demo::run(args).await,
        cli::Command::Certs(command) => certs::run(command),
        cli::Command::Config(command) => config::run(command),
        cli::Command::Graph(args) => graph::run(args).await,
        cli::Command::Call(args) => call::run(args).await,
        cli::Command::Bench(args) => bench::run(args).await,
    }
}

/// One line on stderr, the causes joined: no backtraces for a person at a terminal.
fn report(error: &anyhow::Error) -> ExitCode {
    let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
    eprintln!("herald: error: {}", causes.join(": "));
    ExitCode::FAILURE
}
