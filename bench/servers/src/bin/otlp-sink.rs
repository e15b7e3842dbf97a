//! An OTLP/gRPC trace collector that keeps nothing: it accepts span exports and counts them,
//! so the observability benchmark exports spans over a real OTLP connection without a
//! collector's own cost landing on the server's core. Prints `LISTENING <port>`, then on
//! SIGTERM/ctrl-c the number of spans received.
//!
//! Flags: `--port N` (0 picks one).

#[path = "../common.rs"]
#[allow(dead_code)] // the fixed service time is the echo servers'
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Sink {
    spans: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = common::flag("port", 0)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("LISTENING {}", listener.local_addr()?.port());
    let sink = Sink::default();
    let spans = sink.spans.clone();
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = herald::server::termination_signal().await;
            },
        )
        .await?;
    println!("SPANS {}", spans.load(Ordering::Relaxed));
    Ok(())
}
