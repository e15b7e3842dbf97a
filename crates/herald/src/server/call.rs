//! One request on its way through the server's layers.

use std::sync::Arc;

use crate::context::Context;
use crate::server::methods::Method;

/// A request whose method is known and whose [`Context`] is read, body not yet decoded.
#[derive(Debug)]
pub struct Call {
    pub(crate) method: Arc<Method>,
    pub(crate) ctx: Context,
    pub(crate) request: http::Request<tonic::body::Body>,
}

// === impl Call ===

impl Call {
    /// The request's context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The method's contract.
    pub fn contract(&self) -> &'static crate::contract::MethodContract {
        self.method.contract
    }

    /// The request's headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.request.headers()
    }
}
