//! DNS discovery against a real DNS server on loopback: Debian's dnsmasq, serving records
//! from a hosts file the test rewrites (and SRV records from its command line), with a TTL
//! of 1 s. A change is followed within TTL + 1 s, without a failed call.
//!
//! dnsmasq must be installed (`scripts/test` installs `dnsmasq-base`); without it these
//! tests fail, saying so — they never skip.

mod client_support;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use client_support::{Backend, contract, eventually, request, try_serve_at};
use herald::client::{Channel, Discovery, LoadBalancing};
use herald::contract::{ClientPolicy, MethodContract};
use herald::server::RunningServer;
use herald::{CallError, Context};
use herald_example_cache::accounts::{Account, AccountsError};
use tokio::time::Instant;

/// The TTL dnsmasq gives its local records.
const TTL: Duration = Duration::from_secs(1);

static LOOKUP: MethodContract = contract(
    1000,
    ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: None,
        circuit_breaker: None,
    },
);

async fn call(channel: &Channel) -> Result<Account, CallError<AccountsError>> {
    channel
        .unary::<_, Account, AccountsError>(&Context::background(), &LOOKUP, request())
        .await
}

/// dnsmasq on 127.0.0.1, a random port, answering from `hosts` only.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    hosts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn start(hosts: &str, srv: &[String]) -> Dnsmasq {
        let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "dnsmasq is not installed, and the DNS discovery tests need it: \
                     apt-get install -y dnsmasq-base (scripts/test does this)"
                )
            });
        let dir = tempfile::tempdir().expect("temp dir");
        // dnsmasq reads the file after dropping privileges.
        set_mode(dir.path(), 0o755);
        let hosts_path = dir.path().join("hosts");
        write_hosts(&hosts_path, hosts);
        for _ in 0..10 {
            let port = free_port();
            let mut command = Command::new(&binary);
            command
                .arg("--keep-in-foreground")
                .arg("--conf-file=/dev/null")
                .arg("--no-hosts")
                .arg("--no-resolv")
                .arg("--no-poll")
                .arg("--listen-address=127.0.0.1")
                .arg("--bind-interfaces")
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts_path.display()))
                .arg(format!("--local-ttl={}", TTL.as_secs()))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg("--log-facility=-")
                .args(srv.iter().map(|s| format!("--srv-host={s}")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = command.spawn().expect("run dnsmasq");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(addr).is_ok() {
                    return Dnsmasq {
                        child,
                        addr,
                        hosts: hosts_path,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Most likely the port was taken between the check and the start: try another.
            let _ = child.kill();
            let output = child.wait_with_output().expect("dnsmasq output");
            eprintln!(
                "dnsmasq on port {port} did not start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        panic!("dnsmasq did not start on any of 10 ports");
    }

    /// Replaces the records and makes dnsmasq re-read them (SIGHUP).
    fn set_hosts(&self, hosts: &str) {
        write_hosts(&self.hosts, hosts);
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success(), "SIGHUP to dnsmasq failed");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_hosts(path: &Path, hosts: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, hosts).expect("write hosts");
    set_mode(&tmp, 0o644);
    std::fs::rename(&tmp, path).expect("rename hosts");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A port free for both UDP and TCP on 127.0.0.1, at the time of asking.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Servers for `backends`, one per host, all on one port (what A/AAAA records need).
async fn on_one_port(hosts: &[&str], backends: &[Backend]) -> (u16, Vec<RunningServer>) {
    'attempt: for _ in 0..20 {
        let mut servers = Vec::new();
        let mut port = 0;
        for (host, backend) in hosts.iter().zip(backends) {
            match try_serve_at(&format!("{host}:{port}"), backend.clone()).await {
                Ok(server) => {
                    port = server.local_addr().port();
                    servers.push(server);
                }
                Err(_) => {
                    for server in servers {
                        server.shutdown().await;
                    }
                    continue 'attempt;
                }
            }
        }
        return (port, servers);
    }
    panic!("no port free on all of {hosts:?}");
}

fn sorted(mut endpoints: Vec<SocketAddr>) -> Vec<SocketAddr> {
    endpoints.sort();
    endpoints
}

#[tokio::test]
async fn a_records_and_aaaa_records_are_followed_within_the_ttl_and_a_second() {
    let backends = [
        Backend::new("v4-1"),
        Backend::new("v4-2"),
        Backend::new("v6"),
        Backend::new("v4-3"),
    ];
    let hosts = ["127.0.0.1", "127.0.0.2", "[::1]", "127.0.0.3"];
    let (port, servers) = on_one_port(&hosts, &backends).await;
    let dns = Dnsmasq::start(
        "127.0.0.1 svc.herald.test\n127.0.0.2 svc.herald.test\n::1 svc.herald.test\n",
        &[],
    );
    let discovery = Discovery::dns(&format!("svc.herald.test:{port}"))
        .expect("target")
        .nameserver(dns.addr);
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .load_balancing(LoadBalancing::RoundRobin)
        .build()
        .expect("channel");

    // Two A records and one AAAA record: three endpoints, all serving.
    call(&channel).await.expect("first call");
    let mut failures = Vec::new();
    let all_served = eventually(Duration::from_secs(5), || {
        backends[..3].iter().all(|b| b.calls() > 0)
    });
    let load = async {
        loop {
            if let Err(e) = call(&channel).await {
                failures.push(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        served = all_served => assert!(served, "not all of A and AAAA served"),
        () = load => {}
    }
    let port_of = |ip: &str| format!("{ip}:{port}").parse::<SocketAddr>().expect("addr");
    assert_eq!(
        sorted(channel.endpoints()),
        sorted(vec![
            port_of("127.0.0.1"),
            port_of("127.0.0.2"),
            port_of("[::1]")
        ])
    );
    assert_eq!(backends[3].calls(), 0);

    // The service moves: the record now names 127.0.0.3 only.
    dns.set_hosts("127.0.0.3 svc.herald.test\n");
    let changed = Instant::now();
    while channel.endpoints() != [port_of("127.0.0.3")] {
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "never followed: {:?}",
            channel.endpoints()
        );
        if let Err(e) = call(&channel).await {
            failures.push(e.to_string());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let followed = changed.elapsed();
    eprintln!("the change was followed after {followed:?}");
    assert!(
        followed <= TTL + Duration::from_secs(1),
        "followed after {followed:?}"
    );
    let old: usize = backends[..3].iter().map(Backend::calls).sum();
    for _ in 0..20 {
        let account = call(&channel).await.expect("call to the new address");
        assert_eq!(account.name, "v4-3");
    }
    assert_eq!(backends[..3].iter().map(Backend::calls).sum::<usize>(), old);
    assert!(
        failures.is_empty(),
        "calls failed across the change: {failures:?}"
    );
    drop(dns);
    for server in servers {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn srv_records_give_ports_and_their_targets_are_followed() {
    let backends = [
        Backend::new("one"),
        Backend::new("two"),
        Backend::new("three"),
    ];
    let one = try_serve_at("127.0.0.1:0", backends[0].clone())
        .await
        .expect("bind");
    let (two_port, two_and_three) = on_one_port(&["127.0.0.2", "127.0.0.3"], &backends[1..]).await;
    let one_port = one.local_addr().port();
    let dns = Dnsmasq::start(
        "127.0.0.1 one.herald.test\n127.0.0.2 two.herald.test\n127.0.0.4 backup.herald.test\n",
        &[
            format!("_grpc._tcp.svc.herald.test,one.herald.test,{one_port},0,1"),
            format!("_grpc._tcp.svc.herald.test,two.herald.test,{two_port},0,1"),
            // A lower priority (higher number): unused while the others resolve.
            format!("_grpc._tcp.svc.herald.test,backup.herald.test,{one_port},1,1"),
        ],
    );
    let discovery = Discovery::dns_srv("_grpc._tcp.svc.herald.test")
        .expect("name")
        .nameserver(dns.addr);
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .load_balancing(LoadBalancing::RoundRobin)
        .build()
        .expect("channel");
    let at = |ip: &str, port: u16| format!("{ip}:{port}").parse::<SocketAddr>().expect("addr");
    call(&channel).await.expect("first call");
    assert_eq!(
        sorted(channel.endpoints()),
        [at("127.0.0.1", one_port), at("127.0.0.2", two_port)]
    );
    let mut failures = Vec::new();
    for _ in 0..40 {
        if let Err(e) = call(&channel).await {
            failures.push(e.to_string());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(backends[0].calls() > 0 && backends[1].calls() > 0);

    // A target moves: the SRV record stays, its A record changes.
    dns.set_hosts("127.0.0.1 one.herald.test\n127.0.0.3 two.herald.test\n");
    let changed = Instant::now();
    let expected = [at("127.0.0.1", one_port), at("127.0.0.3", two_port)];
    while sorted(channel.endpoints()) != expected {
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "never followed: {:?}",
            channel.endpoints()
        );
        if let Err(e) = call(&channel).await {
            failures.push(e.to_string());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let followed = changed.elapsed();
    eprintln!("the change was followed after {followed:?}");
    assert!(
        followed <= TTL + Duration::from_secs(1),
        "followed after {followed:?}"
    );
    let two = backends[1].calls();
    // The list changes before the new target's connection is up: until it is, calls go to
    // the endpoint that is ready (and none to the old target, which is draining).
    let listed = Instant::now();
    while backends[2].calls() == 0 {
        assert!(
            listed.elapsed() < Duration::from_secs(5),
            "the new target never served a call"
        );
        call(&channel).await.expect("call");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let three = backends[2].calls();
    for _ in 0..20 {
        call(&channel).await.expect("call");
    }
    assert_eq!(backends[1].calls(), two, "the old target gets nothing new");
    assert_eq!(
        backends[2].calls() - three,
        10,
        "round robin over the two ready endpoints"
    );
    assert!(
        failures.is_empty(),
        "calls failed across the change: {failures:?}"
    );
    drop(dns);
    one.shutdown().await;
    for server in two_and_three {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_unknown_name_fails_fast_and_says_why() {
    let dns = Dnsmasq::start("127.0.0.1 svc.herald.test\n", &[]);
    let discovery = Discovery::dns("missing.herald.test:50051")
        .expect("target")
        .nameserver(dns.addr);
    let channel = Channel::builder(discovery)
        .insecure_plaintext()
        .build()
        .expect("channel");
    let start = Instant::now();
    let error = call(&channel).await.expect_err("no such name");
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    assert!(error.is_local());
    assert!(
        error
            .message()
            .contains("no endpoint of missing.herald.test:50051 is known")
            && error.message().contains("missing.herald.test"),
        "{error}"
    );
}
