//! Mutual TLS with real handshakes over loopback: who is refused, who is accepted, what the
//! handler learns of the caller, resumption, and rotation without a restart.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald::client::Channel;
use herald::server::RunningServer;
use herald::tls::dev_ca::{IssuedCert, LeafOptions};
use herald::tls::{ClientTls, DevCa, KeyAlgorithm, ServerTls, TlsFiles, TrustDomain};
use herald::{Code, Context, Error, Server};
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::{Accounts, AccountsServer};
use herald_example_cache::accounts::{Account, AccountsError, GetByTokenRequest};
use time::OffsetDateTime;

fn td() -> TrustDomain {
    TrustDomain::new("herald.test").expect("valid trust domain")
}

/// Accounts that remembers who called.
#[derive(Clone, Default)]
struct WhoCalls {
    callers: Arc<Mutex<Vec<Option<String>>>>,
    calls: Arc<AtomicUsize>,
}

impl Accounts for WhoCalls {
    async fn get_by_token(
        &self,
        ctx: &Context,
        _: GetByTokenRequest,
    ) -> Result<Account, Error<AccountsError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.callers
            .lock()
            .expect("lock")
            .push(ctx.caller().map(ToString::to_string));
        Ok(Account {
            id: "acct".into(),
            name: "n".into(),
            max_cache_keys: 1,
        })
    }
}

struct Pki {
    ca: DevCa,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            ca: DevCa::generate(td(), KeyAlgorithm::EcdsaP256).expect("CA"),
        }
    }

    fn issue(&self, identity: &str) -> IssuedCert {
        self.ca
            .issue(identity, KeyAlgorithm::EcdsaP256)
            .expect("leaf")
    }

    fn server_tls(&self, identity: &str) -> ServerTls {
        let leaf = self.issue(identity);
        ServerTls::from_pem(&leaf.cert_pem, &leaf.key_pem, self.ca.cert_pem(), td())
            .expect("server TLS")
    }

    fn client_tls(&self, leaf: &IssuedCert) -> ClientTls {
        ClientTls::from_pem(&leaf.cert_pem, &leaf.key_pem, self.ca.cert_pem(), td())
            .expect("client TLS")
    }

    fn leaf_with(&self, uris: &[&str], not_after: OffsetDateTime) -> IssuedCert {
        self.ca
            .issue_with(LeafOptions {
                uris: uris.iter().map(|u| (*u).to_owned()).collect(),
                dns_names: vec![],
                not_before: OffsetDateTime::now_utc() - time::Duration::days(2),
                not_after,
                algorithm: KeyAlgorithm::EcdsaP256,
            })
            .expect("leaf")
    }
}

