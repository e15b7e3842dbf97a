//! Calls and failures over a rolling window, in ten buckets, counted without a lock.
//!
//! Counting per bucket keeps recording O(1) and lets old calls fall out a tenth of the
//! window at a time, rather than all at once at the end of a fixed window (which would let
//! a breaker forget a failure burst the moment the window turns).
//!
//! Every call of a method with a breaker is counted here, from whichever thread made it: a
//! bucket is one atomic word — the tick it counts for, its calls and its failures — changed
//! by one compare-and-swap, so that counting takes no lock (a lock is two atomic
//! read-modify-writes per call, on a line every thread calling the method shares) and a
//! bucket that turns over is reset and counted in the same step, losing no count made at
//! the same time (only the emptying after an idle window may: see `TICK_MASK`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const BUCKETS: usize = 10;

/// Bits of a bucket's word for each count: a bucket counts at most about a million calls
/// (then it is full: the calls after are not counted, so its failure ratio stands as
/// sampled, rather than failures outgrowing a capped count of calls).
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
/// The rest of the word: the tick, modulo 2^24 — a stamp comes back after 2^24 ticks (4.6
/// hours of the shortest, a millisecond). The first count after a whole window without one
/// empties every bucket, so buckets left from before a pause are never read as current.
/// (Calls that kept coming yet skipped one bucket's slot for 2^24 ticks could still see it;
/// at most a tenth of a window's counts, hours old.)
const TICK_MASK: u64 = (1 << (64 - 2 * COUNT_BITS)) - 1;

/// Outcomes within the last `window`.
#[derive(Debug)]
pub(crate) struct Window {
    origin: Instant,
    /// A bucket's width, in nanoseconds (at least a millisecond).
    width: u64,
    /// Each a [`Bucket`]'s word.
    buckets: [AtomicU64; BUCKETS],
    /// The latest tick counted.
    latest: AtomicU64,
}

/// One bucket: calls (low bits), failures, and which tick (width-long slice of time since
/// `origin`, modulo 2^24) they belong to (high bits). No calls: empty, whatever the tick.
#[derive(Clone, Copy)]
struct Bucket(u64);

// === impl Window ===

impl Window {
    pub(crate) fn new(window: Duration, now: Instant) -> Self {
        Window {
            origin: now,
            width: u64::try_from((window / BUCKETS as u32).as_nanos())
                .unwrap_or(u64::MAX)
                .max(1_000_000),
            buckets: Default::default(),
            latest: AtomicU64::new(0),
        }
    }

    /// Counts one outcome at `now`: the (calls, failures) within the window then.
    #[cfg(test)]
    pub(crate) fn record(&self, now: Instant, failed: bool) -> (u32, u32) {
        let stamp = self.count(now, failed);
        self.totals_at(stamp)
    }

    /// Counts one outcome at `now`; its bucket's stamp, for [`totals_at`](Self::totals_at).
    pub(crate) fn count(&self, now: Instant, failed: bool) -> u64 {
        let tick = self.tick(now);
        // Read on every count, written once a tick: by the first count of the tick.
        if tick > self.latest.load(Ordering::Relaxed) {
            let before = self.latest.fetch_max(tick, Ordering::Relaxed);
            if tick >= before.saturating_add(BUCKETS as u64) {
                // A whole window went by without a count: nothing held is in it. (A count
                // made by another thread at this very moment may be cleared with them.)
                self.clear();
            }
        }
        let stamp = tick & TICK_MASK;
        let slot = &self.buckets[(tick % BUCKETS as u64) as usize];
        let mut word = slot.load(Ordering::Relaxed);
        loop {
            let bucket = Bucket(word);
            let next = if bucket.calls() == 0 || bucket.stamp() != stamp {
                // Empty, or a tick a whole window ago: this tick's now.
                Bucket::new(stamp, 1, u64::from(failed))
            } else if bucket.calls() == COUNT_MAX {
                break;
            } else {
                Bucket::new(
                    stamp,
                    bucket.calls() + 1,
                    bucket.failures() + u64::from(failed),
                )
            };
            match slot.compare_exchange_weak(word, next.0, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(current) => word = current,
            }
        }
        stamp
    }

