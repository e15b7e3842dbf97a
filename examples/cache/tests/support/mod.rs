//! Starting the example's services on 127.0.0.1 port 0.
#![allow(dead_code, unreachable_pub)]

use herald::Server;
use herald::client::Channel;
use herald::server::RunningServer;
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::{Accounts, AccountsServer};
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::{AccountsService, CacheService};

pub struct Services {
    pub accounts: RunningServer,
    pub cache: RunningServer,
}

impl Services {
    /// Accounts (with the demo's accounts) and a Cache that calls it.
    pub async fn start() -> Services {
        Services::start_with(AccountsService::demo()).await
    }

    /// Cache calling the given Accounts handler.
    pub async fn start_with(accounts: impl Accounts) -> Services {
        let accounts = serve(AccountsServer::new(accounts)).await;
        let accounts_client = AccountsClient::new(channel(&accounts));
        let cache = serve(CacheServer::new(CacheService::new(accounts_client))).await;
        Services { accounts, cache }
    }

    pub fn cache_client(&self) -> CacheClient {
        CacheClient::new(channel(&self.cache))
    }

    pub fn accounts_client(&self) -> AccountsClient {
        AccountsClient::new(channel(&self.accounts))
    }

    pub async fn shutdown(self) {
        self.cache.shutdown().await;
        self.accounts.shutdown().await;
    }
}

pub async fn serve(service: impl herald::server::IntoService) -> RunningServer {
    Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .add_service(service)
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

pub fn channel(server: &RunningServer) -> Channel {
    Channel::insecure_plaintext(server.local_addr()).expect("valid address")
}

/// A plain tonic client over hyper-util: it sends whatever headers it is given and never
/// gives up on its own, so tests can play a peer that herald's client would refuse to be.
pub type RawClient = tonic::client::Grpc<RawTransport>;

#[derive(Clone)]
pub struct RawTransport {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
    authority: http::uri::Authority,
}

impl tower::Service<http::Request<tonic::body::Body>> for RawTransport {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let uri = format!("http://{}{}", self.authority, request.uri().path());
        *request.uri_mut() = uri.parse().expect("valid uri");
        self.client.request(request)
    }
}

pub fn raw_client(server: &RunningServer) -> RawClient {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let authority = server.local_addr().to_string().parse().expect("authority");
    tonic::client::Grpc::new(RawTransport { client, authority })
}

/// Log output, captured: the writer of a test's process-wide logger.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was written since the last take.
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().expect("lock"))).expect("utf-8")
    }
}

/// Waits for `condition`, polling every 10 ms; fails the test naming `what` after 5 s.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
