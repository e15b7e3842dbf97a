//! What this process calls: each client call notes its service (and the identity the
//! channel demands of the server), so `/deps` can list callees beside callers. Lock-free on
//! the call path after a service's first call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

/// Calls made to one service.
#[derive(Debug, Default)]
pub(crate) struct Callee {
    pub(crate) identity: OnceLock<String>,
    pub(crate) calls: AtomicU64,
}

type Callees = ArcSwap<HashMap<&'static str, Arc<Callee>>>;

fn callees() -> &'static Callees {
    static CALLEES: OnceLock<Callees> = OnceLock::new();
    CALLEES.get_or_init(ArcSwap::default)
}

/// Notes one call to `service`, whose server proves `identity` (when the channel checks one).
pub(crate) fn note_call(service: &'static str, identity: Option<&str>) {
    let callee = match callees().load().get(service) {
        Some(callee) => callee.clone(),
        None => {
            let fresh = Arc::new(Callee::default());
            callees().rcu(|map| {
                let mut map = HashMap::clone(map);
                map.entry(service).or_insert_with(|| fresh.clone());
                map
            });
            callees().load().get(service).cloned().unwrap_or(fresh)
        }
    };
    if let Some(identity) = identity {
        let _ = callee.identity.set(identity.to_owned());
    }
    callee.calls.fetch_add(1, Ordering::Relaxed);
}

/// Every service called so far: (service, server identity, calls).
pub(crate) fn snapshot() -> Vec<(&'static str, Option<String>, u64)> {
    let mut all: Vec<_> = callees()
        .load()
        .iter()
        .map(|(service, callee)| {
            (
                *service,
                callee.identity.get().cloned(),
                callee.calls.load(Ordering::Relaxed),
            )
        })
        .collect();
    all.sort();
    all
}
