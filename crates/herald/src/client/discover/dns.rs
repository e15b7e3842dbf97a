//! DNS discovery through hickory's resolver: A/AAAA of a name, or SRV then A/AAAA.
//!
//! A long-lived connection never looks at DNS again, so a service that moves would keep
//! its clients on the old addresses until something closes the connections — which is why
//! some setups close connections every few minutes. herald re-resolves instead, when the
//! answer's TTL runs out (never sooner than [`Dns::min_refresh`], never later than
//! [`Dns::max_refresh`]), and lets the balancer diff the sets: connections to addresses
//! still listed live on.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use http::uri::Authority;
use tokio::time::Instant;

use crate::client::discover::{DiscoveryError, Updates, authority};

/// Re-resolution right after an answer is never sooner than this, whatever its TTL (0 is
/// common for local records).
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(1);
/// Re-resolution happens at least this often, whatever the TTL.
const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(30 * 60);
/// Waits after failed resolutions: doubling from the first, up to the last.
const FAILURE_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// DNS discovery of one service: built by [`Discovery::dns`](super::Discovery::dns) or
/// [`Discovery::dns_srv`](super::Discovery::dns_srv), turned into a
/// [`Discovery`](super::Discovery) with `.into()`.
#[derive(Clone)]
pub struct Dns {
    query: Query,
    authority: Authority,
    nameserver: Option<SocketAddr>,
    min_refresh: Duration,
    max_refresh: Duration,
}

#[derive(Clone, Debug)]
enum Query {
    /// A and AAAA records of `host`; endpoints on `port`.
    Ip { host: String, port: u16 },
    /// SRV records of `name`.
    Srv { name: String },
}

// === impl Dns ===

impl Dns {
    pub(crate) fn a_aaaa(target: &str) -> Result<Dns, DiscoveryError> {
        let authority = authority(target)?;
        let port = authority.port_u16().ok_or_else(|| {
            DiscoveryError::new(format!("DNS target {target:?} needs a port (host:port)"))
        })?;
        let host = authority
            .host()
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        Ok(Dns::new(Query::Ip { host, port }, authority))
    }

    pub(crate) fn srv(name: &str) -> Result<Dns, DiscoveryError> {
        // gRPC names the service by the name without its `_service._proto.` labels.
        let service = name
            .split('.')
            .skip_while(|label| label.starts_with('_'))
            .collect::<Vec<_>>()
            .join(".");
        let authority = authority(service.trim_end_matches('.'))?;
        Ok(Dns::new(
            Query::Srv {
                name: name.to_owned(),
            },
            authority,
        ))
    }

    fn new(query: Query, authority: Authority) -> Dns {
        Dns {
            query,
            authority,
            nameserver: None,
            min_refresh: DEFAULT_MIN_REFRESH,
            max_refresh: DEFAULT_MAX_REFRESH,
        }
    }

    /// Asks this name server (UDP, then TCP for long answers) instead of the system's.
    #[must_use]
    pub fn nameserver(mut self, addr: SocketAddr) -> Dns {
        self.nameserver = Some(addr);
        self
    }

    /// The shortest wait between two resolutions, whatever the TTL says (default 1 s).
    #[must_use]
    pub fn min_refresh(mut self, min: Duration) -> Dns {
        self.min_refresh = min;
        self
    }

