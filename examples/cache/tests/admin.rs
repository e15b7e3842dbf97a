//! The admin endpoint: every page answers with the right content, it stays off the service
//! port, the Unix socket is private, and a real Prometheus scrapes the metrics.

mod support;

use std::time::Duration;

use herald::admin::{AdminAddr, AdminConfig};
use herald::client::Channel;
use herald::limits::{Limits, LimitsConfig};
use herald::server::RunningServer;
use herald::tls::{ClientTls, DevCa, KeyAlgorithm, ServerTls, TrustDomain};
use herald::{Context, Server};
use herald_example_cache::cache::cache_client::CacheClient;
use herald_example_cache::cache::cache_server::CacheServer;
use herald_example_cache::cache::{GetRequest, StoreRequest};
use herald_example_cache::{AccountsService, CacheService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const LIMITS: &str = "limits:\n  cache.Cache:\n    default:\n      max_concurrency: 8\n      rate_acls: { user.demo: -1, user.other: 100, authenticated: 0 }\n";

struct Setup {
    cache: RunningServer,
    accounts: RunningServer,
    ca: DevCa,
    td: TrustDomain,
}

impl Setup {
    /// Cache on mutual TLS with limits and an admin endpoint, calling a plaintext Accounts.
    async fn start(admin: AdminConfig) -> Setup {
        let td = TrustDomain::new("herald.test").expect("td");
        let ca = DevCa::generate(td.clone(), KeyAlgorithm::EcdsaP256).expect("CA");
        let leaf = ca.issue("cache", KeyAlgorithm::EcdsaP256).expect("leaf");
        let tls = ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td.clone())
            .expect("tls");
        let accounts = support::serve(
            herald_example_cache::accounts::accounts_server::AccountsServer::new(
                AccountsService::demo(),
            ),
        )
        .await;
        let accounts_client = herald_example_cache::accounts::accounts_client::AccountsClient::new(
            support::channel(&accounts),
        );
        let cache = Server::builder()
            .tls(tls)
            .limits(Limits::from_config(
                LimitsConfig::parse(LIMITS, "limits.yaml").expect("valid"),
            ))
            .admin(admin)
            .add_service(CacheServer::new(CacheService::new(accounts_client)))
            .bind("127.0.0.1:0")
            .await
            .expect("bind");
        Setup {
            cache,
            accounts,
            ca,
            td,
        }
    }

    fn client(&self, identity: &str) -> CacheClient {
        let leaf = self
            .ca
            .issue(identity, KeyAlgorithm::EcdsaP256)
            .expect("leaf");
        let tls = ClientTls::from_pem(
            &leaf.cert_pem,
            &leaf.key_pem,
            self.ca.cert_pem(),
            self.td.clone(),
        )
        .expect("tls");
        CacheClient::new(Channel::tls(self.cache.local_addr(), &tls, "cache").expect("channel"))
    }

    async fn shutdown(self) {
        self.cache.shutdown().await;
        self.accounts.shutdown().await;
    }
}

/// GET `path` on the admin endpoint: (status, body).
async fn get(addr: &AdminAddr, path: &str) -> (u16, Vec<u8>) {
    request(addr, "GET", path, "").await
}

async fn request(addr: &AdminAddr, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut response = Vec::new();
    match addr {
        AdminAddr::Tcp(addr) => {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.write_all(head.as_bytes()).await.expect("write");
            stream.read_to_end(&mut response).await.expect("read");
        }
        AdminAddr::Unix(path) => {
            let mut stream = tokio::net::UnixStream::connect(path)
                .await
                .expect("connect");
            stream.write_all(head.as_bytes()).await.expect("write");
            stream.read_to_end(&mut response).await.expect("read");
        }
    }
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a full response");
    let status_line = String::from_utf8_lossy(&response[..split]).to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, response[split + 4..].to_vec())
}

