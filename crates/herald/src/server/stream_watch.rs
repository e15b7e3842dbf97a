//! The stream hyper serves a connection over — above TLS — watched for the two things the
//! server must notice on it: the HTTP/2 client preface arriving (`preface.rs` times it), and the
//! peer going, so that the calls still being answered on it are recorded as the caller's doing
//! (CANCELLED) rather than as failures of the server's (`observe.rs`).
//!
//! Above TLS, because a peer that closes with TLS's `close_notify` ends that stream while its
//! TCP connection may stay open. The stream's end (a read of nothing into room for something)
//! or any error reading or writing it means no answer can reach the peer any more. A
//! half-closed peer still waiting for its answers would be taken for gone: HTTP/2 has no
//! half-close, and hyper's HTTP/1 half-close support (off by default) is not turned on by
//! herald.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::server::connections::ConnEntry;
use crate::server::preface::PREFACE_LEN;

pin_project! {
    /// A connection's stream, noting when the preface's worth of bytes has arrived and, on its
    /// entry, when the peer has gone.
    pub(crate) struct StreamWatch<S> {
        #[pin]
        inner: S,
        // Bytes read, counted until the preface's worth.
        read: u64,
        preface_seen: Arc<AtomicBool>,
        entry: Arc<ConnEntry>,
    }
}

// === impl StreamWatch ===

impl<S> StreamWatch<S> {
    /// Watches `inner`; the flag returned turns true once 24 bytes were read.
    pub(crate) fn new(inner: S, entry: Arc<ConnEntry>) -> (Self, Arc<AtomicBool>) {
        let preface_seen = Arc::new(AtomicBool::new(false));
        let watch = StreamWatch {
            inner,
            read: 0,
            preface_seen: preface_seen.clone(),
            entry,
        };
        (watch, preface_seen)
    }
}

/// Notes the peer gone when `poll` failed.
fn note_error<T>(entry: &ConnEntry, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    if let Poll::Ready(Err(_)) = &poll {
        entry.note_peer_gone();
    }
    poll
}

impl<S: AsyncRead> AsyncRead for StreamWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let (before, room) = (buf.filled().len(), buf.remaining() > 0);
        let poll = this.inner.poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if *this.read < PREFACE_LEN {
            *this.read += read;
            if *this.read >= PREFACE_LEN {
                this.preface_seen.store(true, Ordering::Release);
            }
        }
        if matches!(poll, Poll::Ready(Ok(()))) && room && read == 0 {
            this.entry.note_peer_gone();
        }
        note_error(this.entry, poll)
    }
}

impl<S: AsyncWrite> AsyncWrite for StreamWatch<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        note_error(this.entry, this.inner.poll_write(cx, data))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        note_error(this.entry, this.inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        note_error(this.entry, this.inner.poll_write_vectored(cx, bufs))
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::server::connections::Connections;

    fn watched() -> (StreamWatch<DuplexStream>, DuplexStream, Arc<ConnEntry>) {
        let entry = Arc::new(Connections::default())
            .register(([127, 0, 0, 1], 1).into())
            .entry
            .clone();
        let (ours, theirs) = tokio::io::duplex(64);
        (StreamWatch::new(ours, entry.clone()).0, theirs, entry)
    }

    #[tokio::test]
    async fn a_peer_that_is_there_is_not_gone() {
        let (mut watch, mut peer, entry) = watched();
        // Nothing to read yet: pending.
        let mut byte = [0u8; 1];
        let pending = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut byte);
            Poll::Ready(Pin::new(&mut watch).poll_read(cx, &mut buf).is_pending())
        })
        .await;
        assert!(pending);
        // A read into no room reads nothing, and says nothing of the peer.
        let empty = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut []);
            Pin::new(&mut watch).poll_read(cx, &mut buf)
        })
        .await;
        assert!(empty.is_ok());
        peer.write_all(b"hi").await.expect("write");
        let mut two = [0u8; 2];
        watch.read_exact(&mut two).await.expect("read");
        watch.write_all(b"ok").await.expect("write");
        assert!(!entry.peer_gone());
    }

    #[tokio::test]
    async fn the_end_of_the_peers_stream_is_its_going() {
        let (mut watch, peer, entry) = watched();
        drop(peer);
        let mut rest = Vec::new();
        watch.read_to_end(&mut rest).await.expect("read");
        assert!(entry.peer_gone());
    }

    #[tokio::test]
    async fn a_write_that_fails_is_the_peers_going() {
        let (mut watch, peer, entry) = watched();
        drop(peer);
        watch
            .write_all(b"answer")
            .await
            .expect_err("no one to write to");
        assert!(entry.peer_gone());
    }
}
