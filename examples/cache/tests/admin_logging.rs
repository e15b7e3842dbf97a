//! The log filter changes at runtime through the admin endpoint, and takes effect on the next
//! request: the access log line appears with its fields. (Its own test binary: the logger is
//! process-wide.)

mod support;

use herald::admin::{AdminAddr, AdminConfig};
use herald::observe::{LogControl, LogFormat};
use herald::{Context, Server};
use herald_example_cache::AccountsService;
use herald_example_cache::accounts::GetByTokenRequest;
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn put(admin: &AdminAddr, path: &str) -> (u16, String) {
    let AdminAddr::Tcp(addr) = admin else {
        panic!("tcp admin")
    };
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, response)
}

#[tokio::test]
async fn a_log_level_change_takes_effect_on_the_next_request() {
    let captured = support::Captured::default();
    let writer = captured.clone();
    let logs = LogControl::install_with_writer("warn", LogFormat::Json, move || writer.clone())
        .expect("install");
    let server = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .admin(AdminConfig::loopback(0))
        .log_control(logs.clone())
        .add_service(AccountsServer::new(AccountsService::demo()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin = server.admin_addr().expect("admin").clone();
    let accounts = AccountsClient::new(support::channel(&server));
    let ctx = Context::background();
    let call = || {
        accounts.get_by_token(
            &ctx,
            GetByTokenRequest {
                token: "tok-bob".into(),
            },
        )
    };

    call().await.expect("call");
    assert!(
        !captured.take().contains("herald::access"),
        "access log at level warn"
    );

    let (status, body) = put(&admin, "/logging?filter=warn%2Cherald%3A%3Aaccess%3Dinfo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(logs.filter(), "warn,herald::access=info");
    call().await.expect("call");
    let lines = captured.take();
    let access: serde_json::Value = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["target"] == "herald::access")
        .unwrap_or_else(|| panic!("no access line in {lines}"));
    assert_eq!(access["method"], "accounts.Accounts/GetByToken");
    assert_eq!(access["caller"], "unauthenticated");
    assert_eq!(access["code"], "OK");
    assert_eq!(access["request_id"], ctx.request_id());
    assert!(access["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));

    let (status, body) = put(&admin, "/logging?filter=not%3D%3Da%3Dfilter").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid log filter"), "{body}");
    assert_eq!(
        logs.filter(),
        "warn,herald::access=info",
        "a bad filter keeps the old one"
    );
    server.shutdown().await;
}
