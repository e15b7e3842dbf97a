//! Knowing that a failed attempt never reached a server's handler.
//!
//! A method that is not idempotent may be retried only when the first attempt provably did
//! nothing. The cases that prove it, and only those:
//!
//! - no connection: the connection attempt failed, or no endpoint was reachable;
//! - the request never left: hyper hands the request back when the connection closed
//!   before it was written;
//! - the server said so: a stream reset with `REFUSED_STREAM` (RFC 9113 §8.7), or a
//!   graceful `GOAWAY` (`NO_ERROR`) whose last-stream-id is below the stream — h2 reports
//!   exactly those streams with the GOAWAY's own reason.
//!
//! A reset, a broken pipe or a timeout after the request was written proves nothing: the
//! handler may have run. Such failures stay "maybe sent".
//!
//! The mark travels on the `tonic::Status` (as its source) through tonic's client, which
//! returns our status as-is, up to the retry loop.

use std::sync::Arc;

/// The request of a failed attempt never reached a server's handler.
#[derive(Debug, thiserror::Error)]
#[error("the request was not processed by any server")]
pub(crate) struct Unsent;

/// UNAVAILABLE with `message`, marked as never processed when `unsent`.
pub(crate) fn unavailable(message: String, unsent: bool) -> tonic::Status {
    let mut status = tonic::Status::unavailable(message);
    if unsent {
        status.set_source(Arc::new(Unsent));
    }
    status
}

/// Whether `status` was marked by [`unavailable`] as never processed.
pub(crate) fn is_unsent(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some_and(|source| source.is::<Unsent>())
}

/// Whether a failure of a request already handed to the connection proves that no server
/// processed it.
pub(crate) fn never_processed(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return refused(h2);
        }
        cause = error.source();
    }
    false
}

fn refused(error: &h2::Error) -> bool {
    if !error.is_remote() {
        return false;
    }
    match error.reason() {
        Some(h2::Reason::REFUSED_STREAM) => error.is_reset(),
        // A GOAWAY with an error code also ends streams at or below its last-stream-id,
        // which may have run; only the graceful one is reported solely on streams above it.
        Some(h2::Reason::NO_ERROR) => error.is_go_away(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_prove_nothing_ran() {
        // Errors made here are local (not remote): they prove nothing.
        let local = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert!(!never_processed(&local));
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        assert!(!never_processed(&io));
    }

    #[test]
    fn the_mark_survives_the_status() {
        assert!(is_unsent(&unavailable("x".into(), true)));
        assert!(!is_unsent(&unavailable("x".into(), false)));
        assert!(!is_unsent(&tonic::Status::unavailable("from a server")));
    }
}
