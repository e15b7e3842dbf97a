//! HTTP/2 limits, set explicitly.
//!
//! tonic's server leaves h2's concurrent-streams cap and its reset-stream caps unlimited,
//! which is what the "rapid reset" and similar attacks exploit. herald sets each one.

use std::time::Duration;

/// The HTTP/2 settings of a server's connections.
#[derive(Clone, Debug)]
pub struct Http2Limits {
    /// Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// Streams reset by the peer before we accepted them, per connection, before a GOAWAY.
    pub max_pending_accept_reset_streams: usize,
    /// Streams we reset because of the peer's errors, per connection, before a GOAWAY.
    pub max_local_error_reset_streams: usize,
    /// Largest header list accepted (SETTINGS_MAX_HEADER_LIST_SIZE), in bytes.
    pub max_header_list_size: u32,
    /// Interval of HTTP/2 keepalive PINGs to callers; `None` (the default): none. hyper's
    /// keepalive stamps every frame it reads with the time, under a lock: about 5 % of a small
    /// call's cost on the server (bench/README.md). Dead callers are found by TCP keepalive
    /// instead ([`Http2Limits::tcp_keepalive`]); PINGs also find a caller whose host is alive
    /// but whose process hangs.
    pub keepalive_interval: Option<Duration>,
    /// How long a keepalive PING may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// TCP keepalive on accepted connections: probes start after this long without traffic,
    /// every 10 s, and a peer that answers none (the kernel's 9 by default) is dropped, with
    /// its calls. `None`: off. Default 60 s.
    pub tcp_keepalive: Option<Duration>,
    /// Largest gRPC message decoded, in bytes (larger: RESOURCE_EXHAUSTED).
    pub max_decoding_message_size: usize,
    /// Largest gRPC message encoded, in bytes.
    pub max_encoding_message_size: usize,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_concurrent_streams: 256,
            max_pending_accept_reset_streams: 32,
            max_local_error_reset_streams: 256,
            max_header_list_size: 16 * 1024,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(60)),
            max_decoding_message_size: 4 * 1024 * 1024,
            max_encoding_message_size: 4 * 1024 * 1024,
        }
    }
}
