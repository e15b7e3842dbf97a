//! Backends and observers for the client-runtime tests: Accounts servers that say who they
//! are, fail on demand, count their calls — and can be shut down gracefully or crash.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::client::observe::{AttemptEvent, BreakerEvent, CallEvent, Observer};
use herald::contract::{BreakerPolicy, ClientPolicy, MethodContract, RetryPolicy, RpcKind};
use herald::server::RunningServer;
use herald::{Code, Context, Error, Server};
use herald_example_cache::accounts::accounts_server::{Accounts, AccountsServer};
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};
use tokio::time::Instant;

/// The path every test contract calls: the Accounts service's one method.
pub const PATH: &str = "/accounts.Accounts/GetByToken";

/// A contract for `PATH` with the given client policy.
pub const fn contract(deadline_ms: u64, client: ClientPolicy) -> MethodContract {
    MethodContract {
        service: "accounts.Accounts",
        method: "GetByToken",
        path: PATH,
        kind: RpcKind::Unary,
        deadline: Some(Duration::from_millis(deadline_ms)),
        client,
    }
}

pub const fn retry(
    max_attempts: u32,
    initial_ms: u64,
    max_ms: u64,
    retriable: &'static [Code],
) -> Option<RetryPolicy> {
    Some(RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(initial_ms),
        max_backoff: Duration::from_millis(max_ms),
        multiplier: 2.0,
        retriable,
    })
}

pub const fn breaker(
    window_ms: u64,
    ratio: f64,
    minimum: u32,
    open_ms: u64,
) -> Option<BreakerPolicy> {
    Some(BreakerPolicy {
        window: Duration::from_millis(window_ms),
        failure_ratio: ratio,
        minimum_requests: minimum,
        open_for: Duration::from_millis(open_ms),
    })
}

pub fn request() -> GetByTokenRequest {
    GetByTokenRequest {
        token: "tok".into(),
    }
}

/// How a backend answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Ok = 0,
    Unavailable = 1,
    Internal = 2,
}

/// An Accounts handler answering with its own name as the account's name.
#[derive(Clone)]
pub struct Backend {
    pub name: &'static str,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    calls: AtomicUsize,
    mode: AtomicU8,
    delay_ms: AtomicU64,
    arrivals: Mutex<Vec<Instant>>,
    /// Each call's `grpc-timeout`, as it arrived.
    budgets: Mutex<Vec<String>>,
}

impl Backend {
    pub fn new(name: &'static str) -> Backend {
        Backend {
            name,
            state: Arc::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn arrivals(&self) -> Vec<Instant> {
        self.state.arrivals.lock().expect("lock").clone()
    }

    /// Each call's `grpc-timeout` header ("" when it had none), in arrival order.
    pub fn budgets(&self) -> Vec<String> {
        self.state.budgets.lock().expect("lock").clone()
    }
}

impl Accounts for Backend {
    async fn get_by_token(
        &self,
        ctx: &Context,
        _request: GetByTokenRequest,
    ) -> Result<Account, Error<AccountsError>> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        let budget = ctx
            .request_header("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        self.state
            .budgets
            .lock()
            .expect("lock")
            .push(budget.to_owned());
        self.state
            .arrivals
            .lock()
            .expect("lock")
            .push(Instant::now());
        let delay = self.state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        match self.state.mode.load(Ordering::SeqCst) {
            1 => Err(Error::unavailable(format!("{} is failing", self.name))),
            2 => Err(Error::internal(format!("{} is broken", self.name))),
            _ => Ok(Account {
                id: "acct".into(),
                name: self.name.into(),
                max_cache_keys: 1,
            }),
        }
    }
}

/// Serves `backend` on `addr` (port 0 for any).
pub async fn serve_at(addr: &str, backend: Backend) -> RunningServer {
    try_serve_at(addr, backend)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

/// Serves `backend` on `addr`, if it can be bound.
pub async fn try_serve_at(
    addr: &str,
    backend: Backend,
) -> Result<RunningServer, herald::server::BuildError> {
    Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .add_service(AccountsServer::new(backend))
        .bind(addr)
        .await
}

/// A backend on its own runtime and thread, which [`Crashable::crash`] drops at once: every
/// connection closes without GOAWAY, calls in flight die with it — a process crash.
pub struct Crashable {
    pub addr: SocketAddr,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Crashable {
    pub fn start(backend: Backend) -> Crashable {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let server = runtime.block_on(async move {
                let server = serve_at("127.0.0.1:0", backend).await;
                addr_tx.send(server.local_addr()).expect("send addr");
                let _ = killed.await;
                server
            });
            // The runtime goes first: its tasks (the connections) are dropped mid-flight.
            drop(runtime);
            drop(server);
        });
        let addr = addr_rx.recv().expect("backend address");
        Crashable {
            addr,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    pub fn crash(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("backend thread");
        }
    }
}

impl Drop for Crashable {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

/// Records what the channel reports.
#[derive(Default)]
pub struct Recorder {
    pub attempts: Mutex<Vec<AttemptEvent>>,
    pub calls: Mutex<Vec<CallEvent>>,
    pub breakers: Mutex<Vec<BreakerEvent>>,
}

impl Recorder {
    pub fn attempts(&self) -> Vec<AttemptEvent> {
        self.attempts.lock().expect("lock").clone()
    }

    pub fn calls(&self) -> Vec<CallEvent> {
        self.calls.lock().expect("lock").clone()
    }

    pub fn breakers(&self) -> Vec<BreakerEvent> {
        self.breakers.lock().expect("lock").clone()
    }
}

impl Observer for Recorder {
    fn attempt(&self, event: &AttemptEvent) {
        self.attempts.lock().expect("lock").push(event.clone());
    }

    fn call(&self, event: &CallEvent) {
        self.calls.lock().expect("lock").push(event.clone());
    }

    fn breaker(&self, event: &BreakerEvent) {
        self.breakers.lock().expect("lock").push(event.clone());
    }
}

/// Polls `condition` every 10 ms for up to `limit`; whether it became true.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}
