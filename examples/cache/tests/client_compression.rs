//! What a channel tells a server about compressed responses, over a real server that
//! compresses whenever its caller accepts it.

mod client_support;

use client_support::{Backend, request};
use herald::client::{Builder, Channel, Discovery};
use herald::{Compression, Context, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;

/// The `grpc-encoding` of the response to one call over the channel `builder` makes.
async fn response_encoding(builder: Builder) -> Option<String> {
    let client = AccountsClient::new(builder.build().expect("channel"));
    let (ctx, seen) = Context::background().capture_response_metadata();
    client.get_by_token(&ctx, request()).await.expect("call");
    seen.get()
        .get("grpc-encoding")
        .map(|value| value.to_str().expect("ASCII").to_owned())
}

#[tokio::test]
async fn compressed_responses_come_only_to_a_channel_that_accepts_them() {
    let server = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .compression(Compression::Gzip)
        .add_service(AccountsServer::new(Backend::new("a")))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let channel = || {
        Channel::builder(Discovery::fixed([server.local_addr()]).expect("address"))
            .insecure_plaintext()
    };
    assert_eq!(response_encoding(channel()).await, None, "by default");
    for (builder, how) in [
        (
            channel().accept_compressed(Compression::Gzip),
            "accepting gzip",
        ),
        (
            channel().compression(Compression::Gzip),
            "compressing requests with gzip",
        ),
    ] {
        assert_eq!(
            response_encoding(builder).await.as_deref(),
            Some("gzip"),
            "{how}"
        );
    }
    server.shutdown().await;
}
