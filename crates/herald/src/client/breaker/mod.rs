//! Circuit breakers, one per method of a channel, from the method's contract.
//!
//! A failing service that keeps receiving full traffic cannot recover, and its callers wait
//! out a timeout per call. The breaker counts the outcomes of calls over a rolling window;
//! when a failure finds at least `minimum_requests` calls made and the share of failures at
//! `failure_ratio` or above, it **opens**: calls fail at once with UNAVAILABLE (saying why and for
//! how long) and nothing is sent. After `open_for` it lets **one probe** call through
//! (half-open) — every other call still fails fast meanwhile; the probe's success closes
//! the breaker with a fresh window, its failure opens it again.
//!
//! What counts: one logical call, after its retries (the breaker sits above the retry
//! loop), failing with a code of a server in trouble — UNAVAILABLE, DEADLINE_EXCEEDED,
//! INTERNAL, UNKNOWN, DATA_LOSS. App errors (NOT_FOUND, a failed precondition) are answers,
//! not failures. RESOURCE_EXHAUSTED is left out on purpose: it is the server pacing this
//! caller (rate limits carry a pushback the retry loop honours), and opening on it would
//! turn a per-caller limit into an outage of every method.

mod window;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::Code;
use crate::contract::{BreakerPolicy, MethodContract};

use window::Window;

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail fast.
    Open,
    /// One probe call is let through; the others fail fast.
    HalfOpen,
}

/// The breaker of one method (a channel keeps one per method: `client::methods`).
pub(crate) struct Breaker {
    method: &'static MethodContract,
    policy: &'static BreakerPolicy,
    /// Whether the state is closed, readable without the lock: a closed breaker (nearly
    /// always) lets a call through and counts its outcome without taking it, so that calls
    /// of one method from many threads do not queue on it. Written under the lock, with the
    /// state.
    closed: AtomicBool,
    /// The outcomes while closed (counted without a lock: see `window`).
    window: Window,
    state: Mutex<State>,
}

enum State {
    Closed,
    Open {
        until: Instant,
        calls: u32,
        failures: u32,
    },
    HalfOpen {
        probing: bool,
    },
}

/// Leave to make one call; report its outcome with [`Permit::record`].
pub(crate) struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    reported: bool,
}

/// A state change, to report to the observer (outside the breaker's lock).
pub(crate) type Transition = (BreakerState, BreakerState);

// === impl Breaker ===

impl Breaker {
    /// `method`'s breaker, closed, if its contract has one.
    pub(crate) fn for_method(method: &'static MethodContract, now: Instant) -> Option<Breaker> {
        let policy = method.client.circuit_breaker.as_ref()?;
        Some(Breaker::new(method, policy, now))
    }

    fn new(method: &'static MethodContract, policy: &'static BreakerPolicy, now: Instant) -> Self {
        Breaker {
            method,
            policy,
            closed: AtomicBool::new(true),
            window: Window::new(policy.window, now),
            state: Mutex::new(State::Closed),
        }
    }

