//! The limits file, Courier's format: per service a `default` block and per-method
//! overrides. Read once into typed values; every error names the file, line and key.
//!
//! ```yaml
//! limits:
//!   cache.Cache:                 # package.Service
//!     default:                   # every method
//!       max_concurrency: 32
//!       max_queue: 64            # waiters beyond the slots (default: max_concurrency)
//!       queue_timeout_ms: 1000
//!       queue: lifo              # or codel
//!       rate_acls:               # identity or group → requests/s; -1 unlimited, 0 denied
//!         web: -1
//!         authenticated: 0
//!         unauthenticated: 0
//!     methods:
//!       Dump: { max_concurrency: 2 }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::tls::spiffe::valid_name;

/// The group of every caller with an identity.
pub const AUTHENTICATED: &str = "authenticated";
/// The group of callers without one (plaintext, or no certificate).
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// A validated limits file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LimitsConfig {
    pub(crate) services: BTreeMap<String, ServiceLimits>,
}

/// One service's limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceLimits {
    pub(crate) default: MethodLimits,
    pub(crate) methods: BTreeMap<String, MethodLimits>,
}

/// Limits of one method, or a service's default; unset fields inherit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodLimits {
    pub(crate) max_concurrency: Option<u32>,
    pub(crate) max_queue: Option<u32>,
    pub(crate) queue_timeout: Option<Duration>,
    pub(crate) queue: Option<QueueKind>,
    pub(crate) rate_acls: BTreeMap<String, Rate>,
}

/// How waiters leave the admission queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// Newest first: under overload the requests most likely still wanted are served, and
    /// old ones time out (Courier's choice).
    Lifo,
    /// Oldest first, with Facebook's controlled delay: when the queue has not drained for
    /// 100 ms, waiters get 5 ms instead of the full queue timeout.
    Codel,
}

/// What a caller may do, in requests per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// `-1`: no limit.
    Unlimited,
    /// `0`: not allowed at all.
    Denied,
    /// Up to this many requests per second.
    PerSecond(u32),
}

/// The limits file is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    file: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    limits: BTreeMap<String, RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    default: RawMethod,
    #[serde(default)]
    methods: BTreeMap<String, RawMethod>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    max_concurrency: Option<u32>,
    max_queue: Option<u32>,
    queue_timeout_ms: Option<u64>,
    queue: Option<QueueKind>,
    #[serde(default)]
    rate_acls: BTreeMap<String, i64>,
}

// === impl LimitsConfig ===

impl LimitsConfig {
    /// Reads and validates a limits file.
    ///
    /// # Errors
    /// The file cannot be read, is not valid YAML of this shape, or a value is out of range;
    /// the message names the file, the line and the key.
    pub fn from_file(path: &Path) -> Result<LimitsConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// Validates limits given as YAML text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`LimitsConfig::from_file`].
    pub fn parse(text: &str, origin: &str) -> Result<LimitsConfig, ConfigError> {
        let error = |message: String| ConfigError {
            file: origin.to_owned(),
            message,
        };
        let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|e| error(yaml_error(&e)))?;
        let mut services = BTreeMap::new();
        for (service, raw_service) in raw.limits {
            if !valid_service_name(&service) {
                return Err(error(format!(
                    "limits.{service}: not a service name (expected package.Service, e.g. cache.Cache)"
                )));
            }
            let key = format!("limits.{service}");
            let default =
                method_limits(raw_service.default, &format!("{key}.default")).map_err(error)?;
            let mut methods = BTreeMap::new();
            for (method, raw_method) in raw_service.methods {
                let limits =
                    method_limits(raw_method, &format!("{key}.methods.{method}")).map_err(error)?;
                methods.insert(method, limits);
            }
            services.insert(service, ServiceLimits { default, methods });
        }
        Ok(LimitsConfig { services })
    }

    /// The services configured, by full name.
    pub fn services(&self) -> impl Iterator<Item = (&str, &ServiceLimits)> {
        self.services.iter().map(|(k, v)| (k.as_str(), v))
    }
}

// === impl ServiceLimits ===

impl ServiceLimits {
    /// The method names with their own overrides.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    /// The service's default block.
    pub fn default(&self) -> &MethodLimits {
        &self.default
    }
}

// === impl MethodLimits ===

impl MethodLimits {
    /// Slots, if limited.
    pub fn max_concurrency(&self) -> Option<u32> {
        self.max_concurrency
    }

    /// The queue's order, if set.
    pub fn queue(&self) -> Option<QueueKind> {
        self.queue
    }

    /// Callers and their rates.
    pub fn rate_acls(&self) -> impl Iterator<Item = (&str, Rate)> {
        self.rate_acls.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Unlimited => f.write_str("unlimited"),
            Rate::Denied => f.write_str("denied"),
            Rate::PerSecond(n) => write!(f, "{n}/s"),
        }
    }
}

