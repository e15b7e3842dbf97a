//! Rate buckets of one method, one per caller, made on first sight. Reads are lock-free
//! (an atomic snapshot of the map); a new caller copies the map once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::Identity;
use crate::limits::gcra::Gcra;

/// Buckets by caller (`None`: the unauthenticated callers, who share one).
#[derive(Debug, Default)]
pub(crate) struct RateBuckets {
    buckets: ArcSwap<HashMap<Option<Identity>, Arc<Gcra>>>,
}

// === impl RateBuckets ===

impl RateBuckets {
    /// One request of `caller` at `rate` per second; when refused, when to come back.
    pub(crate) fn acquire(&self, caller: Option<&Identity>, rate: u32) -> Result<(), Duration> {
        if let Some(bucket) = self.buckets.load().get(&caller.cloned())
            && bucket.rate == rate
        {
            return bucket.try_acquire();
        }
        // First sight of this caller, or its rate changed with a reload: a fresh bucket.
        let fresh = Arc::new(Gcra::new(rate));
        let key = caller.cloned();
        self.buckets.rcu(|buckets| {
            let mut buckets = HashMap::clone(buckets);
            match buckets.get(&key) {
                Some(existing) if existing.rate == rate => {}
                _ => {
                    buckets.insert(key.clone(), fresh.clone());
                }
            }
            buckets
        });
        let bucket = self.buckets.load().get(&key).cloned().unwrap_or(fresh);
        bucket.try_acquire()
    }
}
