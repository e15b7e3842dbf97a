//! The properties the fuzz targets check, one function per parser of outside bytes.
//!
//! Not part of the API. The cargo-fuzz targets in `fuzz/` call these with libFuzzer's
//! inputs, and `tests/fuzz_seeds.rs` replays the checked-in seeds through them on stable, so
//! an input that once crashed stays a regression test. Each function returns quietly for an
//! input the parser refuses, and panics when a parser panics or breaks a property.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::contract::{MethodContract, RpcKind};
use crate::limits::gcra::Gcra;
use crate::limits::policy::{Acl, Compiled, Verdict};
use crate::limits::{Limits, LimitsConfig, Rate};
use crate::tls::TrustDomain;
use crate::tls::spiffe::valid_name;
use crate::{Context, DRY_RUN, Identity, Propagation, REQUEST_ID, timeout};

/// The methods the fuzzed limits files are compiled against, as a server serving them would.
static METHODS: [&MethodContract; 3] = [&GET, &DUMP, &LOOKUP];
static GET: MethodContract = method("cache.Cache", "Get", "/cache.Cache/Get");
static DUMP: MethodContract = method("cache.Cache", "Dump", "/cache.Cache/Dump");
static LOOKUP: MethodContract = method(
    "accounts.Accounts",
    "GetByToken",
    "/accounts.Accounts/GetByToken",
);

/// The method the fuzzed request metadata arrives for; its deadline caps `grpc-timeout`.
static SERVED: MethodContract = MethodContract {
    deadline: Some(Duration::from_millis(500)),
    ..method("cache.Cache", "Get", "/cache.Cache/Get")
};

/// The largest `grpc-timeout` there is: eight nines of hours.
const MAX_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// A limits file, as text: parsed, then compiled against [`METHODS`] and its ACLs and rates
/// applied, as a server does at start and on reload.
///
/// # Panics
/// When the parser or the compiled policy panics, or a compiled value breaks its invariant.
pub fn limits_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match LimitsConfig::parse(text, "fuzz") {
        Ok(config) => config,
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with("fuzz: "), "{message}");
            return;
        }
    };
    let _ = Limits::from_config(config.clone());
    let Ok(compiled) = Compiled::new(&config, &METHODS) else {
        return;
    };
    assert_eq!(compiled.methods.len(), METHODS.len());
    let mut callers = vec![None, Some(Identity::new("web"))];
    for (_, service) in config.services() {
        for (who, _) in service.default().rate_acls() {
            callers.push(Some(Identity::new(who)));
        }
    }
    for (policy, method) in compiled.methods.iter().zip(METHODS) {
        if let Some(admission) = &policy.admission {
            assert!(admission.max_concurrency >= 1, "{admission:?}");
            // Admission adds the queue timeout to now for every waiter.
            assert!(
                Instant::now()
                    .checked_add(admission.queue_timeout)
                    .is_some(),
                "{admission:?}"
            );
        }
        assert!(
            !matches!(policy.acl, Acl::AllowAll),
            "a limits file compiled to allow-all for {}",
            method.path
        );
        for caller in &callers {
            if let Verdict::Allowed(Rate::PerSecond(rate)) =
                policy.acl.verdict(caller.as_ref(), method)
            {
                let _ = Gcra::new(rate).try_acquire();
            }
        }
        let _ = policy.describe();
    }
}

/// A `grpc-timeout` value: a parsed value formats back to itself within the precision of the
/// unit chosen; and, read as a duration (the first 12 bytes), any budget formats to a value
/// that parses to no more than the budget.
///
/// # Panics
/// When the parser or the formatter panics, or a round trip breaks the properties.
pub fn grpc_timeout(data: &[u8]) {
    if let Ok(parsed) = timeout::parse(data) {
        assert!(parsed <= MAX_TIMEOUT, "{parsed:?} parsed from {data:?}");
        round_trip(parsed);
    }
    if let Some((secs, rest)) = data.split_first_chunk::<8>()
        && let Some((nanos, _)) = rest.split_first_chunk::<4>()
    {
        let nanos = u32::from_le_bytes(*nanos) % 1_000_000_000;
        round_trip(Duration::new(u64::from_le_bytes(*secs), nanos));
    }
}

