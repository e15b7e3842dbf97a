//! Admission: `max_concurrency` slots per method, and a queue for the requests that find
//! them all taken — bounded by size *and* by time, so that under overload it sheds instead
//! of growing without bound (Courier's "automatic circuit breaker").
//!
//! LIFO serves the newest waiter first: under overload the oldest are the ones whose caller
//! is about to give up, so a full LIFO queue sheds its *oldest* waiter to make room for a new
//! one, and the queue always holds the freshest requests. CoDel (Facebook's "Fail at Scale")
//! serves oldest first and refuses newcomers when full, but when the queue has not drained for
//! 100 ms a new waiter gets 5 ms instead of the full timeout.
//!
//! A waiter's time is checked when a slot is handed out as well as by its own timer: on a
//! saturated runtime a timer can fire late, and a request past its queue time must be shed,
//! not run.
//!
//! A slot is taken with one compare-and-swap when free; the queue's mutex is touched only
//! when all slots are busy. A released slot goes straight to a waiter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::limits::config::QueueKind;
use crate::limits::policy::AdmissionPolicy;

/// CoDel's interval: a queue that has not been empty this long is standing.
const CODEL_INTERVAL: Duration = Duration::from_millis(100);
/// CoDel's target: how long a waiter may queue behind a standing queue.
const CODEL_TARGET: Duration = Duration::from_millis(5);

/// One method's slots and queue.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    in_flight: AtomicUsize,
    queued: AtomicUsize,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    queue: VecDeque<Waiter>,
    next_id: u64,
    /// When the queue was last seen empty.
    last_empty: Option<Instant>,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    wake: oneshot::Sender<Wake>,
    /// When it stops waiting.
    give_up: Instant,
}

/// What a waiter is woken with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wake {
    /// A slot is now the waiter's.
    Admitted,
    /// Pushed out of a full LIFO queue by a newer request.
    Evicted,
    /// Its time ran out before a slot came (noticed by a release before its timer).
    Expired,
}

/// A held slot; dropping it frees the slot (or hands it to a waiter).
#[derive(Debug)]
pub(crate) struct Permit {
    admission: Arc<Admission>,
    max: usize,
    kind: QueueKind,
}

/// Why a request was not admitted.
#[derive(Debug, PartialEq)]
pub(crate) enum Shed {
    /// The queue was full.
    QueueFull,
    /// Queued this long without a slot.
    TimedOut(Duration),
    /// The request's own deadline passed while it queued.
    DeadlineExceeded,
}

/// Removes a waiter from the queue when its request stops waiting for any reason.
struct Leave<'a> {
    admission: &'a Admission,
    id: u64,
}

// === impl Admission ===

