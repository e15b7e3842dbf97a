//! Retries, as the method's contract says and no more.
//!
//! An attempt that failed is tried again only when all of these hold:
//!
//! - **it may be**: the method is idempotent and the code is one of the contract's
//!   retriable codes — or the attempt provably never reached a server's handler (see
//!   [`unsent`](crate::client::unsent)), which makes any method safe to try again;
//! - **attempts are left**: the contract's `max_attempts`, capped at
//!   [`MAX_ATTEMPTS`](crate::contract::MAX_ATTEMPTS) (5) whatever it says;
//! - **the budget allows it**: the channel's [`RetryBudget`] is not spent;
//! - **the server does not object**: a `grpc-retry-pushback-ms` trailer replaces the
//!   backoff with its value, and a negative or malformed one forbids the retry (gRPC A6);
//! - **there is time**: the backoff ends before the call's deadline. Each attempt is also
//!   bounded by that same deadline, which the whole loop runs under.
//!
//! A method without a retry policy makes one attempt (a request a closing connection
//! handed back unsent is still re-sent by the balancer, which costs no attempt).
//!
//! Unary and server-streaming requests are replayed by re-sending the message (the caller's
//! request is cloned per attempt); client and bidirectional streams by re-sending the messages
//! kept so far ([`replay`](crate::client::replay)), until the response begins or too much was
//! sent to keep. A failure after the response began (a stream broken midway) is not retried:
//! the caller has seen part of the answer.

mod backoff;
mod budget;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::Code;
use crate::client::observe::{AttemptEvent, Next, Observer};
use crate::client::unsent::is_unsent;
use crate::contract::{MAX_ATTEMPTS, MethodContract};

pub use budget::RetryBudget;

/// The trailer by which a server paces retries.
const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// What one call's attempts need from the channel.
pub(crate) struct Retries<'a> {
    pub(crate) method: &'static MethodContract,
    pub(crate) deadline: Option<Instant>,
    pub(crate) budget: &'a RetryBudget,
    pub(crate) observer: &'a dyn Observer,
    /// Whether another attempt could send the same requests (asked after each failure: a
    /// streamed request stops being replayable once too much of it was sent).
    pub(crate) replayable: &'a (dyn Fn() -> bool + Sync),
    /// Attempts started, for the call's own report.
    pub(crate) started: &'a AtomicU32,
    /// When the call started: the first attempt's start too.
    pub(crate) call_started: Instant,
}

// === impl Retries ===

impl Retries<'_> {
    /// Attempts allowed for this call.
    fn max_attempts(&self) -> u32 {
        match &self.method.client.retry {
            Some(policy) => policy.max_attempts.clamp(1, MAX_ATTEMPTS),
            None => 1,
        }
    }

    /// Runs `attempt` until it succeeds or may not be retried: the last attempt's result,
    /// and when it ended.
    pub(crate) async fn run<T, F, Fut>(&self, mut attempt: F) -> (Result<T, tonic::Status>, Instant)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let max = self.max_attempts();
        let mut number = 0;
        let mut started = self.call_started;
        loop {
            number += 1;
            self.started.store(number, Ordering::Relaxed);
            let result = attempt().await;
            let ended = Instant::now();
            let latency = ended.saturating_duration_since(started);
            let status = match result {
                Ok(response) => {
                    self.budget.deposit();
                    self.report(number, Code::Ok, latency, false, Next::Done);
                    return (Ok(response), ended);
                }
                Err(status) => status,
            };
            let code = Code::from_tonic(status.code());
            let unsent = is_unsent(&status);
            let next = self.next(number, max, code, unsent, &status, ended);
            self.report(number, code, latency, unsent, next);
            match next {
                Next::Retry(delay) => tokio::time::sleep(delay).await,
                _ => return (Err(status), ended),
            }
            started = Instant::now();
        }
    }

    /// What follows failed attempt `number` of `max`.
    fn next(
        &self,
        number: u32,
        max: u32,
        code: Code,
        unsent: bool,
        status: &tonic::Status,
        now: Instant,
    ) -> Next {
        let Some(policy) = &self.method.client.retry else {
            return Next::Done;
        };
        if !may_retry(self.method, code, unsent) || !(self.replayable)() {
            return Next::Done;
        }
        // Every retriable failure takes a token, the last attempt's too: the budget
        // measures the service's health, not this call's.
        let within_budget = self.budget.withdraw();
        if number >= max {
            return Next::AttemptsExhausted;
        }
        if !within_budget {
            return Next::Throttled;
        }
        let delay = match pushback(status) {
            Some(Ok(delay)) => delay,
            Some(Err(())) => return Next::PushedBack,
            None => backoff::delay(policy, number, rand::random::<f64>()),
        };
        if self
            .deadline
            .is_some_and(|deadline| now + delay >= deadline)
        {
            return Next::NoTimeLeft;
        }
        Next::Retry(delay)
    }

    fn report(&self, attempt: u32, code: Code, latency: Duration, unsent: bool, next: Next) {
        self.observer.attempt(&AttemptEvent {
            method: self.method,
            attempt,
            code,
            latency,
            unsent,
            next,
        });
    }
}

