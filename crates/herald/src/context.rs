//! The request's context: what travels with a call across services.
//!
//! A handler receives the [`Context`] of its request; passing it to a client call makes that
//! call a child of the request: its `grpc-timeout` is the smaller of the caller's remaining
//! budget and the callee's method deadline, and it carries the request id and the
//! allow-listed headers (a dry-run flag, a tenant) onward — across any number of hops.
//! Calls that start work of their own (a CLI, a cron job) use [`Context::background`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::call_metadata::{CallMetadata, MetadataCapture, ResponseMetadata};
use crate::contract::MethodContract;
use crate::header_names;
use crate::identity::Identity;
use crate::timeout;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";
/// Header that asks every service on the way to do no side effect ("1" or "true").
pub const DRY_RUN: &str = "herald-dry-run";
/// Header naming the tenant on whose behalf the request runs.
pub const TENANT: &str = "herald-tenant";

/// The longest request id accepted from a peer; longer ones are replaced by a fresh one.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The length of a request id herald makes: 96 random bits in base64url.
pub(crate) const REQUEST_ID_DIGITS: usize = 16;

/// A call's context: deadline, request id, caller identity and propagated headers.
///
/// Cheap to clone (one reference count).
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

/// Which incoming headers a server copies into the [`Context`] and so onto outgoing calls.
#[derive(Clone, Debug)]
pub struct Propagation {
    headers: Arc<[HeaderName]>,
}

#[derive(Clone)]
struct Inner {
    deadline: Option<Instant>,
    request_id: HeaderValue,
    caller: Option<Identity>,
    propagated: Vec<(HeaderName, HeaderValue)>,
    method: Option<&'static MethodContract>,
    /// The request's span, when tracing is on: the parent of every child call.
    trace: Option<crate::observe::trace::Trace>,
    /// The served call's request headers and response additions (empty in a derived context).
    call: CallMetadata,
    /// Where calls made with this context record their response metadata, if asked.
    capture: Option<MetadataCapture>,
}

// === impl Context ===

impl Context {
    /// A root context: no deadline (the callee's method deadline still applies), a fresh
    /// request id, nothing propagated.
    pub fn background() -> Context {
        Context {
            inner: Arc::new(Inner {
                deadline: None,
                request_id: new_request_id(),
                caller: None,
                propagated: Vec::new(),
                method: None,
                trace: None,
                call: CallMetadata::default(),
                capture: None,
            }),
        }
    }

    /// The context of an incoming request, read from its headers before the body is decoded.
    ///
    /// The deadline is the earlier of `grpc-timeout` (counted from `arrival`) and the
    /// method's own deadline. With `traced`, the request's server span starts here (when
    /// tracing is installed).
    ///
    /// # Errors
    /// A malformed `grpc-timeout` header.
    pub(crate) fn from_request(
        headers: &HeaderMap,
        arrival: Instant,
        method: &'static MethodContract,
        caller: Option<Identity>,
        propagation: &Propagation,
        traced: bool,
    ) -> Result<Context, timeout::MalformedTimeout> {
        let read = ReadHeaders::of(headers, propagation);
        let sent = match read.timeout {
            Some(value) => Some(arrival + timeout::parse(value.as_bytes())?),
            None => None,
        };
        let own = method.deadline.map(|d| arrival + d);
        let request_id = read
            .request_id
            .filter(|id| valid_request_id(id))
            .cloned()
            .unwrap_or_else(new_request_id);
        let propagated = read.propagated;
        let trace = if traced {
            crate::observe::trace::server_span(
                headers,
                read.traceparent,
                method,
                caller.as_ref(),
                request_id.to_str().unwrap_or(""),
            )
        } else {
            None
        };
        Ok(Context {
            inner: Arc::new(Inner {
                deadline: earliest(sent, own),
                request_id,
                caller,
                propagated,
                method: Some(method),
                trace,
                call: CallMetadata::default(),
                capture: None,
            }),
        })
    }

