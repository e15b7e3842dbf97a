//! Hooks for client-side metrics: an [`Observer`] the channel calls as calls happen.
//!
//! The channel reports, synchronously and on the caller's task:
//!
//! - every **attempt** of a call ([`AttemptEvent`]): its number, code, latency, whether it
//!   provably never reached a server, and whether (and after how long) it will be retried —
//!   or why not;
//! - every **call** ([`CallEvent`]): its final code, total latency and attempts made;
//! - **breaker** state changes per method ([`BreakerEvent`]), and calls refused while open
//!   (a call event with `breaker_open`);
//! - **endpoint** counts of the service when they change ([`EndpointsEvent`]): listed,
//!   ready, ejected (from the channel's background task).
//!
//! Every method has an empty default, so an observer implements only what it counts.
//! Observers run on the request path: keep them to counters and histograms (atomics), and
//! never block. A Prometheus observer is `impl Observer for Metrics { ... }` plus
//! [`Builder::observer`](crate::client::Builder::observer).

use std::time::Duration;

use crate::Code;
use crate::client::breaker::BreakerState;
use crate::contract::MethodContract;

/// Receives the channel's events. See the [module docs](self).
pub trait Observer: Send + Sync + 'static {
    /// An attempt of a call ended.
    fn attempt(&self, event: &AttemptEvent) {
        let _ = event;
    }

    /// A call ended (after all its attempts, or refused by an open breaker).
    fn call(&self, event: &CallEvent) {
        let _ = event;
    }

    /// A method's circuit breaker changed state.
    fn breaker(&self, event: &BreakerEvent) {
        let _ = event;
    }

    /// The endpoints of the service changed (listed, ready or ejected).
    fn endpoints(&self, event: &EndpointsEvent<'_>) {
        let _ = event;
    }
}

/// One attempt of a call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptEvent {
    /// The method called.
    pub method: &'static MethodContract,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The attempt's code ([`Code::Ok`] on success).
    pub code: Code,
    /// From the attempt's start to its end.
    pub latency: Duration,
    /// The attempt failed without reaching any server's handler.
    pub unsent: bool,
    /// What happens next.
    pub next: Next,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// The call is done (success, or a failure nobody may retry).
    Done,
    /// Another attempt starts after this delay.
    Retry(Duration),
    /// The contract's attempts (at most 5) are used up.
    AttemptsExhausted,
    /// The channel's retry budget is spent: the service is failing for many calls.
    Throttled,
    /// The next attempt could not start before the call's deadline.
    NoTimeLeft,
    /// The server's `grpc-retry-pushback-ms` said not to retry.
    PushedBack,
}

/// One call, all attempts included.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallEvent {
    /// The method called.
    pub method: &'static MethodContract,
    /// The final code.
    pub code: Code,
    /// From the call's start to its end.
    pub latency: Duration,
    /// Attempts made (0 when no attempt was made: an open breaker, a spent deadline).
    pub attempts: u32,
    /// The call was refused by the method's open circuit breaker.
    pub breaker_open: bool,
}

/// A method's circuit breaker changed state.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BreakerEvent {
    /// The method.
    pub method: &'static MethodContract,
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
}

/// The endpoints of a channel's service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointsEvent<'a> {
    /// The service, as the channel names it (`:authority`).
    pub service: &'a str,
    /// Endpoints discovery lists.
    pub total: usize,
    /// Endpoints with a ready connection.
    pub ready: usize,
    /// Endpoints ejected by outlier detection.
    pub ejected: usize,
}
