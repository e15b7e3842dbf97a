//! All four RPC shapes of the Cache example, end to end over real sockets.

mod support;

use futures_util::StreamExt;
use herald::Context;
use herald_example_cache::cache::{DumpRequest, GetRequest, StoreRequest};

fn store(key: &str, value: &str) -> StoreRequest {
    StoreRequest {
        account_token: "tok-bob".into(),
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn unary_store_then_get() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();

    let stored = cache
        .store(&ctx, store("greeting", "hello"))
        .await
        .expect("store");
    assert_eq!(stored.keys_used, 1);
    assert!(!stored.dry_run);
    let got = cache
        .get(
            &ctx,
            GetRequest {
                key: "greeting".into(),
            },
        )
        .await
        .expect("get");
    assert_eq!(got.value, b"hello");
    services.shutdown().await;
}

#[tokio::test]
async fn server_streaming_dump_returns_every_entry_in_order() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();
    for (k, v) in [("b", "2"), ("a", "1"), ("c", "3")] {
        cache.store(&ctx, store(k, v)).await.expect("store");
    }
    let mut dump = cache.dump(&ctx, DumpRequest {}).await.expect("dump starts");
    let mut seen = Vec::new();
    while let Some(item) = dump.message().await.expect("dump item") {
        seen.push((item.key, String::from_utf8(item.value).expect("utf-8")));
    }
    assert_eq!(
        seen,
        [
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into())
        ]
    );
    services.shutdown().await;
}

#[tokio::test]
async fn client_streaming_store_many_counts_what_it_stored() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();
    let requests = futures_util::stream::iter((0..25).map(|i| store(&format!("k{i}"), "v")));
    let response = cache.store_many(&ctx, requests).await.expect("store_many");
    assert_eq!(response.stored, 25);
    let got = cache
        .get(&ctx, GetRequest { key: "k24".into() })
        .await
        .expect("get");
    assert_eq!(got.value, b"v");
    services.shutdown().await;
}

#[tokio::test]
async fn bidi_streaming_get_many_answers_each_request() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();
    cache.store(&ctx, store("x", "1")).await.expect("store");
    cache.store(&ctx, store("y", "2")).await.expect("store");

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut answers = cache
        .get_many(&ctx, tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("get_many starts");
    // One at a time: each answer arrives before the next request is sent.
    for (key, value) in [("y", "2"), ("x", "1")] {
        tx.send(GetRequest { key: key.into() }).await.expect("send");
        let answer = answers.next().await.expect("an answer").expect("found");
        assert_eq!(
            (answer.key.as_str(), answer.value.as_slice()),
            (key, value.as_bytes())
        );
    }
    // A missing key ends the stream with the app error.
    tx.send(GetRequest { key: "nope".into() })
        .await
        .expect("send");
    let error = answers
        .next()
        .await
        .expect("an answer")
        .expect_err("missing key");
    assert_eq!(
        error.app(),
        Some(herald_example_cache::cache::CacheError::NotFound)
    );
    services.shutdown().await;
}