    /// This context with a deadline `timeout` from now, or its own if that is earlier.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Context {
        self.with_deadline(Instant::now() + timeout)
    }

    /// This context with `deadline`, or its own if that is earlier: a child never gets more
    /// time than its parent.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Context {
        let inner = Arc::make_mut(&mut self.inner);
        inner.deadline = earliest(inner.deadline, Some(deadline));
        self
    }

    /// This context with a header propagated to every call made with it (and onward, by
    /// servers whose [`Propagation`] allows it), replacing an earlier value of that header.
    ///
    /// The names gRPC and HTTP/2 own (`content-type`, `te`, `grpc-*`) and those herald writes
    /// on every call itself (`x-request-id`, `traceparent`, `tracestate`) are not carried: the
    /// context is returned unchanged.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Context {
        if !may_propagate(&name) {
            return self;
        }
        let inner = Arc::make_mut(&mut self.inner);
        inner.propagated.retain(|(n, _)| *n != name);
        inner.propagated.push((name, value));
        self
    }

    /// This context, recording the response metadata of the calls made with it (initial
    /// and trailing, merged) into the returned capture: for clients that read what a server
    /// sends beside its messages.
    #[must_use]
    pub fn capture_response_metadata(mut self) -> (Context, MetadataCapture) {
        let capture = MetadataCapture::default();
        Arc::make_mut(&mut self.inner).capture = Some(capture.clone());
        (self, capture)
    }

    pub(crate) fn capture(&self) -> Option<&MetadataCapture> {
        self.inner.capture.as_ref()
    }

    /// This context with the dry-run flag set.
    #[must_use]
    pub fn with_dry_run(self) -> Context {
        self.with_header(
            HeaderName::from_static(DRY_RUN),
            HeaderValue::from_static("1"),
        )
    }

    /// When the call must be done by, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// Time left before the deadline (zero once it passed); `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.inner
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.inner.deadline.is_some_and(|d| d <= Instant::now())
    }

    /// The request id, taken from the caller or made here.
    pub fn request_id(&self) -> &str {
        // Only visible ASCII is ever stored (checked or generated).
        self.inner.request_id.to_str().unwrap_or("")
    }

    /// Who is calling, when the transport says (mutual TLS); `None` on plaintext.
    pub fn caller(&self) -> Option<&Identity> {
        self.inner.caller.as_ref()
    }

    /// The method being served, for a handler's context; `None` for a background context.
    pub fn method(&self) -> Option<&'static MethodContract> {
        self.inner.method
    }

    /// A propagated header's value.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.inner
            .propagated
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v)
    }

    /// A header (metadata entry) of the request this handler serves, whatever its name;
    /// `None` when absent, and in a context that serves no request.
    pub fn request_header(&self, name: &str) -> Option<&HeaderValue> {
        self.inner.call.request()?.get(name)
    }

    /// Every header of the request this handler serves.
    pub fn request_headers(&self) -> Option<&HeaderMap> {
        self.inner.call.request()
    }

    /// Adds initial metadata to the response (a header sent before the first message). For
    /// a unary or client-streaming method, call it before the handler returns; for a
    /// server stream, before returning the stream. Names gRPC owns (`grpc-status`,
    /// `content-type`, ...) are ignored. Binary values go in names ending `-bin`, base64.
    pub fn set_response_header(&self, name: HeaderName, value: HeaderValue) {
        self.inner.call.add(false, name, value);
    }

    /// Adds trailing metadata to the response (sent with the status, also after an error);
    /// a stream's handler may add it until the stream ends.
    pub fn set_response_trailer(&self, name: HeaderName, value: HeaderValue) {
        self.inner.call.add(true, name, value);
    }

    /// Whether to compress this (unary) response when the server compresses and the caller
    /// accepts it: `false` sends it uncompressed, e.g. because it is already compressed data.
    pub fn set_response_compression(&self, compress: bool) {
        self.inner.call.set_compression(compress);
    }

    pub(crate) fn set_request_headers(&self, headers: HeaderMap) {
        self.inner.call.set_request(headers);
    }

    pub(crate) fn take_response_metadata(&self) -> Option<Box<ResponseMetadata>> {
        self.inner.call.take_response()
    }

    pub(crate) fn response_compression(&self) -> Option<bool> {
        self.inner.call.compression()
    }

    pub(crate) fn take_response_headers(&self) -> Option<HeaderMap> {
        self.inner.call.take_headers()
    }

    pub(crate) fn take_response_trailers(&self) -> Option<HeaderMap> {
        self.inner.call.take_trailers()
    }

    /// Whether the caller asked for no side effects.
    pub fn is_dry_run(&self) -> bool {
        self.header(DRY_RUN)
            .is_some_and(|v| v.as_bytes() == b"1" || v.as_bytes().eq_ignore_ascii_case(b"true"))
    }

    /// The deadline of a child call capped at `cap` by its contract: never later than this
    /// context's own.
    pub(crate) fn child_deadline(&self, now: Instant, cap: Option<Duration>) -> Option<Instant> {
        earliest(self.inner.deadline, cap.map(|c| now + c))
    }

    /// Writes what a child call with `deadline` carries: `grpc-timeout` (the time left now,
    /// so write it as late as possible before sending), the request id, the propagated
    /// headers and `traceparent` for `trace` — the call's own span when it has one (a herald
    /// channel's call), else this context's ([`Context::trace`]).
    ///
    /// `steady`: the method's own timeout, when the deadline is that timeout counted from
    /// the start of a call microseconds ago and this is its first attempt. Such a budget is
    /// the same on every call, and goes out as [`timeout::repeating_header_value`] (rounded,
    /// indexable) of the timeout less a nanosecond: rounding down to three figures then takes
    /// 0.1–1 % off the timeout, more than the microseconds since the call started, which are
    /// not measured (that would be a clock read per call). Any other budget is measured now,
    /// exact and never indexed.
    pub(crate) fn write_child_headers(
        &self,
        headers: &mut HeaderMap,
        deadline: Option<Instant>,
        steady: Option<Duration>,
        trace: Option<&crate::observe::trace::Trace>,
    ) {
        let budget = match (steady, deadline) {
            (Some(timeout), _) => Some(timeout::repeating_header_value(
                timeout.saturating_sub(Duration::from_nanos(1)),
            )),
            (None, Some(deadline)) => Some(timeout::header_value(
                deadline.saturating_duration_since(Instant::now()),
            )),
            (None, None) => None,
        };
        if let Some(budget) = budget {
            headers.insert(header_names::GRPC_TIMEOUT.clone(), budget);
        }
        // Never-indexed for HPACK, as `grpc-timeout`: ids of root calls differ every time.
        headers.insert(header_names::REQUEST_ID.clone(), {
            let mut id = self.inner.request_id.clone();
            id.set_sensitive(true);
            id
        });
        for (name, value) in &self.inner.propagated {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(trace) = trace {
            crate::observe::trace::inject(trace, headers);
        }
    }

    /// The request's trace context, when tracing is on.
    pub(crate) fn trace(&self) -> Option<&crate::observe::trace::Trace> {
        self.inner.trace.as_ref()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("request_id", &self.request_id())
            .field("remaining", &self.remaining())
            .field("caller", &self.inner.caller)
            .field("method", &self.inner.method.map(MethodContract::full_name))
            .field("propagated", &self.inner.propagated)
            .finish()
    }
}