fn method_limits(raw: RawMethod, key: &str) -> Result<MethodLimits, String> {
    if raw.max_concurrency == Some(0) {
        return Err(format!(
            "{key}.max_concurrency: must be at least 1 (deny with rate_acls instead)"
        ));
    }
    if raw.queue_timeout_ms == Some(0) {
        return Err(format!("{key}.queue_timeout_ms: must be at least 1"));
    }
    let mut rate_acls = BTreeMap::new();
    for (who, rate) in raw.rate_acls {
        let rate = match rate {
            -1 => Rate::Unlimited,
            0 => Rate::Denied,
            n if n > 0 && n <= i64::from(u32::MAX) => Rate::PerSecond(n as u32),
            n => {
                return Err(format!(
                    "{key}.rate_acls.{who}: {n} is not a rate (-1 unlimited, 0 denied, or requests per second)"
                ));
            }
        };
        if !valid_identity(&who) {
            return Err(format!(
                "{key}.rate_acls.{who}: not an identity (e.g. cache, user.boo, host.web-1) or group ({AUTHENTICATED}, {UNAUTHENTICATED})"
            ));
        }
        rate_acls.insert(who, rate);
    }
    Ok(MethodLimits {
        max_concurrency: raw.max_concurrency,
        max_queue: raw.max_queue,
        queue_timeout: raw.queue_timeout_ms.map(Duration::from_millis),
        queue: raw.queue,
        rate_acls,
    })
}

fn valid_identity(who: &str) -> bool {
    match who.split_once('.') {
        Some(("user" | "host", name)) => valid_name(name),
        Some(_) => false,
        None => valid_name(who),
    }
}

fn valid_service_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// serde_yaml's message already holds the key path and "at line L column C".
fn yaml_error(error: &serde_yaml_ng::Error) -> String {
    let message = error.to_string();
    match error.location() {
        Some(at) if !message.contains("line") => format!("line {}: {message}", at.line()),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
limits:
  cache.Cache:
    default:
      max_concurrency: 32
      queue_timeout_ms: 1000
      queue: lifo
      rate_acls:
        web: -1
        user.boo: 10
        authenticated: 0
        unauthenticated: 0
    methods:
      Dump: { max_concurrency: 2, queue: codel }
";

    #[test]
    fn reads_courier_format() {
        let config = LimitsConfig::parse(GOOD, "limits.yaml").expect("valid");
        let cache = &config.services["cache.Cache"];
        assert_eq!(cache.default.max_concurrency, Some(32));
        assert_eq!(
            cache.default.queue_timeout,
            Some(Duration::from_millis(1000))
        );
        assert_eq!(cache.default.queue, Some(QueueKind::Lifo));
        assert_eq!(cache.default.rate_acls["web"], Rate::Unlimited);
        assert_eq!(cache.default.rate_acls["user.boo"], Rate::PerSecond(10));
        assert_eq!(cache.default.rate_acls[AUTHENTICATED], Rate::Denied);
        assert_eq!(cache.methods["Dump"].max_concurrency, Some(2));
        assert_eq!(cache.methods["Dump"].queue, Some(QueueKind::Codel));
    }

    fn error(text: &str) -> String {
        LimitsConfig::parse(text, "limits.yaml")
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let typo = error("limits:\n  cache.Cache:\n    default:\n      max_concurency: 3\n");
        assert!(typo.starts_with("limits.yaml: "), "{typo}");
        assert!(
            typo.contains("max_concurency") && typo.contains("line 4"),
            "{typo}"
        );

        let bad_rate =
            error("limits:\n  cache.Cache:\n    default:\n      rate_acls: { web: -5 }\n");
        assert!(
            bad_rate.contains("limits.cache.Cache.default.rate_acls.web: -5 is not a rate"),
            "{bad_rate}"
        );

        let bad_queue = error("limits:\n  cache.Cache:\n    default:\n      queue: fifo\n");
        assert!(
            bad_queue.contains("queue") && bad_queue.contains("line 4"),
            "{bad_queue}"
        );

        let zero =
            error("limits:\n  cache.Cache:\n    methods:\n      Get: { max_concurrency: 0 }\n");
        assert!(
            zero.contains("limits.cache.Cache.methods.Get.max_concurrency: must be at least 1"),
            "{zero}"
        );

        let who = error(
            "limits:\n  cache.Cache:\n    default:\n      rate_acls: { \"Web Frontend\": 1 }\n",
        );
        assert!(
            who.contains("rate_acls.Web Frontend: not an identity"),
            "{who}"
        );

        let service = error("limits:\n  Cache:\n    default: {}\n");
        assert!(
            service.contains("limits.Cache: not a service name"),
            "{service}"
        );

        let not_yaml = error("limits: [unclosed\n");
        assert!(not_yaml.contains("line"), "{not_yaml}");
    }
}
