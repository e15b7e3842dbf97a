//! The metrics of a `bench/run` round that the report compares, and which way is better.

use crate::input::Metrics;

#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub title: &'static str,
    pub get: fn(&Metrics) -> Option<f64>,
    /// Digits after the decimal point in tables.
    pub digits: usize,
    /// For throughput; for latency, CPU and memory lower is better.
    pub higher_is_better: bool,
}

pub const RPS: Metric = Metric {
    title: "req/s",
    get: |m| m.rps,
    digits: 0,
    higher_is_better: true,
};
pub const P50: Metric = latency("p50 ms", |m| m.p50_ms);
pub const P90: Metric = latency("p90 ms", |m| m.p90_ms);
pub const P99: Metric = latency("p99 ms", |m| m.p99_ms);
pub const P999: Metric = latency("p99.9 ms", |m| m.p999_ms);
pub const CPU: Metric = Metric {
    title: "CPU µs/call",
    get: |m| m.cpu_us_per_call,
    digits: 1,
    higher_is_better: false,
};
pub const KIB_PER_CONN: Metric = Metric {
    title: "KiB/conn",
    get: |m| m.kib_per_conn,
    digits: 1,
    higher_is_better: false,
};

/// The columns of a load or latency scenario's table.
pub const LOAD: [Metric; 6] = [RPS, P50, P90, P99, P999, CPU];
/// The latency percentiles, in the order the latency chart draws them.
pub const PERCENTILES: [Metric; 4] = [P50, P90, P99, P999];

const fn latency(title: &'static str, get: fn(&Metrics) -> Option<f64>) -> Metric {
    Metric {
        title,
        get,
        digits: 2,
        higher_is_better: false,
    }
}