/// Whether a failure with `code` may be tried again, attempts and budget permitting.
pub(crate) fn may_retry(method: &MethodContract, code: Code, unsent: bool) -> bool {
    if code == Code::Ok {
        return false;
    }
    if unsent && code == Code::Unavailable {
        return true;
    }
    method.client.idempotent
        && method
            .client
            .retry
            .as_ref()
            .is_some_and(|policy| policy.retriable.contains(&code))
}

/// The server's pushback: `None` without one, `Err` when it forbids retrying.
fn pushback(status: &tonic::Status) -> Option<Result<Duration, ()>> {
    let value = status.metadata().get(PUSHBACK)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
            .ok_or(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ClientPolicy, RetryPolicy, RpcKind};

    const fn method(idempotent: bool) -> MethodContract {
        MethodContract {
            service: "t.S",
            method: "M",
            path: "/t.S/M",
            kind: RpcKind::Unary,
            deadline: Some(Duration::from_secs(1)),
            client: ClientPolicy {
                timeout: None,
                idempotent,
                retry: Some(RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(10),
                    max_backoff: Duration::from_millis(100),
                    multiplier: 2.0,
                    retriable: &[Code::Unavailable, Code::ResourceExhausted],
                }),
                circuit_breaker: None,
            },
        }
    }

    static IDEMPOTENT: MethodContract = method(true);
    static NOT_IDEMPOTENT: MethodContract = method(false);

    #[test]
    fn only_idempotent_methods_retry_their_codes_but_any_retries_what_was_never_sent() {
        assert!(may_retry(&IDEMPOTENT, Code::Unavailable, false));
        assert!(may_retry(&IDEMPOTENT, Code::ResourceExhausted, false));
        assert!(!may_retry(&IDEMPOTENT, Code::Internal, false));
        assert!(!may_retry(&IDEMPOTENT, Code::Ok, false));
        assert!(!may_retry(&NOT_IDEMPOTENT, Code::Unavailable, false));
        assert!(may_retry(&NOT_IDEMPOTENT, Code::Unavailable, true));
        assert!(!may_retry(&NOT_IDEMPOTENT, Code::DeadlineExceeded, true));
    }

    #[test]
    fn pushback_replaces_the_backoff_or_forbids_the_retry() {
        let with = |value: &'static str| {
            let mut status = tonic::Status::unavailable("busy");
            status
                .metadata_mut()
                .insert(PUSHBACK, value.parse().expect("ascii"));
            status
        };
        assert_eq!(pushback(&with("250")), Some(Ok(Duration::from_millis(250))));
        assert_eq!(pushback(&with("-1")), Some(Err(())));
        assert_eq!(pushback(&with("soon")), Some(Err(())));
        assert_eq!(pushback(&tonic::Status::unavailable("busy")), None);
    }
}
