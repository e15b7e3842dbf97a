//! ACLs, rate limits and admission over real sockets, and live reloads of the limits file.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald::client::Channel;
use herald::limits::Limits;
use herald::server::RunningServer;
use herald::tls::{ClientTls, DevCa, KeyAlgorithm, ServerTls, TrustDomain};
use herald::{Code, Context, Error, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::{Accounts, AccountsServer};
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};
use tokio::time::Instant;

/// Accounts that counts handler starts; lookups of token "slow" hold their slot until the
/// test opens the gate (or just before their deadline).
#[derive(Clone)]
struct Counting {
    started: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl Default for Counting {
    fn default() -> Self {
        Counting {
            started: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl Accounts for Counting {
    async fn get_by_token(
        &self,
        ctx: &Context,
        request: GetByTokenRequest,
    ) -> Result<Account, Error<AccountsError>> {
        self.started.fetch_add(1, Ordering::SeqCst);
        if request.token == "slow" {
            let until = ctx.deadline().map(|d| d - Duration::from_millis(5));
            let give_up = async move {
                match until {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                permit = self.gate.acquire() => drop(permit),
                () = give_up => {}
            }
        }
        Ok(Account {
            id: "a".into(),
            name: "n".into(),
            max_cache_keys: 1,
        })
    }
}

fn limits_file(yaml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("limits.yaml");
    write(&path, yaml);
    (dir, path)
}

fn write(path: &std::path::Path, yaml: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, yaml).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn plaintext_server(handler: Counting, limits: &std::path::Path) -> RunningServer {
    Server::builder()
        .insecure_plaintext()
        .limits(Limits::from_file(limits).expect("valid limits"))
        .add_service(AccountsServer::new(handler))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

fn client(server: &RunningServer) -> AccountsClient {
    AccountsClient::new(support::channel(server))
}

async fn lookup(
    client: &AccountsClient,
    token: &str,
) -> Result<Account, herald::CallError<AccountsError>> {
    client
        .get_by_token(
            &Context::background(),
            GetByTokenRequest {
                token: token.into(),
            },
        )
        .await
}

#[tokio::test]
async fn acl_matrix_over_mutual_tls_identities_and_groups() {
    let td = TrustDomain::new("herald.test").expect("td");
    let ca = DevCa::generate(td.clone(), KeyAlgorithm::EcdsaP256).expect("CA");
    let leaf = ca.issue("accounts", KeyAlgorithm::EcdsaP256).expect("leaf");
    let tls =
        ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td.clone()).expect("tls");
    let (_dir, path) = limits_file(
        "limits:\n  accounts.Accounts:\n    default:\n      rate_acls:\n        cache: -1\n        user.boo: 0\n        authenticated: 0\n",
    );
    let handler = Counting::default();
    let server = Server::builder()
        .tls(tls)
        .limits(Limits::from_file(&path).expect("valid"))
        .add_service(AccountsServer::new(handler.clone()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let as_identity = |identity: &str| {
        let leaf = ca.issue(identity, KeyAlgorithm::EcdsaP256).expect("leaf");
        let tls = ClientTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td.clone())
            .expect("tls");
        AccountsClient::new(Channel::tls(server.local_addr(), &tls, "accounts").expect("channel"))
    };
    // (identity, expected): named and allowed; named and denied; unnamed → group `authenticated`.
    let matrix = [
        ("cache", None),
        ("user.boo", Some("user.boo may not call")),
        ("web", Some("web may not call")),
    ];
    for (identity, refusal) in matrix {
        let result = lookup(&as_identity(identity), "t").await;
        match refusal {
            None => assert!(result.is_ok(), "{identity}: {result:?}"),
            Some(says) => {
                let error = result.expect_err(identity);
                assert_eq!(error.code(), Code::PermissionDenied, "{identity}");
                assert!(error.message().contains(says), "{identity}: {error}");
            }
        }
    }
    // Now let `authenticated` in at 1000/s, and reload: web gets in, boo stays out.
    write(
        &path,
        "limits:\n  accounts.Accounts:\n    default:\n      rate_acls:\n        cache: -1\n        user.boo: 0\n        authenticated: 1000\n",
    );
    support::wait_until("the reload", || server.limits_status().reloads == 1).await;
    assert!(lookup(&as_identity("web"), "t").await.is_ok());
    assert_eq!(
        lookup(&as_identity("user.boo"), "t")
            .await
            .expect_err("boo")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        handler.started.load(Ordering::SeqCst),
        2,
        "refused calls never reached the handler"
    );
    assert_eq!(server.stats().denied(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_callers_are_their_own_group_and_default_deny_applies() {
    let (_dir, path) = limits_file(
        "limits:\n  accounts.Accounts:\n    default:\n      rate_acls: { authenticated: -1 }\n",
    );
    let server = plaintext_server(Counting::default(), &path).await;
    let error = lookup(&client(&server), "t")
        .await
        .expect_err("no identity, not named");
    assert_eq!(error.code(), Code::PermissionDenied);
    assert!(error.message().contains("unauthenticated caller is not in the ACL of accounts.Accounts/GetByToken (default deny)"), "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn rate_is_within_five_percent_over_ten_seconds() {
    let (_dir, path) = limits_file(
        "limits:\n  accounts.Accounts:\n    default:\n      rate_acls: { unauthenticated: 50 }\n",
    );
    let server = plaintext_server(Counting::default(), &path).await;
    let accounts = client(&server);
    // Offered 100/s for 10 s: 50/s may pass.
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let end = Instant::now() + Duration::from_secs(10);
    let (mut ok, mut limited, mut pushbacks) = (0u32, 0u32, 0u32);
    let mut calls = Vec::new();
    while Instant::now() < end {
        ticker.tick().await;
        let accounts = accounts.clone();
        calls.push(tokio::spawn(async move { lookup(&accounts, "t").await }));
    }
    for call in calls {
        match call.await.expect("call task") {
            Ok(_) => ok += 1,
            Err(e) if e.code() == Code::ResourceExhausted => {
                limited += 1;
                pushbacks += u32::from(e.message().contains("over its rate of 50/s"));
            }
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    let error = (f64::from(ok) - 500.0).abs() / 500.0;
    assert!(
        error <= 0.05,
        "{ok} served in 10 s at 50/s ({:.1}% off), {limited} limited",
        error * 100.0
    );
    assert_eq!(pushbacks, limited);
    assert_eq!(server.stats().rate_limited(), u64::from(limited));
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_a_retry_pushback_hint() {
    let (_dir, path) = limits_file(
        "limits:\n  accounts.Accounts:\n    default:\n      rate_acls: { unauthenticated: 2 }\n",
    );
    let server = plaintext_server(Counting::default(), &path).await;
    let mut raw = support::raw_client(&server);
    let call = |raw: &mut support::RawClient| {
        let mut raw = raw.clone();
        async move {
            raw.ready().await.expect("ready");
            raw.unary::<_, Account, _>(
                tonic::Request::new(GetByTokenRequest { token: "t".into() }),
                "/accounts.Accounts/GetByToken".parse().expect("path"),
                tonic_prost::ProstCodec::default(),
            )
            .await
        }
    };
    call(&mut raw).await.expect("first is within the rate");
    let status = call(&mut raw).await.expect_err("second is over it");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let pushback: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("pushback")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("ms");
    assert!((1..=500).contains(&pushback), "{pushback} ms");
    server.shutdown().await;
}

#[tokio::test]
async fn a_reload_under_steady_load_fails_no_call_and_a_bad_file_keeps_the_old_rules() {
    let good = |n: u32| {
        format!(
            "limits:\n  accounts.Accounts:\n    default:\n      max_concurrency: {n}\n      rate_acls: {{ unauthenticated: -1 }}\n"
        )
    };
    let (_dir, path) = limits_file(&good(16));
    let server = plaintext_server(Counting::default(), &path).await;
    let accounts = client(&server);
    let load = tokio::spawn({
        let accounts = accounts.clone();
        async move {
            let mut failures = Vec::new();
            let mut ticker = tokio::time::interval(Duration::from_millis(2));
            for _ in 0..1000 {
                ticker.tick().await;
                if let Err(e) = lookup(&accounts, "t").await {
                    failures.push(e.to_string());
                }
            }
            failures
        }
    });
    for (i, n) in [32, 8, 24].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        write(&path, &good(n));
        support::wait_until("the reload", || {
            server.limits_status().reloads == i as u64 + 1
        })
        .await;
    }
    // A typo: refused, counted, visible, and the old rules serve on.
    write(
        &path,
        "limits:\n  accounts.Accounts:\n    default:\n      max_concurency: 4\n",
    );
    support::wait_until("the failed reload", || server.limits_status().failures == 1).await;
    let status = server.limits_status();
    let error = status.last_error.expect("the refusal is kept");
    assert!(
        error.contains("limits.yaml")
            && error.contains("max_concurency")
            && error.contains("line 4"),
        "{error}"
    );
    assert_eq!(status.reloads, 3);
    let failures = load.await.expect("load task");
    assert!(
        failures.is_empty(),
        "calls failed across reloads: {failures:?}"
    );
    lookup(&accounts, "t")
        .await
        .expect("still served under the previous rules");
    server.shutdown().await;
}

#[tokio::test]
async fn queued_requests_past_their_deadline_never_reach_the_handler() {
    let (_dir, path) = limits_file(
        "limits:\n  accounts.Accounts:\n    default:\n      max_concurrency: 1\n      max_queue: 1\n      queue_timeout_ms: 1000\n      rate_acls: { unauthenticated: -1 }\n",
    );
    let handler = Counting::default();
    let server = plaintext_server(handler.clone(), &path).await;
    let accounts = client(&server);
    // The one slot is busy until the gate opens.
    let busy = tokio::spawn({
        let accounts = accounts.clone();
        async move { lookup(&accounts, "slow").await }
    });
    support::wait_until("the handler starts", || {
        handler.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // Queued with 20 ms to live, sent by a raw client that does not give up by itself: the
    // server drops it at its deadline, and it never runs.
    let mut raw = support::raw_client(&server);
    let mut request = tonic::Request::new(GetByTokenRequest { token: "t".into() });
    request
        .metadata_mut()
        .insert("grpc-timeout", "20m".parse().expect("ascii"));
    raw.ready().await.expect("ready");
    let status = raw
        .unary::<_, Account, _>(
            request,
            "/accounts.Accounts/GetByToken".parse().expect("path"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("deadline in queue");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert!(
        status.message().contains("passed while queued"),
        "{}",
        status.message()
    );
    assert_eq!(server.stats().expired_in_queue(), 1);
    // The queue holds one, and it is LIFO: a newer request takes the place of the one
    // waiting, which is shed at once.
    let older = tokio::spawn({
        let accounts = accounts.clone();
        async move { lookup(&accounts, "t").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let newer = tokio::spawn({
        let accounts = accounts.clone();
        async move { lookup(&accounts, "t").await }
    });
    let shed = older.await.expect("task").expect_err("pushed out");
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(shed.message().contains("queue is full"), "{shed}");
    handler.gate.add_permits(1);
    busy.await.expect("task").expect("the slow call completes");
    newer
        .await
        .expect("task")
        .expect("the newest queued call runs after it");
    assert_eq!(
        handler.started.load(Ordering::SeqCst),
        2,
        "only the slow call and the queued one ran"
    );
    assert_eq!(
        (
            server.stats().expired_in_queue(),
            server.stats().shed_queue_full()
        ),
        (1, 1)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_wait_past_the_queue_timeout_is_shed_without_running() {
    let (_dir, path) = limits_file(
        "limits:\n  accounts.Accounts:\n    default:\n      max_concurrency: 1\n      queue_timeout_ms: 30\n      rate_acls: { unauthenticated: -1 }\n",
    );
    let handler = Counting::default();
    let server = plaintext_server(handler.clone(), &path).await;
    let accounts = client(&server);
    let busy = tokio::spawn({
        let accounts = accounts.clone();
        async move { lookup(&accounts, "slow").await }
    });
    support::wait_until("the handler starts", || {
        handler.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let start = Instant::now();
    let shed = lookup(&accounts, "t").await.expect_err("no slot in 30 ms");
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(shed.message().contains("no slot within 30 ms"), "{shed}");
    assert!(
        start.elapsed() >= Duration::from_millis(30),
        "{:?}",
        start.elapsed()
    );
    handler.gate.add_permits(1);
    busy.await.expect("task").expect("slow call");
    assert_eq!(handler.started.load(Ordering::SeqCst), 1);
    assert_eq!(server.stats().shed_queue_timeout(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn limits_naming_an_unknown_method_refuse_to_start() {
    let (_dir, path) =
        limits_file("limits:\n  accounts.Accounts:\n    methods:\n      GetByTokne: {}\n");
    let error = Server::builder()
        .insecure_plaintext()
        .limits(Limits::from_file(&path).expect("valid YAML"))
        .add_service(AccountsServer::new(Counting::default()))
        .bind("127.0.0.1:0")
        .await
        .expect_err("typo in a method name");
    assert!(error.to_string().contains("limits.accounts.Accounts.methods.GetByTokne: service accounts.Accounts has no such method"), "{error}");
    let error = Server::builder()
        .insecure_plaintext()
        .add_service(AccountsServer::new(Counting::default()))
        .bind("127.0.0.1:0")
        .await
        .expect_err("no access policy");
    assert!(error.to_string().contains("no access policy"), "{error}");
}

/// Handlers that compute, on a server whose connections have one thread: one admission slot,
/// a queue that sheds after 50 ms.
mod handler_pool {
    use std::sync::Mutex;

    use herald::NoAppError;
    use herald::codegen::{ServiceContract, ServiceMethods};
    use herald::contract::{ClientPolicy, MethodContract, RpcKind};

    use super::*;

    const fn method(name: &'static str, path: &'static str) -> MethodContract {
        MethodContract {
            service: "pool.Work",
            method: name,
            path,
            kind: RpcKind::Unary,
            deadline: Some(Duration::from_secs(5)),
            client: ClientPolicy {
                timeout: None,
                idempotent: false,
                retry: None,
                circuit_breaker: None,
            },
        }
    }
    static BURN: MethodContract = method("Burn", "/pool.Work/Burn");
    static SERVICE: ServiceContract = ServiceContract {
        name: "pool.Work",
        methods: &[&BURN],
        app_error: None,
        descriptor_set: &[],
    };

    /// A server on a runtime of one worker thread of its own (as herald-echo runs in the
    /// benchmarks); stops when the returned sender is dropped.
    async fn serve_on_one_thread(
        handler_threads: usize,
        threads: Arc<Mutex<Vec<String>>>,
    ) -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    ) {
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = herald::runtime::builder()
                .worker_threads(1)
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = serve(handler_threads, threads).await;
                addr_tx.send(server.local_addr()).expect("send address");
                let _ = stop_rx.await;
                server.shutdown().await;
            });
        });
        (addr_rx.await.expect("address"), stop_tx, thread)
    }

    /// Burn computes for the milliseconds asked, noting its thread's name.
    async fn serve(handler_threads: usize, threads: Arc<Mutex<Vec<String>>>) -> RunningServer {
        let service = ServiceMethods::new(&SERVICE).unary(&BURN, move |_ctx, ms: u32| {
            let threads = threads.clone();
            async move {
                let name = std::thread::current().name().unwrap_or("").to_owned();
                threads.lock().expect("lock").push(name);
                let until = std::time::Instant::now() + Duration::from_millis(ms.into());
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                Ok::<u32, Error<NoAppError>>(ms)
            }
        });
        let limits = "limits:\n  pool.Work:\n    default:\n      max_concurrency: 1\n      \
                      queue_timeout_ms: 50\n      rate_acls: { unauthenticated: -1 }\n";
        Server::builder()
            .insecure_plaintext()
            .limits(Limits::from_config(
                herald::limits::LimitsConfig::parse(limits, "limits.yaml").expect("valid"),
            ))
            .handler_threads(handler_threads)
            .add_service(service)
            .bind("127.0.0.1:0")
            .await
            .expect("bind")
    }

    /// The answer to a short Burn sent while a 400 ms Burn holds the method's one slot, how long
    /// it took, and the threads Burn ran on.
    async fn second_burn_during_first(
        handler_threads: usize,
    ) -> (
        Result<u32, herald::CallError<NoAppError>>,
        Duration,
        Vec<String>,
    ) {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (addr, stop, thread) = serve_on_one_thread(handler_threads, threads.clone()).await;
        let channel = Channel::insecure_plaintext(addr).expect("channel");
        // Connected first, so the connection's setup is not in the measurement.
        let ctx = Context::background();
        let warm = channel.unary::<u32, u32, NoAppError>(&ctx, &BURN, 0);
        assert_eq!(warm.await.expect("warm-up"), 0);
        let burning = tokio::spawn({
            let channel = channel.clone();
            async move {
                channel
                    .unary::<u32, u32, NoAppError>(&Context::background(), &BURN, 400)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let second = channel.unary::<u32, u32, NoAppError>(&ctx, &BURN, 7).await;
        let took = started.elapsed();
        assert_eq!(burning.await.expect("join").expect("burn"), 400);
        drop(stop);
        tokio::task::spawn_blocking(move || thread.join().expect("server thread"))
            .await
            .expect("join");
        let threads = threads.lock().expect("lock").clone();
        (second, took, threads)
    }

    /// With a handler pool, a call that arrives while the only slot's handler computes is
    /// queued and shed at the queue's 50 ms bound; without one, nothing reads it until that
    /// handler is done (the control: the difference is the pool's doing).
    #[tokio::test]
    async fn admission_sheds_on_time_while_a_handler_computes_on_the_pool() {
        let (second, took, threads) = second_burn_during_first(1).await;
        let shed = second.expect_err("shed from the queue");
        assert_eq!(shed.code(), Code::ResourceExhausted, "{shed}");
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_millis(200),
            "shed after {took:?}"
        );
        assert!(threads.iter().all(|t| t == "herald-handler"), "{threads:?}");

        let (second, took, threads) = second_burn_during_first(0).await;
        assert_eq!(second.expect("read and served once the handler is done"), 7);
        assert!(
            took >= Duration::from_millis(300),
            "answered after {took:?}"
        );
        assert!(threads.iter().all(|t| t != "herald-handler"), "{threads:?}");
    }

    static RELAY: MethodContract = method("Relay", "/pool.Relay/Relay");
    static RELAY_SERVICE: ServiceContract = ServiceContract {
        name: "pool.Relay",
        methods: &[&RELAY],
        app_error: None,
        descriptor_set: &[],
    };

    /// A channel first used by a handler on the pool keeps working after that server (and its
    /// pool) is gone: its connections live on the runtime it was built on.
    #[tokio::test]
    async fn a_channel_first_used_on_the_pool_outlives_the_server() {
        let accounts = support::serve(AccountsServer::new(
            herald_example_cache::AccountsService::demo(),
        ))
        .await;
        let downstream = AccountsClient::new(
            Channel::insecure_plaintext(accounts.local_addr()).expect("channel"),
        );
        let lookup = GetByTokenRequest {
            token: "tok-bob".into(),
        };
        let relay = {
            let (downstream, lookup) = (downstream.clone(), lookup.clone());
            ServiceMethods::new(&RELAY_SERVICE).unary(&RELAY, move |ctx, n: u32| {
                let (downstream, lookup) = (downstream.clone(), lookup.clone());
                async move {
                    downstream
                        .get_by_token(&ctx, lookup)
                        .await
                        .map_err(|e| Error::internal(e.to_string()))?;
                    Ok::<u32, Error<NoAppError>>(n)
                }
            })
        };
        let server = Server::builder()
            .insecure_plaintext()
            .allow_all_callers()
            .handler_threads(1)
            .add_service(relay)
            .bind("127.0.0.1:0")
            .await
            .expect("bind");
        let channel = Channel::insecure_plaintext(server.local_addr()).expect("channel");
        let relayed = channel
            .unary::<u32, u32, NoAppError>(&Context::background(), &RELAY, 5)
            .await;
        assert_eq!(relayed.expect("relayed through the pool"), 5);
        server.shutdown().await;
        drop(channel);

        let after = tokio::time::timeout(
            Duration::from_secs(5),
            downstream.get_by_token(&Context::background(), lookup),
        )
        .await
        .expect("answered, not stuck on a stopped pool");
        assert_eq!(after.expect("the channel still works").name, "bob");
        accounts.shutdown().await;
    }
}
