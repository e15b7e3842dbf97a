//! Bare tonic 0.14, one tokio worker: the anchors' reference server.
//!
//! Flags: `--port N`; `--work-us N` (CPU burnt per call, for the overload scenario). It serves
//! server reflection too, for `herald bench` (a separate service: not on the echo's path).

#[path = "../common.rs"]
mod common;
#[path = "../payloads.rs"]
mod payloads;

mod pb {
    include!(concat!(env!("OUT_DIR"), "/tonic/bench.rs"));
    pub(crate) const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/tonic/descriptors.bin"));
}

use pb::echo_server::{Echo, EchoServer};
use pb::{Msg, StreamRequest};
use tokio_stream::StreamExt;

struct Echoer {
    work_us: u64,
}

#[tonic::async_trait]
impl Echo for Echoer {
    async fn call(
        &self,
        request: tonic::Request<Msg>,
    ) -> Result<tonic::Response<Msg>, tonic::Status> {
        common::work(self.work_us);
        Ok(tonic::Response::new(request.into_inner()))
    }

    type StreamStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Msg, tonic::Status>> + Send>>;

    async fn stream(
        &self,
        request: tonic::Request<StreamRequest>,
    ) -> Result<tonic::Response<Self::StreamStream>, tonic::Status> {
        let request = request.into_inner();
        let payloads = payloads::payloads(request.message_size, request.count, request.duration_ms)
            .map_err(tonic::Status::invalid_argument)?;
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(
            payloads.map(|payload| Ok(Msg { payload })),
        ))))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = common::flag("port", 0)?;
    let work_us: u64 = common::flag("work-us", 0)?;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .event_interval(common::flag("event-interval", 61)?)
        .global_queue_interval(common::flag("global-queue-interval", 31)?)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("LISTENING {}", listener.local_addr()?.port());
        // TCP_NODELAY on every connection, as tonic's own `Server::serve(addr)` sets it by
        // default (and as herald and gRPC C++ do): `serve_with_incoming` leaves sockets as
        // accepted, and Nagle's algorithm would batch this server's writes as no other does.
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
            stream.and_then(|stream| {
                stream.set_nodelay(true)?;
                Ok(stream)
            })
        });
        tonic::transport::Server::builder()
            .add_service(EchoServer::new(Echoer { work_us }))
            .add_service(reflection)
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    })
}
