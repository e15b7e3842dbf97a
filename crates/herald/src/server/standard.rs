//! The standard services every herald server has: `grpc.health.v1.Health` (reflecting the
//! drain state) and `grpc.reflection.v1.ServerReflection` (from the descriptors herald-build
//! embeds), so that standard gRPC tools can check, list and call a herald service.

use std::convert::Infallible;

use tonic::body::Body;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::util::BoxCloneSyncService;

use crate::server::methods::ServiceMethods;
use crate::server::router::StandardService;

/// Health and reflection, ready to mount.
pub(crate) struct Standard {
    pub(crate) services: Vec<(&'static str, StandardService)>,
    pub(crate) health: HealthReporter,
}

/// Builds health (every service SERVING, and "" for the whole server) and reflection over
/// the services' descriptor sets.
pub(crate) fn standard_services(services: &[ServiceMethods]) -> Standard {
    let (health, health_server) = tonic_health::server::health_reporter();
    let mut mounted = vec![(
        <tonic_health::pb::health_server::HealthServer<()> as NamedService>::NAME,
        box_service(health_server),
    )];

    // Health's own descriptors, and a list of exactly the services served here: a build's
    // descriptor set may hold services another server runs.
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection");
    let mut seen: Vec<&'static [u8]> = Vec::new();
    for service in services {
        reflection = reflection.with_service_name(service.contract.name);
        let set = service.contract.descriptor_set;
        // One build's packages share a set: register each once.
        if !set.is_empty() && !seen.contains(&set) {
            seen.push(set);
            reflection = reflection.register_encoded_file_descriptor_set(set);
        }
    }
    match reflection.build_v1() {
        Ok(server) => mounted.push(("grpc.reflection.v1.ServerReflection", box_service(server))),
        Err(error) => {
            tracing::warn!(%error, "server reflection is off: the descriptors do not load")
        }
    }
    Standard {
        services: mounted,
        health,
    }
}

/// Marks the server and each of `names` with `status`.
pub(crate) fn set_health(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    let reporter = reporter.clone();
    let names = names.to_vec();
    tokio::spawn(async move {
        reporter.set_service_status("", status).await;
        for name in names {
            reporter.set_service_status(name, status).await;
        }
    });
}

fn box_service<S>(service: S) -> StandardService
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(service)
}
