//! Calls and failures over a rolling window, in ten buckets.
//!
//! Counting per bucket keeps recording O(1) and lets old calls fall out a tenth of the
//! window at a time, rather than all at once at the end of a fixed window (which would let
//! a breaker forget a failure burst the moment the window turns).

use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: usize = 10;

/// Outcomes within the last `window`.
#[derive(Debug)]
pub(crate) struct Window {
    origin: Instant,
    /// A bucket's width, in nanoseconds (at least a millisecond).
    width: u64,
    buckets: [Bucket; BUCKETS],
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    /// Which tick (width-long slice of time since `origin`) the counts belong to.
    tick: u64,
    calls: u32,
    failures: u32,
}

// === impl Window ===

impl Window {
    pub(crate) fn new(window: Duration, now: Instant) -> Self {
        Window {
            origin: now,
            width: u64::try_from((window / BUCKETS as u32).as_nanos())
                .unwrap_or(u64::MAX)
                .max(1_000_000),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    /// Counts one outcome at `now`: the (calls, failures) within the window then.
    pub(crate) fn record(&mut self, now: Instant, failed: bool) -> (u32, u32) {
        let tick = self.tick(now);
        let bucket = &mut self.buckets[(tick % BUCKETS as u64) as usize];
        if bucket.tick != tick {
            *bucket = Bucket {
                tick,
                ..Bucket::default()
            };
        }
        bucket.calls = bucket.calls.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
        self.totals_at(tick)
    }

    /// (calls, failures) within the window ending `now`.
    #[cfg(test)]
    pub(crate) fn totals(&self, now: Instant) -> (u32, u32) {
        self.totals_at(self.tick(now))
    }

    fn totals_at(&self, tick: u64) -> (u32, u32) {
        self.buckets
            .iter()
            .filter(|b| b.calls > 0 && b.tick + BUCKETS as u64 > tick && b.tick <= tick)
            .fold((0, 0), |(calls, failures), b| {
                (
                    calls.saturating_add(b.calls),
                    failures.saturating_add(b.failures),
                )
            })
    }

    pub(crate) fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
    }

    /// Every call of a method with a breaker counts here: one 64-bit division (u64
    /// nanoseconds last 584 years), where dividing the u128 of `Duration::as_nanos` called
    /// into a software division several times dearer.
    fn tick(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed).unwrap_or(u64::MAX) / self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a plain list of timestamped outcomes: the window counts exactly the
        /// outcomes of the current and previous nine buckets.
        #[test]
        fn counts_match_a_naive_model(steps in proptest::collection::vec((0u64..400, any::<bool>()), 1..200)) {
            let start = Instant::now();
            let window = Duration::from_millis(1000);
            let mut w = Window::new(window, start);
            let mut log = Vec::new();
            let mut now = start;
            for (advance_ms, failed) in steps {
                now += Duration::from_millis(advance_ms);
                let recorded = w.record(now, failed);
                log.push((now, failed));
                let tick = |t: Instant| (t - start).as_millis() as u64 / 100;
                let current = tick(now);
                let live: Vec<_> = log.iter().filter(|(t, _)| tick(*t) + 10 > current).collect();
                let calls = live.len() as u32;
                let failures = live.iter().filter(|(_, f)| *f).count() as u32;
                prop_assert_eq!(w.totals(now), (calls, failures));
                prop_assert_eq!(recorded, (calls, failures));
            }
        }
    }
}
