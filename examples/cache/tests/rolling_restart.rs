//! A rolling restart under steady load: one of two backends drains (NOT_SERVING, GOAWAY, calls
//! in flight finish) and comes back on the same port; the clients see zero failed calls.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use herald::client::{Channel, Discovery};
use herald::server::RunningServer;
use herald::{Context, Server};
use herald_example_cache::AccountsService;
use herald_example_cache::accounts::GetByTokenRequest;
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;

async fn backend(addr: &str) -> RunningServer {
    Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .grace_period(Duration::from_secs(5))
        .add_service(AccountsServer::new(AccountsService::demo()))
        .bind(addr)
        .await
        .expect("bind")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_one_of_two_backends_under_load_fails_no_call() {
    let a = backend("127.0.0.1:0").await;
    let b = backend("127.0.0.1:0").await;
    let a_addr: SocketAddr = a.local_addr();
    let channel = Channel::builder(Discovery::fixed([a_addr, b.local_addr()]).expect("endpoints"))
        .insecure_plaintext()
        .build()
        .expect("channel");
    let accounts = AccountsClient::new(channel);

    // Steady load: 4 callers, a call every 2 ms each, for 3 s.
    let mut load = Vec::new();
    for _ in 0..4 {
        let accounts = accounts.clone();
        load.push(tokio::spawn(async move {
            let (mut ok, mut failures) = (0u32, Vec::new());
            let end = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < end {
                match accounts
                    .get_by_token(
                        &Context::background(),
                        GetByTokenRequest {
                            token: "tok-bob".into(),
                        },
                    )
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(e) => failures.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (ok, failures)
        }));
    }

    // Restart A: drain it (health, GOAWAY, in-flight calls finish), then bring it back.
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.drain(Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a_again = backend(&a_addr.to_string()).await;
    assert_eq!(a_again.local_addr(), a_addr);

    let mut served = 0;
    for task in load {
        let (ok, failures) = task.await.expect("load task");
        assert!(
            failures.is_empty(),
            "calls failed during the rolling restart: {failures:?}"
        );
        served += ok;
    }
    assert!(served > 500, "only {served} calls in 3 s");
    // The restarted backend is back in the rotation.
    assert!(
        a_again.stats().connections_accepted() >= 1,
        "the client never came back to the restarted backend"
    );
    a_again.shutdown().await;
    b.shutdown().await;
}