/// A SPIFFE ID, and a DER certificate carrying one: a URI read as an identity writes back as
/// the same URI, and a certificate yields an identity or an error, never a panic.
///
/// # Panics
/// When the parsers panic, or an identity does not round-trip.
pub fn spiffe_identity(data: &[u8]) {
    let domain = TrustDomain::new("herald.local").expect("a valid trust domain");
    if let Ok(uri) = std::str::from_utf8(data)
        && let Ok(identity) = domain.identity_of(uri)
    {
        assert_eq!(domain.spiffe_id(identity.as_str()), uri);
        assert_valid_identity(&identity);
    }
    match domain.identity_in_cert(data) {
        Ok(identity) => {
            assert_valid_identity(&identity);
            let uri = domain.spiffe_id(identity.as_str());
            assert_eq!(domain.identity_of(&uri), Ok(identity));
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// Request headers, one `name: value` per line: the server's [`Context`] read from them,
/// then the headers of a child call written from it.
///
/// Headers that HTTP would not carry (an invalid name or value) are dropped, as hyper does.
///
/// # Panics
/// When reading or writing the metadata panics, or the context disagrees with the headers:
/// its deadline, request id and propagated headers.
pub fn request_metadata(data: &[u8]) {
    let headers = header_map(data);
    let arrival = Instant::now();
    let propagation = Propagation::default();
    let sent = headers
        .get(timeout::GRPC_TIMEOUT)
        .map(|v| timeout::parse(v.as_bytes()));
    let ctx = match Context::from_request(&headers, arrival, &SERVED, None, &propagation, true) {
        Ok(ctx) => ctx,
        Err(_) => {
            assert!(
                matches!(sent, Some(Err(_))),
                "refused without a bad timeout"
            );
            return;
        }
    };
    let own = arrival + SERVED.deadline.expect("the served method has a deadline");
    let expected = match sent {
        Some(Ok(sent)) => own.min(arrival + sent),
        Some(Err(_)) => panic!("a malformed grpc-timeout was accepted"),
        None => own,
    };
    assert_eq!(ctx.deadline(), Some(expected));

    let id = ctx.request_id();
    assert!(
        (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()),
        "request id {id:?}"
    );
    // A peer's id is kept when it is 1 to 128 visible ASCII characters, else replaced.
    let theirs = headers
        .get(REQUEST_ID)
        .filter(|v| (1..=128).contains(&v.len()) && v.as_bytes().iter().all(u8::is_ascii_graphic));
    match theirs {
        Some(theirs) => assert_eq!(theirs.as_bytes(), id.as_bytes()),
        None => assert!(
            id.len() == crate::context::REQUEST_ID_DIGITS
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "request id {id:?} is not a fresh one"
        ),
    }

    for name in headers.keys() {
        let allowed = propagation.headers().contains(name);
        assert_eq!(
            ctx.header(name.as_str()),
            headers.get(name).filter(|_| allowed),
            "{name}"
        );
    }
    let dry_run = headers
        .get(DRY_RUN)
        .is_some_and(|v| v.as_bytes() == b"1" || v.as_bytes().eq_ignore_ascii_case(b"true"));
    assert_eq!(ctx.is_dry_run(), dry_run);

    let cap = Duration::from_millis(100);
    let mut out = HeaderMap::new();
    let now = tokio::time::Instant::now();
    ctx.write_child_headers(
        &mut out,
        ctx.child_deadline(now, Some(cap)),
        None,
        ctx.trace(),
    );
    let budget = out
        .get(timeout::GRPC_TIMEOUT)
        .map(|v| timeout::parse(v.as_bytes()));
    assert!(
        matches!(budget, Some(Ok(b)) if b <= cap),
        "child grpc-timeout {budget:?}"
    );
    assert_eq!(
        out.get(REQUEST_ID).map(HeaderValue::as_bytes),
        Some(id.as_bytes())
    );
    for name in propagation.headers() {
        assert_eq!(out.get(name), headers.get(name), "{name}");
    }
}

const fn method(service: &'static str, method: &'static str, path: &'static str) -> MethodContract {
    MethodContract::bare(service, method, path, RpcKind::Unary)
}

/// `format` then `parse`: never more than `budget`, less by under one unit of the unit
/// chosen, and that unit the finest one that fits in eight digits.
fn round_trip(budget: Duration) {
    let text = timeout::format(budget);
    let sent = timeout::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("{budget:?} formatted as {text:?}: {e}"));
    if budget.is_zero() {
        // Zero is not a valid value on the wire: the least there is.
        assert_eq!(sent, Duration::from_nanos(1), "{text}");
        return;
    }
    if budget >= MAX_TIMEOUT {
        assert_eq!(sent, MAX_TIMEOUT, "{budget:?} formatted as {text}");
        return;
    }
    let (unit, finer) = match text.as_bytes().last() {
        Some(b'n') => (1, None),
        Some(b'u') => (1_000, Some(1)),
        Some(b'm') => (1_000_000, Some(1_000)),
        Some(b'S') => (1_000_000_000, Some(1_000_000)),
        Some(b'M') => (60_000_000_000, Some(1_000_000_000)),
        Some(b'H') => (3_600_000_000_000, Some(60_000_000_000)),
        _ => panic!("{budget:?} formatted as {text:?}"),
    };
    let (budget_ns, sent_ns) = (budget.as_nanos(), sent.as_nanos());
    assert!(sent_ns <= budget_ns, "{budget:?} formatted as {text}");
    assert!(budget_ns - sent_ns < unit, "{budget:?} formatted as {text}");
    if let Some(finer) = finer {
        assert!(
            budget_ns / finer > 99_999_999,
            "{budget:?} formatted as {text}: a finer unit fits"
        );
    }
}

/// What the limits file accepts as an identity: `name`, `user.name` or `host.name`.
fn assert_valid_identity(identity: &Identity) {
    let name = identity.as_str();
    let ok = match name.split_once('.') {
        Some(("user" | "host", rest)) => valid_name(rest),
        Some(_) => false,
        None => valid_name(name),
    };
    assert!(ok, "identity {name:?}");
}

/// `name: value` lines; a line without a colon, or not valid HTTP, is skipped.
fn header_map(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

/// A legacy-bridge request: the first line is its `content-type`, the rest its body. The
/// content type is classified; the body is unframed as a gRPC response would be (a frame
/// that parses re-frames to the same bytes), and read as JSON for a real message
/// (`grpc.health.v1.HealthCheckRequest`): what parses encodes, and its JSON reads back to the
/// same encoding.
pub fn bridge_request(data: &[u8]) {
    use crate::server::bridge::{format_of, json, wire};

    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (content_type, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(content_type) {
        headers.insert(http::header::CONTENT_TYPE, value);
    }
    let _ = format_of(&headers);

    let bytes = bytes::Bytes::copy_from_slice(body);
    if let Ok(message) = wire::unframe(bytes.clone()) {
        assert_eq!(
            wire::frame(&message),
            bytes,
            "unframe then frame changed the bytes"
        );
    }

    // Decoded once: the descriptors are the fixture, not the input.
    static SCHEMAS: std::sync::OnceLock<json::Schemas> = std::sync::OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        json::Schemas::new([tonic_health::pb::FILE_DESCRIPTOR_SET])
            .expect("tonic-health's descriptors decode")
    });
    let (input, _) = schemas
        .method("/grpc.health.v1.Health/Check")
        .expect("Health/Check is described");
    if let Ok(encoded) = json::to_protobuf(&input, body) {
        let text = json::to_json(&input, encoded.clone()).expect("what encodes decodes");
        let again = json::to_protobuf(&input, &text).expect("JSON we wrote reads back");
        assert_eq!(again, encoded, "JSON round trip changed the message");
    }
}
