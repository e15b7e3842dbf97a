//! The limits file compiled against the server's methods: one policy per method, looked up
//! by the method's index (no string lookups per request).

use std::collections::HashMap;
use std::time::Duration;

use crate::Identity;
use crate::contract::MethodContract;
use crate::limits::config::{
    AUTHENTICATED, LimitsConfig, MethodLimits, QueueKind, Rate, UNAUTHENTICATED,
};

/// How long a waiter may queue when the file does not say.
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Every method's policy, in the router's method order.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) methods: Vec<MethodPolicy>,
}

/// One method's effective limits.
#[derive(Debug)]
pub(crate) struct MethodPolicy {
    pub(crate) acl: Acl,
    pub(crate) admission: Option<AdmissionPolicy>,
}

/// Who may call, and how often. Default deny: a caller named nowhere is refused.
#[derive(Debug)]
pub(crate) enum Acl {
    /// No limits configured (`allow_all_callers`): everyone, unlimited.
    AllowAll,
    /// Rates by identity and group.
    Rates {
        identities: HashMap<String, Rate>,
        authenticated: Option<Rate>,
        unauthenticated: Option<Rate>,
    },
    /// The service is missing from the limits file.
    Unlisted,
}

/// Slots and queue of a method.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AdmissionPolicy {
    pub(crate) max_concurrency: usize,
    pub(crate) max_queue: usize,
    pub(crate) queue_timeout: Duration,
    pub(crate) kind: QueueKind,
}

/// The ACL's verdict on a caller.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Allowed(Rate),
    Denied(String),
}

// === impl Compiled ===

impl Compiled {
    /// Everyone allowed, no limits.
    pub(crate) fn allow_all(methods: &[&'static MethodContract]) -> Compiled {
        Compiled {
            methods: methods
                .iter()
                .map(|_| MethodPolicy {
                    acl: Acl::AllowAll,
                    admission: None,
                })
                .collect(),
        }
    }

    /// `config` applied to `methods`.
    ///
    /// # Errors
    /// The file names a service or method this server does not serve.
    pub(crate) fn new(
        config: &LimitsConfig,
        methods: &[&'static MethodContract],
    ) -> Result<Compiled, String> {
        for (service, limits) in &config.services {
            if !methods.iter().any(|m| m.service == service) {
                return Err(format!(
                    "limits.{service}: this server serves no such service"
                ));
            }
            for method in limits.methods.keys() {
                if !methods
                    .iter()
                    .any(|m| m.service == service && m.method == method)
                {
                    return Err(format!(
                        "limits.{service}.methods.{method}: service {service} has no such method"
                    ));
                }
            }
        }
        let methods = methods
            .iter()
            .map(|m| match config.services.get(m.service) {
                None => MethodPolicy {
                    acl: Acl::Unlisted,
                    admission: None,
                },
                Some(service) => {
                    let merged = merge(&service.default, service.methods.get(m.method));
                    MethodPolicy {
                        acl: Acl::from_rates(&merged.rate_acls),
                        admission: AdmissionPolicy::from_limits(&merged),
                    }
                }
            })
            .collect();
        Ok(Compiled { methods })
    }
}

/// A method's override over its service's default: fields one by one, `rate_acls` entry by
/// entry.
fn merge(default: &MethodLimits, method: Option<&MethodLimits>) -> MethodLimits {
    let Some(method) = method else {
        return default.clone();
    };
    let mut rate_acls = default.rate_acls.clone();
    rate_acls.extend(method.rate_acls.iter().map(|(k, v)| (k.clone(), *v)));
    MethodLimits {
        max_concurrency: method.max_concurrency.or(default.max_concurrency),
        max_queue: method.max_queue.or(default.max_queue),
        queue_timeout: method.queue_timeout.or(default.queue_timeout),
        queue: method.queue.or(default.queue),
        rate_acls,
    }
}

// === impl MethodPolicy ===

impl MethodPolicy {
    /// The effective policy, for the admin endpoint.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let rate = |r: &Rate| serde_json::Value::String(r.to_string());
        let acl = match &self.acl {
            Acl::AllowAll => serde_json::json!("allow all callers (no limits file)"),
            Acl::Unlisted => serde_json::json!("deny all: the service is not in the limits file"),
            Acl::Rates {
                identities,
                authenticated,
                unauthenticated,
            } => {
                let mut callers: serde_json::Map<String, serde_json::Value> = identities
                    .iter()
                    .map(|(who, r)| (who.clone(), rate(r)))
                    .collect();
                if let Some(r) = authenticated {
                    callers.insert(AUTHENTICATED.into(), rate(r));
                }
                if let Some(r) = unauthenticated {
                    callers.insert(UNAUTHENTICATED.into(), rate(r));
                }
                serde_json::Value::Object(callers)
            }
        };
        let admission = self.admission.as_ref().map(|a| {
            serde_json::json!({
                "max_concurrency": a.max_concurrency,
                "max_queue": a.max_queue,
                "queue_timeout_ms": a.queue_timeout.as_millis() as u64,
                "queue": match a.kind { QueueKind::Lifo => "lifo", QueueKind::Codel => "codel" },
            })
        });
        serde_json::json!({ "rate_acls": acl, "admission": admission })
    }
}

// === impl Acl ===

impl Acl {
    fn from_rates(rates: &std::collections::BTreeMap<String, Rate>) -> Acl {
        let mut identities: HashMap<String, Rate> =
            rates.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let authenticated = identities.remove(AUTHENTICATED);
        let unauthenticated = identities.remove(UNAUTHENTICATED);
        Acl::Rates {
            identities,
            authenticated,
            unauthenticated,
        }
    }

