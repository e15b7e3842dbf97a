//! The access log through herald's buffered JSON log: lines are written straight into the
//! buffer (not as tracing events), carry the request's fields, follow the runtime log filter,
//! and reach the writer on flush, on a warning, and at the server's shutdown. (Its own test
//! binary: the logger is process-wide.)

mod support;

use std::time::Duration;

use herald::observe::{BufferedLog, LogControl, LogFormat};
use herald::{Context, Server};
use herald_example_cache::AccountsService;
use herald_example_cache::accounts::GetByTokenRequest;
use herald_example_cache::accounts::accounts_client::AccountsClient;
use herald_example_cache::accounts::accounts_server::AccountsServer;

/// The JSON lines written since the last take.
fn take_lines(written: &support::Captured) -> Vec<serde_json::Value> {
    written
        .take()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

fn access_lines(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["target"] == "herald::access")
        .collect()
}

#[tokio::test]
async fn access_lines_are_buffered_filtered_and_flushed() {
    let written = support::Captured::default();
    // An hour between background flushes: every line seen below was flushed by the test.
    let log = BufferedLog::new(written.clone(), Duration::from_secs(3600));
    let logs =
        LogControl::install_buffered("herald::access=info", LogFormat::Json, log).expect("install");
    let server = Server::builder()
        .insecure_plaintext()
        .allow_all_callers()
        .log_control(logs.clone())
        .add_service(AccountsServer::new(AccountsService::demo()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let accounts = AccountsClient::new(support::channel(&server));
    let call = |ctx: Context, token: &'static str| {
        let accounts = accounts.clone();
        async move {
            let _ = accounts
                .get_by_token(
                    &ctx,
                    GetByTokenRequest {
                        token: token.into(),
                    },
                )
                .await;
            ctx
        }
    };

    let ctx = call(Context::background(), "tok-bob").await;
    assert!(take_lines(&written).is_empty(), "held in the buffer");
    logs.flush();
    let lines = take_lines(&written);
    let access = access_lines(&lines);
    assert_eq!(access.len(), 1, "{lines:?}");
    let line = access[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "accounts.Accounts/GetByToken");
    assert_eq!(line["caller"], "unauthenticated");
    assert_eq!(line["code"], "OK");
    assert_eq!(line["request_id"], ctx.request_id());
    assert!(
        line["latency_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0 && ms < 10_000.0)
    );
    let stamp = line["timestamp"].as_str().expect("timestamp");
    assert_eq!(stamp.len(), 27, "{stamp}");

    // A failed call's line carries its code; a warning takes the buffered lines out with it.
    call(Context::background(), "no-such-token").await;
    tracing::warn!(target: "herald::access", "a warning");
    let lines = take_lines(&written);
    assert_eq!(access_lines(&lines).len(), 2, "{lines:?}");
    assert_eq!(lines[0]["code"], "UNAUTHENTICATED");
    assert_eq!(lines[1]["level"], "WARN");

    // The filter applies to the direct path, at once; and one that depends on the span an
    // event is in is asked again for each line (this line is in no span: it goes nowhere).
    for (filter, why) in [
        ("herald::access=warn", "filtered out"),
        ("[no_such_span]=info", "filtered by its span"),
    ] {
        logs.set(filter).expect("filter");
        call(Context::background(), "tok-bob").await;
        logs.flush();
        assert!(access_lines(&take_lines(&written)).is_empty(), "{why}");
    }
    logs.set("herald::access=info").expect("filter");

    // Shutdown writes what the buffer still holds.
    call(Context::background(), "tok-bob").await;
    server.shutdown().await;
    assert_eq!(access_lines(&take_lines(&written)).len(), 1);
}
