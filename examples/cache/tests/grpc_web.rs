//! gRPC-Web from a real browser: headless Chromium (Debian's) runs a page built with a real JS
//! gRPC-Web client (connect-web, from npm, bundled by esbuild) against the Cache example —
//! Get, an app error, and a streamed Dump — served from another origin, so CORS is real.
//! `examples/cache/web/setup` installs Chromium and the npm packages (the test command runs it
//! too).

mod support;

use std::path::Path;
use std::process::Command;

/// The response head curl saw for a POST of `body` (at most 10 s).
fn curl_head(url: &str, content_type: &str, body: &[u8], dir: &Path) -> String {
    let file = dir.join("body");
    std::fs::write(&file, body).expect("write body");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--max-time",
            "10",
            "-H",
            "expect:",
            "-X",
            "POST",
            "-H",
        ])
        .arg(format!("content-type: {content_type}"))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    text.split("\n\n").next().unwrap_or_default().to_owned()
}

use herald::client::Channel;
use herald::server::GrpcWeb;
use herald::{Context, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::cache::{GetRequest, StoreRequest, cache_contract};
use herald_example_cache::{AccountsService, CacheService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_calls_get_and_a_streamed_dump_over_grpc_web() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let setup = Command::new(web.join("setup"))
        .status()
        .expect("run web/setup");
    assert!(setup.success(), "examples/cache/web/setup failed");

    let accounts = support::serve(AccountsServer::new(AccountsService::demo())).await;
    let accounts_client = AccountsClient::new(support::channel(&accounts));
    let cache = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .grpc_web(GrpcWeb::allow_any_origin())
        .add_service(CacheServer::new(CacheService::new(accounts_client)))
        .bind("127.0.0.1:0")
        .await
        .expect("bind cache");
    let client = CacheClient::new(Channel::insecure_plaintext(cache.local_addr()).expect("ch"));
    for (key, value) in [("greeting", "hello"), ("farewell", "goodbye")] {
        let request = StoreRequest {
            account_token: "tok-bob".into(),
            key: key.into(),
            value: value.into(),
        };
        client
            .store(&Context::background(), request)
            .await
            .expect("store");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let descriptors = dir.path().join("cache.fds");
    std::fs::write(&descriptors, cache_contract::SERVICE.descriptor_set).expect("write");

    let server = format!("http://{}", cache.local_addr());
    let run = tokio::process::Command::new("node")
        .arg(web.join("run.mjs"))
        .args([
            "--server",
            &server,
            "--timeout-ms",
            "60000",
            "--descriptors",
        ])
        .arg(&descriptors)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the browser");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "no RESULT line:\n{stdout}\n{}",
                String::from_utf8_lossy(&run.stderr)
            )
        });
    let result: serde_json::Value = serde_json::from_str(result).expect("RESULT is JSON");
    assert!(run.status.success() && result["ok"] == true, "{result:#}");
    let passed: Vec<&str> = result["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    for check in [
        "Get(greeting) == hello",
        "Get(nope) fails with NotFound",
        "Dump streams greeting and farewell, in key order",
    ] {
        assert!(passed.contains(&check), "{check} did not pass: {result:#}");
    }

    // The browser's calls went through the same layers: counted per method.
    let metrics = cache.metrics_text();
    assert!(
        metrics.contains(r#"herald_server_requests_total{service="cache.Cache",method="Dump",caller="unauthenticated",code="OK"} 1"#),
        "{metrics}"
    );
    // Bad gRPC-Web input gets a status, not a hang or a crash.
    let url = format!("{server}/cache.Cache/Get");
    let huge = vec![0u8; 5 << 20];
    let mut oversized = vec![0u8];
    oversized.extend(u32::try_from(huge.len()).expect("fits").to_be_bytes());
    oversized.extend(&huge);
    for (content_type, body, want) in [
        // A frame that says 5 bytes and brings 2.
        (
            "application/grpc-web+proto",
            b"\x00\x00\x00\x00\x05ab".to_vec(),
            "grpc-status: ",
        ),
        // Not a protobuf GetRequest.
        (
            "application/grpc-web+proto",
            b"\x00\x00\x00\x00\x02\xff\xff".to_vec(),
            "grpc-status: 13",
        ),
        // Over the 4 MiB message limit.
        ("application/grpc-web+proto", oversized, "grpc-status: 8"),
        // Not gRPC-Web at all, over HTTP/1.1.
        ("text/plain", b"hello".to_vec(), "HTTP/1.1 400"),
    ] {
        let head = curl_head(&url, content_type, &body, dir.path());
        assert!(
            head.contains(want),
            "{content_type}: want {want:?} in\n{head}"
        );
        assert!(!head.contains("grpc-status: 0"), "{content_type}: {head}");
    }

    // And plain gRPC still works on the same port.
    let got = client
        .get(
            &Context::background(),
            GetRequest {
                key: "greeting".into(),
            },
        )
        .await
        .expect("gRPC beside gRPC-Web");
    assert_eq!(got.value, b"hello");
    cache.shutdown().await;
    accounts.shutdown().await;
}
