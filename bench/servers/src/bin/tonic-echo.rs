//! Bare tonic 0.14, one tokio worker: the anchors' reference server.

mod pb {
    include!(concat!(env!("OUT_DIR"), "/tonic/bench.rs"));
}

use pb::Msg;
use pb::echo_server::{Echo, EchoServer};

struct Echoer;

#[tonic::async_trait]
impl Echo for Echoer {
    async fn call(
        &self,
        request: tonic::Request<Msg>,
    ) -> Result<tonic::Response<Msg>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }
}

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
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("LISTENING {}", listener.local_addr()?.port());
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(EchoServer::new(Echoer))
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    })
}
