//! What the admin endpoint reads: the server's counters, limits, TLS and connections.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use prometheus_client::registry::Registry;

use crate::limits::LiveLimits;
use crate::observe::LogControl;
use crate::server::call::RoutedMethod;
use crate::server::connections::Connections;
use crate::server::health::Health;
use crate::tls::ServerTls;

/// A server, as its admin endpoint sees it.
#[derive(Debug)]
pub(crate) struct AdminState {
    pub(crate) registry: Arc<Registry>,
    pub(crate) limits: Arc<LiveLimits>,
    pub(crate) tls: Option<ServerTls>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) methods: Vec<Arc<RoutedMethod>>,
    pub(crate) services: Vec<&'static str>,
    pub(crate) health: Arc<Health>,
    pub(crate) logging: Option<LogControl>,
    pub(crate) started: Instant,
    pub(crate) started_at: SystemTime,
}
