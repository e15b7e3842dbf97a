//! The tokio runtime herald recommends for a server, and why.
//!
//! tokio gives each worker a local run queue of 256 tasks; when more are runnable — a server
//! with a thousand calls in flight has a task per HTTP/2 stream — half of them overflow to the
//! shared injection queue, which a worker looks at only once every 31 scheduling ticks. Those
//! tasks wait while newer ones, kept local, run first: the few calls that overflowed finish
//! tens of milliseconds late. This is the tail of bare tonic under many concurrent streams
//! (p99 ≈ 80–100 ms at a p50 of 2 ms; p99/p90 ≈ 25–30 in `bench/run`'s
//! small-unary-many-streams scenario on this kind of machine).
//!
//! Looking at the injection queue every 2 ticks serves overflowed tasks in turn: in the same
//! benchmark herald's p99 drops from ~100 ms to ~12 ms (p99/p90 ≈ 1.3, better than gRPC C++'s
//! 14 ms) and its throughput *rises* by ~6%. Every 1 tick gives a lower p99 but a p99.9 of
//! hundreds of milliseconds (the local queue then starves); 4 ticks gives ~21 ms.
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     let runtime = herald::runtime::builder().build()?;
//!     runtime.block_on(async {
//!         // Server::builder() ... .bind(..).await ... drain_on_signal().await
//!     });
//!     Ok(())
//! }
//! ```

/// How often (in scheduling ticks) a worker serves the shared injection queue.
pub const GLOBAL_QUEUE_INTERVAL: u32 = 2;

/// A multi-threaded tokio runtime builder with I/O and timers on, and the injection queue
/// served every [`GLOBAL_QUEUE_INTERVAL`] ticks. Set worker threads and anything else on it
/// as on any tokio builder.
pub fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL);
    builder
}
