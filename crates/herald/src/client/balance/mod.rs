//! Client-side load balancing over the endpoints discovery lists.
//!
//! [`Balance`] is the tower service at the bottom of a channel: each request picks an
//! endpoint, then a ready connection of it, and goes out. On the way:
//!
//! - **Which endpoints are candidates.** Endpoints with a ready connection that outlier
//!   detection has not ejected; when every ready endpoint is ejected, the ejected ones (never
//!   all of them out). With no ready endpoint, a call waits while some endpoint is still
//!   making its first connection, and fails fast with UNAVAILABLE — naming each endpoint's
//!   last failure — once they have all failed (gRPC's sticky transient failure).
//! - **Which candidate.** Power of two choices on outstanding requests (the default), the
//!   same weighted by peak-EWMA latency, or round robin: see [`LoadBalancing`].
//! - **Requests the connection gave back.** A connection can close between the pick and the
//!   write; hyper then hands the request back unsent, and it goes to another pick at once
//!   (at most [`RESENDS`] times) — a transparent retry that spends no attempt.
//! - **What it learns.** Each response reports back: the latency to its headers (for
//!   peak-EWMA), and its outcome for outlier detection, read from `grpc-status` in the
//!   headers or trailers.
//!
//! Endpoint sets come from [`Discovery`]; the first request starts it (so a channel can be
//! built outside a runtime), and a task diffs each update into the set.

mod body;
mod discovery;
mod outlier;
mod pick;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Request, Response};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tonic::body::Body;

use crate::Code;
use crate::client::connector::Connector;
use crate::client::discover::{Discovery, DiscoveryError};
use crate::client::endpoint::{self, Endpoint, ReadyConnection, State, hpack_names};
use crate::client::observe::Observer;
use crate::client::unsent::{self, never_processed};
use crate::{header_names, timeout};

pub(crate) use body::ResponseBody;
pub(crate) use body::{InFlight, Outcome};
pub(crate) use outlier::Health;
pub use outlier::OutlierDetection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requests handed back unsent by a closing connection are re-picked this many times.
pub(crate) const RESENDS: usize = 3;

/// How a channel chooses among ready endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadBalancing {
    /// Two endpoints at random; the one with fewer requests outstanding.
    #[default]
    P2cOutstanding,
    /// Two endpoints at random; the one with the lower peak-EWMA latency times its
    /// outstanding requests (linkerd's choice): steers away from an endpoint turning slow
    /// before its queue grows.
    P2cPeakEwma,
    /// Each ready endpoint in turn.
    RoundRobin,
}

/// Balances requests over the endpoints of one service. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Balance {
    shared: Arc<Shared>,
    /// What the requests of one call carry from its context ([`Balance::for_call`]).
    call: Option<CallHeaders>,
}

/// What a call's requests carry from its context: `grpc-timeout`, the request id, the
/// propagated headers and `traceparent`.
///
/// Written by the balancer as each request reaches it, not put in the tonic request's
/// metadata: tonic sifts a non-empty metadata map for reserved headers on every request (six
/// hashed lookups), and an exact budget is best measured as late as possible before sending.
#[derive(Clone)]
pub(crate) struct CallHeaders {
    pub(crate) ctx: crate::Context,
    pub(crate) deadline: Option<Instant>,
    /// The method's own timeout, when the deadline is that timeout from the call's start
    /// and this is its first attempt: a budget that repeats from call to call (see
    /// `Context::write_child_headers`).
    pub(crate) steady: Option<std::time::Duration>,
    /// The call's span, when tracing is on: the callee's parent.
    pub(crate) trace: Option<crate::observe::trace::Trace>,
}

/// Settings of a balancer, validated by the channel's builder.
pub(crate) struct Settings {
    pub(crate) policy: LoadBalancing,
    pub(crate) outlier: OutlierDetection,
    pub(crate) connections: usize,
    pub(crate) connector: Connector,
    pub(crate) observer: Arc<dyn Observer>,
    /// The runtime the channel was built on, where its discovery and connections run: not the
    /// runtime of whichever task makes the first call (a server's handler pool, which stops
    /// with its server).
    pub(crate) runtime: Option<tokio::runtime::Handle>,
}

