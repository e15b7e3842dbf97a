//! Request streams that a retry can send again.
//!
//! A streaming call's requests come from the caller's stream, which is consumed as it is
//! sent. To try the call again after a failed attempt, the messages already sent are kept —
//! as gRPC's retry design does (A6) — until the call commits: the server's response begins
//! (from then on a failure is not retried), or more than [`REPLAY_LIMIT`] bytes were sent
//! (too much to keep; the call then makes no further attempt). A retry's stream replays the
//! kept messages, then goes on with the caller's stream where the last attempt left off.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::Stream;
use futures_util::future::Either;

/// Bytes of request messages kept for a retry, at most (gRPC's default per-call buffer).
pub(crate) const REPLAY_LIMIT: usize = 256 * 1024;

/// A streaming call's requests: kept for another attempt when the method's contract
/// retries, else sent once.
pub(crate) enum Requests<S, T> {
    Once(Mutex<Option<S>>),
    Kept(Replay<T>),
}

/// The caller's request stream, shared by the call's attempts.
pub(crate) struct Replay<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

struct Shared<T> {
    source: Pin<Box<dyn Stream<Item = T> + Send>>,
    /// Every message taken from `source` while the call may still be retried.
    kept: Vec<T>,
    kept_bytes: usize,
    limit: usize,
    state: State,
    /// The attempt whose stream reads on; an earlier attempt's stream ends.
    attempt: u32,
    source_done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Keeping,
    /// The response began: no more attempts.
    Committed,
    /// More than the limit was sent: no more attempts.
    Overflowed,
}

/// One attempt's request stream.
pub(crate) struct AttemptRequests<T> {
    shared: Arc<Mutex<Shared<T>>>,
    attempt: u32,
    /// The next kept message to replay.
    position: usize,
}

// === impl Requests ===

impl<S, T> Requests<S, T>
where
    S: Stream<Item = T> + Send + 'static,
    T: prost::Message + Clone + Send + 'static,
{
    pub(crate) fn new(source: S, retried: bool) -> Self {
        if retried {
            Requests::Kept(Replay::new(source))
        } else {
            Requests::Once(Mutex::new(Some(source)))
        }
    }

    /// The next attempt's request stream; `None` when it cannot be the whole request: a
    /// single-use stream was sent already, or more was sent than could be kept (a failed
    /// attempt's body may go on being read while the retry waits out its backoff).
    pub(crate) fn next_attempt(&self) -> Option<Either<S, AttemptRequests<T>>> {
        match self {
            Requests::Once(source) => source
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .map(Either::Left),
            Requests::Kept(replay) => replay.next_attempt().map(Either::Right),
        }
    }

    /// What to tell when the response begins.
    pub(crate) fn replay(&self) -> Option<Replay<T>> {
        match self {
            Requests::Once(_) => None,
            Requests::Kept(replay) => Some(replay.clone()),
        }
    }

    /// Whether another attempt could send the same requests.
    pub(crate) fn replayable(&self) -> bool {
        match self {
            Requests::Once(_) => false,
            Requests::Kept(replay) => replay.replayable(),
        }
    }
}

// === impl Replay ===

