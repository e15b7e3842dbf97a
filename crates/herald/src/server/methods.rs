//! The methods of a service, as generated code hands them to the server.
//!
//! Generated code turns a user's handler trait into a [`ServiceMethods`]: one entry per
//! method, holding its static contract and a function that decodes the request, runs the
//! handler and encodes the answer. The server builds its routing table from these entries
//! once, at start-up.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, TryStreamExt};
use tonic::body::Body;
use tonic::codec::SingleMessageCompressionOverride;
use tonic_prost::ProstCodec;

use crate::app_error::AppError;
use crate::compression;
use crate::context::Context;
use crate::contract::{MethodContract, ServiceContract};
use crate::error::Error;
use crate::server::dispatch::{Env, guard_response};
use crate::server::streams::{GuardedStream, RequestStream};

pub(crate) type ResponseFuture = Pin<Box<dyn Future<Output = http::Response<Body>> + Send>>;

type HandlerFn =
    Box<dyn Fn(Context, http::Request<Body>, &Arc<Env>) -> ResponseFuture + Send + Sync>;

/// A service, ready to be added to a server.
pub trait IntoService {
    /// The service's methods and their handlers.
    fn into_methods(self) -> ServiceMethods;
}

/// The methods of one service.
pub struct ServiceMethods {
    pub(crate) contract: &'static ServiceContract,
    pub(crate) methods: Vec<Method>,
}

/// Methods put together by hand (generated servers do it for you) are a service as they are.
impl IntoService for ServiceMethods {
    fn into_methods(self) -> ServiceMethods {
        self
    }
}

/// One method: its contract and its handler.
pub(crate) struct Method {
    pub(crate) contract: &'static MethodContract,
    handler: HandlerFn,
}

// === impl ServiceMethods ===

impl ServiceMethods {
    /// No methods yet, for the service with this contract.
    pub fn new(contract: &'static ServiceContract) -> Self {
        ServiceMethods {
            contract,
            methods: Vec::with_capacity(contract.methods.len()),
        }
    }

    /// Adds a unary method.
    #[must_use]
    pub fn unary<Req, Resp, E, F, Fut>(self, contract: &'static MethodContract, f: F) -> Self
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        E: AppError,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Error<E>>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.push(contract, move |ctx, request, env| {
            let f = f.clone();
            let handler_ctx = ctx.clone();
            let svc = tower::service_fn(move |r: tonic::Request<Req>| {
                let (metadata, _, message) = r.into_parts();
                handler_ctx.set_request_headers(metadata.into_headers());
                let ctx = handler_ctx.clone();
                let fut = f(handler_ctx.clone(), message);
                async move {
                    fut.await
                        .map(|m| response(&ctx, m))
                        .map_err(Error::into_status)
                }
            });
            let mut grpc = codec::<Resp, Req>(env);
            guard_response(env.clone(), ctx, false, async move {
                grpc.unary(svc, request).await
            })
        })
    }

