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
    width: Duration,
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
            width: (window / BUCKETS as u32).max(Duration::from_millis(1)),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    pub(crate) fn record(&mut self, now: Instant, failed: bool) {
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
    }

    /// (calls, failures) within the window ending `now`.
    pub(crate) fn totals(&self, now: Instant) -> (u32, u32) {
        let tick = self.tick(now);
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

    fn tick(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        u64::try_from(elapsed.as_nanos() / self.width.as_nanos()).unwrap_or(u64::MAX)
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
                w.record(now, failed);
                log.push((now, failed));
                let tick = |t: Instant| (t - start).as_millis() as u64 / 100;
                let current = tick(now);
                let live: Vec<_> = log.iter().filter(|(t, _)| tick(*t) + 10 > current).collect();
                let calls = live.len() as u32;
                let failures = live.iter().filter(|(_, f)| *f).count() as u32;
                prop_assert_eq!(w.totals(now), (calls, failures));
            }
        }
    }
}