async fn get_json(addr: &AdminAddr, path: &str) -> serde_json::Value {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Calls as user.demo (returned, its connection open) and one denied call as user.nobody.
async fn traffic(setup: &Setup) -> CacheClient {
    let demo = setup.client("user.demo");
    let ctx = Context::background();
    demo.store(
        &ctx,
        StoreRequest {
            account_token: "tok-bob".into(),
            key: "k".into(),
            value: b"v".to_vec(),
        },
    )
    .await
    .expect("store");
    for _ in 0..4 {
        demo.get(&ctx, GetRequest { key: "k".into() })
            .await
            .expect("get");
    }
    demo.get(
        &ctx,
        GetRequest {
            key: "absent".into(),
        },
    )
    .await
    .expect_err("not found");
    setup
        .client("user.nobody")
        .get(&ctx, GetRequest { key: "k".into() })
        .await
        .expect_err("denied");
    demo
}

#[tokio::test]
async fn every_page_answers_with_its_content() {
    let setup = Setup::start(AdminConfig::loopback(0)).await;
    let admin = setup.cache.admin_addr().expect("admin").clone();
    let _demo = traffic(&setup).await;

    let (status, index) = get(&admin, "/").await;
    assert_eq!(status, 200);
    let index = String::from_utf8_lossy(&index);
    for page in [
        "/metrics",
        "/healthz",
        "/readyz",
        "/info",
        "/config",
        "/logging",
        "/connections",
        "/certs",
        "/deps",
        "/debug/pprof/profile",
        "/debug/heap",
    ] {
        assert!(
            index.contains(&format!("href=\"{page}")),
            "index lacks {page}"
        );
    }

    let (status, metrics) = get(&admin, "/metrics").await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    for series in [
        "herald_server_requests_total{service=\"cache.Cache\",method=\"Get\",caller=\"user.demo\",code=\"OK\"} 4",
        "herald_server_requests_total{service=\"cache.Cache\",method=\"Get\",caller=\"user.demo\",code=\"NOT_FOUND\"} 1",
        "herald_server_requests_total{service=\"cache.Cache\",method=\"Store\",caller=\"user.demo\",code=\"OK\"} 1",
        "herald_server_requests_total{service=\"cache.Cache\",method=\"Get\",caller=\"user.nobody\",code=\"PERMISSION_DENIED\"} 1",
        "herald_server_request_duration_seconds_count{service=\"cache.Cache\",method=\"Get\"} 6",
        "herald_server_request_duration_seconds_bucket{le=\"+Inf\",service=\"cache.Cache\",method=\"Get\"} 6",
        "herald_server_request_duration_seconds_bucket{le=\"0.00025\",service=\"cache.Cache\",method=\"Dump\"} 0",
        "herald_server_in_flight{service=\"cache.Cache\",method=\"Get\"} 0",
        "herald_server_refused_total{reason=\"denied\"} 1",
        "herald_tls_handshakes_total{side=\"server\",kind=\"full\"} 2",
        "herald_config_reloads_total{result=\"refused\"} 0",
        "herald_build_info{version=\"",
        "herald_uptime_seconds ",
    ] {
        assert!(metrics.contains(series), "missing {series:?} in\n{metrics}");
    }
    // Client metrics of the channels in this process (Cache calling Accounts): process-wide,
    // so other tests' calls may add to them: present and counted, not exact.
    let client_ok = metrics
        .lines()
        .find(|l| l.starts_with("herald_client_calls_total{service=\"accounts.Accounts\",method=\"GetByToken\",code=\"OK\"}"))
        .unwrap_or_else(|| panic!("no client call series in\n{metrics}"));
    assert!(
        client_ok
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            >= Some(1),
        "{client_ok}"
    );
    assert!(metrics.contains("herald_client_call_duration_seconds_count{service=\"accounts.Accounts\",method=\"GetByToken\"}"));
    assert!(metrics.contains("herald_client_attempts_total{service=\"accounts.Accounts\",method=\"GetByToken\",code=\"OK\"}"));
    assert_eq!(
        metrics.matches("# EOF").count(),
        1,
        "one exposition, one EOF"
    );

    // The latency histogram has its 14 bounds plus +Inf for every method.
    let get_buckets = metrics
        .lines()
        .filter(|l| {
            l.starts_with("herald_server_request_duration_seconds_bucket")
                && l.contains("method=\"Get\"")
        })
        .count();
    assert_eq!(get_buckets, 15);

    assert_eq!(get(&admin, "/healthz").await.0, 200);
    assert_eq!(get(&admin, "/readyz").await.0, 200);

    let info = get_json(&admin, "/info").await;
    assert_eq!(info["pid"], std::process::id());
    assert_eq!(info["identity"], "cache");
    assert!(
        info["command_line"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(info["uptime_seconds"].as_f64().is_some_and(|s| s >= 0.0));

    let config = get_json(&admin, "/config").await;
    assert_eq!(
        config["methods"]["cache.Cache/Get"]["rate_acls"]["user.other"],
        "100/s"
    );
    assert_eq!(
        config["methods"]["cache.Cache/Get"]["admission"]["max_concurrency"],
        8
    );
    assert!(config["last_reload_error"].is_null());

    let connections = get_json(&admin, "/connections").await;
    let list = connections["connections"].as_array().expect("list");
    let demo = list
        .iter()
        .find(|c| c["identity"] == "user.demo")
        .expect("the demo user's connection");
    assert!(demo["requests"].as_u64() >= Some(6), "{demo}");
    assert!(
        demo["bytes_read"].as_u64() > Some(0) && demo["bytes_written"].as_u64() > Some(0),
        "{demo}"
    );

    let certs = get_json(&admin, "/certs").await;
    let served = &certs["certificates"][0];
    assert_eq!(served["role"], "served");
    assert!(
        served["sans"]
            .to_string()
            .contains("spiffe://herald.test/service/cache"),
        "{served}"
    );
    assert!(
        served["expires_in_seconds"].as_i64() > Some(86_400),
        "{served}"
    );
    assert_eq!(certs["certificates"][1]["role"], "trusted CA");

    let deps = get_json(&admin, "/deps").await;
    assert_eq!(deps["identity"], "cache");
    assert_eq!(deps["serves"][0], "cache.Cache");
    let callers = deps["callers"].to_string();
    assert!(
        callers.contains("user.demo") && callers.contains("user.nobody"),
        "{callers}"
    );

    let heap = get_json(&admin, "/debug/heap").await;
    assert_eq!(heap["allocator"], "jemalloc");
    assert!(heap["allocated_bytes"].as_u64() > Some(0));

    // Draining: readiness turns 503 while the server still serves.
    setup.cache.start_draining();
    assert_eq!(get(&admin, "/readyz").await.0, 503);
    assert_eq!(get(&admin, "/healthz").await.0, 200);
    setup
        .client("user.demo")
        .get(&Context::background(), GetRequest { key: "k".into() })
        .await
        .expect("still served");

    assert_eq!(get(&admin, "/nope").await.0, 404);
    assert_eq!(get(&admin, "/debug/pprof/profile?seconds=0").await.0, 400);
    setup.shutdown().await;
}

#[tokio::test]
async fn a_cpu_profile_of_a_loaded_server_names_herald_functions() {
    let setup = Setup::start(AdminConfig::loopback(0)).await;
    let admin = setup.cache.admin_addr().expect("admin").clone();
    let demo = setup.client("user.demo");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (demo, stop) = (demo.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = demo
                    .get(&Context::background(), GetRequest { key: "k".into() })
                    .await;
            }
        }));
    }
    let (status, svg) = get(&admin, "/debug/pprof/profile?seconds=2&format=svg").await;
    assert_eq!(status, 200);
    let svg = String::from_utf8_lossy(&svg);
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "not an SVG"
    );
    assert!(
        svg.contains("herald::"),
        "the flame graph names no herald function"
    );
    let (status, pb) = get(&admin, "/debug/pprof/profile?seconds=1").await;
    assert_eq!(status, 200);
    // pprof protobuf: the string table holds the function names verbatim.
    assert!(
        pb.windows(8).any(|w| w == b"herald::"),
        "the profile names no herald function"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    setup.shutdown().await;
}

