//! Serving or draining: what `/readyz` and the gRPC health service report.

use std::sync::atomic::{AtomicBool, Ordering};

/// A server's readiness.
#[derive(Debug, Default)]
pub(crate) struct Health {
    draining: AtomicBool,
}

impl Health {
    /// Whether the server has started draining (it still serves calls in flight).
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}
