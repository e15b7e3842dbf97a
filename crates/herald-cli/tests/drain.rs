//! SIGTERM drains: a call in flight is served to its end, then the process exits 0.

use std::time::Duration;

use futures_util::StreamExt;
use herald::Context;
use herald::client::Channel;
use herald::tls::{ClientTls, TlsFiles, TrustDomain};
use herald_example_cache::cache::GetRequest;
use herald_example_cache::cache::cache_client::CacheClient;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_call_in_flight_finish_then_exits_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut demo = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("herald"))
        .args(["demo", "--serve", "--state-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the demo");
    let mut stdout = BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stdout.next_line().await.expect("read") {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Serving until") {
                return;
            }
        }
        panic!("the demo ended before serving:\n{seen}");
    })
    .await
    .expect("the demo serves within 60 s");

    let described: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo.json")).expect("demo.json"),
    )
    .expect("JSON");
    let client = &described["client"];
    let files = TlsFiles {
        cert: client["cert"].as_str().expect("cert").into(),
        key: client["key"].as_str().expect("key").into(),
        ca: client["ca"].as_str().expect("ca").into(),
    };
    let tls = ClientTls::from_files(files, TrustDomain::new("herald.local").expect("td"))
        .expect("client TLS");
    let address = described["services"]["cache"]["address"]
        .as_str()
        .expect("address");
    let cache = CacheClient::new(Channel::tls(address, &tls, "cache").expect("channel"));

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut answers = cache
        .get_many(
            &Context::background(),
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )
        .await
        .expect("stream opens");
    tx.send(GetRequest {
        key: "greeting".into(),
    })
    .await
    .expect("send");
    assert_eq!(
        answers.next().await.expect("answer").expect("ok").value,
        b"hello"
    );

    let pid = demo.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Draining: the open stream is still served...
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(GetRequest {
        key: "farewell".into(),
    })
    .await
    .expect("send");
    assert_eq!(
        answers.next().await.expect("answer").expect("ok").value,
        b"goodbye"
    );
    // ...to its end.
    drop(tx);
    assert!(answers.next().await.is_none(), "the stream ends cleanly");

    let status = tokio::time::timeout(Duration::from_secs(20), demo.wait())
        .await
        .expect("exits within 20 s")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    let mut rest = String::new();
    while let Ok(Some(line)) = stdout.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(
        rest.contains("Stopping: health NOT_SERVING, GOAWAY")
            && rest.contains("both servers drained and stopped"),
        "{rest}"
    );
}