impl<T> Clone for Replay<T> {
    fn clone(&self) -> Self {
        Replay {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Replay<T>
where
    T: prost::Message + Clone + Send + 'static,
{
    pub(crate) fn new(source: impl Stream<Item = T> + Send + 'static) -> Self {
        Self::with_limit(source, REPLAY_LIMIT)
    }

    fn with_limit(source: impl Stream<Item = T> + Send + 'static, limit: usize) -> Self {
        Replay {
            shared: Arc::new(Mutex::new(Shared {
                source: Box::pin(source),
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                state: State::Keeping,
                attempt: 0,
                source_done: false,
            })),
        }
    }

    /// The request stream of the next attempt: what was sent before, then the rest; `None`
    /// once the call committed or sent more than could be kept.
    pub(crate) fn next_attempt(&self) -> Option<AttemptRequests<T>> {
        let mut shared = lock(&self.shared);
        if shared.state != State::Keeping {
            return None;
        }
        shared.attempt += 1;
        Some(AttemptRequests {
            shared: self.shared.clone(),
            attempt: shared.attempt,
            position: 0,
        })
    }

    /// The response began: no attempt follows. What was kept is let go once the attempt in
    /// progress has sent it all (the response can begin while a retry is still replaying).
    pub(crate) fn commit(&self) {
        let mut shared = lock(&self.shared);
        if shared.state == State::Keeping {
            shared.state = State::Committed;
        }
    }

    /// Whether another attempt could send the same requests.
    pub(crate) fn replayable(&self) -> bool {
        lock(&self.shared).state == State::Keeping
    }
}

fn lock<T>(shared: &Mutex<Shared<T>>) -> std::sync::MutexGuard<'_, Shared<T>> {
    // A panic while holding the lock leaves nothing half-done worth refusing over.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// === impl AttemptRequests ===

impl<T> Stream for AttemptRequests<T>
where
    T: prost::Message + Clone + Send + 'static,
{
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let mut shared = lock(&this.shared);
        if shared.attempt != this.attempt {
            // A later attempt took over (this one's body may still be polled as it winds down).
            return Poll::Ready(None);
        }
        if let Some(kept) = shared.kept.get(this.position) {
            let message = kept.clone();
            this.position += 1;
            return Poll::Ready(Some(message));
        }
        if shared.state != State::Keeping && !shared.kept.is_empty() {
            // Committed, and everything kept has been sent again: nothing will replay it.
            shared.kept = Vec::new();
            this.position = 0;
        }
        if shared.source_done {
            return Poll::Ready(None);
        }
        let Some(message) = std::task::ready!(shared.source.as_mut().poll_next(cx)) else {
            shared.source_done = true;
            return Poll::Ready(None);
        };
        if shared.state == State::Keeping {
            shared.kept_bytes += message.encoded_len();
            if shared.kept_bytes > shared.limit {
                shared.state = State::Overflowed;
                shared.kept = Vec::new();
            } else {
                shared.kept.push(message.clone());
                this.position = shared.kept.len();
            }
        }
        Poll::Ready(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn numbers(n: u32) -> impl Stream<Item = u32> + Send + 'static {
        futures_util::stream::iter(0..n)
    }

    #[tokio::test]
    async fn a_retry_sends_what_was_sent_then_the_rest() {
        let replay = Replay::new(numbers(5));
        let mut first = replay.next_attempt().expect("first");
        assert_eq!(first.next().await, Some(0));
        assert_eq!(first.next().await, Some(1));
        let second: Vec<u32> = replay.next_attempt().expect("second").collect().await;
        assert_eq!(second, vec![0, 1, 2, 3, 4]);
        // The first attempt's body, still polled as it winds down, takes nothing more.
        assert_eq!(first.next().await, None);
        assert!(replay.replayable());
        let third: Vec<u32> = replay.next_attempt().expect("third").collect().await;
        assert_eq!(third, vec![0, 1, 2, 3, 4], "kept until the call commits");
    }

    #[tokio::test]
    async fn a_committed_call_keeps_nothing_and_is_not_replayed() {
        let replay = Replay::new(numbers(4));
        let mut first = replay.next_attempt().expect("first");
        assert_eq!(first.next().await, Some(0));
        replay.commit();
        assert!(!replay.replayable());
        assert!(
            replay.next_attempt().is_none(),
            "no attempt after the commit"
        );
        let rest: Vec<u32> = first.collect().await;
        assert_eq!(rest, vec![1, 2, 3]);
        assert!(lock(&replay.shared).kept.is_empty());
    }

    #[tokio::test]
    async fn more_than_the_limit_is_not_kept_and_not_replayed() {
        // Each u32 below 128 encodes (as a wrapper message) in 2 bytes.
        let replay = Replay::with_limit(numbers(100).map(|n| n % 100 + 1), 10);
        let sent: Vec<u32> = replay.next_attempt().expect("first").collect().await;
        assert_eq!(sent.len(), 100, "the call itself is not limited");
        assert!(!replay.replayable());
        assert!(
            replay.next_attempt().is_none(),
            "nothing whole to send again"
        );
        assert!(lock(&replay.shared).kept.is_empty());
    }

    #[tokio::test]
    async fn a_commit_during_a_replay_loses_nothing() {
        let replay = Replay::new(numbers(6));
        let mut first = replay.next_attempt().expect("first");
        for n in 0..4 {
            assert_eq!(first.next().await, Some(n));
        }
        // The retry's response begins after two of the four kept messages were sent again.
        let mut second = replay.next_attempt().expect("second");
        assert_eq!(second.next().await, Some(0));
        assert_eq!(second.next().await, Some(1));
        replay.commit();
        let rest: Vec<u32> = second.collect().await;
        assert_eq!(rest, vec![2, 3, 4, 5]);
        assert!(lock(&replay.shared).kept.is_empty());
    }
}
