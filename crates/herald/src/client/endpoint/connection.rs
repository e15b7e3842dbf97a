//! One HTTP/2 connection to an endpoint, kept up by a task that reconnects with gRPC's
//! backoff.
//!
//! The task owns the connection: it connects, publishes the ready `SendRequest`, drives the
//! connection until it ends, and starts over. The [`Slot`] is what callers see: ready (with
//! a sender), connecting, or failed with the reason — and a failure is *sticky*: a slot
//! that failed stays failed, while it retries, until a connection is up again (gRPC's
//! "sticky TRANSIENT_FAILURE"), so calls fail fast with the reason instead of waiting on a
//! server that is down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::TokioTimer;
use tokio::time::Instant;
use tonic::body::Body;
use tower::Service;

use crate::client::balance::Changes;
use crate::client::connector::Connector;
use crate::client::endpoint::backoff::{ConnectBackoff, MIN_CONNECT_TIMEOUT};
use crate::client::endpoint::hpack_names::IndexedNames;

/// A connection that lived less than this did not prove the server healthy: the backoff
/// is not reset, so a server that accepts and at once closes is not hammered.
const STABLE: Duration = Duration::from_secs(1);

/// What callers see of one connection.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    /// The per-call header names the current connection has let HPACK index.
    names: IndexedNames,
}

/// A ready connection, for one request.
pub(crate) struct ReadyConnection<'a> {
    pub(crate) sender: SendRequest<Body>,
    /// Its per-call header names: see `hpack_names`.
    pub(crate) names: &'a IndexedNames,
}

#[derive(Clone, Debug, Default)]
pub(crate) enum SlotState {
    /// The first connection attempt, or a reconnect after a clean close.
    #[default]
    Connecting,
    Ready(SendRequest<Body>),
    /// The last attempt failed (or the connection broke), for this reason.
    Failed(Arc<str>),
}

/// A fresh connection: its sender, and the future that drives it until it closes.
pub(crate) struct Connected {
    pub(crate) sender: SendRequest<Body>,
    pub(crate) driver: BoxFuture<'static, Result<(), String>>,
}

// === impl Slot ===

impl Slot {
    pub(crate) fn state(&self) -> SlotState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The connection, if it is up.
    pub(crate) fn ready(&self) -> Option<ReadyConnection<'_>> {
        match &*self.state.lock().ok()? {
            SlotState::Ready(sender) if !sender.is_closed() => Some(ReadyConnection {
                sender: sender.clone(),
                names: &self.names,
            }),
            _ => None,
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| matches!(&*s, SlotState::Ready(sender) if !sender.is_closed()))
    }

    fn set(&self, state: SlotState, changes: &Changes) {
        if let Ok(mut current) = self.state.lock() {
            if matches!(state, SlotState::Ready(_)) {
                self.names.reset();
            }
            *current = state;
        }
        changes.notify();
    }

    /// Marks a failure unless a newer connection is already up.
    fn fail(&self, why: Arc<str>, changes: &Changes) {
        self.set(SlotState::Failed(why), changes);
    }
}

/// Keeps `slot` connected for as long as the task runs, connecting with `connect`.
pub(crate) async fn maintain<C, F>(slot: Arc<Slot>, changes: Arc<Changes>, mut connect: C)
where
    C: FnMut() -> F,
    F: Future<Output = Result<Connected, String>>,
{
    let mut backoff = ConnectBackoff::new();
    loop {
        let started = Instant::now();
        let wait = backoff.next_wait();
        let give_up = started + wait.max(MIN_CONNECT_TIMEOUT);
        match tokio::time::timeout_at(give_up, connect()).await {
            Ok(Ok(Connected { sender, driver })) => {
                slot.set(SlotState::Ready(sender), &changes);
                let up = Instant::now();
                let ended = driver.await;
                match ended {
                    Ok(()) => slot.set(SlotState::Connecting, &changes),
                    Err(why) => slot.fail(why.into(), &changes),
                }
                if up.elapsed() >= STABLE {
                    backoff.reset();
                    continue;
                }
            }
            Ok(Err(why)) => slot.fail(why.into(), &changes),
            Err(_) => slot.fail(
                format!("connecting timed out after {:?}", give_up - started).into(),
                &changes,
            ),
        }
        tokio::time::sleep_until(started + wait).await;
    }
}

/// Spawns hyper's futures boxed.
///
/// hyper's HTTP/2 client future is one enum for the connection's task and for each request's
/// (its response, its body): as large as its largest variant, which holds the whole
/// connection — kilobytes. Spawned as is, every request's future is copied at that size down
/// tokio's spawn path into its task, and its task's stage is rewritten at that size when it
/// ends: a visible share of a small call. Boxed first it is copied once, and the task holds a
/// pointer (as tonic's own executor does).
#[derive(Clone, Copy, Debug)]
struct BoxingExecutor;

impl<F> hyper::rt::Executor<F> for BoxingExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Box::pin(future));
    }
}

