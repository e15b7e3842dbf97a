//! HTTP/2 PING keepalive on a channel's connections.
//!
//! A peer can vanish without closing anything: a host that lost power, a NAT or firewall that
//! dropped the flow. TCP then says nothing for many minutes, and every call on the connection
//! waits for its deadline (or forever, for a stream without one). A PING that goes unanswered
//! for `timeout` closes the connection instead: its calls fail UNAVAILABLE at once (retried by
//! their contracts where that is safe) and the endpoint reconnects with its backoff.

use std::time::Duration;

/// When a channel pings its connections. The default pings every 5 minutes while calls are in
/// flight, which every gRPC server accepts (grpc-go and gRPC's C core answer pings more
/// frequent than their `min ping interval` — 5 minutes by default — or sent with no call open
/// with GOAWAY `too_many_pings`). Between herald services, which accept any rate, a much
/// shorter interval finds dead peers sooner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    interval: Option<Duration>,
    timeout: Duration,
    while_idle: bool,
}

// === impl Keepalive ===

impl Keepalive {
    /// The interval of the default.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
    /// How long a ping may go unanswered, unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

    /// A PING every `interval` while calls are in flight, each answered within 20 seconds.
    pub fn every(interval: Duration) -> Self {
        Keepalive {
            interval: Some(interval),
            timeout: Self::DEFAULT_TIMEOUT,
            while_idle: false,
        }
    }

    /// No pings: a dead peer is found by the calls' deadlines or by TCP.
    pub fn off() -> Self {
        Keepalive {
            interval: None,
            timeout: Self::DEFAULT_TIMEOUT,
            while_idle: false,
        }
    }

    /// How long a PING may go unanswered before the connection is closed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Pings idle connections too, so the next call does not find a dead one. Only towards
    /// servers that permit it (herald does; grpc-go and the C core do not by default).
    pub fn while_idle(mut self, while_idle: bool) -> Self {
        self.while_idle = while_idle;
        self
    }

    pub(crate) fn apply<E>(&self, builder: &mut hyper::client::conn::http2::Builder<E>)
    where
        E: Clone,
    {
        if let Some(interval) = self.interval {
            builder
                .keep_alive_interval(interval)
                .keep_alive_timeout(self.timeout)
                .keep_alive_while_idle(self.while_idle);
        }
    }
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive::every(Self::DEFAULT_INTERVAL)
    }
}