// === impl Propagation ===

impl Propagation {
    /// Propagates exactly these headers — less those a context cannot carry (see
    /// [`Context::with_header`]).
    pub fn new(headers: impl IntoIterator<Item = HeaderName>) -> Propagation {
        Propagation {
            headers: headers.into_iter().filter(may_propagate).collect(),
        }
    }

    /// The headers propagated.
    pub fn headers(&self) -> &[HeaderName] {
        &self.headers
    }
}

/// What a server reads of a request's headers, found in one pass over them.
///
/// The headers a request arrives with are few (its pseudo-headers are not among them): one
/// pass comparing names — most differ from the wanted ones in kind or length at once — costs
/// less than a lookup per wanted name, each hashing the name and probing the map (five
/// lookups were ~1.5 % of a small call's instructions on the server).
struct ReadHeaders<'a> {
    timeout: Option<&'a HeaderValue>,
    request_id: Option<&'a HeaderValue>,
    traceparent: bool,
    /// The first value of each name `Propagation` carries, in its order.
    propagated: Vec<(HeaderName, HeaderValue)>,
}

impl<'a> ReadHeaders<'a> {
    fn of(headers: &'a HeaderMap, propagation: &Propagation) -> Self {
        let mut read = ReadHeaders {
            timeout: None,
            request_id: None,
            traceparent: false,
            propagated: Vec::new(),
        };
        // A name sent twice is met first with its first value, as `HeaderMap::get` answers.
        for (name, value) in headers {
            if *name == header_names::GRPC_TIMEOUT {
                read.timeout.get_or_insert(value);
            } else if *name == header_names::REQUEST_ID {
                read.request_id.get_or_insert(value);
            } else if *name == header_names::TRACEPARENT {
                read.traceparent = true;
            } else if propagation.headers.contains(name)
                && !read.propagated.iter().any(|(seen, _)| seen == name)
            {
                read.propagated.push((name.clone(), value.clone()));
            }
        }
        if read.propagated.len() > 1 {
            let position = |name: &HeaderName| propagation.headers.iter().position(|p| p == name);
            read.propagated.sort_by_key(|(name, _)| position(name));
        }
        read
    }
}