/// Connects to `addr` with `connector` (TCP, then TLS when configured), then HTTP/2.
pub(crate) fn connect(
    connector: &Connector,
    addr: SocketAddr,
) -> impl Future<Output = Result<Connected, String>> + Send + use<> {
    let mut connector = connector.clone();
    let last_failure = connector.last_failure();
    let keepalive = connector.keepalive();
    async move {
        let uri = format!("http://{addr}")
            .parse::<http::Uri>()
            .map_err(|e| format!("{addr}: {e}"))?;
        let io = connector
            .call(uri)
            .await
            .map_err(|e| describe(addr, &*e, None))?;
        let io_failure = io.failure();
        let mut http2 = hyper::client::conn::http2::Builder::new(BoxingExecutor);
        http2.timer(TokioTimer::new());
        keepalive.apply(&mut http2);
        let (sender, connection) = http2
            .handshake::<_, Body>(io)
            .await
            .map_err(|e| describe(addr, &e, None))?;
        let driver = Box::pin(async move {
            let ended = connection.await.map_err(|e| {
                let why = describe(addr, &e, last_failure.recent());
                // Noted before the broken streams' owners run, so their errors can say it.
                last_failure.note(causes(&e));
                why
            });
            failed_if_io_did(ended, addr, io_failure.get())
        });
        Ok(Connected { sender, driver })
    }
}

/// How a connection ended: hyper's word, unless it says "closed cleanly" of a connection whose
/// I/O failed (see [`Io::failure`](crate::client::connector::Io::failure)). A connection
/// that failed makes its slot fail fast with the reason; one that closed cleanly would leave
/// calls waiting, through the reconnect backoff, for a server that refused them.
fn failed_if_io_did(
    ended: Result<(), String>,
    addr: SocketAddr,
    io_failure: Option<&str>,
) -> Result<(), String> {
    match (ended, io_failure) {
        (Ok(()), Some(why)) => Err(format!("{addr}: the connection failed: {why}")),
        (ended, _) => ended,
    }
}

/// `error` with its causes, in words, and what the I/O layer saw.
pub(crate) fn describe(
    addr: SocketAddr,
    error: &(dyn std::error::Error + 'static),
    io_failure: Option<String>,
) -> String {
    let mut message = format!("{addr}: {}", causes(error));
    if let Some(why) = io_failure {
        message.push_str(&format!(" (the connection failed: {why})"));
    }
    message
}

/// `error` and its sources, each said once: hyper's errors put the cause in a source.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::endpoint::backoff::{MAX_BACKOFF, grow};

    /// Attempts that fail at once: their start times, under a paused clock.
    async fn failing_attempts(count: usize, hang: bool) -> Vec<Instant> {
        let times = Arc::new(Mutex::new(Vec::new()));
        let slot = Arc::new(Slot::default());
        let changes = Arc::new(Changes::default());
        let task = tokio::spawn(maintain(slot.clone(), changes, {
            let times = times.clone();
            move || {
                times.lock().expect("lock").push(Instant::now());
                async move {
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    Err::<Connected, _>("connection refused".to_owned())
                }
            }
        }));
        while times.lock().expect("lock").len() < count {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        task.abort();
        assert!(
            matches!(slot.state(), SlotState::Failed(why) if &*why == "connection refused" || hang)
        );
        times.lock().expect("lock").clone()
    }

    #[test]
    fn a_connection_whose_io_failed_did_not_close_cleanly() {
        let addr: SocketAddr = ([127, 0, 0, 1], 7).into();
        let alert = "the peer refused the handshake: alert UnknownCA";
        assert_eq!(failed_if_io_did(Ok(()), addr, None), Ok(()));
        assert_eq!(
            failed_if_io_did(Ok(()), addr, Some(alert)),
            Err(format!("127.0.0.1:7: the connection failed: {alert}"))
        );
        // hyper's own error, when it has one, is kept: it says more (and already names the
        // I/O failure).
        assert_eq!(
            failed_if_io_did(Err("hyper's".into()), addr, Some(alert)),
            Err("hyper's".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_back_off_as_grpc_specifies() {
        let times = failing_attempts(25, false).await;
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // The sleeps of the paused clock resolve on 1 ms ticks.
        let tick = Duration::from_millis(1);
        assert!(gaps[0] >= Duration::from_secs(1) && gaps[0] <= Duration::from_secs(1) + tick);
        let mut backoff = Duration::from_secs(1);
        for gap in &gaps[1..] {
            backoff = grow(backoff);
            assert!(
                *gap + tick >= backoff.mul_f64(0.8) && *gap <= backoff.mul_f64(1.2) + tick,
                "gap {gap:?} for backoff {backoff:?}"
            );
        }
        assert_eq!(backoff, MAX_BACKOFF, "25 attempts reach the cap");
        assert!(gaps.iter().all(|g| *g <= MAX_BACKOFF.mul_f64(1.2) + tick));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_gets_twenty_seconds_then_the_next_starts() {
        let times = failing_attempts(3, true).await;
        for gap in times.windows(2).map(|w| w[1] - w[0]) {
            assert!(
                gap >= MIN_CONNECT_TIMEOUT && gap <= MIN_CONNECT_TIMEOUT + Duration::from_millis(1),
                "{gap:?}"
            );
        }
    }
}
