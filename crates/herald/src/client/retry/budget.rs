//! The retry budget of a channel: gRPC's retry throttling token bucket.
//!
//! Retries multiply load exactly when a service can least take it: with 3 attempts per
//! call, a service failing every call receives three times its traffic. The budget caps
//! that. Every failed attempt (with a code that would be retried) takes a token, every
//! success gives back `token_ratio` of one, and retries are allowed only while the bucket
//! holds more than half of `max_tokens`. A healthy channel retries freely; once failures
//! outnumber successes by about `1 / token_ratio` to one, retries stop until successes
//! refill it. One budget covers all methods of the channel (gRPC's choice: it is the
//! service, not a method, that is in trouble).

use std::sync::atomic::{AtomicU64, Ordering};

/// Tokens are counted in thousandths, as gRPC does, so the ratio needs no floats.
const SCALE: u64 = 1000;

/// A channel's retry budget; see the [module docs](self).
#[derive(Debug)]
pub struct RetryBudget {
    max: u64,
    ratio: u64,
    tokens: AtomicU64,
}

// === impl RetryBudget ===

impl RetryBudget {
    /// A bucket of `max_tokens` (1 to 1000, default 10) refilled by `token_ratio` per
    /// success (0.001 to 1, default 0.1), starting full.
    pub fn token_bucket(max_tokens: u32, token_ratio: f64) -> RetryBudget {
        let max = u64::from(max_tokens.clamp(1, 1000)) * SCALE;
        let ratio = if token_ratio.is_finite() {
            (token_ratio.clamp(0.001, 1.0) * SCALE as f64).round() as u64
        } else {
            SCALE / 10
        };
        RetryBudget {
            max,
            ratio,
            tokens: AtomicU64::new(max),
        }
    }

    /// An attempt succeeded.
    pub(crate) fn deposit(&self) {
        if self.tokens.load(Ordering::Relaxed) >= self.max {
            return;
        }
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + self.ratio).min(self.max))
            });
    }

    /// An attempt failed with a retriable code: one token less; whether a retry may follow.
    pub(crate) fn withdraw(&self) -> bool {
        let before = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(SCALE))
            })
            .unwrap_or(0);
        before.saturating_sub(SCALE) > self.max / 2
    }

    /// Tokens left, in whole tokens (rounded down).
    pub fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed) / SCALE
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::token_bucket(10, 0.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_failing_service_gets_four_retries_then_none() {
        let budget = RetryBudget::default();
        let allowed: Vec<bool> = (0..8).map(|_| budget.withdraw()).collect();
        assert_eq!(
            allowed,
            [true, true, true, true, false, false, false, false]
        );
        // Ten successes give back one token: still at the threshold, no retry.
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(!budget.withdraw());
    }

    proptest! {
        #[test]
        fn tokens_stay_within_the_bucket(ops in proptest::collection::vec(any::<bool>(), 0..500),
                                         max in 1u32..50, ratio in 0.001f64..1.0) {
            let budget = RetryBudget::token_bucket(max, ratio);
            for success in ops {
                let before = budget.tokens.load(Ordering::Relaxed);
                if success {
                    budget.deposit();
                } else {
                    let allowed = budget.withdraw();
                    // A retry is allowed only while more than half the bucket is left.
                    prop_assert_eq!(allowed, before.saturating_sub(SCALE) > budget.max / 2);
                }
                prop_assert!(budget.tokens.load(Ordering::Relaxed) <= budget.max);
            }
        }
    }
}