/// Wakes calls waiting for an endpoint when any endpoint's state (or the set) changes.
#[derive(Debug)]
pub(crate) struct Changes(watch::Sender<u64>);

pub(crate) struct Shared {
    authority: Authority,
    /// `http://authority`: the origin of the channel's requests.
    origin: http::Uri,
    settings: Settings,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    changes: Arc<Changes>,
    next: AtomicUsize,
    started: AtomicBool,
    pending: Mutex<Option<Discovery>>,
    task: Mutex<Option<AbortHandle>>,
    /// Whether discovery has given a set yet.
    discovered: AtomicBool,
    discovery_error: Mutex<Option<DiscoveryError>>,
}

enum Pick {
    Ready(Arc<Endpoint>),
    Wait,
    Fail(String),
}

/// A request handed to an endpoint: on its way (the future of its answer), or back for lack
/// of a ready connection.
#[allow(
    clippy::large_enum_variant,
    reason = "the future of an answer holds the request until it is written: never the smaller"
)]
enum Handed<F> {
    Sending(F),
    NoConnection(Request<Body>),
}

/// What a request sent on a connection came to, short of a failure.
enum Sent {
    Answered(Response<ResponseBody>),
    /// The connection closed before the request was written, and gave it back.
    Returned(Request<Body>),
}

// === impl Balance ===

impl Balance {
    pub(crate) fn new(discovery: Discovery, settings: Settings) -> Balance {
        let authority = discovery.authority.clone();
        let origin = http::Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .expect("an authority with a scheme is a valid origin");
        Balance {
            call: None,
            shared: Arc::new(Shared {
                authority,
                origin,
                settings,
                endpoints: ArcSwap::from_pointee(Vec::new()),
                changes: Arc::new(Changes::default()),
                next: AtomicUsize::new(0),
                started: AtomicBool::new(false),
                pending: Mutex::new(Some(discovery)),
                task: Mutex::new(None),
                discovered: AtomicBool::new(false),
                discovery_error: Mutex::new(None),
            }),
        }
    }

    /// This balancer, writing `call`'s headers on each request.
    pub(crate) fn for_call(&self, call: CallHeaders) -> Balance {
        Balance {
            shared: self.shared.clone(),
            call: Some(call),
        }
    }

    /// `http://authority`: the origin every client of the channel builds its requests on.
    pub(crate) fn origin(&self) -> &http::Uri {
        &self.shared.origin
    }

    /// The endpoints discovery lists now.
    pub(crate) fn endpoints(&self) -> Vec<SocketAddr> {
        self.shared
            .endpoints
            .load()
            .iter()
            .map(|e| e.addr())
            .collect()
    }
}

impl tower::Service<Request<Body>> for Balance {
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is per request: the pick waits (under the call's deadline) in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let mut deadline = None;
        if let Some(call) = &self.call {
            call.ctx.write_child_headers(
                request.headers_mut(),
                call.deadline,
                call.steady,
                call.trace.as_ref(),
            );
            deadline = call.deadline;
        }
        let shared = self.shared.clone();
        // The usual case, decided here: an endpoint ready now, with a connection ready. Only
        // the wait for its answer is boxed, not the loop that waits for endpoints and sends
        // again, whose state (the request among it) is several times larger: every call would
        // copy it into its box.
        shared.ensure_started();
        let mut first_pass = 0;
        if let Pick::Ready(endpoint) = shared.try_pick() {
            let mut names_claimed = false;
            match shared.try_send_on(endpoint, request, None, &mut names_claimed) {
                Handed::Sending(answer) => {
                    return Box::pin(async move {
                        match answer.await {
                            Ok(Sent::Answered(response)) => Ok(response),
                            Ok(Sent::Returned(request)) => {
                                Box::pin(shared.send(request, deadline, 1, names_claimed)).await
                            }
                            Err(status) => Err(status),
                        }
                        .map_err(|status| Box::new(status) as BoxError)
                    });
                }
                Handed::NoConnection(returned) => {
                    request = returned;
                    first_pass = 1;
                }
            }
        }
        Box::pin(async move {
            shared
                .send(request, deadline, first_pass, false)
                .await
                .map_err(|status| Box::new(status) as BoxError)
        })
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("authority", &self.shared.authority)
            .field("policy", &self.shared.settings.policy)
            .field("endpoints", &self.endpoints())
            .finish()
    }
}

