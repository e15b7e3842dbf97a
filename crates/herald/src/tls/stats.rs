//! Handshake counters: full, resumed, failed — on either side.

use std::sync::atomic::{AtomicU64, Ordering};

use rustls::HandshakeKind;

/// Counts of TLS handshakes.
#[derive(Debug, Default)]
pub struct HandshakeStats {
    full: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
}

// === impl HandshakeStats ===

impl HandshakeStats {
    /// Handshakes that ran the whole key exchange and certificate verification.
    pub fn full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Handshakes that resumed an earlier session (ticket or session id).
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    /// Handshakes that failed: refused certificates, protocol errors, timeouts.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, kind: Option<HandshakeKind>) {
        let counter = match kind {
            Some(HandshakeKind::Resumed) => &self.resumed,
            _ => &self.full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}
