//! Deadlines across hops: client → Cache → Accounts.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::{Code, Context, Error};
use herald_example_cache::accounts::accounts_server::Accounts;
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};
use herald_example_cache::cache::StoreRequest;
use tokio::time::Instant;

fn store() -> StoreRequest {
    StoreRequest {
        account_token: "tok-bob".into(),
        key: "k".into(),
        value: b"v".to_vec(),
    }
}

/// A request as Accounts saw it: arrival, deadline, request id.
type Seen = (Instant, Option<Instant>, String);

/// Accounts that records what each request's context says, optionally slowly.
#[derive(Clone, Default)]
struct Recording {
    delay: Duration,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    dropped_unfinished: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct DropGuard<'a>(&'a Recording, bool);

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped_unfinished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Accounts for Recording {
    async fn get_by_token(
        &self,
        ctx: &Context,
        _: GetByTokenRequest,
    ) -> Result<Account, Error<AccountsError>> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().expect("lock").push((
            Instant::now(),
            ctx.deadline(),
            ctx.request_id().to_owned(),
        ));
        let mut guard = DropGuard(self, false);
        tokio::time::sleep(self.delay).await;
        guard.1 = true;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(Account {
            id: "acct-bob".into(),
            name: "bob".into(),
            max_cache_keys: 10,
        })
    }
}

#[tokio::test]
async fn the_child_call_never_gets_more_time_than_the_parent_has_left() {
    let accounts = Recording::default();
    let services = support::Services::start_with(accounts.clone()).await;
    let cache = services.cache_client();

    // 40 ms: less than Cache.Store's 300 ms and Accounts' own 100 ms, so only propagation
    // can explain a child deadline this short.
    let budget = Duration::from_millis(40);
    let start = Instant::now();
    let ctx = Context::background().with_timeout(budget);
    cache.store(&ctx, store()).await.expect("store");

    let seen = accounts.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let (arrival, child_deadline, request_id) = &seen[0];
    let child_deadline = child_deadline.expect("the child has a deadline");
    let parent_deadline = start + budget;
    // The child's budget as it arrived is less than the parent's whole budget (time passed
    // on the way) — far below Accounts' own 100 ms, so it can only come from propagation.
    assert!(
        child_deadline - *arrival < budget,
        "child got {:?}",
        child_deadline - *arrival
    );
    // The timeout is relative, so the child's clock sees the deadline late by the transit
    // time; a generous bound that is still far from the 60 ms an unpropagated one adds.
    assert!(
        child_deadline <= parent_deadline + Duration::from_millis(20),
        "child deadline {:?} after the parent's",
        child_deadline - parent_deadline
    );
    assert_eq!(
        request_id,
        ctx.request_id(),
        "the request id travels with the call"
    );
    services.shutdown().await;
}

#[tokio::test]
async fn a_slow_handler_is_cancelled_at_its_deadline() {
    let accounts = Recording {
        delay: Duration::from_secs(5),
        ..Recording::default()
    };
    let services = support::Services::start_with(accounts.clone()).await;
    let cache = services.cache_client();

    let start = Instant::now();
    let ctx = Context::background().with_timeout(Duration::from_millis(80));
    let error = cache.store(&ctx, store()).await.expect_err("too slow");
    let took = start.elapsed();
    // Accounts is cut at the propagated deadline; Cache sees DEADLINE_EXCEEDED from it (as
    // a downstream error: UNKNOWN) or its own deadline passes first.
    assert!(
        matches!(error.code(), Code::DeadlineExceeded | Code::Unknown),
        "{error}"
    );
    assert!(took < Duration::from_secs(1), "waited {took:?}");

    // The Accounts handler started, and was dropped unfinished: at its own deadline, or
    // when Cache gave up at the same instant and reset the stream.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accounts.started.load(Ordering::SeqCst), 1);
    assert_eq!(accounts.finished.load(Ordering::SeqCst), 0);
    assert_eq!(accounts.dropped_unfinished.load(Ordering::SeqCst), 1);
    services.shutdown().await;
}