    /// The longest wait between two resolutions, whatever the TTL says (default 30 min).
    #[must_use]
    pub fn max_refresh(mut self, max: Duration) -> Dns {
        self.max_refresh = max;
        self
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Resolves now, then again when the answer expires, forever.
    pub(crate) fn into_updates(self) -> Updates {
        let state = (self, None::<TokioResolver>, None::<Instant>, Duration::ZERO);
        stream::unfold(state, |(dns, resolver, wake, failing)| async move {
            if let Some(wake) = wake {
                tokio::time::sleep_until(wake).await;
            }
            let resolver = match resolver {
                Some(resolver) => Ok(resolver),
                None => dns.resolver(),
            };
            let (update, resolver, next, failing) = match resolver {
                Ok(resolver) => match dns.resolve(&resolver).await {
                    Ok((endpoints, valid_until)) => {
                        let now = Instant::now();
                        let next = valid_until.clamp(now + dns.min_refresh, now + dns.max_refresh);
                        (Ok(endpoints), Some(resolver), next, Duration::ZERO)
                    }
                    Err(error) => {
                        let failing = next_failure_wait(failing);
                        (
                            Err(error),
                            Some(resolver),
                            Instant::now() + failing,
                            failing,
                        )
                    }
                },
                Err(error) => {
                    let failing = next_failure_wait(failing);
                    (Err(error), None, Instant::now() + failing, failing)
                }
            };
            Some((update, (dns, resolver, Some(next), failing)))
        })
        .boxed()
    }

    fn resolver(&self) -> Result<TokioResolver, DiscoveryError> {
        let mut builder = match self.nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| {
                DiscoveryError::new(format!("cannot read the system's DNS configuration: {e}"))
            })?,
        };
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        builder
            .build()
            .map_err(|e| DiscoveryError::new(format!("cannot build a DNS resolver: {e}")))
    }

    /// The endpoints, and when the answer stops being valid.
    async fn resolve(
        &self,
        resolver: &TokioResolver,
    ) -> Result<(Vec<SocketAddr>, Instant), DiscoveryError> {
        match &self.query {
            Query::Ip { host, port } => {
                let ips = resolver
                    .lookup_ip(host.as_str())
                    .await
                    .map_err(|e| DiscoveryError::new(format!("DNS lookup of {host}: {e}")))?;
                let endpoints: Vec<_> = ips.iter().map(|ip| SocketAddr::new(ip, *port)).collect();
                if endpoints.is_empty() {
                    return Err(DiscoveryError::new(format!("{host} has no A/AAAA record")));
                }
                Ok((endpoints, Instant::from_std(ips.valid_until())))
            }
            Query::Srv { name } => self.resolve_srv(resolver, name).await,
        }
    }

    async fn resolve_srv(
        &self,
        resolver: &TokioResolver,
        name: &str,
    ) -> Result<(Vec<SocketAddr>, Instant), DiscoveryError> {
        let srv = resolver
            .srv_lookup(name)
            .await
            .map_err(|e| DiscoveryError::new(format!("DNS SRV lookup of {name}: {e}")))?;
        let mut valid_until = srv.valid_until();
        let records: Vec<_> = srv
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(srv.clone()),
                _ => None,
            })
            .collect();
        // RFC 2782: only the lowest priority is used while any of it resolves. Weights are
        // left to the balancer, which measures load itself.
        let best = records.iter().map(|srv| srv.priority).min();
        let mut endpoints = Vec::new();
        let mut failures = Vec::new();
        for srv in records.iter().filter(|srv| Some(srv.priority) == best) {
            match resolver.lookup_ip(srv.target.clone()).await {
                Ok(ips) => {
                    valid_until = valid_until.min(ips.valid_until());
                    endpoints.extend(ips.iter().map(|ip| SocketAddr::new(ip, srv.port)));
                }
                Err(e) => failures.push(format!("{}: {e}", srv.target)),
            }
        }
        if endpoints.is_empty() {
            let why = if failures.is_empty() {
                "no SRV record".to_owned()
            } else {
                failures.join("; ")
            };
            return Err(DiscoveryError::new(format!("{name}: {why}")));
        }
        endpoints.sort();
        endpoints.dedup();
        Ok((endpoints, Instant::from_std(valid_until)))
    }
}

fn next_failure_wait(last: Duration) -> Duration {
    let (first, max) = FAILURE_BACKOFF;
    if last.is_zero() {
        first
    } else {
        (last * 2).min(max)
    }
}

impl fmt::Debug for Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dns")
            .field("query", &self.query)
            .field("nameserver", &self.nameserver)
            .field("min_refresh", &self.min_refresh)
            .field("max_refresh", &self.max_refresh)
            .finish()
    }
}