    /// Adds a server-streaming method.
    #[must_use]
    pub fn server_streaming<Req, Resp, E, S, F, Fut>(
        self,
        contract: &'static MethodContract,
        f: F,
    ) -> Self
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        E: AppError,
        S: Stream<Item = Result<Resp, Error<E>>> + Send + 'static,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, Error<E>>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.push(contract, move |ctx, request, env| {
            let f = f.clone();
            let handler_ctx = ctx.clone();
            let stream_env = env.clone();
            let svc = tower::service_fn(move |r: tonic::Request<Req>| {
                let ctx = handler_ctx.clone();
                let env = stream_env.clone();
                let (metadata, _, message) = r.into_parts();
                ctx.set_request_headers(metadata.into_headers());
                let fut = f(ctx.clone(), message);
                async move {
                    let stream = fut.await.map_err(Error::into_status)?;
                    let stream = stream.map_err(Error::into_status);
                    Ok(tonic::Response::new(GuardedStream::new(stream, ctx, env)))
                }
            });
            let mut grpc = codec::<Resp, Req>(env);
            guard_response(env.clone(), ctx, true, async move {
                grpc.server_streaming(svc, request).await
            })
        })
    }

    /// Adds a client-streaming method.
    #[must_use]
    pub fn client_streaming<Req, Resp, E, F, Fut>(
        self,
        contract: &'static MethodContract,
        f: F,
    ) -> Self
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        E: AppError,
        F: Fn(Context, RequestStream<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Error<E>>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.push(contract, move |ctx, request, env| {
            let f = f.clone();
            let handler_ctx = ctx.clone();
            let svc = tower::service_fn(move |r: tonic::Request<tonic::Streaming<Req>>| {
                let (metadata, _, messages) = r.into_parts();
                handler_ctx.set_request_headers(metadata.into_headers());
                let ctx = handler_ctx.clone();
                let fut = f(handler_ctx.clone(), RequestStream::new(messages));
                async move {
                    fut.await
                        .map(|m| response(&ctx, m))
                        .map_err(Error::into_status)
                }
            });
            let mut grpc = codec::<Resp, Req>(env);
            guard_response(env.clone(), ctx, false, async move {
                grpc.client_streaming(svc, request).await
            })
        })
    }

    /// Adds a bidirectional-streaming method.
    #[must_use]
    pub fn bidi_streaming<Req, Resp, E, S, F, Fut>(
        self,
        contract: &'static MethodContract,
        f: F,
    ) -> Self
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        E: AppError,
        S: Stream<Item = Result<Resp, Error<E>>> + Send + 'static,
        F: Fn(Context, RequestStream<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, Error<E>>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.push(contract, move |ctx, request, env| {
            let f = f.clone();
            let handler_ctx = ctx.clone();
            let stream_env = env.clone();
            let svc = tower::service_fn(move |r: tonic::Request<tonic::Streaming<Req>>| {
                let ctx = handler_ctx.clone();
                let env = stream_env.clone();
                let (metadata, _, messages) = r.into_parts();
                ctx.set_request_headers(metadata.into_headers());
                let fut = f(ctx.clone(), RequestStream::new(messages));
                async move {
                    let stream = fut.await.map_err(Error::into_status)?;
                    let stream = stream.map_err(Error::into_status);
                    Ok(tonic::Response::new(GuardedStream::new(stream, ctx, env)))
                }
            });
            let mut grpc = codec::<Resp, Req>(env);
            guard_response(env.clone(), ctx, true, async move {
                grpc.streaming(svc, request).await
            })
        })
    }

    fn push<H, Fut>(mut self, contract: &'static MethodContract, handler: H) -> Self
    where
        H: Fn(Context, http::Request<Body>, &Arc<Env>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = http::Response<Body>> + Send + 'static,
    {
        self.methods.push(Method {
            contract,
            handler: Box::new(move |ctx, request, env| Box::pin(handler(ctx, request, env))),
        });
        self
    }
}

impl fmt::Debug for ServiceMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceMethods")
            .field("service", &self.contract.name)
            .field("methods", &self.methods)
            .finish()
    }
}

// === impl Method ===

impl Method {
    pub(crate) fn call(
        &self,
        ctx: Context,
        request: http::Request<Body>,
        env: &Arc<Env>,
    ) -> ResponseFuture {
        (self.handler)(ctx, request, env)
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Method").field(&self.contract.path).finish()
    }
}

fn codec<Resp, Req>(env: &Env) -> tonic::server::Grpc<ProstCodec<Resp, Req>>
where
    Resp: prost::Message + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
{
    let grpc = tonic::server::Grpc::new(ProstCodec::default())
        .apply_max_message_size_config(
            Some(env.limits.max_decoding_message_size),
            Some(env.limits.max_encoding_message_size),
        )
        .accept_compressed(compression::ACCEPTED);
    match env.compression {
        Some(compression) => grpc.send_compressed(compression.encoding()),
        None => grpc,
    }
}

/// A single response, uncompressed if the handler asked.
fn response<T>(ctx: &Context, message: T) -> tonic::Response<T> {
    let mut response = tonic::Response::new(message);
    if ctx.response_compression() == Some(false) {
        response
            .extensions_mut()
            .insert(SingleMessageCompressionOverride::Disable);
    }
    response
}