impl Admission {
    /// Requests holding a slot.
    #[allow(dead_code, reason = "read by tests now, by the metrics gauges next")]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    /// Requests waiting for one.
    #[allow(dead_code, reason = "read by tests now, by the metrics gauges next")]
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(SeqCst)
    }

    /// A slot if one is free now, without queueing.
    pub(crate) fn try_acquire(self: &Arc<Self>, policy: &AdmissionPolicy) -> Option<Permit> {
        self.try_take(policy.max_concurrency).then(|| Permit {
            admission: self.clone(),
            max: policy.max_concurrency,
            kind: policy.kind,
        })
    }

    /// A slot, now or after queueing.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        policy: &AdmissionPolicy,
        deadline: Option<Instant>,
    ) -> Result<Permit, Shed> {
        let permit = || Permit {
            admission: self.clone(),
            max: policy.max_concurrency,
            kind: policy.kind,
        };
        if self.try_take(policy.max_concurrency) {
            return Ok(permit());
        }
        let (id, mut woken, timeout, give_up, by_deadline) = {
            let mut waiters = self.lock();
            // Announce the waiter before the last look at the slots: a release that misses
            // this look sees `queued` and wakes us (the two counters are SeqCst).
            self.queued.fetch_add(1, SeqCst);
            if self.try_take(policy.max_concurrency) {
                self.queued.fetch_sub(1, SeqCst);
                return Ok(permit());
            }
            if waiters.queue.len() >= policy.max_queue {
                // LIFO makes room by shedding its oldest; CoDel (and an empty bound) refuses.
                let oldest = match policy.kind {
                    QueueKind::Lifo => waiters.queue.pop_front(),
                    QueueKind::Codel => None,
                };
                match oldest {
                    Some(oldest) => {
                        self.queued.fetch_sub(1, SeqCst);
                        let _gone = oldest.wake.send(Wake::Evicted);
                    }
                    None => {
                        self.queued.fetch_sub(1, SeqCst);
                        return Err(Shed::QueueFull);
                    }
                }
            }
            let now = Instant::now();
            if waiters.queue.is_empty() {
                waiters.last_empty = Some(now);
            }
            let standing = waiters
                .last_empty
                .is_some_and(|t| now.duration_since(t) > CODEL_INTERVAL);
            let timeout = match policy.kind {
                QueueKind::Codel if standing => CODEL_TARGET.min(policy.queue_timeout),
                _ => policy.queue_timeout,
            };
            let by_deadline = deadline.is_some_and(|d| d < now + timeout);
            let give_up = match deadline {
                Some(d) => d.min(now + timeout),
                None => now + timeout,
            };
            let (wake, woken) = oneshot::channel();
            let id = waiters.next_id;
            waiters.next_id += 1;
            waiters.queue.push_back(Waiter { id, wake, give_up });
            (id, woken, timeout, give_up, by_deadline)
        };
        let leave = Leave {
            admission: self,
            id,
        };
        let shed = |wake| match wake {
            Wake::Evicted => Shed::QueueFull,
            _ if by_deadline => Shed::DeadlineExceeded,
            _ => Shed::TimedOut(timeout),
        };
        match tokio::time::timeout_at(give_up, &mut woken).await {
            Ok(Ok(Wake::Admitted)) => {
                std::mem::forget(leave);
                return Ok(permit());
            }
            // Taken out of the queue by whoever woke us.
            Ok(Ok(wake)) => {
                std::mem::forget(leave);
                return Err(shed(wake));
            }
            Ok(Err(_)) | Err(_) => {}
        }
        if leave.remove() {
            return Err(shed(Wake::Expired));
        }
        // Woken at the very moment we gave up: a slot handed over is ours.
        match woken.try_recv() {
            Ok(Wake::Admitted) => Ok(permit()),
            Ok(wake) => Err(shed(wake)),
            Err(_) => Err(shed(Wake::Expired)),
        }
    }

    fn try_take(&self, max: usize) -> bool {
        self.in_flight
            .fetch_update(SeqCst, SeqCst, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    fn release(&self, max: usize, kind: QueueKind) {
        self.in_flight.fetch_sub(1, SeqCst);
        if self.queued.load(SeqCst) == 0 {
            return;
        }
        let mut waiters = self.lock();
        let now = Instant::now();
        loop {
            let next = match kind {
                QueueKind::Lifo => waiters.queue.pop_back(),
                QueueKind::Codel => waiters.queue.pop_front(),
            };
            let Some(waiter) = next else { return };
            if waiter.give_up <= now {
                // Past its time, its timer not yet run: shed it, never run it late.
                self.queued.fetch_sub(1, SeqCst);
                if waiters.queue.is_empty() {
                    waiters.last_empty = Some(now);
                }
                let _gone = waiter.wake.send(Wake::Expired);
                continue;
            }
            if !self.try_take(max) {
                // Someone took the slot first; their release will wake this waiter.
                match kind {
                    QueueKind::Lifo => waiters.queue.push_back(waiter),
                    QueueKind::Codel => waiters.queue.push_front(waiter),
                }
                return;
            }
            self.queued.fetch_sub(1, SeqCst);
            if waiters.queue.is_empty() {
                waiters.last_empty = Some(now);
            }
            if waiter.wake.send(Wake::Admitted).is_ok() {
                return;
            }
            // The waiter's request is gone: free the slot again and try the next one.
            self.in_flight.fetch_sub(1, SeqCst);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // Nothing panics while holding it; a poisoned queue is still a valid queue.
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

// === impl Leave ===

impl Leave<'_> {
    /// Takes the waiter out of the queue; false if a release already did (and woke it).
    fn remove(self) -> bool {
        let removed = self.take_out();
        std::mem::forget(self);
        removed
    }

    fn take_out(&self) -> bool {
        let mut waiters = self.admission.lock();
        let Some(at) = waiters.queue.iter().position(|w| w.id == self.id) else {
            return false;
        };
        waiters.queue.remove(at);
        self.admission.queued.fetch_sub(1, SeqCst);
        if waiters.queue.is_empty() {
            waiters.last_empty = Some(Instant::now());
        }
        true
    }
}

impl Drop for Leave<'_> {
    /// The request was dropped while queued (its caller went away).
    fn drop(&mut self) {
        self.take_out();
    }
}

// === impl Permit ===

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.max, self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: QueueKind, max_queue: usize, queue_timeout_ms: u64) -> AdmissionPolicy {
        AdmissionPolicy {
            max_concurrency: 1,
            max_queue,
            queue_timeout: Duration::from_millis(queue_timeout_ms),
            kind,
        }
    }

    /// Queues `n` waiters one after another, each reporting its number when admitted.
    async fn queue_up(
        admission: &Arc<Admission>,
        policy: &AdmissionPolicy,
        n: usize,
    ) -> (
        tokio::sync::mpsc::UnboundedReceiver<(usize, Result<(), Shed>)>,
        Vec<tokio::task::JoinHandle<()>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for i in 0..n {
            let (admission, policy, tx) = (admission.clone(), policy.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let result = admission.acquire(&policy, None).await;
                let _ = tx.send((
                    i,
                    result.as_ref().map(|_| ()).map_err(|e| match e {
                        Shed::QueueFull => Shed::QueueFull,
                        Shed::TimedOut(d) => Shed::TimedOut(*d),
                        Shed::DeadlineExceeded => Shed::DeadlineExceeded,
                    }),
                ));
                // Hold the slot a little, then let the next one in.
                if let Ok(permit) = result {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    drop(permit);
                }
            }));
            tokio::task::yield_now().await;
        }
        (rx, tasks)
    }

    #[tokio::test(start_paused = true)]
    async fn lifo_serves_the_newest_waiter_first_and_sheds_the_oldest_when_full() {
        let admission = Arc::new(Admission::default());
        let policy = policy(QueueKind::Lifo, 3, 1000);
        let held = admission.acquire(&policy, None).await.expect("free slot");
        let (mut results, tasks) = queue_up(&admission, &policy, 4).await;
        // The fourth found the queue full: the oldest waiter made room for it.
        assert_eq!(results.recv().await, Some((0, Err(Shed::QueueFull))));
        assert_eq!(admission.queued(), 3);
        drop(held);
        let order: Vec<usize> = [
            results.recv().await,
            results.recv().await,
            results.recv().await,
        ]
        .into_iter()
        .map(|r| r.expect("a result").0)
        .collect();
        assert_eq!(order, [3, 2, 1], "newest first");
        for task in tasks {
            task.await.expect("waiter task");
        }
        assert_eq!((admission.in_flight(), admission.queued()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn codel_serves_oldest_first_and_refuses_newcomers_when_full() {
        let admission = Arc::new(Admission::default());
        let policy = policy(QueueKind::Codel, 3, 1000);
        let held = admission.acquire(&policy, None).await.expect("free slot");
        let (mut results, _tasks) = queue_up(&admission, &policy, 4).await;
        assert_eq!(results.recv().await, Some((3, Err(Shed::QueueFull))));
        drop(held);
        let order: Vec<usize> = [
            results.recv().await,
            results.recv().await,
            results.recv().await,
        ]
        .into_iter()
        .map(|r| r.expect("a result").0)
        .collect();
        assert_eq!(order, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_give_up_at_the_queue_timeout_and_leave_no_trace() {
        let admission = Arc::new(Admission::default());
        let policy = policy(QueueKind::Lifo, 8, 50);
        let _held = admission.acquire(&policy, None).await.expect("free slot");
        let start = Instant::now();
        let shed = admission
            .acquire(&policy, None)
            .await
            .expect_err("no slot in time");
        assert_eq!(shed, Shed::TimedOut(Duration::from_millis(50)));
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        assert_eq!(admission.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_whose_deadline_passes_is_dropped_not_run() {
        let admission = Arc::new(Admission::default());
        let policy = policy(QueueKind::Lifo, 8, 1000);
        let _held = admission.acquire(&policy, None).await.expect("free slot");
        let deadline = Instant::now() + Duration::from_millis(10);
        let shed = admission
            .acquire(&policy, Some(deadline))
            .await
            .expect_err("deadline first");
        assert_eq!(shed, Shed::DeadlineExceeded);
        assert_eq!(Instant::now(), deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn codel_cuts_waits_short_behind_a_standing_queue() {
        let admission = Arc::new(Admission::default());
        let policy = policy(QueueKind::Codel, 8, 1000);
        let _held = admission.acquire(&policy, None).await.expect("free slot");
        // A waiter that stays: the queue is standing from now on.
        let patient = tokio::spawn({
            let (admission, policy) = (admission.clone(), policy.clone());
            async move { admission.acquire(&policy, None).await.map(drop) }
        });
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(150)).await;
        let start = Instant::now();
        let shed = admission
            .acquire(&policy, None)
            .await
            .expect_err("short wait");
        assert_eq!(shed, Shed::TimedOut(CODEL_TARGET));
        assert_eq!(start.elapsed(), CODEL_TARGET);
        patient.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_leaves_the_queue_and_the_slot_goes_to_the_next() {
        let admission = Arc::new(Admission::default());
        let policy = policy(QueueKind::Lifo, 8, 1000);
        let held = admission.acquire(&policy, None).await.expect("free slot");
        let gone = tokio::spawn({
            let (admission, policy) = (admission.clone(), policy.clone());
            async move { admission.acquire(&policy, None).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert_eq!(admission.queued(), 1);
        gone.abort();
        let _ = gone.await;
        assert_eq!(admission.queued(), 0);
        drop(held);
        assert_eq!(admission.in_flight(), 0);
        let _again = admission
            .acquire(&policy, None)
            .await
            .expect("the slot is free");
    }
}