#[tokio::test]
async fn the_server_itself_cuts_a_handler_at_the_deadline() {
    let accounts = Recording {
        delay: Duration::from_secs(5),
        ..Recording::default()
    };
    let services = support::Services::start_with(accounts.clone()).await;
    // A plain tonic client does not give up on its own: only the server's deadline can end
    // this call early.
    let mut grpc = raw_client(&services).await;
    let start = Instant::now();
    let status = raw_get_by_token(&mut grpc, Some("50m"))
        .await
        .expect_err("cut at the deadline");
    let took = start.elapsed();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert!(
        status.message().contains("accounts.Accounts/GetByToken"),
        "{}",
        status.message()
    );
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_secs(1),
        "took {took:?}"
    );
    assert_eq!(accounts.finished.load(Ordering::SeqCst), 0);
    assert_eq!(accounts.dropped_unfinished.load(Ordering::SeqCst), 1);
    assert_eq!(services.accounts.stats().deadline_exceeded_in_handler(), 1);

    // With no grpc-timeout at all, the method's own 100 ms deadline applies.
    let start = Instant::now();
    let status = raw_get_by_token(&mut grpc, None)
        .await
        .expect_err("cut at the method deadline");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(1),
        "took {took:?}"
    );
    services.shutdown().await;
}

use support::RawClient;

async fn raw_client(services: &support::Services) -> RawClient {
    support::raw_client(&services.accounts)
}

async fn raw_call(
    grpc: &mut RawClient,
    path: &str,
    timeout: Option<&str>,
) -> Result<Account, tonic::Status> {
    let mut request = tonic::Request::new(GetByTokenRequest {
        token: "tok-bob".into(),
    });
    if let Some(timeout) = timeout {
        request
            .metadata_mut()
            .insert("grpc-timeout", timeout.parse().expect("ascii"));
    }
    grpc.ready().await.expect("ready");
    grpc.unary(
        request,
        path.parse().expect("path"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn raw_get_by_token(
    grpc: &mut RawClient,
    timeout: Option<&str>,
) -> Result<Account, tonic::Status> {
    raw_call(grpc, "/accounts.Accounts/GetByToken", timeout).await
}

#[tokio::test]
async fn a_spent_budget_fails_locally_without_sending() {
    let accounts = Recording::default();
    let services = support::Services::start_with(accounts.clone()).await;
    let ctx = Context::background().with_timeout(Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(10)).await;

    let error = services
        .accounts_client()
        .get_by_token(
            &ctx,
            GetByTokenRequest {
                token: "tok-bob".into(),
            },
        )
        .await
        .expect_err("budget spent");
    assert_eq!(error.code(), Code::DeadlineExceeded);
    assert!(error.is_local());
    assert_eq!(accounts.started.load(Ordering::SeqCst), 0);
    services.shutdown().await;
}

#[tokio::test]
async fn an_expired_request_never_reaches_the_handler() {
    let accounts = Recording::default();
    let services = support::Services::start_with(accounts.clone()).await;

    // A plain tonic client, so that the request really is sent with a spent budget.
    let mut grpc = raw_client(&services).await;
    let status = raw_get_by_token(&mut grpc, Some("1n"))
        .await
        .expect_err("expired on arrival");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(accounts.started.load(Ordering::SeqCst), 0);
    assert_eq!(services.accounts.stats().expired_on_arrival(), 1);

    // A malformed timeout is refused as such.
    let status = raw_get_by_token(&mut grpc, Some("soon"))
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(accounts.started.load(Ordering::SeqCst), 0);

    // An unknown method and an unknown service are UNIMPLEMENTED.
    for (path, says) in [
        ("/accounts.Accounts/Nope", "unknown method"),
        ("/nope.Nope/X", "unknown service"),
    ] {
        let status = raw_call(&mut grpc, path, None)
            .await
            .expect_err("unimplemented");
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert!(status.message().contains(says), "{}", status.message());
    }

    // And the server still serves a good request on the same connection.
    raw_get_by_token(&mut grpc, Some("1S"))
        .await
        .expect("served");
    assert_eq!(accounts.started.load(Ordering::SeqCst), 1);
    services.shutdown().await;
}
