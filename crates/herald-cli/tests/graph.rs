//! `herald graph` reads live admin endpoints and draws who calls whom.

use herald::admin::{AdminAddr, AdminConfig};
use herald::client::Channel;
use herald::tls::{ClientTls, DevCa, KeyAlgorithm, ServerTls, TrustDomain};
use herald::{Context, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;
use herald_example_cache::cache::StoreRequest;
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::{AccountsService, CacheService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draws_the_callers_of_each_service_as_dot_and_svg() {
    let td = TrustDomain::new("herald.test").expect("td");
    let ca = DevCa::generate(td.clone(), KeyAlgorithm::EcdsaP256).expect("CA");
    let server_tls = |identity: &str| {
        let leaf = ca.issue(identity, KeyAlgorithm::EcdsaP256).expect("leaf");
        ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td.clone()).expect("tls")
    };
    let client_tls = |identity: &str| {
        let leaf = ca.issue(identity, KeyAlgorithm::EcdsaP256).expect("leaf");
        ClientTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td.clone()).expect("tls")
    };
    let accounts = Server::builder()
        .tls(server_tls("accounts"))
        .allow_all_callers()
        .admin(AdminConfig::loopback(0))
        .add_service(AccountsServer::new(AccountsService::demo()))
        .bind("127.0.0.1:0")
        .await
        .expect("accounts");
    let to_accounts = AccountsClient::new(
        Channel::tls(accounts.local_addr(), &client_tls("cache"), "accounts").expect("channel"),
    );
    let cache = Server::builder()
        .tls(server_tls("cache"))
        .allow_all_callers()
        .admin(AdminConfig::loopback(0))
        .add_service(CacheServer::new(CacheService::new(to_accounts)))
        .bind("127.0.0.1:0")
        .await
        .expect("cache");
    let client = CacheClient::new(
        Channel::tls(cache.local_addr(), &client_tls("user.demo"), "cache").expect("channel"),
    );
    for key in ["a", "b"] {
        let request = StoreRequest {
            account_token: "tok-bob".into(),
            key: key.into(),
            value: b"v".to_vec(),
        };
        client
            .store(&Context::background(), request)
            .await
            .expect("store");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("deps");
    let url = |admin: Option<&AdminAddr>| match admin {
        Some(AdminAddr::Tcp(addr)) => format!("http://{addr}"),
        other => panic!("expected a TCP admin endpoint, got {other:?}"),
    };
    let output = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("herald"))
        .args([
            "graph",
            &url(cache.admin_addr()),
            &url(accounts.admin_addr()),
            "--out",
        ])
        .arg(&out)
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 edge(s) between 3 service(s)"));
    let dot = std::fs::read_to_string(out.with_extension("dot")).expect("DOT file");
    assert!(
        dot.contains("\"user.demo\" -> \"cache\" [label=\"2 calls\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"cache\" -> \"accounts\" [label=\"2 calls\"]"),
        "{dot}"
    );
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("SVG file");
    assert!(
        svg.contains("<svg") && svg.contains("user.demo") && svg.contains("accounts"),
        "{svg}"
    );

    // A wrong endpoint: one line, non-zero exit.
    let output = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("herald"))
        .args(["graph", "http://127.0.0.1:1"])
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("reading http://127.0.0.1:1/deps"),
        "{stderr}"
    );
    cache.shutdown().await;
    accounts.shutdown().await;
}