async fn serve_tls(tls: ServerTls, handler: WhoCalls) -> RunningServer {
    Server::builder()
        .tls(tls)
        .allow_all_callers()
        .add_service(AccountsServer::new(handler))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

async fn call(
    server: &RunningServer,
    client: &ClientTls,
    expect: &str,
) -> Result<Account, herald::CallError<AccountsError>> {
    let channel = Channel::tls(server.local_addr(), client, expect).expect("channel");
    AccountsClient::new(channel)
        .get_by_token(
            &Context::background(),
            GetByTokenRequest { token: "t".into() },
        )
        .await
}

#[tokio::test]
async fn the_callers_identity_arrives_in_the_handlers_context() {
    let pki = Pki::new();
    let handler = WhoCalls::default();
    let server = serve_tls(pki.server_tls("accounts"), handler.clone()).await;

    for identity in ["cache", "user.boo", "host.web-1"] {
        let client = pki.client_tls(&pki.issue(identity));
        call(&server, &client, "accounts").await.expect("accepted");
    }
    let callers = handler.callers.lock().expect("lock").clone();
    assert_eq!(
        callers,
        [
            Some("cache".into()),
            Some("user.boo".into()),
            Some("host.web-1".into())
        ]
    );
    assert_eq!(server.stats().handshakes().full(), 3);
    assert_eq!(server.stats().handshakes().failed(), 0);
    server.shutdown().await;
}

/// Taken by the test that times refused calls and by the one that loads a server: on a
/// 2-core machine the load delayed a refused peer's fresh connection past the method's
/// 100 ms deadline (1 run of this file in 40; none in 60 runs of the timing test alone),
/// where the assertion is that it fails at once, never waiting out the reconnect backoff.
static NOT_UNDER_LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// Two workers, as a service runs: the client's connection and its calls on different threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_peers_get_a_clear_error_and_the_server_keeps_serving_others() {
    let _alone = NOT_UNDER_LOAD.lock().await;
    let pki = Pki::new();
    let handler = WhoCalls::default();
    let server = serve_tls(pki.server_tls("accounts"), handler.clone()).await;
    let good = pki.client_tls(&pki.issue("cache"));
    let tomorrow = OffsetDateTime::now_utc() + time::Duration::days(1);
    let yesterday = OffsetDateTime::now_utc() - time::Duration::days(1);
    let other_ca = Pki::new();

    let cases = [
        (
            "a certificate from another CA",
            other_ca.issue("cache"),
            "UnknownCA",
        ),
        (
            "an expired certificate",
            pki.leaf_with(&["spiffe://herald.test/service/cache"], yesterday),
            "CertificateExpired",
        ),
        (
            "two URI SANs",
            pki.leaf_with(
                &[
                    "spiffe://herald.test/service/cache",
                    "spiffe://herald.test/service/admin",
                ],
                tomorrow,
            ),
            "CertificateUnknown",
        ),
        (
            "a foreign trust domain",
            pki.leaf_with(&["spiffe://evil.example/service/cache"], tomorrow),
            "CertificateUnknown",
        ),
        (
            "no URI SAN at all",
            pki.leaf_with(&[], tomorrow),
            "CertificateUnknown",
        ),
    ];
    for (what, leaf, alert) in &cases {
        let error = raw_handshake(&server, leaf).await.expect_err(what);
        assert!(
            error.to_string().contains(alert),
            "{what}: expected {alert} in {error}"
        );
        // An honest client is still served, on a fresh connection.
        call(&server, &good, "accounts")
            .await
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
    }
    assert_eq!(server.stats().handshakes().failed(), cases.len() as u64);
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        cases.len(),
        "no refused peer reached a handler"
    );

    // herald's own client says so in words: the server refused it, and why. TLS 1.3: the
    // client's side of the handshake is done before the server's verdict, which arrives as an
    // alert on the first request; the call fails at once, never waiting out its deadline for
    // the reconnect backoff. On fresh channels, many times: hyper sometimes reports such a
    // connection as closed cleanly (about 1 in 1,500 here), and then herald's own record of
    // the connection's I/O must say it failed.
    let foreign = other_ca.issue("cache");
    let stranger =
        ClientTls::from_pem(&foreign.cert_pem, &foreign.key_pem, pki.ca.cert_pem(), td())
            .expect("tls");
    for _ in 0..STRANGER_CALLS {
        let error = call(&server, &stranger, "accounts")
            .await
            .expect_err("unknown CA");
        assert_eq!(error.code(), Code::Unavailable, "{error}");
        assert!(
            error.message().contains("alert") && error.message().contains("UnknownCA"),
            "{error}"
        );
    }
    assert_eq!(handler.calls.load(Ordering::SeqCst), cases.len());
    server.shutdown().await;
}

/// Calls made by a client the server refuses, each on a fresh channel.
const STRANGER_CALLS: usize = 100;

/// A plain rustls client's configuration presenting `leaf` (whatever it holds), trusting any
/// server.
fn presenting(leaf: &IssuedCert) -> rustls::ClientConfig {
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key");
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_client_auth_cert(chain, key)
        .expect("client auth")
}

/// A plain rustls client presenting `leaf` (whatever it holds), trusting any server: the
/// handshake and a first read, where a TLS 1.3 server's refusal arrives.
async fn raw_handshake(server: &RunningServer, leaf: &IssuedCert) -> std::io::Result<()> {
    let config = presenting(leaf);
    let tcp = tokio::net::TcpStream::connect(server.local_addr()).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
    let mut buf = [0u8; 64];
    tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
        .await
        .map(drop)
}

