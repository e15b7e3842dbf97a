//! Finds the method of a request by its path and reads its [`Context`] from the headers —
//! one hash lookup, then everything downstream holds the method's static contract.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use futures_util::future::{Either, Ready};
use tokio::time::Instant;
use tonic::body::Body;
use tower::util::{BoxCloneSyncService, Oneshot};
use tower::{Service, ServiceExt};

use crate::context::{Context, Propagation};
use crate::contract::MethodContract;
use crate::limits::{LiveLimits, Rate};
use crate::observe::server_metrics::ServerMetrics;
use crate::server::call::Call;
use crate::server::call::RoutedMethod;
use crate::server::conn::ConnInfo;
use crate::server::methods::Method;

/// The routing table and the layers every routed call goes through.
#[derive(Debug)]
pub(crate) struct Router<S> {
    routes: HashMap<&'static str, Arc<RoutedMethod>>,
    /// Standard services herald serves as they come (health, reflection), by service name:
    /// open to every peer the transport admits, outside the limits.
    standard: HashMap<&'static str, StandardService>,
    limits: Arc<LiveLimits>,
    services: Vec<&'static str>,
    propagation: Propagation,
    /// Whether requests get a server span (off with the rest of request observability).
    traced: bool,
    stack: S,
}

/// A gRPC service from a crate of the field (tonic-health, tonic-reflection).
pub(crate) type StandardService =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

pub(crate) type RouteFuture<S> = Either<
    Ready<Result<http::Response<Body>, Infallible>>,
    Either<Oneshot<S, Call>, Oneshot<StandardService, http::Request<Body>>>,
>;

// === impl Router ===

impl<S> Router<S>
where
    S: Service<Call, Response = http::Response<Body>, Error = Infallible> + Clone,
{
    /// Routes to `methods`, whose order is the order of `limits`' tables.
    pub(crate) fn new(
        methods: Vec<Method>,
        metrics: &ServerMetrics,
        limits: Arc<LiveLimits>,
        services: Vec<&'static str>,
        propagation: Propagation,
        traced: bool,
        stack: S,
    ) -> Self {
        let routes = methods
            .into_iter()
            .enumerate()
            .map(|(index, method)| {
                let path = method.contract.path;
                let routed = RoutedMethod {
                    metrics: metrics.method(method.contract),
                    method,
                    index,
                    buckets: Default::default(),
                    admission: Default::default(),
                };
                (path, Arc::new(routed))
            })
            .collect();
        Router {
            routes,
            standard: HashMap::new(),
            limits,
            services,
            propagation,
            traced,
            stack,
        }
    }

    pub(crate) fn route(&self, request: http::Request<Body>, conn: &ConnInfo) -> RouteFuture<S> {
        let arrival = Instant::now();
        let Some(method) = self.routes.get(request.uri().path()) else {
            let service = request
                .uri()
                .path()
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            if let Some(standard) = self.standard.get(service) {
                return Either::Right(Either::Right(standard.clone().oneshot(request)));
            }
            return Either::Left(refuse(self.unimplemented(request.uri().path())));
        };
        let ctx = match Context::from_request(
            request.headers(),
            arrival,
            method.method.contract,
            conn.identity.clone(),
            &self.propagation,
            self.traced,
        ) {
            Ok(ctx) => ctx,
            Err(malformed) => {
                return Either::Left(refuse(tonic::Status::invalid_argument(
                    malformed.to_string(),
                )));
            }
        };
        let call = Call {
            method: method.clone(),
            ctx,
            request,
            limits: self.limits.current(),
            rate: Rate::Unlimited,
            permit: None,
            arrival: arrival.into_std(),
            conn: Some(conn.entry.clone()),
        };
        Either::Right(Either::Left(self.stack.clone().oneshot(call)))
    }

    /// Serves a standard service under its full name.
    pub(crate) fn add_standard(&mut self, name: &'static str, service: StandardService) {
        self.services.push(name);
        self.standard.insert(name, service);
    }

    /// The services served, by full name.
    pub(crate) fn service_names(&self) -> Vec<&'static str> {
        self.services.clone()
    }

    /// The contract of the method at `path`, if it is one of the services' own.
    pub(crate) fn contract(&self, path: &str) -> Option<&'static MethodContract> {
        self.routes.get(path).map(|m| m.method.contract)
    }

    /// Every routed method, for the admin endpoints.
    pub(crate) fn methods(&self) -> Vec<Arc<RoutedMethod>> {
        let mut methods: Vec<_> = self.routes.values().cloned().collect();
        methods.sort_by_key(|m| m.index);
        methods
    }

    fn unimplemented(&self, path: &str) -> tonic::Status {
        let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if self.services.contains(&service) {
            tonic::Status::unimplemented(format!("unknown method {path}"))
        } else {
            tonic::Status::unimplemented(format!("unknown service {service}"))
        }
    }
}

fn refuse(status: tonic::Status) -> Ready<Result<http::Response<Body>, Infallible>> {
    futures_util::future::ready(Ok(status.into_http()))
}
