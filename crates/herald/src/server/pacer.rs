//! A timer kept due a short way ahead on the server's runtime, so that registering a request's
//! deadline timer does not wake the runtime's own event loop.
//!
//! tokio (1.54) wakes its I/O driver — an `eventfd` write, a system call, and a spurious turn of
//! the event loop — whenever a timer is registered that expires before the earliest timer the
//! driver knew of when it last parked; and a driver that parked with no timer knows of none
//! (tokio issue #5207; PR #8383 would skip the wake while the runtime is busy). A server whose
//! requests all finish before it next waits for the network parks with no timer, so every
//! request of the next burst paid that wake for its deadline timer: 0.65 `eventfd` writes per
//! call, ~3 % of the server's CPU, in `client_bench` (32 calls in flight). With this timer
//! always due within `PACE`, a deadline further off than that (nearly all are) never precedes
//! it. It costs the runtime `1 / PACE` wake-ups a second when idle.

use std::time::Duration;

use tokio::task::JoinHandle;

/// How far ahead the pacing timer is kept.
const PACE: Duration = Duration::from_millis(100);

/// The pacing task; stopped when dropped.
pub(crate) struct Pacer(JoinHandle<()>);

/// Starts pacing the current runtime's timers.
pub(crate) fn start() -> Pacer {
    Pacer(tokio::spawn(async {
        loop {
            tokio::time::sleep(PACE).await;
        }
    }))
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::future::{Future, poll_fn};
    use std::task::Poll;

    use super::*;

    /// Write system calls this thread has made (Linux's per-thread I/O accounting).
    fn writes() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
        io.lines()
            .find_map(|line| line.strip_prefix("syscw: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("syscw")
    }

    /// Registers `count` one-second timers, each right after the runtime's driver looked for
    /// due timers (as a request's deadline timer is registered when the request arrives); the
    /// write system calls that made. On this single-threaded runtime, only driver wake-ups write.
    async fn register_deadlines(count: usize) -> u64 {
        let before = writes();
        for _ in 0..count {
            // The driver is polled before a yielded task runs again.
            tokio::task::yield_now().await;
            let deadline = tokio::time::sleep(Duration::from_secs(1));
            tokio::pin!(deadline);
            // A timer registers on its first poll.
            let pending = poll_fn(|cx| Poll::Ready(deadline.as_mut().poll(cx).is_pending())).await;
            assert!(pending);
        }
        writes() - before
    }

    #[tokio::test]
    async fn registering_a_deadline_wakes_the_driver_only_when_not_paced() {
        let unpaced = register_deadlines(50).await;
        let _pacer = start();
        tokio::task::yield_now().await;
        let paced = register_deadlines(50).await;
        // If tokio stops waking its driver here, this module is no longer needed.
        assert!(
            unpaced >= 40,
            "tokio woke its driver {unpaced} times for 50 timers"
        );
        assert!(paced <= 5, "{paced} wake-ups for 50 timers while paced");
    }
}
