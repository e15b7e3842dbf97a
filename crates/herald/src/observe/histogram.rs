//! A latency histogram that records with two atomic adds: prometheus-client's own takes a
//! mutex per observation, which would sit on every request's path. Its count is the sum of
//! its buckets, added up when scraped rather than counted per observation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds in seconds: 250 µs to 10 s, roughly ×2.5 apart.
pub(crate) const LATENCY_BUCKETS: [f64; 14] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// [`LATENCY_BUCKETS`] in nanoseconds.
const BUCKET_NANOS: [u64; 14] = [
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// A histogram of durations with fixed buckets; clones share the counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct LatencyHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per bucket (non-cumulative), plus one for +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

// === impl LatencyHistogram ===

impl LatencyHistogram {
    pub(crate) fn observe(&self, duration: Duration) {
        // Compared in whole nanoseconds: no float conversion on the request path.
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // The first bound at or above it is past every bound below it: counted without a
        // branch per bound (a search that stops at the first would mispredict its exit
        // whenever the latency moves to another bucket).
        let bucket = BUCKET_NANOS
            .iter()
            .map(|bound| usize::from(nanos > *bound))
            .sum::<usize>();
        self.inner.buckets[bucket].fetch_add(1, Relaxed);
        self.inner.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.inner.buckets.iter().map(|b| b.load(Relaxed)))
            .collect();
        // The +Inf bucket, the count, is the buckets read here: never out of step with them.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.inner.sum_nanos.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn the_nanosecond_bounds_are_the_published_ones() {
        for (nanos, seconds) in BUCKET_NANOS.iter().zip(LATENCY_BUCKETS) {
            assert_eq!(*nanos, (seconds * 1e9).round() as u64);
        }
    }

    #[test]
    fn a_duration_on_a_bound_counts_in_its_bucket_and_one_nanosecond_more_in_the_next() {
        for (i, bound) in BUCKET_NANOS.iter().enumerate() {
            for (nanos, bucket) in [(*bound, i), (bound + 1, i + 1), (bound - 1, i)] {
                let histogram = LatencyHistogram::default();
                histogram.observe(Duration::from_nanos(nanos));
                let counts: Vec<u64> = histogram
                    .inner
                    .buckets
                    .iter()
                    .map(|b| b.load(Relaxed))
                    .collect();
                let mut expected = vec![0; BUCKET_NANOS.len() + 1];
                expected[bucket] = 1;
                assert_eq!(counts, expected, "{nanos} ns");
            }
        }
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::ZERO);
        histogram.observe(Duration::MAX);
        assert_eq!(histogram.inner.buckets[0].load(Relaxed), 1);
        assert_eq!(histogram.inner.buckets[BUCKET_NANOS.len()].load(Relaxed), 1);
    }

    #[test]
    fn encodes_cumulative_buckets_sum_and_count() {
        let histogram = LatencyHistogram::default();
        for ms in [0.1, 0.8, 0.9, 30.0, 20_000.0] {
            histogram.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let mut registry = Registry::default();
        registry.register("t", "test", histogram);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for line in [
            "t_bucket{le=\"0.00025\"} 1",
            "t_bucket{le=\"0.001\"} 3",
            "t_bucket{le=\"0.025\"} 3",
            "t_bucket{le=\"0.05\"} 4",
            "t_bucket{le=\"10.0\"} 4",
            "t_bucket{le=\"+Inf\"} 5",
            "t_count 5",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("t_sum 20.0318"), "{text}");
    }
}
