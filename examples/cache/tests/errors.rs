//! App errors across the wire, Courier's API-boundary rule, dry-run, and panics.

mod support;

use herald::{Code, Context, Error};
use herald_example_cache::AccountsService;
use herald_example_cache::accounts::accounts_server::Accounts;
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};
use herald_example_cache::cache::{CacheError, GetRequest, StoreRequest};

fn store(token: &str, key: &str) -> StoreRequest {
    StoreRequest {
        account_token: token.into(),
        key: key.into(),
        value: b"v".to_vec(),
    }
}

#[tokio::test]
async fn app_errors_arrive_typed_with_their_grpc_code() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();

    let missing = cache
        .get(
            &ctx,
            GetRequest {
                key: "absent".into(),
            },
        )
        .await
        .expect_err("absent");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.app(), Some(CacheError::NotFound));
    assert!(!missing.is_local());

    // alice may hold 3 keys: the fourth is refused with FAILED_PRECONDITION.
    for key in ["a", "b", "c"] {
        cache
            .store(&ctx, store("tok-alice", key))
            .await
            .expect("within the limit");
    }
    let over = cache
        .store(&ctx, store("tok-alice", "d"))
        .await
        .expect_err("over the limit");
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert_eq!(over.app(), Some(CacheError::KeyLimitExceeded));
    services.shutdown().await;
}

#[tokio::test]
async fn downstream_error_mapped_on_purpose_keeps_meaning_unmapped_becomes_unknown() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();

    // Accounts says UNKNOWN_TOKEN; Cache maps it on purpose to its own INVALID_TOKEN.
    let mapped = cache
        .store(&ctx, store("tok-nobody", "k"))
        .await
        .expect_err("unknown token");
    assert_eq!(mapped.code(), Code::Unauthenticated);
    assert_eq!(mapped.app(), Some(CacheError::InvalidToken));

    // Accounts says SUSPENDED (PERMISSION_DENIED); Cache returns it as-is: UNKNOWN, and
    // Accounts' app code does not leak through.
    let unmapped = cache
        .store(&ctx, store("tok-mallory", "k"))
        .await
        .expect_err("suspended");
    assert_eq!(unmapped.code(), Code::Unknown);
    assert_eq!(unmapped.app(), None);
    assert!(
        unmapped.message().contains("accounts.Accounts/GetByToken"),
        "{unmapped}"
    );

    // Called directly, Accounts' own error arrives typed.
    let direct = services
        .accounts_client()
        .get_by_token(
            &ctx,
            GetByTokenRequest {
                token: "tok-mallory".into(),
            },
        )
        .await
        .expect_err("suspended");
    assert_eq!(direct.code(), Code::PermissionDenied);
    assert_eq!(direct.app(), Some(AccountsError::Suspended));
    services.shutdown().await;
}

#[tokio::test]
async fn dry_run_gives_the_same_answer_and_has_no_side_effect() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();

    let dry = cache
        .store(&ctx.clone().with_dry_run(), store("tok-bob", "k"))
        .await
        .expect("dry store");
    assert!(dry.dry_run);
    let absent = cache
        .get(&ctx, GetRequest { key: "k".into() })
        .await
        .expect_err("nothing stored");
    assert_eq!(absent.app(), Some(CacheError::NotFound));

    let real = cache
        .store(&ctx, store("tok-bob", "k"))
        .await
        .expect("real store");
    assert!(!real.dry_run);
    assert_eq!(real.keys_used, dry.keys_used);
    cache
        .get(&ctx, GetRequest { key: "k".into() })
        .await
        .expect("stored now");
    services.shutdown().await;
}

/// Accounts that panics for one token.
struct PanickyAccounts(AccountsService);