impl Default for Propagation {
    /// The dry-run flag and the tenant.
    fn default() -> Self {
        Propagation::new([
            HeaderName::from_static(DRY_RUN),
            HeaderName::from_static(TENANT),
        ])
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Whether a context may carry `name` to the calls made with it: not a name gRPC or HTTP/2
/// own, nor one herald writes on every call (the client's balancer writes the context's
/// headers after tonic's own, so one of these would replace them).
fn may_propagate(name: &HeaderName) -> bool {
    /// Beyond gRPC's own: what tonic also sets or drops, and what herald writes itself.
    const ALSO_OWNED: [&str; 5] = [
        "user-agent",
        "grpc-message-type",
        REQUEST_ID,
        "traceparent",
        "tracestate",
    ];
    let name = name.as_str();
    !crate::call_metadata::RESERVED.contains(&name) && !ALSO_OWNED.contains(&name)
}

fn valid_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn new_request_id() -> HeaderValue {
    /// base64url's digits (RFC 4648 §5): safe in URLs, file names and log queries.
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 96 random bits: in a fleet making a million calls a second, two of a day's ids are the
    // same with a chance of about one in 20 million. Sixteen characters rather than 32 hex
    // digits: every call sends its id, Huffman-coded by HPACK (never indexed, it differs every
    // time) and decoded by the server, byte by byte, and every access line carries it.
    let id: u128 = rand::random();
    let mut text = [0u8; REQUEST_ID_DIGITS];
    for (i, digit) in text.iter_mut().enumerate() {
        *digit = DIGITS[((id >> (6 * i)) & 0x3f) as usize];
    }
    // One reference-counted allocation holding the digits: every call made with the context
    // sends a clone. (A value copied from the stack would take a second allocation, to be
    // shared, on its first clone.)
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text))
        .expect("base64url digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ClientPolicy, RpcKind};

    static METHOD: MethodContract = MethodContract {
        service: "t.S",
        method: "M",
        path: "/t.S/M",
        kind: RpcKind::Unary,
        deadline: Some(Duration::from_millis(500)),
        client: ClientPolicy {
            timeout: None,
            idempotent: false,
            retry: None,
            circuit_breaker: None,
        },
    };

    fn incoming(headers: &[(&'static str, &'static str)]) -> Context {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        Context::from_request(
            &map,
            Instant::now(),
            &METHOD,
            None,
            &Propagation::default(),
            true,
        )
        .expect("valid headers")
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_is_the_earlier_of_the_header_and_the_method() {
        let ctx = incoming(&[("grpc-timeout", "100m")]);
        assert_eq!(ctx.remaining(), Some(Duration::from_millis(100)));
        let ctx = incoming(&[("grpc-timeout", "10S")]);
        assert_eq!(ctx.remaining(), Some(Duration::from_millis(500)));
        let ctx = incoming(&[]);
        assert_eq!(ctx.remaining(), Some(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(ctx.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn a_context_does_not_carry_the_names_grpc_and_herald_own() {
        let value = HeaderValue::from_static("1");
        let mut ctx =
            Context::background().with_header(HeaderName::from_static("x-tenant"), value.clone());
        let owned = [
            "content-type",
            "te",
            "grpc-status",
            "grpc-timeout",
            "x-request-id",
            "traceparent",
        ];
        for name in owned {
            ctx = ctx.with_header(HeaderName::from_static(name), value.clone());
        }
        let mut out = HeaderMap::new();
        ctx.write_child_headers(
            &mut out,
            Some(Instant::now() + Duration::from_secs(1)),
            None,
            None,
        );
        assert_eq!(out["x-tenant"], "1");
        assert_eq!(out["x-request-id"], ctx.request_id());
        assert_eq!(out["grpc-timeout"], "1000000u");
        for name in ["content-type", "te", "grpc-status", "traceparent"] {
            assert!(!out.contains_key(name), "{name}");
        }

        let propagation = Propagation::new(
            ["te", "x-tenant", "grpc-timeout", "content-type"].map(HeaderName::from_static),
        );
        assert_eq!(propagation.headers(), [HeaderName::from_static("x-tenant")]);
    }

    #[tokio::test(start_paused = true)]
    async fn child_headers_never_exceed_the_parent_budget() {
        let ctx = incoming(&[
            ("grpc-timeout", "80m"),
            ("x-request-id", "abc"),
            (DRY_RUN, "1"),
        ]);
        tokio::time::advance(Duration::from_millis(30)).await;
        let mut out = HeaderMap::new();
        ctx.write_child_headers(
            &mut out,
            ctx.child_deadline(Instant::now(), Some(Duration::from_millis(100))),
            None,
            None,
        );
        let sent = |out: &HeaderMap| timeout::parse(out["grpc-timeout"].as_bytes()).expect("valid");
        assert_eq!(sent(&out), Duration::from_millis(50));
        assert_eq!(out["x-request-id"], "abc");
        assert_eq!(out[DRY_RUN], "1");
        assert!(ctx.is_dry_run());

        let mut out = HeaderMap::new();
        ctx.write_child_headers(
            &mut out,
            ctx.child_deadline(Instant::now(), Some(Duration::from_millis(20))),
            None,
            None,
        );
        assert_eq!(sent(&out), Duration::from_millis(20));
    }

    #[test]
    fn new_request_ids_are_16_base64url_digits_and_differ() {
        let ids: Vec<_> = (0..64).map(|_| new_request_id()).collect();
        for id in &ids {
            let text = id.to_str().expect("ascii");
            assert_eq!(text.len(), REQUEST_ID_DIGITS, "{text}");
            assert!(
                text.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
                "{text}"
            );
            assert!(valid_request_id(id));
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Every digit position varies: all 96 bits are used, none is stuck.
        for position in 0..REQUEST_ID_DIGITS {
            let digits: std::collections::HashSet<_> =
                ids.iter().map(|id| id.as_bytes()[position]).collect();
            assert!(digits.len() > 8, "position {position}: {digits:?}");
        }
    }

    #[test]
    fn only_allow_listed_headers_propagate_and_bad_ids_are_replaced() {
        let ctx = incoming(&[("x-secret", "s"), (TENANT, "acme"), ("x-request-id", "a b")]);
        assert!(ctx.header("x-secret").is_none());
        assert_eq!(
            ctx.header(TENANT).map(HeaderValue::as_bytes),
            Some(&b"acme"[..])
        );
        assert_ne!(ctx.request_id(), "a b");
        assert_eq!(ctx.request_id().len(), REQUEST_ID_DIGITS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_sent_twice_counts_by_its_first_value_as_a_lookup_would() {
        let mut map = HeaderMap::new();
        // Appended, not inserted: each name twice, the tenant before the dry-run flag.
        for (name, value) in [
            (TENANT, "first-tenant"),
            ("grpc-timeout", "100m"),
            (REQUEST_ID, "first-id"),
            (DRY_RUN, "1"),
            (TENANT, "second-tenant"),
            ("grpc-timeout", "300m"),
            (REQUEST_ID, "second-id"),
            (DRY_RUN, "0"),
        ] {
            map.append(name, HeaderValue::from_static(value));
        }
        let ctx = Context::from_request(
            &map,
            Instant::now(),
            &METHOD,
            None,
            &Propagation::default(),
            false,
        )
        .expect("valid headers");
        for name in [TENANT, DRY_RUN] {
            assert_eq!(ctx.header(name), map.get(name), "{name}");
        }
        assert_eq!(ctx.request_id(), "first-id");
        assert_eq!(ctx.remaining(), Some(Duration::from_millis(100)));
        // Carried on in the propagation's order (dry-run, tenant), whatever the request's.
        let carried: Vec<_> = ctx
            .inner
            .propagated
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(carried, [DRY_RUN, TENANT]);
    }

    #[test]
    fn malformed_timeout_is_refused() {
        let mut map = HeaderMap::new();
        map.insert("grpc-timeout", HeaderValue::from_static("soon"));
        let err = Context::from_request(
            &map,
            Instant::now(),
            &METHOD,
            None,
            &Propagation::default(),
            true,
        );
        assert!(err.is_err());
    }
}
