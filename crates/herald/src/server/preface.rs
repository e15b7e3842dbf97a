//! A connection must start speaking HTTP/2 promptly: a peer that completes TCP (and TLS) but
//! never sends the 24-byte client preface would otherwise hold its connection, and a slot of
//! the server's, for ever (hyper's keepalive pings start only after the HTTP/2 handshake).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The client preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`. Its arrival is noted by the
/// connection's [`StreamWatch`](crate::server::stream_watch::StreamWatch).
pub(crate) const PREFACE_LEN: u64 = 24;

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
    use crate::server::connections::Connections;
    use crate::server::stream_watch::StreamWatch;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn the_preface_in_time_disarms_the_timer_and_silence_fires_it() {
        let (client, server) = tokio::io::duplex(64);
        let entry = Arc::new(Connections::default())
            .register(([127, 0, 0, 1], 1).into())
            .entry
            .clone();
        let (mut watched, seen) = StreamWatch::new(server, entry);
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
