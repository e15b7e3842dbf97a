//! The open connections, for `/connections` (channelz-like): registered when a connection
//! is established, dropped when it ends; per request only atomics are touched.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::identity::Identity;

/// Every open connection of a server.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<ConnEntry>>>,
}

/// One connection's facts and counters.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    /// Set once the TLS handshake proved it.
    pub(crate) identity: OnceLock<Identity>,
    pub(crate) since: SystemTime,
    /// Requests received on it.
    pub(crate) requests: AtomicU64,
    /// Requests whose response has not started yet.
    pub(crate) active: AtomicI64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    /// Set when the connection's stream ended or broke under the server (see `StreamWatch`):
    /// its calls still being answered have no one to answer to.
    peer_gone: AtomicBool,
}

/// Removes the entry when the connection's task ends.
pub(crate) struct Registration {
    connections: Arc<Connections>,
    pub(crate) entry: Arc<ConnEntry>,
}

pin_project_lite::pin_project! {
    /// A connection's socket, counting the bytes on the wire both ways.
    pub(crate) struct CountingIo<I> {
        #[pin]
        io: I,
        entry: Arc<ConnEntry>,
    }
}

// === impl Connections ===

impl Connections {
    pub(crate) fn register(self: &Arc<Self>, peer: SocketAddr) -> Registration {
        let id = self.next_id.fetch_add(1, Relaxed);
        let entry = Arc::new(ConnEntry {
            id,
            peer,
            identity: OnceLock::new(),
            since: SystemTime::now(),
            requests: AtomicU64::new(0),
            active: AtomicI64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            peer_gone: AtomicBool::new(false),
        });
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, entry.clone());
        }
        Registration {
            connections: self.clone(),
            entry,
        }
    }

    /// A snapshot of the open connections, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<ConnEntry>> {
        self.open
            .lock()
            .map(|open| open.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut open) = self.connections.open.lock() {
            open.remove(&self.entry.id);
        }
    }
}

// === impl ConnEntry ===

impl ConnEntry {
    /// Whether the peer closed or reset its end of the connection.
    pub(crate) fn peer_gone(&self) -> bool {
        self.peer_gone.load(Relaxed)
    }

    pub(crate) fn note_peer_gone(&self) {
        self.peer_gone.store(true, Relaxed);
    }
}

// === impl CountingIo ===

impl<I> CountingIo<I> {
    pub(crate) fn new(io: I, entry: Arc<ConnEntry>) -> Self {
        CountingIo { io, entry }
    }
}

impl<I: AsyncRead> AsyncRead for CountingIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.io.poll_read(cx, buf);
        this.entry
            .bytes_read
            .fetch_add((buf.filled().len() - before) as u64, Relaxed);
        poll
    }
}

impl<I: AsyncWrite> AsyncWrite for CountingIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &poll {
            this.entry.bytes_written.fetch_add(*n as u64, Relaxed);
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.io.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &poll {
            this.entry.bytes_written.fetch_add(*n as u64, Relaxed);
        }
        poll
    }
}
