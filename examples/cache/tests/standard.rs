//! The standard services on the service port: gRPC health (following the drain state) and
//! server reflection, called with tonic's own generated clients.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn channel(services: &support::Services) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", services.cache.local_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

async fn status(
    health: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<i32, tonic::Status> {
    let request = HealthCheckRequest {
        service: service.into(),
    };
    health.check(request).await.map(|r| r.into_inner().status)
}

#[tokio::test]
async fn health_is_serving_then_not_serving_once_draining() {
    let services = support::Services::start().await;
    let mut health = HealthClient::new(channel(&services).await);
    // Statuses are set by a task the server spawns at start: give it a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        status(&mut health, "").await.expect("overall"),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        status(&mut health, "cache.Cache").await.expect("cache"),
        ServingStatus::Serving as i32
    );
    let unknown = status(&mut health, "nope.Nope")
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    services.cache.start_draining();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        status(&mut health, "").await.expect("overall"),
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status(&mut health, "cache.Cache").await.expect("cache"),
        ServingStatus::NotServing as i32
    );
    services.shutdown().await;
}

#[tokio::test]
async fn reflection_lists_the_services_and_serves_their_descriptors() {
    let services = support::Services::start().await;
    let mut reflection = ServerReflectionClient::new(channel(&services).await);
    let ask = |message: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let requests = futures_util::stream::iter([
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol("cache.Cache".into())),
    ]);
    let mut answers = reflection
        .server_reflection_info(requests)
        .await
        .expect("reflection")
        .into_inner();

    let Some(MessageResponse::ListServicesResponse(list)) = answers
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    else {
        panic!("expected the service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "cache.Cache",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let Some(MessageResponse::FileDescriptorResponse(files)) = answers
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    else {
        panic!("expected file descriptors");
    };
    let file = files
        .file_descriptor_proto
        .first()
        .expect("one file at least");
    let file = <prost_types::FileDescriptorProto as prost::Message>::decode(file.as_slice())
        .expect("a FileDescriptorProto");
    assert_eq!(file.name(), "cache.proto");
    assert!(file.service.iter().any(|s| s.name() == "Cache"));
    services.shutdown().await;
}

/// The kernel's timer on the server's side of the established connection to `port`, from
/// /proc/net/tcp (`tr`: 0 none, 1 retransmit, 2 keepalive, ...).
fn server_side_timer(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok()?;
        // State 01: established.
        (local_port == port && fields[3] == "01")
            .then(|| fields[5].split(':').next().unwrap_or("").to_owned())
    })
}

/// Callers that vanish without a word are found by TCP keepalive, which herald turns on for
/// every accepted connection (HTTP/2 PINGs are off by default: see `Http2Limits`).
#[tokio::test]
async fn accepted_connections_have_tcp_keepalive_unless_turned_off() {
    for (limits, expected) in [
        (herald::server::Http2Limits::default(), "02"),
        (
            herald::server::Http2Limits {
                tcp_keepalive: None,
                ..Default::default()
            },
            "00",
        ),
    ] {
        let server = herald::Server::builder()
            .insecure_plaintext()
            .allow_all_callers()
            .http2_limits(limits)
            .add_service(
                herald_example_cache::accounts::accounts_server::AccountsServer::new(
                    herald_example_cache::AccountsService::demo(),
                ),
            )
            .bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = herald_example_cache::accounts::accounts_client::AccountsClient::new(
            support::channel(&server),
        );
        let request = herald_example_cache::accounts::GetByTokenRequest {
            token: "tok-bob".into(),
        };
        client
            .get_by_token(&herald::Context::background(), request)
            .await
            .expect("served");
        // Right after the answer the retransmit timer (01) may run until the ACK; then the
        // idle socket shows its keepalive timer, or none.
        let port = server.local_addr().port();
        let mut timer = server_side_timer(port);
        for _ in 0..50 {
            if timer.as_deref() == Some(expected) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            timer = server_side_timer(port);
        }
        assert_eq!(
            timer.as_deref(),
            Some(expected),
            "the server's socket timer"
        );
        server.shutdown().await;
    }
}