#[tokio::test]
async fn the_unix_socket_is_private_and_the_service_port_serves_no_admin_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("admin.sock");
    let setup = Setup::start(AdminConfig::unix(&socket)).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let admin = setup.cache.admin_addr().expect("admin").clone();
    assert_eq!(admin, AdminAddr::Unix(socket.clone()));
    assert_eq!(get(&admin, "/healthz").await.0, 200);

    // HTTP/1.1 to the service port gets no admin page: the TLS handshake fails first.
    let mut stream = tokio::net::TcpStream::connect(setup.cache.local_addr())
        .await
        .expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("herald_server"),
        "metrics on the service port"
    );

    // A public address is refused unless asked for by name.
    let public = AdminConfig::tcp("0.0.0.0:0".parse().expect("addr")).expect_err("not loopback");
    assert!(
        public.to_string().contains("not a loopback address"),
        "{public}"
    );
    setup.shutdown().await;
}

#[tokio::test]
async fn a_real_prometheus_scrapes_per_method_per_caller_counts() {
    let prometheus = which("prometheus")
        .expect("Debian's prometheus must be installed (scripts/test installs it)");
    let setup = Setup::start(AdminConfig::loopback(0)).await;
    let AdminAddr::Tcp(admin) = setup.cache.admin_addr().expect("admin").clone() else {
        panic!("tcp")
    };
    let _demo = traffic(&setup).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: herald\n    static_configs:\n      - targets: ['{admin}']\n"),
    )
    .expect("config");
    let port = free_port();
    let mut server = tokio::process::Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");

    // Ask Prometheus (its HTTP API) until it has scraped us: at most 30 s.
    let query = "herald_server_requests_total{method=\"Get\",caller=\"user.demo\",code=\"OK\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let value = loop {
        let url_query = query
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('=', "%3D")
            .replace(',', "%2C");
        let api = format!("127.0.0.1:{port}");
        let body = match tokio::net::TcpStream::connect(&api).await {
            // Not listening yet.
            Err(_) => Vec::new(),
            Ok(_) => {
                get(
                    &AdminAddr::Tcp(api.parse().expect("addr")),
                    &format!("/api/v1/query?query={url_query}"),
                )
                .await
                .1
            }
        };
        if let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(value) = answer["data"]["result"][0]["value"][1].as_str()
        {
            break value.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Prometheus did not scrape within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(value, "4");
    server.kill().await.expect("stop prometheus");
    setup.shutdown().await;
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A rustls client speaking HTTP/1.1 to a TLS admin endpoint, with a certificate or without.
async fn tls_get(
    addr: std::net::SocketAddr,
    ca: &DevCa,
    cert: Option<&herald::tls::dev_ca::IssuedCert>,
    path: &str,
) -> std::io::Result<String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("CA"),
        )
        .expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    let mut config = match cert {
        Some(leaf) => builder
            .with_client_auth_cert(
                rustls_pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("chain"),
                rustls_pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes())
                    .expect("key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn the_admin_endpoint_can_sit_behind_mutual_tls() {
    let td = TrustDomain::new("herald.test").expect("td");
    let ca = DevCa::generate(td.clone(), KeyAlgorithm::EcdsaP256).expect("CA");
    let leaf = ca.issue("cache", KeyAlgorithm::EcdsaP256).expect("leaf");
    let tls =
        ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem, ca.cert_pem(), td.clone()).expect("tls");
    let server = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .admin(AdminConfig::loopback(0).with_tls(tls))
        .add_service(
            herald_example_cache::accounts::accounts_server::AccountsServer::new(
                AccountsService::demo(),
            ),
        )
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let AdminAddr::Tcp(admin) = server.admin_addr().expect("admin").clone() else {
        panic!("tcp")
    };

    let operator = ca.issue("user.ops", KeyAlgorithm::EcdsaP256).expect("leaf");
    let answer = tls_get(admin, &ca, Some(&operator), "/healthz")
        .await
        .expect("an operator gets in");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "{answer}"
    );

    let refused = tls_get(admin, &ca, None, "/metrics").await;
    let error = refused.expect_err("no client certificate");
    assert!(error.to_string().contains("CertificateRequired"), "{error}");
    // Plain HTTP on the TLS admin port gets nothing either.
    let mut plain = tokio::net::TcpStream::connect(admin)
        .await
        .expect("connect");
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("herald_server"));
    server.shutdown().await;
}