    /// The caller's rate: its own entry, else its group's; named nowhere is denied.
    pub(crate) fn verdict(&self, caller: Option<&Identity>, method: &MethodContract) -> Verdict {
        let (identities, authenticated, unauthenticated) = match self {
            Acl::AllowAll => return Verdict::Allowed(Rate::Unlimited),
            Acl::Unlisted => {
                return Verdict::Denied(format!(
                    "service {} is not in the limits file: nobody may call it",
                    method.service
                ));
            }
            Acl::Rates {
                identities,
                authenticated,
                unauthenticated,
            } => (identities, authenticated, unauthenticated),
        };
        let who = caller.map_or("unauthenticated caller", Identity::as_str);
        let rate = match caller {
            Some(identity) => identities.get(identity.as_str()).or(authenticated.as_ref()),
            None => unauthenticated.as_ref(),
        };
        match rate {
            Some(Rate::Denied) => {
                Verdict::Denied(format!("{who} may not call {}", method.full_name()))
            }
            Some(rate) => Verdict::Allowed(*rate),
            None => Verdict::Denied(format!(
                "{who} is not in the ACL of {} (default deny)",
                method.full_name()
            )),
        }
    }
}

// === impl AdmissionPolicy ===

impl AdmissionPolicy {
    fn from_limits(limits: &MethodLimits) -> Option<AdmissionPolicy> {
        let max_concurrency = limits.max_concurrency? as usize;
        Some(AdmissionPolicy {
            max_concurrency,
            max_queue: limits.max_queue.map_or(max_concurrency, |q| q as usize),
            queue_timeout: limits.queue_timeout.unwrap_or(DEFAULT_QUEUE_TIMEOUT),
            kind: limits.queue.unwrap_or(QueueKind::Lifo),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::RpcKind;

    const fn method(
        service: &'static str,
        name: &'static str,
        path: &'static str,
    ) -> MethodContract {
        MethodContract::bare(service, name, path, RpcKind::Unary)
    }
    static GET: MethodContract = method("cache.Cache", "Get", "/cache.Cache/Get");
    static DUMP: MethodContract = method("cache.Cache", "Dump", "/cache.Cache/Dump");
    static LOOKUP: MethodContract = method(
        "accounts.Accounts",
        "GetByToken",
        "/accounts.Accounts/GetByToken",
    );

    fn compiled(yaml: &str) -> Result<Compiled, String> {
        let config = LimitsConfig::parse(yaml, "t.yaml").map_err(|e| e.to_string())?;
        Compiled::new(&config, &[&GET, &DUMP, &LOOKUP])
    }

    #[test]
    fn acl_matrix_identity_then_group_then_default_deny() {
        let c = compiled(
            "limits:\n  cache.Cache:\n    default:\n      rate_acls: { web: -1, user.boo: 5, batch: 0, authenticated: 2 }\n    methods:\n      Dump:\n        rate_acls: { web: 0, unauthenticated: -1 }\n",
        )
        .expect("valid");
        let id = |s: &str| Some(Identity::new(s));
        let (get, dump, lookup) = (&c.methods[0].acl, &c.methods[1].acl, &c.methods[2].acl);
        let cases: &[(&Acl, &MethodContract, Option<Identity>, Verdict)] = &[
            (get, &GET, id("web"), Verdict::Allowed(Rate::Unlimited)),
            (
                get,
                &GET,
                id("user.boo"),
                Verdict::Allowed(Rate::PerSecond(5)),
            ),
            (get, &GET, id("other"), Verdict::Allowed(Rate::PerSecond(2))),
            (
                dump,
                &DUMP,
                id("other"),
                Verdict::Allowed(Rate::PerSecond(2)),
            ),
            (dump, &DUMP, None, Verdict::Allowed(Rate::Unlimited)),
        ];
        for (acl, m, who, expected) in cases {
            assert_eq!(
                &acl.verdict(who.as_ref(), m),
                expected,
                "{who:?} on {}",
                m.path
            );
        }
        let denied = |acl: &Acl, m: &MethodContract, who: Option<Identity>, says: &str| match acl
            .verdict(who.as_ref(), m)
        {
            Verdict::Denied(reason) => assert!(reason.contains(says), "{reason}"),
            other => panic!("{who:?} on {}: {other:?}", m.path),
        };
        denied(get, &GET, id("batch"), "batch may not call cache.Cache/Get");
        denied(dump, &DUMP, id("web"), "web may not call cache.Cache/Dump");
        denied(
            get,
            &GET,
            None,
            "unauthenticated caller is not in the ACL of cache.Cache/Get (default deny)",
        );
        denied(
            lookup,
            &LOOKUP,
            id("web"),
            "accounts.Accounts is not in the limits file",
        );
    }

    #[test]
    fn method_overrides_merge_over_the_default() {
        let c = compiled(
            "limits:\n  cache.Cache:\n    default: { max_concurrency: 8, queue_timeout_ms: 50 }\n    methods:\n      Dump: { max_concurrency: 2, queue: codel, max_queue: 5 }\n",
        )
        .expect("valid");
        assert_eq!(
            c.methods[0].admission,
            Some(AdmissionPolicy {
                max_concurrency: 8,
                max_queue: 8,
                queue_timeout: Duration::from_millis(50),
                kind: QueueKind::Lifo
            })
        );
        assert_eq!(
            c.methods[1].admission,
            Some(AdmissionPolicy {
                max_concurrency: 2,
                max_queue: 5,
                queue_timeout: Duration::from_millis(50),
                kind: QueueKind::Codel
            })
        );
        assert_eq!(c.methods[2].admission, None);
    }

    #[test]
    fn names_the_server_does_not_serve_are_refused() {
        let e = compiled("limits:\n  cache.Cahce:\n    default: {}\n").expect_err("typo");
        assert!(
            e.contains("limits.cache.Cahce: this server serves no such service"),
            "{e}"
        );
        let e =
            compiled("limits:\n  cache.Cache:\n    methods:\n      Dumpp: {}\n").expect_err("typo");
        assert!(
            e.contains("limits.cache.Cache.methods.Dumpp: service cache.Cache has no such method"),
            "{e}"
        );
    }
}