    /// (calls, failures) within the window ending `now`.
    #[cfg(test)]
    pub(crate) fn totals(&self, now: Instant) -> (u32, u32) {
        self.totals_at(self.tick(now) & TICK_MASK)
    }

    /// The buckets of `stamp` and the nine ticks before (one of a later tick — another
    /// thread's clock a moment ahead — is not yet in this window).
    pub(crate) fn totals_at(&self, stamp: u64) -> (u32, u32) {
        let (calls, failures) = self
            .buckets
            .iter()
            .map(|slot| Bucket(slot.load(Ordering::Relaxed)))
            .filter(|b| {
                b.calls() > 0 && (stamp.wrapping_sub(b.stamp()) & TICK_MASK) < BUCKETS as u64
            })
            .fold((0u64, 0u64), |(calls, failures), b| {
                (calls + b.calls(), failures + b.failures())
            });
        // At most ten buckets of 2^20: well within u32.
        (calls as u32, failures as u32)
    }

    /// Forgets every outcome.
    pub(crate) fn clear(&self) {
        for slot in &self.buckets {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// Every call of a method with a breaker counts here: one 64-bit division (u64
    /// nanoseconds last 584 years), where dividing the u128 of `Duration::as_nanos` called
    /// into a software division several times dearer.
    fn tick(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed).unwrap_or(u64::MAX) / self.width
    }
}

// === impl Bucket ===

impl Bucket {
    fn new(stamp: u64, calls: u64, failures: u64) -> Self {
        Bucket(stamp << (2 * COUNT_BITS) | failures << COUNT_BITS | calls)
    }

    fn calls(self) -> u64 {
        self.0 & COUNT_MAX
    }

    fn failures(self) -> u64 {
        (self.0 >> COUNT_BITS) & COUNT_MAX
    }

    fn stamp(self) -> u64 {
        self.0 >> (2 * COUNT_BITS)
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
        fn counts_match_a_naive_model(steps in proptest::collection::vec((0u64..1200, any::<bool>()), 1..200)) {
            let start = Instant::now();
            let window = Duration::from_millis(1000);
            let w = Window::new(window, start);
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

    #[test]
    fn threads_counting_at_once_lose_no_outcome() {
        const THREADS: u32 = 4;
        const EACH: u32 = 20_000;
        let start = Instant::now();
        let w = Window::new(Duration::from_secs(1), start);
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let w = &w;
                // The threads' outcomes land in all ten buckets (one thread a whole window
                // behind another would reset the other's bucket, as any clock that far off).
                scope.spawn(move || {
                    for i in 0..EACH {
                        let now = start + Duration::from_millis(u64::from(i / 2000) * 100);
                        w.record(now, (i + thread) % 3 == 0);
                    }
                });
            }
        });
        let end = start + Duration::from_millis(900);
        let failed =
            |thread: u32| (0..EACH).filter(|i| (i + thread).is_multiple_of(3)).count() as u32;
        let failures = (0..THREADS).map(failed).sum();
        assert_eq!(w.totals(end), (THREADS * EACH, failures));
    }

    #[test]
    fn a_full_bucket_counts_no_more_and_keeps_its_ratio() {
        let start = Instant::now();
        let w = Window::new(Duration::from_secs(10), start);
        for i in 0..COUNT_MAX + 100 {
            w.record(start, i % 4 == 0);
        }
        let calls = COUNT_MAX as u32;
        assert_eq!(w.totals(start), (calls, calls.div_ceil(4)));
        // The next bucket counts afresh.
        let next = start + Duration::from_secs(1);
        assert_eq!(w.record(next, true), (calls + 1, calls.div_ceil(4) + 1));
    }

    #[test]
    fn buckets_from_before_a_pause_are_never_current() {
        let start = Instant::now();
        let w = Window::new(Duration::from_millis(10), start);
        w.record(start, true);
        w.record(start + Duration::from_millis(3), true);
        // 2^24 + 1 one-millisecond ticks later, the first bucket's stamp looks a tick old.
        let later = start + Duration::from_millis(TICK_MASK + 2);
        assert_eq!(w.record(later, false), (1, 0));
        w.clear();
        assert_eq!(w.totals(later), (0, 0));
    }
}
