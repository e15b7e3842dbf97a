//! Client-side balancing over real servers on loopback: backends crash or shut down under
//! load without a failed call, load goes where it is lightest, failing endpoints are
//! ejected (never all of them), removed endpoints drain.

mod client_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_support::{Backend, Crashable, Mode, contract, eventually, request, retry, serve_at};
use herald::client::{Channel, Discovery, LoadBalancing, OutlierDetection};
use herald::contract::{ClientPolicy, MethodContract};
use herald::{CallError, Code, Context};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::{Account, AccountsError};

/// The tests of this file put load on a two-core machine: one at a time, so that each
/// measures the client rather than its neighbours' load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Idempotent, no retries, a generous deadline: what a test sees is what one attempt did.
static ONE_ATTEMPT: MethodContract = contract(
    2000,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: None,
        circuit_breaker: None,
    },
);

/// Not idempotent, with a retry policy: retried only when provably never sent.
static NOT_IDEMPOTENT: MethodContract = contract(
    1000,
    ClientPolicy {
        timeout: None,
        idempotent: false,
        retry: retry(3, 5, 50, &[Code::Unavailable]),
        circuit_breaker: None,
    },
);

async fn call(
    channel: &Channel,
    method: &'static MethodContract,
) -> Result<Account, CallError<AccountsError>> {
    channel
        .unary::<_, Account, AccountsError>(&Context::background(), method, request())
        .await
}

