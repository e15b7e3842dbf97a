//! Finding dead peers on a channel's connections: TCP's own probes always, HTTP/2 PINGs on
//! request.
//!
//! A peer can vanish without closing anything: a host that lost power, a NAT or firewall that
//! dropped the flow. Left alone, TCP says nothing for hours, and every call on the connection
//! waits for its deadline (or forever, for a stream without one). So every channel's sockets
//! carry two kernel settings, which cost nothing per call:
//!
//! - `TCP_USER_TIMEOUT`: data written and not acknowledged within the timeout (20 s by
//!   default) closes the connection — a request sent to a dead host fails then, as gRPC's C
//!   core and grpc-go set it when keepalive is on;
//! - TCP keepalive: a connection with nothing on the wire for 60 s is probed every 10 s, so a
//!   call waiting on a host that died after receiving the request fails within about 80 s (the
//!   user timeout also bounds the probes).
//!
//! Either way its calls fail UNAVAILABLE (retried by their contracts where that is safe) and
//! the endpoint reconnects with its backoff.
//!
//! HTTP/2 PINGs ([`Keepalive::every`]) also catch a peer whose kernel still answers while
//! the process does not, and keep idle connections alive through middleboxes that only see
//! TCP. They are off by default because of what they cost: while an interval is set, hyper
//! stamps the time (a lock and a clock read) on every frame the connection reads, about 1 %
//! of a small call — and grpc-go and the C core keep client PINGs off by default too.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

/// When a channel probes its connections for a dead peer: TCP keepalive and
/// `TCP_USER_TIMEOUT` always (see the module docs), HTTP/2 PINGs when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    interval: Option<Duration>,
    timeout: Duration,
    while_idle: bool,
}

// === impl Keepalive ===

impl Keepalive {
    /// How long written data, a PING or TCP's probes may go unanswered, unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
    /// How long a connection is quiet before TCP starts probing it.
    pub const TCP_IDLE: Duration = Duration::from_secs(60);
    /// Between two TCP probes.
    pub const TCP_PROBE_INTERVAL: Duration = Duration::from_secs(10);

    /// TCP's probes and a 20 s `TCP_USER_TIMEOUT`, no HTTP/2 PINGs: the default.
    pub fn off() -> Self {
        Keepalive {
            interval: None,
            timeout: Self::DEFAULT_TIMEOUT,
            while_idle: false,
        }
    }

    /// An HTTP/2 PING every `interval` while calls are in flight, each answered within 20
    /// seconds, on top of TCP's probes. gRPC servers accept one every 5 minutes at most by
    /// default (grpc-go and the C core answer more frequent ones, or ones sent with no call
    /// open, with GOAWAY `too_many_pings`); herald servers accept any rate.
    pub fn every(interval: Duration) -> Self {
        Keepalive {
            interval: Some(interval),
            ..Self::off()
        }
    }

    /// How long a PING, written data, or TCP's probes may go unanswered before the connection
    /// is closed (the socket's `TCP_USER_TIMEOUT`).
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

    /// Sets the kernel's probes and timeout on the sockets `connector` opens.
    pub(crate) fn apply_to_tcp(&self, connector: &mut HttpConnector) {
        connector.set_keepalive(Some(Self::TCP_IDLE));
        connector.set_keepalive_interval(Some(Self::TCP_PROBE_INTERVAL));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        connector.set_tcp_user_timeout(Some(self.timeout));
    }

    /// Sets the PINGs, if any, on a connection's HTTP/2 handshake.
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
        Keepalive::off()
    }
}