/// The switch bench/README.md's observability benchmark compares against: without request
/// observability the same calls leave the per-request series at zero, while the refusal
/// counters (outside the observe layer) still count.
#[tokio::test]
async fn request_observability_can_be_switched_off_for_the_benchmark() {
    async fn serve_and_call(observed: bool) -> String {
        let accounts = support::serve(
            herald_example_cache::accounts::accounts_server::AccountsServer::new(
                AccountsService::demo(),
            ),
        )
        .await;
        let accounts_client = herald_example_cache::accounts::accounts_client::AccountsClient::new(
            support::channel(&accounts),
        );
        let limits = "limits:\n  cache.Cache:\n    default:\n      rate_acls: { unauthenticated: -1 }\n    methods:\n      Store:\n        rate_acls: { unauthenticated: 0 }\n";
        let mut builder = Server::builder()
            .insecure_plaintext()
            .limits(Limits::from_config(
                LimitsConfig::parse(limits, "limits.yaml").expect("valid"),
            ));
        if !observed {
            builder = builder.without_request_observability();
        }
        let cache = builder
            .add_service(CacheServer::new(CacheService::new(accounts_client)))
            .bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = CacheClient::new(support::channel(&cache));
        let ctx = Context::background();
        for _ in 0..3 {
            let missing = client.get(&ctx, GetRequest { key: "k".into() }).await;
            assert_eq!(missing.expect_err("absent").code(), herald::Code::NotFound);
        }
        let store = StoreRequest {
            account_token: "tok-bob".into(),
            key: "k".into(),
            value: b"v".to_vec(),
        };
        let denied = client.store(&ctx, store).await.expect_err("denied");
        assert_eq!(denied.code(), herald::Code::PermissionDenied);
        let text = cache.metrics_text();
        cache.shutdown().await;
        accounts.shutdown().await;
        text
    }
    fn sample<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    let on = serve_and_call(true).await;
    let off = serve_and_call(false).await;
    let answered = "herald_server_requests_total{service=\"cache.Cache\",method=\"Get\",caller=\"unauthenticated\",code=\"NOT_FOUND\"}";
    assert_eq!(sample(&on, answered), vec![format!("{answered} 3")], "{on}");
    assert!(sample(&off, answered).is_empty(), "{off}");
    let timed =
        "herald_server_request_duration_seconds_count{service=\"cache.Cache\",method=\"Get\"";
    assert!(sample(&on, timed).iter().any(|l| l.ends_with(" 3")), "{on}");
    // The series exists from start-up (per-method series are made once), and stays at zero.
    let off_timed = sample(&off, timed);
    assert!(
        !off_timed.is_empty() && off_timed.iter().all(|l| l.ends_with(" 0")),
        "{off}"
    );
    let denied = "herald_server_refused_total{reason=\"denied\"}";
    for text in [&on, &off] {
        assert_eq!(sample(text, denied), vec![format!("{denied} 1")], "{text}");
    }
}
