//! Backoff between retries of a call: exponential with full jitter, as gRPC's retry design
//! (A6) specifies.
//!
//! The n-th retry waits a uniformly random time in `[0, min(initial × multiplier^(n-1),
//! max))`. Full jitter (rather than ±x%) spreads the retries of many clients that failed
//! together over the whole interval, so they do not arrive at a recovering server in a
//! synchronized wave (AWS's "Exponential Backoff And Jitter" measured it).

use std::time::Duration;

use crate::contract::RetryPolicy;

/// The upper bound of the wait before retry number `retry` (1 for the first retry).
pub(crate) fn ceiling(policy: &RetryPolicy, retry: u32) -> Duration {
    let multiplier = if policy.multiplier.is_finite() {
        policy.multiplier.max(1.0)
    } else {
        1.0
    };
    let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
    let grown = policy.initial_backoff.as_secs_f64() * multiplier.powi(exponent);
    Duration::try_from_secs_f64(grown)
        .unwrap_or(Duration::MAX)
        .min(policy.max_backoff)
}

/// The wait before retry number `retry`, with `unit` uniform in [0, 1).
pub(crate) fn delay(policy: &RetryPolicy, retry: u32, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ceiling(policy, retry).mul_f64(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(initial_ms: u64, max_ms: u64, multiplier: f64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            multiplier,
            retriable: &[],
        }
    }

    #[test]
    fn ceilings_grow_then_stop_at_the_max() {
        let p = policy(10, 100, 2.0);
        let ceilings: Vec<_> = (1..=6).map(|n| ceiling(&p, n).as_millis()).collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
    }

    proptest! {
        #[test]
        fn every_delay_is_within_zero_and_its_ceiling(
            initial_ms in 0u64..10_000,
            max_ms in 0u64..100_000,
            multiplier in proptest::num::f64::ANY,
            retry in 0u32..10_000,
            unit in proptest::num::f64::ANY,
        ) {
            let p = policy(initial_ms, max_ms, multiplier);
            let d = delay(&p, retry, unit);
            prop_assert!(d <= ceiling(&p, retry));
            prop_assert!(d <= p.max_backoff);
            // The ceiling never shrinks as retries go on.
            prop_assert!(ceiling(&p, retry) <= ceiling(&p, retry.saturating_add(1)));
        }

        #[test]
        fn jitter_covers_the_whole_interval(unit in 0.0f64..1.0) {
            let p = policy(100, 1000, 2.0);
            let d = delay(&p, 3, unit);
            let expected = Duration::from_millis(400).mul_f64(unit);
            prop_assert!(d.abs_diff(expected) <= Duration::from_nanos(1));
        }
    }
}
