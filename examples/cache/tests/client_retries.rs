//! Retries from the method's contract, against real servers on loopback: never more than
//! five attempts, never past the deadline, never beyond the budget; a server's pushback
//! paces them; a method that is not idempotent is retried only when its request provably
//! never reached a server; streaming calls are retried until their response begins, their
//! requests sent again.

mod client_support;
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use client_support::{Backend, Mode, Recorder, contract, request, retry, serve_at};
use herald::client::observe::{AttemptEvent, Next, Observer};
use herald::client::{Channel, Discovery, RetryBudget, Update};
use herald::contract::{ClientPolicy, MethodContract};
use herald::limits::Limits;
use herald::server::RunningServer;
use herald::{CallError, Code, Context, Server};
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::accounts::{Account, AccountsError};
use tokio::time::Instant;

/// Asks for ten attempts: the runtime allows five.
static TEN_ATTEMPTS: MethodContract = contract(
    2000,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: retry(10, 1, 5, &[Code::Unavailable]),
        circuit_breaker: None,
    },
);

/// Five attempts of slow failures do not fit in its 300 ms.
static SHORT_DEADLINE: MethodContract = contract(
    300,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: retry(5, 100, 100, &[Code::Unavailable]),
        circuit_breaker: None,
    },
);

static THREE_ATTEMPTS: MethodContract = contract(
    1000,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: retry(3, 1, 2, &[Code::Unavailable]),
        circuit_breaker: None,
    },
);

/// Retries RESOURCE_EXHAUSTED after at most 1 ms of backoff — unless the server says more.
static RATE_LIMITED: MethodContract = contract(
    1000,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: retry(3, 1, 1, &[Code::ResourceExhausted]),
        circuit_breaker: None,
    },
);

static NOT_IDEMPOTENT: MethodContract = contract(
    1000,
    ClientPolicy {
        timeout: None,
        idempotent: false,
        retry: retry(3, 1, 5, &[Code::Unavailable]),
        circuit_breaker: None,
    },
);

fn channel(discovery: Discovery, budget: RetryBudget, observer: Arc<dyn Observer>) -> Channel {
    Channel::builder(discovery)
        .insecure_plaintext()
        .retry_budget(budget)
        .observer(observer)
        .build()
        .expect("channel")
}

fn to(server: &RunningServer) -> Discovery {
    Discovery::fixed([server.local_addr()]).expect("discovery")
}

async fn call(
    channel: &Channel,
    method: &'static MethodContract,
) -> Result<Account, CallError<AccountsError>> {
    channel
        .unary::<_, Account, AccountsError>(&Context::background(), method, request())
        .await
}

/// An address where nothing listens.
fn dead_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

#[tokio::test]
async fn attempts_never_exceed_five_whatever_the_contract_says() {
    let backend = Backend::new("b");
    backend.set_mode(Mode::Unavailable);
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let recorder = Arc::new(Recorder::default());
    let channel = channel(
        to(&server),
        RetryBudget::token_bucket(1000, 1.0),
        recorder.clone(),
    );
    let error = call(&channel, &TEN_ATTEMPTS)
        .await
        .expect_err("always failing");
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(backend.calls(), 5);
    let attempts = recorder.attempts();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(attempts[4].next, Next::AttemptsExhausted);
    assert_eq!(recorder.calls()[0].attempts, 5);
    server.shutdown().await;
}