impl Accounts for PanickyAccounts {
    async fn get_by_token(
        &self,
        ctx: &Context,
        request: GetByTokenRequest,
    ) -> Result<Account, Error<AccountsError>> {
        if request.token == "boom" {
            panic!("the handler hit a bug");
        }
        self.0.get_by_token(ctx, request).await
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_server_keeps_serving() {
    // The expected panic is not reported: symbolizing its backtrace (with RUST_BACKTRACE set)
    // can outlast Accounts' 100 ms deadline in a debug build. Other panics still report.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"the handler hit a bug") {
            report(info);
        }
    }));
    let services = support::Services::start_with(PanickyAccounts(AccountsService::demo())).await;
    let accounts = services.accounts_client();
    let ctx = Context::background();

    for _ in 0..3 {
        let error = accounts
            .get_by_token(
                &ctx,
                GetByTokenRequest {
                    token: "boom".into(),
                },
            )
            .await
            .expect_err("panicked");
        assert_eq!(error.code(), Code::Internal);
        assert!(error.message().contains("GetByToken"), "{error}");
        let fine = accounts
            .get_by_token(
                &ctx,
                GetByTokenRequest {
                    token: "tok-bob".into(),
                },
            )
            .await
            .expect("the server still serves");
        assert_eq!(fine.name, "bob");
    }
    assert_eq!(services.accounts.stats().panics(), 3);
    services.shutdown().await;
}

#[tokio::test]
async fn an_oversized_request_is_resource_exhausted_and_the_server_goes_on() {
    let services = support::Services::start().await;
    let cache = services.cache_client();
    let ctx = Context::background();
    // 5 MiB, over the default 4 MiB message limit.
    let huge = GetRequest {
        key: "k".repeat(5 << 20),
    };
    let refused = cache.get(&ctx, huge).await.expect_err("too large");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused}");
    let missing = cache
        .get(&ctx, GetRequest { key: "k".into() })
        .await
        .expect_err("no such key");
    assert_eq!(missing.code(), Code::NotFound, "still serving: {missing}");
    services.shutdown().await;
}

/// A caller whose connection closes while its request is still arriving went away: its call is
/// counted CANCELLED (a client's doing), not INTERNAL ("missing request message") or UNKNOWN,
/// which dashboards read as the server failing.
#[tokio::test]
async fn a_caller_gone_mid_request_is_counted_cancelled_not_as_a_failure() {
    use herald_example_cache::accounts::accounts_server::AccountsServer;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let server = support::serve(AccountsServer::new(AccountsService::demo())).await;
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("handshake");
    let connection = tokio::spawn(connection);
    let (body, frames) =
        tokio::sync::mpsc::channel::<Result<Frame<hyper::body::Bytes>, std::io::Error>>(1);
    let request = http::Request::post(format!(
        "http://{}/accounts.Accounts/GetByToken",
        server.local_addr()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(frames),
    ))
    .expect("request");
    let response = tokio::spawn(sender.send_request(request));
    // Half a message: a prefix announcing 100 bytes, and 10 of them.
    let mut half = vec![0, 0, 0, 0, 100];
    half.extend_from_slice(&[0x0a; 10]);
    body.send(Ok(Frame::data(half.into()))).await.expect("send");
    let in_flight =
        "herald_server_in_flight{service=\"accounts.Accounts\",method=\"GetByToken\"} 1";
    support::wait_until("the request is in flight", || {
        server.metrics_text().contains(in_flight)
    })
    .await;

    // The caller's process dies: its connection closes mid-message.
    connection.abort();
    response.abort();
    drop(body);
    let counted = |code: &str| {
        format!(
            "herald_server_requests_total{{service=\"accounts.Accounts\",method=\"GetByToken\",caller=\"unauthenticated\",code=\"{code}\"}} 1"
        )
    };
    support::wait_until("the call is counted", || {
        let metrics = server.metrics_text();
        metrics.contains("herald_server_requests_total{service=\"accounts.Accounts\"")
    })
    .await;
    let metrics = server.metrics_text();
    assert!(metrics.contains(&counted("CANCELLED")), "{metrics}");
    assert_eq!(
        metrics.matches("herald_server_requests_total{").count(),
        1,
        "one call, one code: {metrics}"
    );
    server.shutdown().await;
}