// === impl Shared ===

impl Shared {
    /// Sends `request`, of a call with `deadline`, from pass `first_pass` of [`RESENDS`]
    /// (`names_claimed`: the request claimed a connection's per-call header names on an earlier
    /// pass).
    async fn send(
        self: Arc<Self>,
        mut request: Request<Body>,
        deadline: Option<Instant>,
        first_pass: usize,
        mut names_claimed: bool,
    ) -> Result<Response<ResponseBody>, tonic::Status> {
        // The request names the authority already: tonic builds its URI on the channel's
        // origin (`Balance::origin`, given to every client the channel makes).
        // `grpc-timeout` was written as the request arrived (`Balance::call`); should it go
        // out only after a wait for an endpoint or a resend, it is written again with the
        // budget left then.
        for pass in first_pass..RESENDS {
            let (endpoint, waited) = self.pick().await?;
            let refresh = deadline.filter(|_| pass > 0 || waited);
            match self.try_send_on(endpoint, request, refresh, &mut names_claimed) {
                Handed::Sending(answer) => match answer.await? {
                    Sent::Answered(response) => return Ok(response),
                    Sent::Returned(unsent) => request = unsent,
                },
                Handed::NoConnection(returned) => request = returned,
            }
        }
        Err(unsent::unavailable(
            format!(
                "cannot reach {}: connections kept closing before the request was sent",
                self.authority
            ),
            true,
        ))
    }