    /// Leave to call, or the message of a fast failure. The permit keeps `self` (the
    /// channel's per-method entry hands each call its own reference).
    /// `now`: the call's start (the caller has read the clock already).
    pub(crate) fn acquire(
        self: Arc<Self>,
        now: Instant,
    ) -> (Result<Permit, String>, Option<Transition>) {
        // A call let through as the breaker opens is one more let through before it opened:
        // its outcome comes late and is not counted (see `record`).
        if self.closed.load(Ordering::Acquire) {
            return (Ok(self.permit(false)), None);
        }
        let Ok(mut state) = self.state.lock() else {
            return (Ok(self.permit(false)), None);
        };
        match *state {
            State::Closed => {
                drop(state);
                (Ok(self.permit(false)), None)
            }
            State::Open {
                until,
                calls,
                failures,
            } if now < until => (
                Err(format!(
                    "circuit breaker of {} is open: {failures} of the last {calls} calls failed; \
                     next probe in {} ms",
                    self.method.full_name(),
                    (until - now).as_millis().max(1)
                )),
                None,
            ),
            State::Open { .. } => {
                *state = State::HalfOpen { probing: true };
                drop(state);
                (
                    Ok(self.permit(true)),
                    Some((BreakerState::Open, BreakerState::HalfOpen)),
                )
            }
            State::HalfOpen { probing: true } => (
                Err(format!(
                    "circuit breaker of {} is half-open: a probe call is in flight",
                    self.method.full_name()
                )),
                None,
            ),
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                drop(state);
                (Ok(self.permit(true)), None)
            }
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        match self.state.lock().map(|state| match *state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }) {
            Ok(state) => state,
            Err(_) => BreakerState::Closed,
        }
    }

    fn permit(self: Arc<Self>, probe: bool) -> Permit {
        Permit {
            breaker: self,
            probe,
            reported: false,
        }
    }

    /// `failed`: `None` when the call says nothing (cancelled by its caller).
    fn record(&self, probe: bool, failed: Option<bool>, now: Instant) -> Option<Transition> {
        if probe {
            return self.record_probe(failed, now);
        }
        // Late outcomes of calls let through before the breaker opened are not counted.
        let failed = failed?;
        if !self.closed.load(Ordering::Acquire) {
            return None;
        }
        let stamp = self.window.count(now, failed);
        // Only a failure can open it: a success never does, even when older successes
        // leaving the window have let the share of failures climb (the next failure opens
        // it then). So a success costs one bucket update, not a sum over the window.
        if !failed {
            return None;
        }
        let (calls, failures) = self.window.totals_at(stamp);
        let tripped = failures > 0
            && calls >= self.policy.minimum_requests.max(1)
            && f64::from(failures) >= self.policy.failure_ratio * f64::from(calls);
        if !tripped {
            return None;
        }
        let mut state = self.state.lock().ok()?;
        if !matches!(*state, State::Closed) {
            // Another call's outcome opened it first.
            return None;
        }
        *state = self.open(now, calls, failures);
        self.closed.store(false, Ordering::Release);
        self.window.clear();
        Some((BreakerState::Closed, BreakerState::Open))
    }

    fn record_probe(&self, failed: Option<bool>, now: Instant) -> Option<Transition> {
        let mut state = self.state.lock().ok()?;
        match failed {
            None => {
                *state = State::HalfOpen { probing: false };
                None
            }
            Some(false) => {
                *state = State::Closed;
                // Emptied before calls are let through, so the new window starts empty.
                self.window.clear();
                self.closed.store(true, Ordering::Release);
                Some((BreakerState::HalfOpen, BreakerState::Closed))
            }
            Some(true) => {
                *state = self.open(now, 1, 1);
                Some((BreakerState::HalfOpen, BreakerState::Open))
            }
        }
    }

    fn open(&self, now: Instant, calls: u32, failures: u32) -> State {
        State::Open {
            until: now + self.policy.open_for.max(Duration::from_millis(1)),
            calls,
            failures,
        }
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("method", &self.method.full_name())
            .field("state", &self.state())
            .finish()
    }
}

// === impl Permit ===

impl Permit {
    /// Reports the call's code: whether it counts as a failure is decided here.
    /// `now`: the call's end.
    pub(crate) fn record(mut self, code: Code, now: Instant) -> Option<Transition> {
        self.reported = true;
        self.breaker.record(self.probe, Some(is_failure(code)), now)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported {
            // Cancelled: a probe's slot is freed for the next call.
            self.breaker.record(self.probe, None, Instant::now());
        }
    }
}

