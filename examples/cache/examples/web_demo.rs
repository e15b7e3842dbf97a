//! Cache and Accounts on loopback, plaintext, with gRPC-Web (pages of any origin) and the
//! legacy HTTP/1.1 bridge turned on, two entries stored ("greeting", "farewell"): the server
//! the browser test (and a person with curl) calls.
//!
//!     cargo run -p herald-example-cache --example web_demo -- [--descriptors FILE]
//!
//! Prints "LISTENING <grpc/grpc-web port> <bridge port>" once both listen; with
//! --descriptors, first writes the Cache contract's encoded FileDescriptorSet to FILE (what a
//! JavaScript client builds its types from). Serves until SIGTERM or Ctrl-C.

use herald::client::Channel;
use herald::server::GrpcWeb;
use herald::{Context, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::cache::{StoreRequest, cache_contract};
use herald_example_cache::{AccountsService, CacheService};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--descriptors") {
        let path = args.get(at + 1).ok_or("--descriptors needs a FILE")?;
        std::fs::write(path, cache_contract::SERVICE.descriptor_set)?;
    }
    let accounts = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .add_service(AccountsServer::new(AccountsService::demo()))
        .bind("127.0.0.1:0")
        .await?;
    let accounts_client = AccountsClient::new(Channel::insecure_plaintext(accounts.local_addr())?);
    let cache = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .grpc_web(GrpcWeb::allow_any_origin())
        .legacy_bridge("127.0.0.1:0".parse()?)
        .add_service(CacheServer::new(CacheService::new(accounts_client)))
        .bind("127.0.0.1:0")
        .await?;
    let client = CacheClient::new(Channel::insecure_plaintext(cache.local_addr())?);
    for (key, value) in [("greeting", "hello"), ("farewell", "goodbye")] {
        let request = StoreRequest {
            account_token: "tok-bob".into(),
            key: key.into(),
            value: value.into(),
        };
        client.store(&Context::background(), request).await?;
    }
    let bridge = cache.bridge_addr().ok_or("the bridge is on")?;
    println!("LISTENING {} {}", cache.local_addr().port(), bridge.port());
    herald::server::termination_signal().await?;
    cache.shutdown().await;
    accounts.shutdown().await;
    Ok(())
}