/// Calls from `workers` tasks in a loop until stopped; counts successes, keeps failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start<F, Fut>(workers: usize, call: F) -> Load
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<Account, String>> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..workers)
            .map(|_| {
                let (stop, ok, failures, call) =
                    (stop.clone(), ok.clone(), failures.clone(), call.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        match call().await {
                            Ok(_) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => failures.lock().expect("lock").push(e),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            tasks,
        }
    }

    /// Stops; (successes, failures).
    async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("load task");
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.ok.load(Ordering::SeqCst), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_crashing_under_load_fails_no_idempotent_call() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let backends = [Backend::new("b1"), Backend::new("b2"), Backend::new("b3")];
    let doomed = Crashable::start(backends[0].clone());
    let b2 = serve_at("127.0.0.1:0", backends[1].clone()).await;
    let b3 = serve_at("127.0.0.1:0", backends[2].clone()).await;
    let discovery =
        Discovery::fixed([doomed.addr, b2.local_addr(), b3.local_addr()]).expect("discovery");
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .build()
        .expect("channel");
    // The generated client, with Accounts' contract (idempotent, 3 attempts on
    // UNAVAILABLE, 100 ms): the caller writes nothing about retries or balancing.
    let accounts = AccountsClient::new(channel.clone());
    let load = Load::start(8, move || {
        let accounts = accounts.clone();
        async move {
            accounts
                .get_by_token(&Context::background(), request())
                .await
                .map_err(|e| e.to_string())
        }
    });
    assert!(
        eventually(Duration::from_secs(3), || backends
            .iter()
            .all(|b| b.calls() > 20))
        .await,
        "every backend serves"
    );
    let survivors_before = backends[1].calls() + backends[2].calls();
    tokio::task::spawn_blocking(move || doomed.crash())
        .await
        .expect("crash");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (ok, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );
    assert!(ok > 300, "only {ok} calls in about a second");
    assert!(
        backends[1].calls() + backends[2].calls() > survivors_before + 100,
        "the survivors took the load"
    );
    b2.shutdown().await;
    b3.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_shutting_down_gracefully_fails_no_call_even_of_a_non_idempotent_method() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let backends = [Backend::new("b1"), Backend::new("b2"), Backend::new("b3")];
    let b1 = serve_at("127.0.0.1:0", backends[0].clone()).await;
    let b2 = serve_at("127.0.0.1:0", backends[1].clone()).await;
    let b3 = serve_at("127.0.0.1:0", backends[2].clone()).await;
    let discovery =
        Discovery::fixed([b1.local_addr(), b2.local_addr(), b3.local_addr()]).expect("discovery");
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .build()
        .expect("channel");
    let load = Load::start(8, {
        let channel = channel.clone();
        move || {
            let channel = channel.clone();
            async move {
                call(&channel, &NOT_IDEMPOTENT)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    assert!(
        eventually(Duration::from_secs(3), || backends
            .iter()
            .all(|b| b.calls() > 20))
        .await,
        "every backend serves"
    );
    // GOAWAY: calls in flight finish; streams the server never took come back unsent.
    b1.shutdown().await;
    let after_shutdown = backends[0].calls();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{} failed calls: {failures:?}",
        failures.len()
    );
    assert!(ok > 300, "only {ok} calls");
    assert_eq!(
        backends[0].calls(),
        after_shutdown,
        "nothing reached the stopped backend"
    );
    b2.shutdown().await;
    b3.shutdown().await;
}

#[tokio::test]
async fn round_robin_takes_turns_and_p2c_avoids_the_slow_endpoint() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let backends = [Backend::new("b1"), Backend::new("b2"), Backend::new("b3")];
    let mut servers = Vec::new();
    for backend in &backends {
        servers.push(serve_at("127.0.0.1:0", backend.clone()).await);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    let channel_with = |policy| {
        Channel::builder(Discovery::fixed(addrs.clone()).expect("discovery"))
            .insecure_plaintext()
            .load_balancing(policy)
            .build()
            .expect("channel")
    };
    let calls = || backends.iter().map(Backend::calls).collect::<Vec<_>>();

    // Round robin: once all three are connected, each takes every third call.
    let channel = channel_with(LoadBalancing::RoundRobin);
    while calls().contains(&0) {
        call(&channel, &ONE_ATTEMPT).await.expect("warm-up");
    }
    let before = calls();
    for _ in 0..30 {
        call(&channel, &ONE_ATTEMPT).await.expect("call");
    }
    let after = calls();
    let taken: Vec<_> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(taken, [10, 10, 10]);

    // One endpoint turns slow. One call at a time, nothing is ever outstanding: P2C on
    // outstanding requests cannot tell the endpoints apart (ties pick either), while
    // peak-EWMA learns the latency and stops choosing the slow one.
    backends[0].set_delay(Duration::from_millis(40));
    let mut share = Vec::new();
    for policy in [LoadBalancing::P2cOutstanding, LoadBalancing::P2cPeakEwma] {
        let channel = channel_with(policy);
        // The first call waits for one connection; the others are up a moment later.
        call(&channel, &ONE_ATTEMPT).await.expect("warm-up");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = backends[0].calls();
        for _ in 0..60 {
            call(&channel, &ONE_ATTEMPT).await.expect("call");
        }
        share.push(backends[0].calls() - before);
    }
    assert!(
        share[0] >= 6,
        "P2C on outstanding picks the slow one by chance: {share:?}"
    );
    assert!(share[1] <= 3, "peak-EWMA avoids the slow one: {share:?}");

    // Under concurrent load, outstanding requests pile up on the slow endpoint and P2C
    // sends it a small share.
    let channel = channel_with(LoadBalancing::P2cOutstanding);
    let before = calls();
    let load = Load::start(6, {
        let channel = channel.clone();
        move || {
            let channel = channel.clone();
            async move {
                call(&channel, &ONE_ATTEMPT)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (ok, failures) = load.stop().await;
    assert!(failures.is_empty(), "{failures:?}");
    let taken: Vec<_> = calls().iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(
        taken[0] * 10 < ok,
        "the slow endpoint took {} of {ok} calls: {taken:?}",
        taken[0]
    );
    for server in servers {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_failing_endpoint_is_ejected_but_never_all_of_them() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let backends = [Backend::new("b1"), Backend::new("b2"), Backend::new("b3")];
    let mut servers = Vec::new();
    for backend in &backends {
        servers.push(serve_at("127.0.0.1:0", backend.clone()).await);
    }
    let discovery = Discovery::fixed(servers.iter().map(|s| s.local_addr())).expect("discovery");
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .load_balancing(LoadBalancing::RoundRobin)
        .outlier_detection(
            OutlierDetection::default()
                .consecutive_failures(3)
                .ejection_time(Duration::from_secs(30), Duration::from_secs(60)),
        )
        .build()
        .expect("channel");
    while backends.iter().any(|b| b.calls() == 0) {
        call(&channel, &ONE_ATTEMPT).await.expect("warm-up");
    }
    let before = backends[0].calls();
    backends[0].set_mode(Mode::Internal);
    let mut failed = 0;
    for _ in 0..60 {
        if let Err(e) = call(&channel, &ONE_ATTEMPT).await {
            assert_eq!(e.code(), Code::Internal, "{e}");
            failed += 1;
        }
    }
    assert_eq!(
        backends[0].calls() - before,
        3,
        "three failures in a row, then no call while ejected"
    );
    assert_eq!(failed, 3);

    // Everyone fails now: at most half of the endpoints are out (here the one already
    // ejected), so calls keep reaching the other two and fail with their own error
    // rather than "no endpoint".
    backends[1].set_mode(Mode::Unavailable);
    backends[2].set_mode(Mode::Unavailable);
    let (b2, b3) = (backends[1].calls(), backends[2].calls());
    for _ in 0..30 {
        let error = call(&channel, &ONE_ATTEMPT).await.expect_err("all failing");
        assert_eq!(error.code(), Code::Unavailable);
        assert!(error.message().contains("is failing"), "{error}");
        assert!(!error.is_local(), "{error}");
    }
    assert_eq!(backends[1].calls() - b2 + backends[2].calls() - b3, 30);
    assert!(
        backends[1].calls() > b2 && backends[2].calls() > b3,
        "both stay in"
    );
    for server in servers {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_removed_endpoint_drains_its_calls_and_takes_no_new_ones() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let backends = [Backend::new("b1"), Backend::new("b2"), Backend::new("b3")];
    let mut servers = Vec::new();
    for backend in &backends {
        servers.push(serve_at("127.0.0.1:0", backend.clone()).await);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.local_addr()).collect();
    let (updates, rx) = tokio::sync::mpsc::unbounded_channel();
    updates
        .send(Ok(vec![addrs[0], addrs[1]]))
        .expect("first set");
    let discovery = Discovery::from_stream(
        "accounts.test",
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
    )
    .expect("discovery");
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .load_balancing(LoadBalancing::RoundRobin)
        .build()
        .expect("channel");
    while backends[..2].iter().any(|b| b.calls() == 0) {
        call(&channel, &ONE_ATTEMPT).await.expect("warm-up");
    }
    // b1 turns slow (within the 100 ms the Accounts server allows its handler); calls land
    // on it and stay in flight while it leaves the set.
    backends[0].set_delay(Duration::from_millis(80));
    let before = backends[0].calls();
    let mut in_flight = Vec::new();
    while backends[0].calls() < before + 2 {
        let channel = channel.clone();
        in_flight.push(tokio::spawn(
            async move { call(&channel, &ONE_ATTEMPT).await },
        ));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    updates
        .send(Ok(vec![addrs[1], addrs[2]]))
        .expect("second set");
    assert!(
        eventually(Duration::from_secs(1), || channel.endpoints()
            == [addrs[1], addrs[2]])
        .await,
        "{:?}",
        channel.endpoints()
    );
    let on_b1 = backends[0].calls();
    for _ in 0..20 {
        let account = call(&channel, &ONE_ATTEMPT).await.expect("call");
        assert_ne!(account.name, "b1");
    }
    let mut drained = 0;
    for call in in_flight {
        let account = call.await.expect("task").expect("calls in flight complete");
        drained += usize::from(account.name == "b1");
    }
    assert!(
        drained >= 2,
        "{drained} calls finished on the removed endpoint"
    );
    assert_eq!(
        backends[0].calls(),
        on_b1,
        "no new call reached the removed endpoint"
    );
    assert!(backends[2].calls() >= 10, "the new endpoint takes its turn");
    for server in servers {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_host_name_target_is_resolved_and_unreachable_addresses_are_avoided() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let backend = Backend::new("b1");
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    // `localhost` is 127.0.0.1 and often ::1 too (where nothing listens): the system's
    // resolver (hosts file) gives both, and calls go to the one that connects.
    let channel = Channel::insecure_plaintext(format!("localhost:{}", server.local_addr().port()))
        .expect("channel");
    for _ in 0..10 {
        let account = call(&channel, &ONE_ATTEMPT).await.expect("call");
        assert_eq!(account.name, "b1");
    }
    assert!(
        channel.endpoints().contains(&server.local_addr()),
        "{:?}",
        channel.endpoints()
    );
    server.shutdown().await;
}

/// A TCP relay that can go silent: it keeps both sockets open but passes nothing on, as a
/// peer behind a dropped NAT flow or a powered-off host looks to the caller.
struct SilentRelay {
    addr: std::net::SocketAddr,
    silent: Arc<AtomicBool>,
}

impl SilentRelay {
    async fn start(to: std::net::SocketAddr) -> SilentRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let silent = Arc::new(AtomicBool::new(false));
        let flag = silent.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let outbound = tokio::net::TcpStream::connect(to).await.expect("connect");
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(Self::pass(in_read, out_write, flag.clone()));
                tokio::spawn(Self::pass(out_read, in_write, flag.clone()));
            }
        });
        SilentRelay { addr, silent }
    }

    async fn pass(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        silent: Arc<AtomicBool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if silent.load(Ordering::SeqCst) {
                // Swallow everything from now on, holding both sockets open.
                continue;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }
}

/// Opens a GetMany stream (no deadline: only the connection's health can end it); its
/// requests go through the returned sender.
async fn get_many(
    client: &herald_example_cache::cache::cache_client::CacheClient,
) -> (
    tokio::sync::mpsc::Sender<herald_example_cache::cache::GetRequest>,
    herald::client::ResponseStream<
        herald_example_cache::cache::GetResponse,
        herald_example_cache::cache::CacheError,
    >,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let answers = client
        .get_many(
            &Context::background(),
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )
        .await
        .expect("get_many starts");
    (tx, answers)
}

/// A stream with no deadline on a connection whose peer stops answering: the keepalive PING
/// goes unanswered, the connection is closed and the stream fails UNAVAILABLE within the
/// ping interval plus its timeout — instead of waiting forever.
#[tokio::test]
async fn keepalive_finds_a_peer_that_stopped_answering() {
    use herald::client::Keepalive;
    use herald_example_cache::cache::GetRequest;
    use herald_example_cache::cache::cache_client::CacheClient;
    use tokio_stream::StreamExt;

    let _one = ONE_AT_A_TIME.lock().await;
    let accounts = serve_at("127.0.0.1:0", Backend::new("accounts")).await;
    let cache = herald::Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .add_service(herald_example_cache::cache::cache_server::CacheServer::new(
            herald_example_cache::CacheService::new(AccountsClient::new(
                Channel::insecure_plaintext(accounts.local_addr()).expect("channel"),
            )),
        ))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let relay = SilentRelay::start(cache.local_addr()).await;
    let channel = Channel::builder(Discovery::fixed([relay.addr]).expect("discovery"))
        .insecure_plaintext()
        .keepalive(Keepalive::every(Duration::from_millis(100)).timeout(Duration::from_millis(200)))
        .build()
        .expect("channel");
    let client = CacheClient::new(channel);

    // GetMany has no deadline: only the connection's health can end it.
    let (tx, mut answers) = get_many(&client).await;
    tx.send(GetRequest { key: "k".into() }).await.expect("send");
    let first = answers.next().await.expect("an answer");
    assert!(first.is_err(), "no such key yet: {first:?}");
    let (tx, mut answers) = get_many(&client).await;
    // Several ping intervals pass with the peer answering: the stream stays open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    tx.send(GetRequest { key: "k".into() }).await.expect("send");
    let still = answers.next().await.expect("an answer");
    assert!(still.is_err(), "NOT_FOUND, answered: {still:?}");

    let (tx2, mut open) = get_many(&client).await;
    relay.go_silent();
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), open.next())
        .await
        .expect("the stream ends well before 10 s")
        .expect("an error, not a clean end");
    let took = started.elapsed();
    let error = ended.expect_err("the connection is dead");
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(
        error.to_string().contains("keep-alive"),
        "the error names the cause: {error}"
    );
    assert!(took < Duration::from_secs(2), "found after {took:?}");
    drop((tx, tx2));
    cache.shutdown().await;
    accounts.shutdown().await;
}
