//! herald's echo server with its full default stack: limits (ACL, rate check, admission),
//! metrics and access-log instrumentation, deadlines. Plaintext (h2load has no client
//! certificates). One tokio worker, like the anchors.

mod pb {
    include!(concat!(env!("OUT_DIR"), "/herald/bench.rs"));
}

use herald::limits::{Limits, LimitsConfig};
use herald::{Context, Error, Server};
use pb::Msg;
use pb::echo_server::{Echo, EchoServer};

struct Echoer;

impl Echo for Echoer {
    async fn call(&self, _ctx: &Context, request: Msg) -> Result<Msg, Error> {
        Ok(request)
    }
}

const LIMITS: &str = "limits:\n  bench.Echo:\n    default:\n      max_concurrency: 1024\n      max_queue: 1024\n      queue_timeout_ms: 1000\n      rate_acls: { unauthenticated: -1 }\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .skip_while(|a| a != "--port")
        .nth(1)
        .map_or(Ok(0), |p| p.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let limits = Limits::from_config(LimitsConfig::parse(LIMITS, "bench limits")?);
        let server = Server::builder()
            .insecure_plaintext()
            .limits(limits)
            .add_service(EchoServer::new(Echoer))
            .bind(("127.0.0.1", port))
            .await?;
        println!("LISTENING {}", server.local_addr().port());
        herald::server::termination_signal().await?;
        server.shutdown().await;
        Ok(())
    })
}
