//! Counters every server keeps from its first request (the observability issue exports them).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::tls::HandshakeStats;

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub(crate) panics: AtomicU64,
    pub(crate) expired_on_arrival: AtomicU64,
    pub(crate) deadline_exceeded_in_handler: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) handshakes: HandshakeStats,
    pub(crate) denied: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) shed_queue_full: AtomicU64,
    pub(crate) shed_queue_timeout: AtomicU64,
    pub(crate) expired_in_queue: AtomicU64,
    pub(crate) preface_timeouts: AtomicU64,
}

// === impl ServerStats ===

impl ServerStats {
    /// Handlers that panicked (each answered INTERNAL).
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Requests whose deadline had passed before their handler could start.
    pub fn expired_on_arrival(&self) -> u64 {
        self.expired_on_arrival.load(Ordering::Relaxed)
    }

    /// Handlers cancelled at their deadline.
    pub fn deadline_exceeded_in_handler(&self) -> u64 {
        self.deadline_exceeded_in_handler.load(Ordering::Relaxed)
    }

    /// Connections accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted.load(Ordering::Relaxed)
    }

    /// Calls refused by the ACL.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Calls refused for going over the caller's rate.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Calls shed because the admission queue was full.
    pub fn shed_queue_full(&self) -> u64 {
        self.shed_queue_full.load(Ordering::Relaxed)
    }

    /// Calls shed after waiting their queue timeout.
    pub fn shed_queue_timeout(&self) -> u64 {
        self.shed_queue_timeout.load(Ordering::Relaxed)
    }

    /// Calls whose deadline passed while they queued.
    pub fn expired_in_queue(&self) -> u64 {
        self.expired_in_queue.load(Ordering::Relaxed)
    }

    /// Connections closed for not sending the HTTP/2 preface in time.
    pub fn preface_timeouts(&self) -> u64 {
        self.preface_timeouts.load(Ordering::Relaxed)
    }

    /// TLS handshakes: full, resumed, failed.
    pub fn handshakes(&self) -> &HandshakeStats {
        &self.handshakes
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