    /// Sends `request` on a ready connection of `endpoint` — the future of its answer — or
    /// gives the request back when the endpoint has none. `refresh`: the deadline to write
    /// `grpc-timeout` for again, the request having waited.
    fn try_send_on(
        self: &Arc<Self>,
        endpoint: Arc<Endpoint>,
        mut request: Request<Body>,
        refresh: Option<Instant>,
        names_claimed: &mut bool,
    ) -> Handed<impl Future<Output = Result<Sent, tonic::Status>> + use<>> {
        let Some(ReadyConnection { mut sender, names }) = endpoint.ready_connection() else {
            return Handed::NoConnection(request);
        };
        if let Some(deadline) = refresh {
            refresh_timeout(request.headers_mut(), deadline, Instant::now());
        }
        if *names_claimed {
            // Claimed on a connection that gave the request back: not this one's.
            hpack_names::never_index(request.headers_mut());
        }
        *names_claimed = names.claim(request.headers_mut());
        let mut in_flight = InFlight::new(endpoint.clone(), self.clone());
        // Only latency-weighted balancing needs the time a request took.
        let started = (self.settings.policy == LoadBalancing::P2cPeakEwma).then(Instant::now);
        let answer = sender.try_send_request(request);
        Handed::Sending(async move {
            // The connection's handle lives as long as the request, as it always has.
            let _sender = sender;
            match answer.await {
                Ok(response) => {
                    if let Some(started) = started {
                        endpoint.load().observe(started.elapsed());
                    }
                    Ok(Sent::Answered(ResponseBody::wrap(response, in_flight)))
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) => {
                        in_flight.finish(Outcome::Neutral);
                        Ok(Sent::Returned(unsent))
                    }
                    None => {
                        in_flight.finish(Outcome::Failure);
                        let error = error.into_error();
                        let message =
                            endpoint::describe(endpoint.addr(), &error, endpoint.recent_failure());
                        Err(unsent::unavailable(
                            format!("cannot reach {message}"),
                            never_processed(&error),
                        ))
                    }
                },
            }
        })
    }

    /// An endpoint to send to: waits while endpoints are still connecting. With the
    /// endpoint, whether it had to wait.
    async fn pick(self: &Arc<Self>) -> Result<(Arc<Endpoint>, bool), tonic::Status> {
        self.ensure_started();
        // Subscribed only when there is something to wait for; a change between the first
        // try and the subscription is seen by the second try.
        let mut changes = None;
        loop {
            match self.try_pick() {
                Pick::Ready(endpoint) => return Ok((endpoint, changes.is_some())),
                Pick::Fail(why) => return Err(unsent::unavailable(why, true)),
                Pick::Wait => match &mut changes {
                    None => changes = Some(self.changes.0.subscribe()),
                    Some(changes) => {
                        if changes.changed().await.is_err() {
                            return Err(unsent::unavailable("the channel is closed".into(), true));
                        }
                    }
                },
            }
        }
    }

    fn try_pick(&self) -> Pick {
        let endpoints = self.endpoints.load();
        if endpoints.is_empty() {
            if let Some(error) = self.discovery_error.lock().ok().and_then(|e| e.clone()) {
                return Pick::Fail(format!(
                    "no endpoint of {} is known: {error}",
                    self.authority
                ));
            }
            if self.discovered.load(Ordering::Acquire) {
                return Pick::Fail(format!("discovery lists no endpoint of {}", self.authority));
            }
            return Pick::Wait;
        }
        // Only an endpoint ejected once may be ejected now: the clock is read only then.
        let now = endpoints
            .iter()
            .any(|e| e.health().ever_ejected())
            .then(Instant::now);
        let usable =
            |e: &Endpoint| e.is_ready() && !now.is_some_and(|now| e.health().is_ejected(now));
        // The usual case, every endpoint usable: choose among them all, nothing allocated.
        if endpoints.iter().all(|e| usable(e)) {
            let chosen = self.choose(endpoints.len(), |i| &endpoints[i]);
            return Pick::Ready(endpoints[chosen].clone());
        }
        let mut healthy = Vec::with_capacity(endpoints.len());
        let mut ejected = Vec::new();
        for endpoint in endpoints.iter() {
            if endpoint.is_ready() {
                if usable(endpoint) {
                    healthy.push(endpoint);
                } else {
                    ejected.push(endpoint);
                }
            }
        }
        // Outlier detection never takes every endpoint out.
        let candidates = if healthy.is_empty() { ejected } else { healthy };
        if candidates.is_empty() {
            return self.nothing_ready(&endpoints);
        }
        let chosen = self.choose(candidates.len(), |i| candidates[i]);
        Pick::Ready(candidates[chosen].clone())
    }

    /// One of `n` candidates (the `i`-th is `at(i)`), as the channel's policy says.
    fn choose<'a>(&self, n: usize, at: impl Fn(usize) -> &'a Arc<Endpoint>) -> usize {
        match self.settings.policy {
            LoadBalancing::P2cOutstanding => pick::p2c(n, |i| at(i).load().outstanding() as f64),
            LoadBalancing::P2cPeakEwma => pick::p2c(n, |i| at(i).load().peak_ewma_cost()),
            LoadBalancing::RoundRobin => {
                pick::round_robin(n, self.next.fetch_add(1, Ordering::Relaxed))
            }
        }
    }

    fn nothing_ready(&self, endpoints: &[Arc<Endpoint>]) -> Pick {
        let mut failures = Vec::new();
        for endpoint in endpoints {
            match endpoint.state() {
                State::Ready | State::Connecting => return Pick::Wait,
                State::Failed(why) => failures.push(why),
            }
        }
        Pick::Fail(format!(
            "no endpoint of {} is reachable: {}",
            self.authority,
            failures.join("; ")
        ))
    }

    /// Records how a request went on `endpoint`: outlier detection's input.
    pub(crate) fn record(&self, endpoint: &Endpoint, outcome: Outcome) {
        let outlier = &self.settings.outlier;
        match outcome {
            Outcome::Success => endpoint.health().success(),
            Outcome::Neutral => {}
            Outcome::Failure => {
                if !endpoint.health().failure(outlier) {
                    return;
                }
                let now = Instant::now();
                let endpoints = self.endpoints.load();
                let ejected = endpoints
                    .iter()
                    .filter(|e| e.health().is_ejected(now))
                    .count();
                if ejected < outlier.max_ejected(endpoints.len())
                    && let Some(duration) = endpoint.health().eject(outlier, now)
                {
                    tracing::warn!(
                        endpoint = %endpoint.addr(),
                        service = %self.authority,
                        ?duration,
                        "endpoint ejected after consecutive failures"
                    );
                    self.changes.notify();
                }
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(Some(task)) = self.task.lock().map(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// Rewrites `grpc-timeout` with the budget left at `now`: the callee gets only what is left
/// when the request goes out.
fn refresh_timeout(headers: &mut HeaderMap, deadline: Instant, now: Instant) {
    headers.insert(
        header_names::GRPC_TIMEOUT.clone(),
        timeout::header_value(deadline.saturating_duration_since(now)),
    );
}

/// Whether `code`, answered by an endpoint, counts against it for outlier detection: the
/// codes of a server (or its proxy) in trouble, not of a request it judged.
pub(crate) fn is_endpoint_failure(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Internal | Code::DataLoss)
}

// === impl Changes ===

impl Default for Changes {
    fn default() -> Self {
        Changes(watch::channel(0).0)
    }
}

impl Changes {
    pub(crate) fn notify(&self) {
        self.0
            .send_modify(|version| *version = version.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn time_spent_before_the_request_goes_out_comes_off_the_callees_budget() {
        let budget = |headers: &HeaderMap| {
            let value = &headers[&header_names::GRPC_TIMEOUT];
            timeout::parse(value.as_bytes()).expect("a budget")
        };
        let made = Instant::now();
        let deadline = made + Duration::from_millis(100);
        let mut headers = HeaderMap::new();
        refresh_timeout(&mut headers, deadline, made + Duration::from_millis(30));
        assert_eq!(budget(&headers), Duration::from_millis(70));
        // Counted from the deadline, not from the last rewrite.
        refresh_timeout(&mut headers, deadline, made + Duration::from_millis(40));
        assert_eq!(budget(&headers), Duration::from_millis(60));
        // Never below the smallest valid budget.
        refresh_timeout(&mut headers, deadline, made + Duration::from_secs(1));
        assert_eq!(budget(&headers), Duration::from_nanos(1));
        assert!(headers[&header_names::GRPC_TIMEOUT].is_sensitive());
    }

    /// Both ends' HPACK tables: a budget that differs on every call must stay out of them,
    /// one that repeats is best in them.
    #[tokio::test(start_paused = true)]
    async fn only_a_steady_budget_is_written_indexable() {
        let second = Duration::from_secs(1);
        for steady in [None, Some(second)] {
            let mut headers = HeaderMap::new();
            crate::Context::background().write_child_headers(
                &mut headers,
                Some(Instant::now() + second),
                steady,
                None,
            );
            assert!(headers[&header_names::REQUEST_ID].is_sensitive());
            let budget = &headers[&header_names::GRPC_TIMEOUT];
            assert_eq!(budget.is_sensitive(), steady.is_none());
            // A steady budget is the timeout rounded down below itself (the time since the
            // call started is not measured): never more than the time left.
            assert_eq!(budget, if steady.is_some() { "999m" } else { "1000000u" });
        }
    }

    #[tokio::test]
    async fn a_steady_budget_goes_out_by_index_from_the_second_call_on() {
        let ctx = crate::Context::background();
        let timeout = Duration::from_millis(100);
        let blocks = |steady| {
            let headers = (0..2)
                .map(|_| {
                    let mut headers = HeaderMap::new();
                    let deadline = Instant::now() + timeout;
                    ctx.write_child_headers(&mut headers, Some(deadline), steady, None);
                    headers
                })
                .collect();
            crate::client::endpoint::hpack_names::tests::blocks_on_the_wire(headers)
        };
        let (steady, exact) = (blocks(Some(timeout)).await, blocks(None).await);
        // The same request id in all four; the second steady budget is one byte, where an
        // exact one is its name and value spelled out (about 13 bytes).
        assert!(
            steady[1] + 10 <= exact[1],
            "second request's headers: {} bytes steady, {} exact",
            steady[1],
            exact[1]
        );
    }
}
