//! Rate limiting by the generic cell rate algorithm: one atomic per bucket, no lock.
//!
//! Each allowed request moves the bucket's "theoretical arrival time" one emission interval
//! (1/rate) forward; a request is allowed while that time is at most `burst` intervals ahead
//! of now. The burst is a tenth of a second's worth (at least one request), so that over any
//! window the count stays within a few percent of the rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// One caller's bucket on one method.
#[derive(Debug)]
pub(crate) struct Gcra {
    /// Requests per second this bucket enforces.
    pub(crate) rate: u32,
    interval_ns: u64,
    tolerance_ns: u64,
    /// Theoretical arrival time, in ns since `base`.
    tat: AtomicU64,
    base: Instant,
}

// === impl Gcra ===

impl Gcra {
    pub(crate) fn new(rate: u32) -> Gcra {
        let rate = rate.max(1);
        let interval_ns = 1_000_000_000 / u64::from(rate);
        let burst = u64::from(rate.div_ceil(10)).max(1);
        Gcra {
            rate,
            interval_ns,
            tolerance_ns: interval_ns * (burst - 1),
            tat: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// Takes one request's worth; when refused, how long until one would be allowed.
    pub(crate) fn try_acquire(&self) -> Result<(), Duration> {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let earliest = tat.saturating_sub(self.tolerance_ns);
            if now < earliest {
                return Err(Duration::from_nanos(earliest - now));
            }
            let next = tat.max(now) + self.interval_ns;
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offered twice the rate for 10 s (paused clock): the count is within ±5% of rate × 10.
    #[tokio::test(start_paused = true)]
    async fn accuracy_over_ten_seconds_at_twice_the_rate() {
        for rate in [1u32, 7, 100, 1000, 5000] {
            let gcra = Gcra::new(rate);
            let offered_every = Duration::from_nanos(500_000_000 / u64::from(rate));
            let end = Instant::now() + Duration::from_secs(10);
            let mut allowed = 0u64;
            while Instant::now() < end {
                if gcra.try_acquire().is_ok() {
                    allowed += 1;
                }
                tokio::time::advance(offered_every).await;
            }
            let expected = f64::from(rate) * 10.0;
            let error = (allowed as f64 - expected).abs() / expected;
            assert!(
                error <= 0.05,
                "rate {rate}: {allowed} allowed in 10 s ({:.1}% off)",
                error * 100.0
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refusal_says_when_to_come_back() {
        let gcra = Gcra::new(10);
        assert!(gcra.try_acquire().is_ok());
        let wait = gcra.try_acquire().expect_err("burst of one at 10/s");
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::from_millis(90),
            "{wait:?}"
        );
        tokio::time::advance(wait).await;
        assert!(gcra.try_acquire().is_ok());
    }
}