/// A first attempt under its method's own deadline sends that budget rounded to three figures
/// (the same text on every call, so HPACK can index it); a retry, or a call under its caller's
/// earlier deadline, sends the exact budget left (in the finest unit that holds it).
#[tokio::test]
async fn only_a_first_attempt_under_the_methods_own_deadline_sends_a_rounded_budget() {
    // Exact: the finest unit that holds it (µs or ns, under 1 s); rounded: 1 s less what was
    // spent before the headers went out, in milliseconds.
    let exact = |budget: &str| budget.ends_with(['u', 'n']);
    let rounded = |budget: &str| {
        budget
            .strip_suffix('m')
            .and_then(|ms| ms.parse::<u32>().ok())
            .is_some_and(|ms| (900..1000).contains(&ms))
    };
    let backend = Backend::new("b");
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let channel = channel(
        to(&server),
        RetryBudget::token_bucket(1000, 1.0),
        Arc::new(Recorder::default()),
    );
    // The first call waits for the connection: its budget is what is left after the wait.
    call(&channel, &THREE_ATTEMPTS).await.expect("served");
    backend.set_mode(Mode::Unavailable);
    call(&channel, &THREE_ATTEMPTS).await.expect_err("failing");
    let budgets = backend.budgets();
    assert!(exact(&budgets[0]), "{budgets:?}");
    assert!(rounded(&budgets[1]), "{budgets:?}");
    assert!(budgets[2..].iter().all(|b| exact(b)), "{budgets:?}");
    assert_eq!(budgets.len(), 4, "{budgets:?}");
    let caller = Context::background().with_timeout(Duration::from_millis(500));
    channel
        .unary::<_, Account, AccountsError>(&caller, &THREE_ATTEMPTS, request())
        .await
        .expect_err("failing");
    let budgets = backend.budgets();
    assert!(exact(&budgets[4]), "{budgets:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn retries_never_go_past_the_deadline() {
    let backend = Backend::new("b");
    backend.set_mode(Mode::Unavailable);
    backend.set_delay(Duration::from_millis(80));
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let recorder = Arc::new(Recorder::default());
    let channel = channel(to(&server), RetryBudget::default(), recorder.clone());
    for _ in 0..3 {
        let start = Instant::now();
        let before = backend.calls();
        let error = call(&channel, &SHORT_DEADLINE).await.expect_err("failing");
        let elapsed = start.elapsed();
        assert!(
            matches!(error.code(), Code::DeadlineExceeded | Code::Unavailable),
            "{error}"
        );
        assert!(elapsed < Duration::from_millis(360), "{elapsed:?}");
        let deadline = start + Duration::from_millis(300);
        let arrivals = backend.arrivals();
        assert!(
            arrivals[before..].iter().all(|at| *at < deadline),
            "an attempt started after the deadline"
        );
        // Nothing arrives later either: no attempt outlives its call.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let made = backend.calls() - before;
        assert!((1..5).contains(&made), "{made} attempts in 300 ms");
    }
    // Each attempt gave up for a reason the observer saw: time, not attempts.
    assert!(
        recorder
            .attempts()
            .iter()
            .all(|a| a.next != Next::AttemptsExhausted)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_retry_budget_stops_retrying_a_failing_service_until_it_recovers() {
    let backend = Backend::new("b");
    backend.set_mode(Mode::Unavailable);
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let recorder = Arc::new(Recorder::default());
    // gRPC's bucket: 10 tokens, a failure takes 1, a success gives 0.1, retries while > 5.
    let channel = channel(
        to(&server),
        RetryBudget::token_bucket(10, 0.1),
        recorder.clone(),
    );
    for _ in 0..20 {
        call(&channel, &THREE_ATTEMPTS).await.expect_err("failing");
    }
    // 20 first attempts, and retries only while a failure leaves more than 5 tokens: two
    // in the first call (9 and 8 left), one in the second (6 left), then none.
    assert_eq!(backend.calls(), 23);
    assert_eq!(channel.retry_budget().tokens(), 0);
    let throttled = recorder
        .attempts()
        .iter()
        .filter(|a| a.next == Next::Throttled)
        .count();
    assert_eq!(
        throttled, 19,
        "the second call's second attempt, and each later call"
    );

    // Successes refill it, a tenth of a token each: after 70, the bucket holds 7 and one
    // failing call may retry once more.
    backend.set_mode(Mode::Ok);
    for _ in 0..70 {
        call(&channel, &THREE_ATTEMPTS).await.expect("healthy");
    }
    assert_eq!(channel.retry_budget().tokens(), 7);
    backend.set_mode(Mode::Unavailable);
    let before = backend.calls();
    call(&channel, &THREE_ATTEMPTS).await.expect_err("failing");
    assert_eq!(backend.calls() - before, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_pushback_replaces_the_backoff() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("limits.yaml");
    // 5/s, no burst: a second call right after the first is refused with a pushback of
    // about 200 ms.
    std::fs::write(
        &path,
        "limits:\n  accounts.Accounts:\n    default:\n      rate_acls: { unauthenticated: 5 }\n",
    )
    .expect("write");
    let backend = Backend::new("b");
    let server = Server::builder()
        .insecure_plaintext()
        .limits(Limits::from_file(&path).expect("limits"))
        .add_service(AccountsServer::new(backend.clone()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let recorder = Arc::new(Recorder::default());
    let channel = channel(to(&server), RetryBudget::default(), recorder.clone());
    call(&channel, &RATE_LIMITED)
        .await
        .expect("within the rate");
    let start = Instant::now();
    call(&channel, &RATE_LIMITED)
        .await
        .expect("retried after the pushback");
    let elapsed = start.elapsed();
    let attempts = recorder.attempts();
    let refused: Vec<&AttemptEvent> = attempts
        .iter()
        .filter(|a| a.code == Code::ResourceExhausted)
        .collect();
    assert!(!refused.is_empty());
    for attempt in &refused {
        let Next::Retry(delay) = attempt.next else {
            panic!("not retried: {attempt:?}");
        };
        // The contract's backoff is at most 1 ms: a longer wait is the server's.
        assert!(
            delay >= Duration::from_millis(50) && delay <= Duration::from_millis(250),
            "{delay:?}"
        );
    }
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert_eq!(
        backend.calls(),
        2,
        "refused attempts never reached the handler"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_non_idempotent_call_is_not_retried_once_a_server_had_it() {
    let backend = Backend::new("b");
    backend.set_mode(Mode::Unavailable);
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let recorder = Arc::new(Recorder::default());
    let channel = channel(to(&server), RetryBudget::default(), recorder.clone());
    let error = call(&channel, &NOT_IDEMPOTENT).await.expect_err("failing");
    assert_eq!(error.code(), Code::Unavailable);
    assert!(!error.is_local());
    assert_eq!(backend.calls(), 1, "the handler ran: no second attempt");
    assert_eq!(recorder.attempts()[0].next, Next::Done);
    server.shutdown().await;
}

#[tokio::test]
async fn a_non_idempotent_call_that_never_left_is_retried() {
    // Nothing listens: every attempt fails before any server sees it.
    let recorder = Arc::new(Recorder::default());
    let channel = channel(
        Discovery::fixed([dead_address()]).expect("discovery"),
        RetryBudget::default(),
        recorder.clone(),
    );
    let error = call(&channel, &NOT_IDEMPOTENT)
        .await
        .expect_err("nothing listens");
    assert_eq!(error.code(), Code::Unavailable);
    assert!(error.is_local(), "{error}");
    assert!(error.message().contains("no endpoint of"), "{error}");
    assert!(error.message().contains("refused"), "{error}");
    let attempts = recorder.attempts();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts.iter().all(|a| a.unsent));
}

/// Switches discovery to the live endpoint when the first attempt fails, and waits until
/// the channel has it (a test may block; an observer in production must not).
struct SwitchOnFailure {
    updates: tokio::sync::mpsc::UnboundedSender<Update>,
    live: SocketAddr,
    channel: OnceLock<Channel>,
    attempts: std::sync::Mutex<Vec<AttemptEvent>>,
}

impl Observer for SwitchOnFailure {
    fn attempt(&self, event: &AttemptEvent) {
        self.attempts.lock().expect("lock").push(event.clone());
        if event.attempt == 1 && event.unsent {
            // Sent from a thread outside the runtime, so that the discovery task wakes on
            // the other worker while this one waits.
            let (updates, live) = (self.updates.clone(), self.live);
            std::thread::spawn(move || updates.send(Ok(vec![live])).expect("update"))
                .join()
                .expect("send");
            let channel = self.channel.get().expect("channel set");
            let end = std::time::Instant::now() + Duration::from_secs(2);
            while channel.endpoints() != [self.live] && std::time::Instant::now() < end {
                std::thread::yield_now();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_idempotent_call_that_never_left_succeeds_on_the_next_endpoint() {
    let backend = Backend::new("b");
    let server = serve_at("127.0.0.1:0", backend.clone()).await;
    let (updates, rx) = tokio::sync::mpsc::unbounded_channel();
    updates.send(Ok(vec![dead_address()])).expect("first set");
    let observer = Arc::new(SwitchOnFailure {
        updates,
        live: server.local_addr(),
        channel: OnceLock::new(),
        attempts: Default::default(),
    });
    let discovery = Discovery::from_stream(
        "accounts.test",
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
    )
    .expect("discovery");
    let channel = channel(discovery, RetryBudget::default(), observer.clone());
    assert!(observer.channel.set(channel.clone()).is_ok());
    let account = call(&channel, &NOT_IDEMPOTENT)
        .await
        .expect("the second attempt reaches the live endpoint");
    assert_eq!(account.name, "b");
    assert_eq!(backend.calls(), 1);
    let attempts = observer.attempts.lock().expect("lock").clone();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[0].unsent && matches!(attempts[0].next, Next::Retry(_)));
    assert_eq!(attempts[1].code, Code::Ok);
    server.shutdown().await;
}

// --- Streaming calls: retried until the response begins, their requests sent again. ---

mod streams {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use herald::Error;
    use herald::codegen::{NoAppError, RequestStream, ServiceContract, ServiceMethods};
    use herald::contract::RpcKind;
    use tokio_stream::StreamExt;

    use super::*;

    const POLICY: ClientPolicy = ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: retry(4, 1, 5, &[Code::Unavailable]),
        circuit_breaker: None,
    };

    const fn method(name: &'static str, path: &'static str, kind: RpcKind) -> MethodContract {
        MethodContract {
            service: "retry.Streams",
            method: name,
            path,
            kind,
            deadline: Some(Duration::from_secs(5)),
            client: POLICY,
        }
    }

    static SUM: MethodContract = method("Sum", "/retry.Streams/Sum", RpcKind::ClientStreaming);
    static ECHO: MethodContract = method("Echo", "/retry.Streams/Echo", RpcKind::BidiStreaming);
    static COUNT: MethodContract =
        method("Count", "/retry.Streams/Count", RpcKind::ServerStreaming);
    static SERVICE: ServiceContract = ServiceContract {
        name: "retry.Streams",
        methods: &[&SUM, &ECHO, &COUNT],
        app_error: None,
        descriptor_set: &[],
    };

    /// What the server saw: per attempt, the requests it read.
    #[derive(Default)]
    struct Seen {
        attempts: AtomicU32,
        requests: Mutex<Vec<Vec<u32>>>,
    }

    impl Seen {
        fn attempt(&self) -> u32 {
            self.requests.lock().expect("lock").push(Vec::new());
            self.attempts.fetch_add(1, Ordering::SeqCst) + 1
        }
        fn read(&self, value: u32) {
            let mut requests = self.requests.lock().expect("lock");
            requests.last_mut().expect("an attempt").push(value);
        }
        fn requests(&self) -> Vec<Vec<u32>> {
            self.requests.lock().expect("lock").clone()
        }
    }

    fn unavailable() -> Error<NoAppError> {
        Error::unavailable("try another time")
    }

    /// Sum fails its first attempt after reading everything; Echo fails its first attempt
    /// after reading one request, and answers the second's with one echo, then breaks when
    /// it reads 99; Count fails its first attempt at once.
    async fn serve(seen: Arc<Seen>) -> RunningServer {
        let (sum, echo, count) = (seen.clone(), seen.clone(), seen);
        let service = ServiceMethods::new(&SERVICE)
            .client_streaming(&SUM, move |_ctx, mut requests: RequestStream<u32>| {
                let seen = sum.clone();
                async move {
                    let attempt = seen.attempt();
                    let mut total = 0;
                    while let Some(value) = requests.next().await {
                        let value = value.map_err(|e| Error::internal(e.to_string()))?;
                        seen.read(value);
                        total = u32::wrapping_add(total, value);
                    }
                    if attempt == 1 {
                        return Err(unavailable());
                    }
                    Ok::<u32, Error<NoAppError>>(total)
                }
            })
            .bidi_streaming(&ECHO, move |_ctx, mut requests: RequestStream<u32>| {
                let seen = echo.clone();
                async move {
                    let attempt = seen.attempt();
                    if attempt == 1 {
                        if let Some(Ok(value)) = requests.next().await {
                            seen.read(value);
                        }
                        return Err(unavailable());
                    }
                    let echoes = async_stream(seen, requests);
                    Ok::<_, Error<NoAppError>>(echoes)
                }
            })
            .server_streaming(&COUNT, move |_ctx, to: u32| {
                let seen = count.clone();
                async move {
                    if seen.attempt() == 1 {
                        return Err(unavailable());
                    }
                    Ok::<_, Error<NoAppError>>(tokio_stream::iter(
                        (1..=to).map(Ok::<u32, Error<NoAppError>>),
                    ))
                }
            });
        crate::support::serve(service).await
    }

    /// Echoes each request, recording it; a 99 breaks the stream with UNAVAILABLE.
    fn async_stream(
        seen: Arc<Seen>,
        requests: RequestStream<u32>,
    ) -> impl tokio_stream::Stream<Item = Result<u32, Error<NoAppError>>> + Send + 'static {
        requests.map(move |value| {
            let value = value.map_err(|e| Error::internal(e.to_string()))?;
            seen.read(value);
            if value == 99 {
                return Err(unavailable());
            }
            Ok(value)
        })
    }

    fn channel(server: &RunningServer) -> Channel {
        Channel::insecure_plaintext(server.local_addr()).expect("channel")
    }

    #[tokio::test]
    async fn a_client_stream_is_sent_again_when_its_first_attempt_fails_before_answering() {
        let seen = Arc::new(Seen::default());
        let server = serve(seen.clone()).await;
        let total = channel(&server)
            .client_streaming::<u32, u32, NoAppError, _>(
                &Context::background(),
                &SUM,
                tokio_stream::iter([1, 2, 3]),
            )
            .await
            .expect("the second attempt answers");
        assert_eq!(total, 6);
        assert_eq!(seen.requests(), vec![vec![1, 2, 3], vec![1, 2, 3]]);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_bidi_retry_replays_what_was_sent_then_goes_on_with_the_callers_stream() {
        let seen = Arc::new(Seen::default());
        let server = serve(seen.clone()).await;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(1).await.expect("send");
        let mut echoes = channel(&server)
            .bidi_streaming::<u32, u32, NoAppError, _>(
                &Context::background(),
                &ECHO,
                tokio_stream::wrappers::ReceiverStream::new(rx),
            )
            .await
            .expect("the second attempt's stream");
        // The first request, sent to the failed attempt, is sent again; then the rest.
        assert_eq!(echoes.next().await.expect("echo").expect("ok"), 1);
        for value in [2, 3] {
            tx.send(value).await.expect("send");
            assert_eq!(echoes.next().await.expect("echo").expect("ok"), value);
        }
        // Once answering, the call is committed: a failure now ends it, with no new attempt.
        tx.send(99).await.expect("send");
        let broken = echoes.next().await.expect("an error").expect_err("broken");
        assert_eq!(broken.code(), Code::Unavailable);
        assert_eq!(seen.requests(), vec![vec![1], vec![1, 2, 3, 99]]);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_server_stream_is_retried_until_it_begins() {
        let seen = Arc::new(Seen::default());
        let server = serve(seen.clone()).await;
        let counted: Vec<u32> = channel(&server)
            .server_streaming::<u32, u32, NoAppError>(&Context::background(), &COUNT, 3)
            .await
            .expect("the second attempt's stream")
            .map(|r| r.expect("ok"))
            .collect()
            .await;
        assert_eq!(counted, vec![1, 2, 3]);
        assert_eq!(seen.attempts.load(Ordering::SeqCst), 2);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn more_requests_than_can_be_kept_make_a_single_attempt() {
        let seen = Arc::new(Seen::default());
        let server = serve(seen.clone()).await;
        // 300 KiB of requests (each u32 near 2^31 encodes in 6 bytes): over the 256 KiB kept.
        let many = tokio_stream::iter(std::iter::repeat_n(1 << 31, 300 * 1024 / 6));
        let error = channel(&server)
            .client_streaming::<u32, u32, NoAppError, _>(&Context::background(), &SUM, many)
            .await
            .expect_err("one attempt, failed");
        assert_eq!(error.code(), Code::Unavailable);
        assert_eq!(seen.attempts.load(Ordering::SeqCst), 1);
        server.shutdown().await;
    }
}
