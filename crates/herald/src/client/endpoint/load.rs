//! How loaded an endpoint is, measured here: tonic's balancer sees every endpoint at load
//! zero, so its "power of two choices" is a coin toss.
//!
//! Two measures: the requests outstanding on the endpoint (counted from pick to the end of
//! the response body), and a peak-EWMA of the time to response headers, as linkerd and
//! tower's `PeakEwma` do — it jumps up at once on a slow response and decays back slowly,
//! so an endpoint that turns slow is avoided before its queue grows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How fast the latency estimate forgets a peak.
const DECAY: Duration = Duration::from_secs(10);
/// The latency assumed before the first response.
const DEFAULT_RTT: Duration = Duration::from_millis(1);

/// Load of one endpoint.
#[derive(Debug)]
pub(crate) struct Load {
    outstanding: AtomicUsize,
    ewma: Mutex<Ewma>,
}

#[derive(Debug)]
struct Ewma {
    nanos: f64,
    at: Instant,
}

// === impl Load ===

impl Load {
    pub(crate) fn new() -> Self {
        Load {
            outstanding: AtomicUsize::new(0),
            ewma: Mutex::new(Ewma {
                nanos: DEFAULT_RTT.as_nanos() as f64,
                at: Instant::now(),
            }),
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn start(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
    }

    /// A response took `rtt` to its headers.
    pub(crate) fn observe(&self, rtt: Duration) {
        let Ok(mut ewma) = self.ewma.lock() else {
            return;
        };
        let now = Instant::now();
        let rtt = rtt.as_nanos() as f64;
        if rtt > ewma.nanos {
            ewma.nanos = rtt;
        } else {
            let elapsed = now.saturating_duration_since(ewma.at).as_secs_f64();
            let keep = (-elapsed / DECAY.as_secs_f64()).exp();
            ewma.nanos = ewma.nanos * keep + rtt * (1.0 - keep);
        }
        ewma.at = now;
    }

    /// The expected latency times the requests queued ahead, including the next one.
    pub(crate) fn peak_ewma_cost(&self) -> f64 {
        let nanos = self.ewma.lock().map_or(0.0, |e| e.nanos);
        nanos * (self.outstanding() + 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn peaks_jump_up_and_decay_slowly() {
        let load = Load::new();
        load.observe(Duration::from_millis(100));
        let peak = load.peak_ewma_cost();
        assert!((peak - 100e6).abs() < 1.0);
        tokio::time::advance(Duration::from_secs(10)).await;
        load.observe(Duration::from_millis(1));
        let later = load.peak_ewma_cost();
        // e^-1 of the peak remains after one decay period.
        assert!(later > 35e6 && later < 40e6, "{later}");
        load.start();
        assert!((load.peak_ewma_cost() - 2.0 * later).abs() < 1.0);
        load.end();
        assert_eq!(load.outstanding(), 0);
    }
}
