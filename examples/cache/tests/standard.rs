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
