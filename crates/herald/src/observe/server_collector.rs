//! Server-wide counters read at scrape time from the atomics the server keeps anyway
//! ([`ServerStats`], limits reloads): nothing is counted twice on the request path.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::limits::LiveLimits;
use crate::server::ServerStats;

/// Exports a server's [`ServerStats`], limits reloads and uptime.
#[derive(Debug)]
pub(crate) struct ServerCollector {
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) limits: Arc<LiveLimits>,
    pub(crate) started: Instant,
}

impl Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let counters: [(&str, &str, u64); 5] = [
            (
                "herald_server_connections",
                "Connections accepted",
                s.connections_accepted(),
            ),
            (
                "herald_server_panics",
                "Handlers that panicked (each answered INTERNAL)",
                s.panics(),
            ),
            (
                "herald_server_deadline_exceeded_in_handler",
                "Handlers cancelled at their deadline",
                s.deadline_exceeded_in_handler(),
            ),
            (
                "herald_server_expired_on_arrival",
                "Requests whose deadline had passed before any work",
                s.expired_on_arrival(),
            ),
            (
                "herald_server_preface_timeouts",
                "Connections closed for not starting HTTP/2 in time",
                s.preface_timeouts(),
            ),
        ];
        for (name, help, value) in counters {
            ConstCounter::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }

        let refused = [
            ("denied", s.denied()),
            ("rate_limited", s.rate_limited()),
            ("queue_full", s.shed_queue_full()),
            ("queue_timeout", s.shed_queue_timeout()),
            ("expired_in_queue", s.expired_in_queue()),
        ];
        let mut family = encoder.encode_descriptor(
            "herald_server_refused",
            "Requests refused before their handler ran, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in refused {
            ConstCounter::new(value).encode(family.encode_family(&[("reason", reason)])?)?;
        }

        let h = s.handshakes();
        let mut family = encoder.encode_descriptor(
            "herald_tls_handshakes",
            "TLS handshakes with callers, by kind",
            None,
            MetricType::Counter,
        )?;
        for (kind, value) in [
            ("full", h.full()),
            ("resumed", h.resumed()),
            ("failed", h.failed()),
        ] {
            ConstCounter::new(value)
                .encode(family.encode_family(&[("side", "server"), ("kind", kind)])?)?;
        }

        let limits = self.limits.status();
        let mut family = encoder.encode_descriptor(
            "herald_config_reloads",
            "Reloads of the limits file, by result",
            None,
            MetricType::Counter,
        )?;
        for (result, value) in [("applied", limits.reloads), ("refused", limits.failures)] {
            ConstCounter::new(value).encode(family.encode_family(&[("result", result)])?)?;
        }

        let uptime = self.started.elapsed().as_secs_f64();
        ConstGauge::new(uptime).encode(encoder.encode_descriptor(
            "herald_uptime_seconds",
            "Seconds since the server started",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}
