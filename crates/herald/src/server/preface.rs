//! A connection must start speaking HTTP/2 promptly: a peer that completes TCP (and TLS) but
//! never sends the 24-byte client preface would otherwise hold its connection, and a slot of
//! the server's, for ever (hyper's keepalive pings start only after the HTTP/2 handshake).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
const PREFACE_LEN: u64 = 24;

pin_project! {
    /// The connection's byte stream, noting when the preface's worth of bytes has arrived.
    pub(crate) struct PrefaceWatch<S> {
        #[pin]
        inner: S,
        read: u64,
        seen: Arc<AtomicBool>,
    }
}

// === impl PrefaceWatch ===

impl<S> PrefaceWatch<S> {
    /// Watches `inner`; the flag turns true once 24 bytes were read.
    pub(crate) fn new(inner: S) -> (Self, Arc<AtomicBool>) {
        let seen = Arc::new(AtomicBool::new(false));
        let watch = PrefaceWatch {
            inner,
            read: 0,
            seen: seen.clone(),
        };
        (watch, seen)
    }
}

impl<S: AsyncRead> AsyncRead for PrefaceWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        if *this.read < PREFACE_LEN {
            *this.read += (buf.filled().len() - before) as u64;
            if *this.read >= PREFACE_LEN {
                this.seen.store(true, Ordering::Release);
            }
        }
        polled
    }
}

impl<S: AsyncWrite> AsyncWrite for PrefaceWatch<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Resolves when `timeout` passed without the preface; never, once it came.
pub(crate) async fn missed(seen: Arc<AtomicBool>, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if seen.load(Ordering::Acquire) {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn the_preface_in_time_disarms_the_timer_and_silence_fires_it() {
        let (client, server) = tokio::io::duplex(64);
        let (mut watched, seen) = PrefaceWatch::new(server);
        let reader = tokio::spawn(async move {
            let mut sink = [0u8; 64];
            while matches!(
                tokio::io::AsyncReadExt::read(&mut watched, &mut sink).await,
                Ok(n) if n > 0
            ) {}
        });
        let mut client = client;
        client.write_all(&[0u8; 10]).await.expect("write");
        let timer = missed(seen.clone(), Duration::from_secs(10));
        tokio::pin!(timer);
        // 10 bytes are not a preface: the timer fires.
        tokio::time::timeout(Duration::from_secs(11), timer.as_mut())
            .await
            .expect("fires without the preface");
        client.write_all(&[0u8; 14]).await.expect("write");
        tokio::task::yield_now().await;
        assert!(seen.load(Ordering::Acquire));
        let disarmed = missed(seen, Duration::from_secs(10));
        assert!(
            tokio::time::timeout(Duration::from_secs(60), disarmed)
                .await
                .is_err(),
            "never fires once the preface came"
        );
        drop(client);
        reader.await.expect("reader");
    }
}