/// Whether `code` counts as a failure of the service: see the module docs.
pub(crate) fn is_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::DataLoss
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::contract::{ClientPolicy, RpcKind};

    static POLICY: BreakerPolicy = BreakerPolicy {
        window: Duration::from_secs(10),
        failure_ratio: 0.5,
        minimum_requests: 4,
        open_for: Duration::from_secs(5),
    };

    /// A method whose breaker opens on four failures in four calls (also `client::methods`'
    /// test's).
    pub(crate) static METHOD: MethodContract = MethodContract {
        service: "t.S",
        method: "M",
        path: "/t.S/M",
        kind: RpcKind::Unary,
        deadline: Some(Duration::from_secs(1)),
        client: ClientPolicy {
            timeout: None,
            idempotent: true,
            retry: None,
            circuit_breaker: Some(BreakerPolicy {
                window: Duration::from_secs(10),
                failure_ratio: 0.5,
                minimum_requests: 4,
                open_for: Duration::from_secs(5),
            }),
        },
    };

    fn call(breaker: &Arc<Breaker>, code: Code) -> Result<Option<Transition>, String> {
        let (permit, _) = breaker.clone().acquire(Instant::now());
        Ok(permit?.record(code, Instant::now()))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_fails_fast_half_opens_and_closes() {
        let breaker = Arc::new(Breaker::new(&METHOD, &POLICY, Instant::now()));
        // Below the minimum: no matter the failures.
        for _ in 0..3 {
            assert_eq!(call(&breaker, Code::Unavailable), Ok(None));
        }
        // The fourth failure reaches the minimum, at a ratio of 1.
        assert_eq!(
            call(&breaker, Code::Unavailable),
            Ok(Some((BreakerState::Closed, BreakerState::Open)))
        );
        let refused = call(&breaker, Code::Ok).expect_err("open");
        assert!(
            refused.contains("4 of the last 4 calls failed"),
            "{refused}"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let (probe, change) = breaker.clone().acquire(Instant::now());
        let probe = probe.expect("a probe after open_for");
        assert_eq!(change, Some((BreakerState::Open, BreakerState::HalfOpen)));
        assert!(
            call(&breaker, Code::Ok)
                .expect_err("one probe at a time")
                .contains("half-open")
        );
        assert_eq!(
            probe.record(Code::Ok, Instant::now()),
            Some((BreakerState::HalfOpen, BreakerState::Closed))
        );
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Closed again: calls go through without the lock.
        assert!(breaker.closed.load(Ordering::Acquire));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_a_cancelled_one_frees_the_slot() {
        let breaker = Arc::new(Breaker::new(&METHOD, &POLICY, Instant::now()));
        for _ in 0..4 {
            let _ = call(&breaker, Code::Internal);
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(5)).await;
        let (probe, _) = breaker.clone().acquire(Instant::now());
        drop(probe.expect("probe"));
        let (probe, _) = breaker.clone().acquire(Instant::now());
        assert_eq!(
            probe
                .expect("the cancelled probe's slot is free")
                .record(Code::Unavailable, Instant::now()),
            Some((BreakerState::HalfOpen, BreakerState::Open))
        );
        assert!(call(&breaker, Code::Ok).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_never_opens_it_the_next_failure_does() {
        let breaker = Arc::new(Breaker::new(&METHOD, &POLICY, Instant::now()));
        for _ in 0..4 {
            assert_eq!(call(&breaker, Code::Ok), Ok(None));
        }
        // Three failures of seven calls: under the ratio.
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..3 {
            assert_eq!(call(&breaker, Code::Unavailable), Ok(None));
        }
        // The four successes leave the ten-second window; the success that then finds three
        // failures in four calls does not open it...
        tokio::time::advance(Duration::from_millis(5500)).await;
        assert_eq!(call(&breaker, Code::Ok), Ok(None));
        assert_eq!(breaker.state(), BreakerState::Closed);
        // ...the next failure (four of five) does.
        let opened = call(&breaker, Code::Unavailable);
        assert_eq!(opened, Ok(Some((BreakerState::Closed, BreakerState::Open))));
        let refused = call(&breaker, Code::Ok).expect_err("open");
        assert!(
            refused.contains("4 of the last 5 calls failed"),
            "{refused}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn app_errors_and_old_failures_do_not_open_it() {
        let breaker = Arc::new(Breaker::new(&METHOD, &POLICY, Instant::now()));
        for _ in 0..10 {
            assert_eq!(call(&breaker, Code::NotFound), Ok(None));
            assert_eq!(call(&breaker, Code::ResourceExhausted), Ok(None));
        }
        for _ in 0..3 {
            let _ = call(&breaker, Code::Unavailable);
        }
        // Twenty answers and three failures: 3/23 < 0.5.
        assert_eq!(breaker.state(), BreakerState::Closed);
        tokio::time::advance(Duration::from_secs(11)).await;
        // The window forgot everything: the minimum is not reached by one failure.
        assert_eq!(call(&breaker, Code::Unavailable), Ok(None));
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
