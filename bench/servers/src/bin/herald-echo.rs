//! herald's echo server with its full default stack: limits (ACL, rate check, admission),
//! metrics and access-log instrumentation, deadlines. Plaintext (h2load has no client
//! certificates). One tokio worker, like the anchors.
//!
//! Flags: `--port N`; for the overload scenario `--work-us N` (CPU burnt per call), and the
//! admission limits `--max-concurrency N`, `--max-queue N`, `--queue-timeout-ms N`,
//! `--queue lifo|codel`; `--admin-port N` serves the admin endpoint (metrics) on loopback.
//!
//! `--limits off` serves without the limits file (no ACL, rate check or admission);
//! `--handler-threads N` runs handlers on a pool of N threads apart from the connections' one.
//!
//! Observability (its cost is measured by `bench/layers`): per-request metrics are on
//! as in every herald server; `--observe off` turns request observability off (no metrics,
//! access log or spans per request); `--access-log PATH` writes the JSON access log (one line
//! per request, buffered) to PATH; `--otlp URL` exports spans to an OTLP/gRPC collector at
//! URL, sampling `--sampling R` of the traces (default 0.01).

#[path = "../common.rs"]
mod common;
#[path = "../payloads.rs"]
mod payloads;

#[allow(dead_code)] // the generated client is unused
mod pb {
    include!(concat!(env!("OUT_DIR"), "/herald/bench.rs"));
}

use herald::limits::{Limits, LimitsConfig};
use herald::{BoxStream, Context, Error, Server};
use pb::echo_server::{Echo, EchoServer};
use pb::{Msg, StreamRequest};

struct Echoer {
    work_us: u64,
}

impl Echo for Echoer {
    async fn call(&self, _ctx: &Context, request: Msg) -> Result<Msg, Error> {
        common::work(self.work_us);
        Ok(request)
    }

    type StreamStream = BoxStream<Msg>;

    async fn stream(
        &self,
        _ctx: &Context,
        request: StreamRequest,
    ) -> Result<Self::StreamStream, Error> {
        let payloads = payloads::payloads(request.message_size, request.count, request.duration_ms)
            .map_err(Error::invalid_argument)?;
        Ok(Box::pin(tokio_stream::iter(
            payloads.map(|payload| Ok(Msg { payload })),
        )))
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
        let Observability {
            observed,
            logging,
            tracing,
        } = observability()?;
        let mut builder = Server::builder();
        if !observed {
            builder = builder.without_request_observability();
        }
        if let Some(logging) = logging {
            builder = builder.log_control(logging);
        }
        if admin_port != 0 {
            builder = builder.admin(herald::admin::AdminConfig::loopback(admin_port));
        }
        // `--limits off`: no ACL, rate check or admission (the layers benchmark's bare server).
        builder = match common::flag("limits", "on".to_owned())?.as_str() {
            "on" => builder.limits(limits),
            "off" => builder.allow_all_callers(),
            other => return Err(format!("--limits: on or off, not {other:?}").into()),
        };
        let server = builder
            .handler_threads(common::flag("handler-threads", 0)?)
            .insecure_plaintext()
            .add_service(EchoServer::new(Echoer { work_us }))
            .bind(("127.0.0.1", port))
            .await?;
        println!("LISTENING {}", server.local_addr().port());
        herald::server::termination_signal().await?;
        server.shutdown().await;
        if let Some(tracing) = tracing {
            tracing.flush().await?;
        }
        Ok(())
    })
}

/// Request observability on or off, the access log, and span export, as the flags say.
struct Observability {
    observed: bool,
    logging: Option<herald::observe::LogControl>,
    tracing: Option<herald::observe::Tracing>,
}

fn observability() -> Result<Observability, Box<dyn std::error::Error>> {
    let observed = match common::flag("observe", "on".to_owned())?.as_str() {
        "on" => true,
        "off" => false,
        other => return Err(format!("--observe: on or off, not {other:?}").into()),
    };
    let path: String = common::flag("access-log", String::new())?;
    let logging = if path.is_empty() {
        None
    } else {
        let file = std::fs::File::create(&path)?;
        Some(herald::observe::LogControl::install_buffered(
            "herald::access=info",
            herald::observe::LogFormat::Json,
            herald::observe::BufferedLog::new(file, std::time::Duration::from_secs(1)),
        )?)
    };
    let endpoint: String = common::flag("otlp", String::new())?;
    let tracing = if endpoint.is_empty() {
        None
    } else {
        Some(herald::observe::Tracing::install(
            herald::observe::TracingConfig {
                endpoint,
                sampling_ratio: common::flag("sampling", 0.01)?,
                service_name: "herald-echo".into(),
            },
        )?)
    };
    Ok(Observability {
        observed,
        logging,
        tracing,
    })
}
