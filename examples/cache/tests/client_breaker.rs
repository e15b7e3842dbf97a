//! The circuit breaker of a method, from its contract, against a real server on loopback:
//! it opens on a failure ratio once enough calls were made, fails fast while open (nothing
//! sent, a clear UNAVAILABLE), lets one probe through after its open time, and closes on
//! the probe's success — or opens again on its failure.

mod client_support;

use std::sync::Arc;
use std::time::Duration;

use client_support::{Backend, Mode, Recorder, breaker, contract, request, serve_at};
use herald::client::{BreakerState, Channel, Discovery};
use herald::contract::{ClientPolicy, MethodContract};
use herald::{CallError, Code, Context};
use herald_example_cache::accounts::{Account, AccountsError};
use tokio::time::Instant;

/// No retries (so each call is one request), a breaker over 10 s that opens at half of at
/// least 6 calls failing, for 300 ms.
static GUARDED: MethodContract = contract(
    1000,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: None,
        circuit_breaker: breaker(10_000, 0.5, 6, 300),
    },
);

async fn call(channel: &Channel) -> Result<Account, CallError<AccountsError>> {
    channel
        .unary::<_, Account, AccountsError>(&Context::background(), &GUARDED, request())
        .await
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let backend = Backend::new("b");
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let recorder = Arc::new(Recorder::default());
    let channel = Channel::builder(Discovery::fixed([server.local_addr()]).expect("discovery"))
        .insecure_plaintext()
        .observer(recorder.clone())
        .build()
        .expect("channel");

    // Healthy calls and app-level answers keep it closed.
    for _ in 0..4 {
        call(&channel).await.expect("healthy");
    }
    assert_eq!(channel.breaker_state(&GUARDED), Some(BreakerState::Closed));

    // The server starts failing: 4 ok + 4 failures = half of 8 calls, over the minimum of 6.
    backend.set_mode(Mode::Unavailable);
    for n in 1..=4 {
        let error = call(&channel).await.expect_err("failing");
        assert!(
            !error.is_local(),
            "failure {n} came from the server: {error}"
        );
    }
    assert_eq!(channel.breaker_state(&GUARDED), Some(BreakerState::Open));

    // Open: fail fast, say why, send nothing.
    let served = backend.calls();
    for _ in 0..20 {
        let start = Instant::now();
        let error = call(&channel).await.expect_err("open");
        assert!(
            start.elapsed() < Duration::from_millis(20),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(error.code(), Code::Unavailable);
        assert!(error.is_local());
        assert!(
            error
                .message()
                .contains("circuit breaker of accounts.Accounts/GetByToken is open: 4 of the last 8 calls failed"),
            "{error}"
        );
    }
    assert_eq!(
        backend.calls(),
        served,
        "nothing reached the server while open"
    );

    // After 300 ms one probe goes through; it fails: open again.
    tokio::time::sleep(Duration::from_millis(320)).await;
    call(&channel).await.expect_err("the probe fails");
    assert_eq!(backend.calls(), served + 1);
    assert_eq!(channel.breaker_state(&GUARDED), Some(BreakerState::Open));
    call(&channel).await.expect_err("open again");
    assert_eq!(backend.calls(), served + 1);

    // The server recovers; the next probe succeeds and closes the breaker.
    backend.set_mode(Mode::Ok);
    tokio::time::sleep(Duration::from_millis(320)).await;
    call(&channel).await.expect("the probe succeeds");
    assert_eq!(channel.breaker_state(&GUARDED), Some(BreakerState::Closed));
    for _ in 0..10 {
        call(&channel).await.expect("closed again");
    }

    let changes: Vec<_> = recorder.breakers().iter().map(|e| (e.from, e.to)).collect();
    use BreakerState::{Closed, HalfOpen, Open};
    assert_eq!(
        changes,
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
    let refused = recorder.calls().iter().filter(|c| c.breaker_open).count();
    assert_eq!(refused, 21);
    server.shutdown().await;
}

#[tokio::test]
async fn while_half_open_only_one_probe_is_in_flight() {
    let backend = Backend::new("b");
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let channel = Channel::builder(Discovery::fixed([server.local_addr()]).expect("discovery"))
        .insecure_plaintext()
        .build()
        .expect("channel");
    backend.set_mode(Mode::Internal);
    for _ in 0..6 {
        call(&channel).await.expect_err("failing");
    }
    assert_eq!(channel.breaker_state(&GUARDED), Some(BreakerState::Open));
    backend.set_mode(Mode::Ok);
    backend.set_delay(Duration::from_millis(60));
    tokio::time::sleep(Duration::from_millis(320)).await;
    let before = backend.calls();
    let probe = tokio::spawn({
        let channel = channel.clone();
        async move { call(&channel).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let error = call(&channel).await.expect_err("a probe is in flight");
    assert!(error.message().contains("half-open"), "{error}");
    probe.await.expect("task").expect("the probe succeeds");
    assert_eq!(backend.calls(), before + 1);
    assert_eq!(channel.breaker_state(&GUARDED), Some(BreakerState::Closed));
    server.shutdown().await;
}