#[tokio::test]
async fn a_client_refuses_a_server_that_is_not_the_service_it_meant_to_call() {
    let pki = Pki::new();
    let impostor = serve_tls(pki.server_tls("cache"), WhoCalls::default()).await;
    let client = pki.client_tls(&pki.issue("web"));
    let error = call(&impostor, &client, "accounts")
        .await
        .expect_err("wrong server");
    assert_eq!(error.code(), Code::Unavailable);
    assert!(
        error
            .message()
            .contains("the server is \"cache\", but this channel calls \"accounts\""),
        "{error}"
    );
    assert_eq!(client.handshakes().failed(), 1);
    call(&impostor, &client, "cache")
        .await
        .expect("the right expectation is served");
    impostor.shutdown().await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let server = serve_tls(pki.server_tls("accounts"), WhoCalls::default()).await;

    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls_pki_types::pem::PemObject::from_pem_slice(pki.ca.cert_pem().as_bytes())
        .expect("CA PEM");
    roots.add(ca).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    // In TLS 1.3 the client finishes first; the refusal arrives on its first read.
    let outcome = async {
        let mut stream = connector.connect(name, tcp).await?;
        tokio::io::AsyncWriteExt::write_all(&mut stream, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await?;
        let mut buf = [0u8; 64];
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await
    }
    .await;
    let error = outcome.expect_err("refused");
    assert!(error.to_string().contains("CertificateRequired"), "{error}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.stats().handshakes().failed(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_tls_1_1_client_is_refused() {
    let pki = Pki::new();
    let server = serve_tls(pki.server_tls("accounts"), WhoCalls::default()).await;
    // Python's ssl module (OpenSSL), allowed nothing newer than TLS 1.1.
    let script = "import ssl, socket, sys\n\
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
        ctx.check_hostname = False\n\
        ctx.verify_mode = ssl.CERT_NONE\n\
        ctx.set_ciphers('DEFAULT:@SECLEVEL=0')\n\
        import warnings; warnings.simplefilter('ignore')\n\
        ctx.minimum_version = ssl.TLSVersion.TLSv1\n\
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1\n\
        try:\n    ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))))\n    print('CONNECTED')\n\
        except ssl.SSLError as e:\n    print('REFUSED', e)\n";
    let port = server.local_addr().port().to_string();
    let output = tokio::process::Command::new("python3")
        .args(["-c", script, &port])
        .output()
        .await
        .expect("python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // An alert from the server (rustls answers a TLS 1.1 hello with handshake_failure), not
    // a local refusal to speak TLS 1.1.
    assert!(
        stdout.contains("REFUSED") && stdout.contains("SSLV3_ALERT"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.stats().handshakes().failed(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_second_connection_resumes_the_session() {
    let pki = Pki::new();
    let server = serve_tls(pki.server_tls("accounts"), WhoCalls::default()).await;
    let client = pki.client_tls(&pki.issue("cache"));
    call(&server, &client, "accounts").await.expect("first");
    // A new channel is a new connection: it resumes the session the first one got.
    call(&server, &client, "accounts").await.expect("second");
    assert_eq!(
        (
            server.stats().handshakes().full(),
            server.stats().handshakes().resumed()
        ),
        (1, 1)
    );
    assert_eq!(
        (client.handshakes().full(), client.handshakes().resumed()),
        (1, 1)
    );
    server.shutdown().await;
}

fn write_atomically(path: &std::path::Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The leaf certificate a fresh connection is served.
async fn served_cert(server: &RunningServer, pki: &Pki) -> Vec<u8> {
    let client = pki.issue("probe");
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            rustls_pki_types::CertificateDer::from_pem_slice(pki.ca.cert_pem().as_bytes())
                .expect("ca"),
        )
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny))
    .with_client_auth_cert(chain, key)
    .expect("client auth");
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("handshake");
    stream.get_ref().1.peer_certificates().expect("certs")[0].to_vec()
}

use rustls_pki_types::pem::PemObject;

/// Records the server's certificate without judging it: the test compares it itself.
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("cert")
        .to_vec()
}

#[tokio::test]
async fn certificates_rotate_under_load_without_a_failed_call() {
    let _alone = NOT_UNDER_LOAD.lock().await;
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let files = TlsFiles::in_dir(dir.path(), "accounts");
    let first = pki.issue("accounts");
    write_atomically(&files.cert, &first.cert_pem);
    write_atomically(&files.key, &first.key_pem);
    write_atomically(&files.ca, pki.ca.cert_pem());
    let tls = ServerTls::from_files(files.clone(), td()).expect("server TLS");
    let server = serve_tls(tls.clone(), WhoCalls::default()).await;
    assert_eq!(served_cert(&server, &pki).await, der_of(&first.cert_pem));

    // Steady load: a call every few ms, on a channel that stays open, plus new channels.
    let client = pki.client_tls(&pki.issue("cache"));
    let addr = server.local_addr();
    let load = tokio::spawn({
        let client = client.clone();
        async move {
            let steady =
                AccountsClient::new(Channel::tls(addr, &client, "accounts").expect("channel"));
            let mut failures = Vec::new();
            for i in 0..300 {
                let target = if i % 25 == 0 {
                    AccountsClient::new(Channel::tls(addr, &client, "accounts").expect("channel"))
                } else {
                    steady.clone()
                };
                if let Err(e) = target
                    .get_by_token(&Context::background(), GetByTokenRequest::default())
                    .await
                {
                    failures.push(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        }
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    // A half-written certificate (cut mid-PEM): refused, the old pair kept.
    let cut = &first.cert_pem[..first.cert_pem.len() / 2];
    std::fs::write(&files.cert, cut).expect("write half a certificate");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(tls.reloads(), (0, 1));
    assert!(
        tls.last_reload_error()
            .expect("an error")
            .contains("certificate PEM"),
        "{:?}",
        tls.last_reload_error()
    );
    assert_eq!(served_cert(&server, &pki).await, der_of(&first.cert_pem));
    // Completed, it loads (the same pair again).
    write_atomically(&files.cert, &first.cert_pem);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(tls.reloads(), (1, 1));

    // A key that does not go with the certificate: refused, the old pair kept.
    let second = pki.issue("accounts");
    write_atomically(&files.key, &second.key_pem);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(tls.reloads(), (1, 2));
    assert!(
        tls.last_reload_error()
            .expect("an error")
            .contains("does not go with the certificate")
    );
    assert_eq!(served_cert(&server, &pki).await, der_of(&first.cert_pem));

    // The matching certificate arrives: new handshakes use it within a second.
    write_atomically(&files.cert, &second.cert_pem);
    let written = tokio::time::Instant::now();
    loop {
        if served_cert(&server, &pki).await == der_of(&second.cert_pem) {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "not rotated within a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tls.reloads(), (2, 2));

    let failures = load.await.expect("load task");
    assert!(
        failures.is_empty(),
        "calls failed during rotation: {failures:?}"
    );
    server.shutdown().await;
}

/// HTTP/2's frame header: length, type, flags, stream.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A caller that ends its TLS session (close_notify) while its request is still arriving, its
/// TCP connection left open, went away all the same: the call counts CANCELLED.
#[tokio::test]
async fn a_caller_that_closes_its_tls_session_mid_request_is_counted_cancelled() {
    use tokio::io::AsyncWriteExt;

    let pki = Pki::new();
    let server = serve_tls(pki.server_tls("accounts"), WhoCalls::default()).await;
    let config = presenting(&pki.issue("cache"));
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");

    // HTTP/2 by hand: the preface, empty SETTINGS, the request's head (HPACK literals, no
    // Huffman) and half its message: a prefix announcing 100 bytes, and 10 of them.
    let mut head = vec![0x83, 0x86]; // :method POST, :scheme http (static table)
    for (name, value) in [
        (":path", "/accounts.Accounts/GetByToken"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        head.push(0x00); // literal, not indexed, new name
        head.push(u8::try_from(name.len()).expect("short"));
        head.extend_from_slice(name.as_bytes());
        head.push(u8::try_from(value.len()).expect("short"));
        head.extend_from_slice(value.as_bytes());
    }
    let mut half = vec![0, 0, 0, 0, 100];
    half.extend_from_slice(&[0x0a; 10]);
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    bytes.extend(frame(0x1, 0x4, 1, &head)); // HEADERS, END_HEADERS
    bytes.extend(frame(0x0, 0, 1, &half)); // DATA
    stream.write_all(&bytes).await.expect("request");
    let in_flight =
        "herald_server_in_flight{service=\"accounts.Accounts\",method=\"GetByToken\"} 1";
    support::wait_until("the request is in flight", || {
        server.metrics_text().contains(in_flight)
    })
    .await;

    // close_notify, and nothing else: the TCP connection stays open.
    stream.get_mut().1.send_close_notify();
    stream.flush().await.expect("close_notify");
    support::wait_until("the call is counted", || {
        server
            .metrics_text()
            .contains("herald_server_requests_total{service=\"accounts.Accounts\"")
    })
    .await;
    let metrics = server.metrics_text();
    assert!(
        metrics.contains("method=\"GetByToken\",caller=\"cache\",code=\"CANCELLED\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        metrics.matches("herald_server_requests_total{").count(),
        1,
        "one call, one code: {metrics}"
    );
    drop(stream);
    server.shutdown().await;
}
