//! Reconnect backoff, exactly as gRPC's `connection-backoff.md` specifies.
//!
//! A server that is down must not be hammered by every client reconnecting in a tight loop,
//! and clients that lost it at the same moment must not come back in lockstep. So the wait
//! between two connection attempts starts at 1 s, grows by 1.6 per failure up to 120 s, and
//! is spread by ±20% jitter (applied after the cap, as the spec does: a wait can reach
//! 144 s). One attempt may take up to the larger of its backoff and 20 s before it counts
//! as failed, so a slow handshake is not cut short by a small backoff.
//!
//! ```text
//! current_backoff = INITIAL_BACKOFF
//! current_deadline = now() + INITIAL_BACKOFF
//! while (TryConnect(Max(current_deadline, now() + MIN_CONNECT_TIMEOUT)) != SUCCESS)
//!   SleepUntil(current_deadline)
//!   current_backoff = Min(current_backoff * MULTIPLIER, MAX_BACKOFF)
//!   current_deadline = now() + current_backoff + UniformRandom(-JITTER * current_backoff,
//!                                                               JITTER * current_backoff)
//! ```

use std::time::Duration;

/// The first wait, not jittered.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Growth per failed attempt.
pub(crate) const MULTIPLIER: f64 = 1.6;
/// Spread of each wait after the first, as a share of it.
pub(crate) const JITTER: f64 = 0.2;
/// The cap on the wait before jitter.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// The least time one connection attempt is given.
pub(crate) const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The waits between connection attempts of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectBackoff {
    /// The un-jittered wait after the next attempt; `None` before the first attempt.
    current: Option<Duration>,
}

// === impl ConnectBackoff ===

impl ConnectBackoff {
    pub(crate) fn new() -> Self {
        ConnectBackoff { current: None }
    }

    /// The time from the start of the attempt about to be made to the start of the next one,
    /// should this one fail.
    pub(crate) fn next_wait(&mut self) -> Duration {
        match self.current {
            None => {
                self.current = Some(INITIAL_BACKOFF);
                INITIAL_BACKOFF
            }
            Some(current) => {
                let grown = grow(current);
                self.current = Some(grown);
                jittered(grown, rand::random::<f64>())
            }
        }
    }

    /// A connection succeeded: the next failure starts again at 1 s.
    pub(crate) fn reset(&mut self) {
        self.current = None;
    }
}

/// The next un-jittered backoff.
pub(crate) fn grow(current: Duration) -> Duration {
    current.mul_f64(MULTIPLIER).min(MAX_BACKOFF)
}

/// `backoff` spread by ±[`JITTER`], with `unit` uniform in [0, 1).
pub(crate) fn jittered(backoff: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    backoff.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_start_at_one_second_and_reach_the_cap() {
        let mut backoff = ConnectBackoff::new();
        assert_eq!(backoff.next_wait(), INITIAL_BACKOFF);
        let mut unjittered = INITIAL_BACKOFF;
        for _ in 0..20 {
            unjittered = grow(unjittered);
            let wait = backoff.next_wait();
            assert!(wait >= unjittered.mul_f64(0.8) && wait <= unjittered.mul_f64(1.2));
        }
        assert_eq!(unjittered, MAX_BACKOFF);
        backoff.reset();
        assert_eq!(backoff.next_wait(), INITIAL_BACKOFF);
    }

    proptest! {
        #[test]
        fn every_wait_is_within_twenty_percent_of_the_capped_backoff(
            failures in 0u32..200,
            unit in 0.0f64..1.0,
        ) {
            let mut backoff = INITIAL_BACKOFF;
            for _ in 0..failures {
                let next = grow(backoff);
                prop_assert!(next >= backoff);
                prop_assert!(next <= MAX_BACKOFF);
                backoff = next;
            }
            let exponent = i32::try_from(failures).unwrap_or(i32::MAX);
            let expected = Duration::try_from_secs_f64(MULTIPLIER.powi(exponent))
                .map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF));
            // Float steps may differ from the closed form by a nanosecond per step.
            let slack = Duration::from_nanos(u64::from(failures) + 1);
            prop_assert!(backoff + slack >= expected && backoff <= expected + slack);
            let wait = jittered(backoff, unit);
            prop_assert!(wait >= backoff.mul_f64(0.8) && wait <= backoff.mul_f64(1.2));
            prop_assert!(wait <= MAX_BACKOFF.mul_f64(1.2));
        }

        #[test]
        fn jitter_never_leaves_its_band_even_for_odd_inputs(unit in proptest::num::f64::ANY) {
            let wait = jittered(Duration::from_secs(10), unit);
            prop_assert!(wait >= Duration::from_secs(8) && wait <= Duration::from_secs(12));
        }
    }
}
