//! `herald config check FILE`.

use herald::limits::{LimitsConfig, Rate};

use crate::cli::ConfigCommand;

pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check(args) => {
            let config = LimitsConfig::from_file(&args.file)?;
            println!("{}: valid", args.file.display());
            for (service, limits) in config.services() {
                let default = limits.default();
                println!(
                    "  {service}: {} caller rule(s), max_concurrency {}, queue {}",
                    default.rate_acls().count(),
                    default
                        .max_concurrency()
                        .map_or("unlimited".to_owned(), |n| n.to_string()),
                    default
                        .queue()
                        .map_or("lifo", |q| if q == herald::limits::QueueKind::Lifo {
                            "lifo"
                        } else {
                            "codel"
                        }),
                );
                for (who, rate) in default.rate_acls() {
                    let rate = match rate {
                        Rate::Unlimited => "unlimited".to_owned(),
                        Rate::Denied => "denied".to_owned(),
                        Rate::PerSecond(n) => format!("{n}/s"),
                    };
                    println!("    {who}: {rate}");
                }
                for method in limits.methods() {
                    println!("    method {method}: overrides the default");
                }
            }
            Ok(())
        }
    }
}
