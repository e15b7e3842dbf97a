//! The legacy HTTP/1.1 bridge, end to end: the same generated client over the bridge or over
//! gRPC (one line apart) gives the same answers — values, app errors, ACL refusals,
//! deadlines — over mutual TLS; JSON callers (curl) get protobuf's JSON mapping and JSON
//! errors; bad input on every path gets a clear status and the server keeps serving; and
//! legacy traffic is counted apart.

mod support;

use std::process::Command;
use std::time::Duration;

use herald::client::Channel;
use herald::limits::{Limits, LimitsConfig};
use herald::server::{Http2Limits, RunningServer};
use herald::tls::{ClientTls, DevCa, KeyAlgorithm, ServerTls, TrustDomain};
use herald::{CallError, Code, Context, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::cache::{CacheError, GetRequest, StoreRequest};
use herald_example_cache::{AccountsService, CacheService};

fn td() -> TrustDomain {
    TrustDomain::new("herald.test").expect("valid trust domain")
}

/// Cache (with its bridge) and Accounts over mutual TLS; user.alice may call everything,
/// user.mallory everything but Get.
async fn secure_services(ca: &DevCa) -> (RunningServer, RunningServer) {
    let tls = |identity: &str| {
        let leaf = ca.issue(identity, KeyAlgorithm::EcdsaP256).expect("leaf");
        ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td()).expect("TLS")
    };
    let accounts = Server::builder()
        .tls(tls("accounts"))
        .allow_all_callers()
        .add_service(AccountsServer::new(AccountsService::demo()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind accounts");
    let cache_identity = client_tls(ca, "cache");
    let accounts_client = AccountsClient::new(
        Channel::tls(accounts.local_addr(), &cache_identity, "accounts").expect("channel"),
    );
    let limits = LimitsConfig::parse(
        "limits:\n  cache.Cache:\n    default:\n      rate_acls: { user.alice: -1, user.mallory: -1 }\n    methods:\n      Get: { rate_acls: { user.alice: -1, user.mallory: 0 } }\n",
        "bridge test",
    )
    .expect("valid limits");
    let cache = Server::builder()
        .tls(tls("cache"))
        .limits(Limits::from_config(limits))
        .legacy_bridge("127.0.0.1:0".parse().expect("address"))
        .add_service(CacheServer::new(CacheService::new(accounts_client)))
        .bind("127.0.0.1:0")
        .await
        .expect("bind cache");
    (accounts, cache)
}

fn client_tls(ca: &DevCa, identity: &str) -> ClientTls {
    let leaf = ca.issue(identity, KeyAlgorithm::EcdsaP256).expect("leaf");
    ClientTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td()).expect("client TLS")
}

fn store(token: &str, key: &str, value: &str) -> StoreRequest {
    StoreRequest {
        account_token: token.into(),
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

fn get(key: &str) -> GetRequest {
    GetRequest { key: key.into() }
}

/// What a call came to, comparable across transports (a local error's wording may differ).
fn outcome<T: std::fmt::Debug>(result: Result<T, CallError<CacheError>>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(e) => format!("{} {:?} {}", e.code(), e.app(), e.message()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_switches_a_client_between_grpc_and_the_bridge_with_the_same_answers() {
    let ca = DevCa::generate(td(), KeyAlgorithm::EcdsaP256).expect("CA");
    let (accounts, cache) = secure_services(&ca).await;
    let bridge = cache.bridge_addr().expect("the bridge listens");
    assert_ne!(bridge, cache.local_addr());
    let alice = client_tls(&ca, "user.alice");
    let mallory = client_tls(&ca, "user.mallory");

    let grpc = CacheClient::new(Channel::tls(cache.local_addr(), &alice, "cache").expect("ch"));
    let legacy = CacheClient::new(Channel::legacy_bridge(bridge, &alice, "cache").expect("ch"));

    let ctx = Context::background();
    for (i, client) in [&grpc, &legacy].into_iter().enumerate() {
        let key = format!("k{i}");
        let stored = client.store(&ctx, store("tok-bob", &key, "v")).await;
        assert!(stored.is_ok(), "{}", outcome(stored));
    }
    let mut answers = Vec::new();
    for client in [&grpc, &legacy] {
        answers.push(vec![
            outcome(client.get(&ctx, get("k0")).await),
            outcome(client.get(&ctx, get("k1")).await),
            // An app error: NOT_FOUND carrying CacheError::NotFound.
            outcome(client.get(&ctx, get("missing")).await),
            // Mapped by Cache from Accounts' UnknownToken.
            outcome(client.store(&ctx, store("tok-nobody", "x", "v")).await),
            // The caller's deadline: tok-slow's lookup takes 250 ms.
            outcome(
                client
                    .store(
                        &Context::background().with_timeout(Duration::from_millis(60)),
                        store("tok-slow", "x", "v"),
                    )
                    .await,
            ),
        ]);
    }
    assert_eq!(answers[0], answers[1], "gRPC and bridge differ");
    assert!(answers[0][0].starts_with("ok "), "{:?}", answers[0]);
    assert!(
        answers[0][2].starts_with("NOT_FOUND Some(NotFound)"),
        "{}",
        answers[0][2]
    );
    assert!(
        answers[0][3].starts_with("UNAUTHENTICATED Some(InvalidToken)"),
        "{}",
        answers[0][3]
    );
    assert!(
        answers[0][4].starts_with("DEADLINE_EXCEEDED"),
        "{}",
        answers[0][4]
    );

    // The ACL applies on the bridge as on gRPC: mallory may store but not get.
    for channel in [
        Channel::tls(cache.local_addr(), &mallory, "cache").expect("ch"),
        Channel::legacy_bridge(bridge, &mallory, "cache").expect("ch"),
    ] {
        let client = CacheClient::new(channel);
        let denied = client.get(&ctx, get("k0")).await.expect_err("denied");
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied}");
        assert!(client.store(&ctx, store("tok-bob", "m", "v")).await.is_ok());
    }
    // Streams are gRPC's: a bridge channel says so at once.
    let refused = legacy
        .dump(&ctx, herald_example_cache::cache::DumpRequest {})
        .await
        .expect_err("no streams on the bridge");
    assert_eq!(refused.code(), Code::Unimplemented);
    assert!(refused.is_local(), "{refused}");

    // The bridge's traffic is counted apart, by path and caller.
    let metrics = cache.metrics_text();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("herald_bridge_requests_total")
                && l.contains(r#"path="/cache.Cache/Get""#)
                && l.contains(r#"caller="user.alice""#)
                && l.contains(r#"code="OK""#)
        })
        .unwrap_or_else(|| panic!("no bridge counter for alice's Gets:\n{metrics}"));
    assert!(
        line.ends_with(" 2"),
        "two OK Gets by alice over the bridge: {line}"
    );
    assert!(
        metrics.contains(r#"caller="user.mallory",format="protobuf",code="PERMISSION_DENIED"} 1"#),
        "{metrics}"
    );

    cache.shutdown().await;
    accounts.shutdown().await;
}

/// Cache with its bridge over plaintext, a small message limit, every caller allowed.
async fn plaintext_services() -> (RunningServer, RunningServer) {
    let accounts = support::serve(AccountsServer::new(AccountsService::demo())).await;
    let accounts_client = AccountsClient::new(support::channel(&accounts));
    let limits = Http2Limits {
        max_decoding_message_size: 4096,
        ..Http2Limits::default()
    };
    let cache = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .http2_limits(limits)
        .legacy_bridge("127.0.0.1:0".parse().expect("address"))
        .add_service(CacheServer::new(CacheService::new(accounts_client)))
        .bind("127.0.0.1:0")
        .await
        .expect("bind cache");
    (accounts, cache)
}

/// curl's answer: (HTTP status, headers, body).
fn curl(url: &str, content_type: &str, body: &[u8]) -> (u16, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("body");
    std::fs::write(&data, body).expect("write body");
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "-X", "POST", "-H"])
        .arg(format!("content-type: {content_type}"))
        .arg("--data-binary")
        .arg(format!("@{}", data.display()))
        .arg(url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_bad_input_over_the_bridge_with_curl() {
    let (accounts, cache) = plaintext_services().await;
    let base = format!("http://{}", cache.bridge_addr().expect("bridge"));
    let url = |method: &str| format!("{base}/cache.Cache/{method}");

    // JSON in, JSON out, protobuf's mapping (bytes as base64).
    let (status, head, body) = curl(
        &url("Store"),
        "application/json",
        br#"{"accountToken": "tok-bob", "key": "greeting", "value": "aGVsbG8="}"#,
    );
    assert_eq!(status, 200, "{head}{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let stored: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(stored["keysUsed"], 1, "{body}");
    let (status, _, body) = curl(&url("Get"), "application/json", br#"{"key": "greeting"}"#);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        serde_json::json!({"key": "greeting", "value": "aGVsbG8="})
    );

    // An app error as JSON, and in headers.
    let (status, head, body) = curl(&url("Get"), "application/json", br#"{"key": "nope"}"#);
    assert_eq!(status, 404);
    assert!(head.contains("grpc-status: 5"), "{head}");
    assert!(
        head.contains("x-herald-app-error: cache_error_not_found"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        serde_json::json!({
            "code": "NOT_FOUND",
            "message": "no entry for key \"nope\"",
            "app_error": "CACHE_ERROR_NOT_FOUND",
            "app_error_domain": "cache.CacheError",
        })
    );

    // Bad input, every kind: a clear status each time.
    let cases: [(&str, &str, &[u8], u16, &str); 8] = [
        (
            "Get",
            "application/json",
            b"{\"key\": ",
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "Get",
            "application/json",
            b"{\"kee\": 1}",
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "Get",
            "application/json",
            b"[1, 2]",
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "Get",
            "text/plain",
            b"key=greeting",
            415,
            "INVALID_ARGUMENT",
        ),
        (
            "Get",
            "application/x-protobuf",
            b"\xff\xff\xff\xff",
            500,
            "INTERNAL",
        ),
        (
            "Get",
            "application/json",
            &[b' '; 5000],
            413,
            "RESOURCE_EXHAUSTED",
        ),
        ("Dump", "application/json", b"{}", 501, "UNIMPLEMENTED"),
        ("Nope", "application/json", b"{}", 404, "UNIMPLEMENTED"),
    ];
    for (method, content_type, body, want_status, want_code) in cases {
        let (status, head, answer) = curl(&url(method), content_type, body);
        assert_eq!(
            status, want_status,
            "{method} {content_type}: {head}{answer}"
        );
        assert!(
            head.contains(&format!(
                "x-herald-status: {}",
                want_code.to_ascii_lowercase()
            )),
            "{method} {content_type}: {head}"
        );
    }

    // Protobuf in and out, as a legacy client sends it; and the server still serves.
    let (status, head, _) = curl(&url("Get"), "application/x-protobuf", b"\x0a\x08greeting");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    let grpc = CacheClient::new(support::channel(&cache));
    let value = grpc
        .get(&Context::background(), get("greeting"))
        .await
        .expect("gRPC still serves");
    assert_eq!(value.value, b"hello");

    cache.shutdown().await;
    accounts.shutdown().await;
}
