//! Rate buckets of one method, one per caller, made on first sight (lock-free reads).

use std::sync::Arc;
use std::time::Duration;

use crate::Identity;
use crate::cow_map::CowMap;
use crate::limits::gcra::Gcra;

/// Buckets by caller (`None`: the unauthenticated callers, who share one).
#[derive(Debug, Default)]
pub(crate) struct RateBuckets {
    buckets: CowMap<Option<Identity>, Arc<Gcra>>,
}

// === impl RateBuckets ===

impl RateBuckets {
    /// One request of `caller` at `rate` per second; when refused, when to come back.
    pub(crate) fn acquire(&self, caller: Option<&Identity>, rate: u32) -> Result<(), Duration> {
        let key = caller.cloned();
        let bucket = match self.buckets.get(&key) {
            Some(bucket) if bucket.rate == rate => bucket,
            // First sight of this caller, or its rate changed with a reload: a fresh bucket.
            _ => self
                .buckets
                .replace_if(&key, Arc::new(Gcra::new(rate)), |b| b.rate != rate),
        };
        bucket.try_acquire()
    }
}
