//! One request on its way through the server's layers.

use std::sync::Arc;

use crate::context::Context;
use crate::limits::Rate;
use crate::limits::admission::{Admission, Permit};
use crate::limits::buckets::RateBuckets;
use crate::limits::policy::{Compiled, MethodPolicy};
use crate::observe::server_metrics::MethodMetrics;
use crate::server::connections::ConnEntry;
use crate::server::methods::Method;

/// A method as the server runs it: its handler, and the state its limits keep.
#[derive(Debug)]
pub(crate) struct RoutedMethod {
    pub(crate) method: Method,
    /// Position in every [`Compiled`] limits table.
    pub(crate) index: usize,
    pub(crate) buckets: RateBuckets,
    pub(crate) admission: Arc<Admission>,
    pub(crate) metrics: MethodMetrics,
}

/// A request whose method is known and whose [`Context`] is read, body not yet decoded.
#[derive(Debug)]
pub struct Call {
    pub(crate) method: Arc<RoutedMethod>,
    pub(crate) ctx: Context,
    pub(crate) request: http::Request<tonic::body::Body>,
    /// The limits in force when the request arrived.
    pub(crate) limits: Arc<Compiled>,
    /// The caller's rate, once the ACL allowed it.
    pub(crate) rate: Rate,
    /// The admission slot, once granted.
    pub(crate) permit: Option<Permit>,
    /// When the request's headers were routed: the start of its recorded latency.
    pub(crate) arrival: std::time::Instant,
    /// The connection it came on, until the observe layer takes it (the one layer that needs
    /// it: a reference moved, not counted again, on every request).
    pub(crate) conn: Option<Arc<ConnEntry>>,
}

// === impl Call ===

impl Call {
    /// The request's context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The method's contract.
    pub fn contract(&self) -> &'static crate::contract::MethodContract {
        self.method.method.contract
    }

    /// The request's headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.request.headers()
    }

    pub(crate) fn policy(&self) -> &MethodPolicy {
        &self.limits.methods[self.method.index]
    }
}

/// The layered service every listener routes calls into (the request path after routing):
/// named once, so the listeners' signatures do not repeat its bounds.
pub(crate) trait CallStack:
    tower::Service<
        Call,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> CallStack for S
where
    S: tower::Service<
            Call,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
}

/// A routed call of a one-method service, for the layers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use super::*;
    use crate::context::Propagation;
    use crate::contract::{ClientPolicy, MethodContract, RpcKind, ServiceContract};
    use crate::observe::server_metrics::ServerMetrics;
    use crate::server::connections::Connections;
    use crate::server::methods::ServiceMethods;

    /// Unary, with a 100 ms deadline of its own.
    pub(crate) static METHOD: MethodContract = MethodContract {
        service: "t.S",
        method: "M",
        path: "/t.S/M",
        kind: RpcKind::Unary,
        deadline: Some(Duration::from_millis(100)),
        client: ClientPolicy {
            timeout: None,
            idempotent: false,
            retry: None,
            circuit_breaker: None,
        },
    };
    static SERVICE: ServiceContract = ServiceContract {
        name: "t.S",
        methods: &[&METHOD],
        app_error: None,
        descriptor_set: &[],
    };

    /// A call of [`METHOD`] with `headers`, recorded in `metrics`, allowed by its limits.
    pub(crate) fn call(headers: &[(&'static str, &'static str)], metrics: &ServerMetrics) -> Call {
        let mut request = http::Request::new(tonic::body::Body::empty());
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, http::HeaderValue::from_static(value));
        }
        let ctx = Context::from_request(
            request.headers(),
            tokio::time::Instant::now(),
            &METHOD,
            None,
            &Propagation::default(),
            true,
        )
        .expect("valid headers");
        let methods = ServiceMethods::new(&SERVICE)
            .unary(&METHOD, |_, _: ()| async { Ok::<(), crate::Error>(()) });
        let method = Arc::new(RoutedMethod {
            method: methods.methods.into_iter().next().expect("one method"),
            index: 0,
            buckets: Default::default(),
            admission: Default::default(),
            metrics: metrics.method(&METHOD),
        });
        Call {
            method,
            ctx,
            request,
            limits: Arc::new(Compiled::allow_all(&[&METHOD])),
            rate: Rate::Unlimited,
            permit: None,
            arrival: std::time::Instant::now(),
            conn: Some(
                Arc::new(Connections::default())
                    .register(([127, 0, 0, 1], 1).into())
                    .entry
                    .clone(),
            ),
        }
    }
}
