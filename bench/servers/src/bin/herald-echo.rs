//! herald's echo server with its full default stack: limits (ACL, rate check, admission),
//! metrics and access-log instrumentation, deadlines. Plaintext (h2load has no client
//! certificates). One tokio worker, like the anchors.
//!
//! Flags: `--port N`; for the overload scenario `--work-us N` (CPU burnt per call), and the
//! admission limits `--max-concurrency N`, `--max-queue N`, `--queue-timeout-ms N`,
//! `--queue lifo|codel`; `--admin-port N` serves the admin endpoint (metrics) on loopback.

#[path = "../common.rs"]
mod common;

mod pb {
    include!(concat!(env!("OUT_DIR"), "/herald/bench.rs"));
}

use herald::limits::{Limits, LimitsConfig};
use herald::{Context, Error, Server};
use pb::Msg;
use pb::echo_server::{Echo, EchoServer};

struct Echoer {
    work_us: u64,
}

impl Echo for Echoer {
    async fn call(&self, _ctx: &Context, request: Msg) -> Result<Msg, Error> {
        common::work(self.work_us);
        Ok(request)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = common::flag("port", 0)?;
    let work_us: u64 = common::flag("work-us", 0)?;
    let limits = format!(
        "limits:\n  bench.Echo:\n    default:\n      max_concurrency: {}\n      max_queue: {}\n      \
         queue_timeout_ms: {}\n      queue: {}\n      rate_acls: {{ unauthenticated: -1 }}\n",
        common::flag("max-concurrency", 1024u32)?,
        common::flag("max-queue", 1024u32)?,
        common::flag("queue-timeout-ms", 1000u64)?,
        common::flag("queue", "lifo".to_owned())?,
    );
    // herald's recommended runtime (herald::runtime), one worker like the anchors; the
    // flags exist to explore other settings.
    let runtime = herald::runtime::builder()
        .worker_threads(1)
        .event_interval(common::flag("event-interval", 61)?)
        .global_queue_interval(common::flag(
            "global-queue-interval",
            herald::runtime::GLOBAL_QUEUE_INTERVAL,
        )?)
        .build()?;
    runtime.block_on(async move {
        let limits = Limits::from_config(LimitsConfig::parse(&limits, "bench limits")?);
        let admin_port: u16 = common::flag("admin-port", 0)?;
        let mut builder = Server::builder();
        if admin_port != 0 {
            builder = builder.admin(herald::admin::AdminConfig::loopback(admin_port));
        }
        let server = builder
            .insecure_plaintext()
            .limits(limits)
            .add_service(EchoServer::new(Echoer { work_us }))
            .bind(("127.0.0.1", port))
            .await?;
        println!("LISTENING {}", server.local_addr().port());
        herald::server::termination_signal().await?;
        server.shutdown().await;
        Ok(())
    })
}
