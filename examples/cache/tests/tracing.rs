//! A two-hop call (client → Cache → Accounts) is one trace: a real OTLP receiver (grpcio +
//! opentelemetry-proto, in Python) gets the client and server spans of both hops, chained,
//! with one trace id. A call its caller did not sample is recorded nowhere down the chain.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use herald::Context;
use herald::observe::{Tracing, TracingConfig};
use herald_example_cache::cache::StoreRequest;
use tokio::io::{AsyncBufReadExt, BufReader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_hop_call_is_one_trace_at_a_real_otlp_receiver() {
    // The Python peers' virtualenv (idempotent; the test command runs it too).
    let setup = std::process::Command::new(repo().join("interop/python/setup-venv"))
        .output()
        .expect("setup-venv");
    assert!(
        setup.status.success(),
        "setup-venv: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = std::env::var_os("HERALD_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv-interop"))
        .join("bin/python");
    let mut collector = tokio::process::Command::new(python)
        .arg(repo().join("interop/python/otlp_collector.py"))
        .args(["--port", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the OTLP receiver");
    let mut lines = BufReader::new(collector.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("receiver starts");
    let port = first
        .expect("read")
        .and_then(|l| l.strip_prefix("LISTENING ").map(str::to_owned))
        .expect("LISTENING <port>");

    let tracing = Tracing::install(TracingConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        sampling_ratio: 1.0,
        service_name: "herald-test".into(),
    })
    .expect("install tracing");

    let services = support::Services::start().await;
    // A caller that did not sample its trace: Cache records nothing and tells Accounts so
    // (had it not, Accounts would start a trace of its own at ratio 1.0 and export a span).
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let mut raw = support::raw_client(&services.cache);
    let mut request = tonic::Request::new(StoreRequest {
        account_token: "tok-bob".into(),
        key: "u".into(),
        value: b"v".to_vec(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{unsampled}-b7ad6b7169203331-00")
            .parse()
            .expect("ascii"),
    );
    raw.ready().await.expect("ready");
    raw.unary::<_, herald_example_cache::cache::StoreResponse, _>(
        request,
        "/cache.Cache/Store".parse().expect("path"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .expect("unsampled store");

    let ctx = Context::background();
    services
        .cache_client()
        .store(
            &ctx,
            StoreRequest {
                account_token: "tok-bob".into(),
                key: "k".into(),
                value: b"v".to_vec(),
            },
        )
        .await
        .expect("store");
    tracing.flush().await.expect("flush spans");

    let mut spans = Vec::new();
    while spans.len() < 4 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("spans arrive within 10 s")
            .expect("read")
            .expect("a line");
        spans.push(serde_json::from_str::<serde_json::Value>(&line).expect("JSON span"));
    }
    // Only the sampled call's four spans: none of the unsampled one's, none of a new trace.
    let more = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await;
    assert!(more.is_err(), "an unexpected span: {more:?}");
    assert!(
        spans.iter().all(|s| s["trace_id"] != unsampled),
        "{spans:?}"
    );
    // SpanKind: 2 server, 3 client.
    let find = |name: &str, kind: i64| {
        spans
            .iter()
            .find(|s| s["name"] == name && s["kind"] == kind)
            .unwrap_or_else(|| panic!("no {name} span of kind {kind} in {spans:?}"))
            .clone()
    };
    // test client → Cache (server) → Cache's call → Accounts (server): one trace, one chain.
    let root = find("cache.Cache/Store", 3);
    let cache = find("cache.Cache/Store", 2);
    let call = find("accounts.Accounts/GetByToken", 3);
    let accounts = find("accounts.Accounts/GetByToken", 2);
    for span in [&cache, &call, &accounts] {
        assert_eq!(span["trace_id"], root["trace_id"], "one trace");
    }
    assert_eq!(
        root["parent_span_id"], "",
        "the test's call starts the trace"
    );
    assert_eq!(
        cache["parent_span_id"], root["span_id"],
        "Cache's server span is a child of the test's call"
    );
    assert_eq!(
        call["parent_span_id"], cache["span_id"],
        "Cache's call to Accounts is a child of Cache's span"
    );
    assert_eq!(
        accounts["parent_span_id"], call["span_id"],
        "Accounts' server span is a child of that call"
    );
    assert_eq!(cache["service"], "herald-test");
    for span in [&root, &cache, &call, &accounts] {
        assert_eq!(
            span["attributes"]["herald.request_id"],
            ctx.request_id(),
            "the request id on every span"
        );
        assert_eq!(span["attributes"]["rpc.system"], "grpc");
        assert_eq!(span["attributes"]["rpc.grpc.status_code"], 0);
    }
    assert_eq!(cache["attributes"]["herald.caller"], "unauthenticated");
    services.shutdown().await;
    collector.kill().await.expect("stop the receiver");
}
