//! Outlier detection: an endpoint that keeps failing is taken out of the rotation for a
//! while, so one broken server does not fail a share of every client's calls.
//!
//! Consecutive failures, as Envoy's `consecutive_5xx`: after [`OutlierDetection`]'s
//! threshold of failures in a row (connection errors, UNAVAILABLE, INTERNAL, DATA_LOSS) the
//! endpoint is ejected for the base time, longer each time it is ejected again (up to a
//! maximum). Never all of them: at most a share of the endpoints is out at once, and never
//! the last one — a service whose every endpoint fails is better served by retries and the
//! circuit breaker than by a balancer with nothing to pick.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When endpoints are ejected, and for how long.
#[derive(Clone, Debug)]
pub struct OutlierDetection {
    consecutive_failures: u32,
    base_ejection: Duration,
    max_ejection: Duration,
    max_ejected_percent: u8,
}

/// Ejection state of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct Health {
    consecutive: AtomicU32,
    /// Whether the endpoint was ever ejected: every pick asks, and the answer is almost
    /// always no, so it costs one load rather than a lock.
    ever_ejected: AtomicBool,
    ejection: Mutex<Ejection>,
}

#[derive(Debug, Default)]
struct Ejection {
    until: Option<Instant>,
    times: u32,
}

// === impl OutlierDetection ===

impl Default for OutlierDetection {
    /// 5 failures in a row eject for 30 s (× the times ejected, up to 5 min); at most half
    /// of the endpoints out at once.
    fn default() -> Self {
        OutlierDetection {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

impl OutlierDetection {
    /// No endpoint is ever ejected.
    pub fn disabled() -> Self {
        OutlierDetection {
            consecutive_failures: 0,
            ..OutlierDetection::default()
        }
    }

    /// Failures in a row that eject an endpoint (0 disables ejection).
    #[must_use]
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = failures;
        self
    }

    /// The first ejection's length; the n-th lasts n times this, up to `max`.
    #[must_use]
    pub fn ejection_time(mut self, base: Duration, max: Duration) -> Self {
        self.base_ejection = base;
        self.max_ejection = max.max(base);
        self
    }

    /// The largest share of endpoints out at once, in percent (never all of them).
    #[must_use]
    pub fn max_ejected_percent(mut self, percent: u8) -> Self {
        self.max_ejected_percent = percent.min(100);
        self
    }

    /// How many of `endpoints` may be ejected at once.
    pub(crate) fn max_ejected(&self, endpoints: usize) -> usize {
        (endpoints * usize::from(self.max_ejected_percent) / 100).min(endpoints.saturating_sub(1))
    }
}

// === impl Health ===

impl Health {
    /// Whether the endpoint was ever ejected (if not, it is not ejected now).
    pub(crate) fn ever_ejected(&self) -> bool {
        self.ever_ejected.load(Ordering::Acquire)
    }

    pub(crate) fn is_ejected(&self, now: Instant) -> bool {
        if !self.ever_ejected.load(Ordering::Acquire) {
            return false;
        }
        self.ejection
            .lock()
            .is_ok_and(|e| e.until.is_some_and(|until| until > now))
    }

    pub(crate) fn success(&self) {
        // A load, not a store, on the hot path when nothing failed.
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; whether the endpoint is now due for ejection.
    pub(crate) fn failure(&self, config: &OutlierDetection) -> bool {
        let failures = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        config.consecutive_failures > 0 && failures >= config.consecutive_failures
    }

    /// Ejects the endpoint, unless it already is; for how long.
    pub(crate) fn eject(&self, config: &OutlierDetection, now: Instant) -> Option<Duration> {
        let mut ejection = self.ejection.lock().ok()?;
        if ejection.until.is_some_and(|until| until > now) {
            return None;
        }
        ejection.times = ejection.times.saturating_add(1);
        let duration = config
            .base_ejection
            .saturating_mul(ejection.times)
            .min(config.max_ejection);
        ejection.until = Some(now + duration);
        self.ever_ejected.store(true, Ordering::Release);
        self.consecutive.store(0, Ordering::Relaxed);
        Some(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_all_endpoints_are_ejected() {
        let config = OutlierDetection::default().max_ejected_percent(100);
        assert_eq!(config.max_ejected(1), 0);
        assert_eq!(config.max_ejected(2), 1);
        assert_eq!(config.max_ejected(3), 2);
        let config = OutlierDetection::default();
        assert_eq!(config.max_ejected(3), 1);
        assert_eq!(config.max_ejected(10), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn ejections_grow_and_expire() {
        let config = OutlierDetection::default().consecutive_failures(3);
        let health = Health::default();
        assert!(!health.failure(&config));
        health.success();
        assert!(!health.failure(&config));
        assert!(!health.failure(&config));
        assert!(health.failure(&config));
        let now = Instant::now();
        assert_eq!(health.eject(&config, now), Some(Duration::from_secs(30)));
        assert_eq!(health.eject(&config, now), None, "already ejected");
        assert!(health.is_ejected(now + Duration::from_secs(29)));
        assert!(!health.is_ejected(now + Duration::from_secs(30)));
        let later = now + Duration::from_secs(31);
        assert_eq!(health.eject(&config, later), Some(Duration::from_secs(60)));
        let off = OutlierDetection::disabled();
        let health = Health::default();
        assert!((0..100).all(|_| !health.failure(&off)));
    }
}
