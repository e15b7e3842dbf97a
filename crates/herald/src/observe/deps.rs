//! Who calls whom: each client call made with a handler's [`Context`](crate::Context) notes
//! (the handler's service, the called service), so a server's `/deps` lists exactly the
//! services its own handlers call — even when one process hosts several servers. Lock-free on
//! the call path after a pair's first call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::cow_map::CowMap;

/// (calling service, or `""` outside any handler; called service) → calls.
type Pairs = CowMap<(&'static str, &'static str), Arc<AtomicU64>>;

fn pairs() -> &'static Pairs {
    static PAIRS: OnceLock<Pairs> = OnceLock::new();
    PAIRS.get_or_init(Pairs::default)
}

/// Notes one call from a handler of `from` (None: not from a handler) to `to`.
pub(crate) fn note_call(from: Option<&'static str>, to: &'static str) {
    pairs()
        .get_or_insert_with(&(from.unwrap_or(""), to), Arc::default)
        .fetch_add(1, Ordering::Relaxed);
}

/// The services called by handlers of `services`: (called service, calls), summed.
pub(crate) fn callees_of(services: &[&'static str]) -> Vec<(&'static str, u64)> {
    let mut sums: HashMap<&'static str, u64> = HashMap::new();
    for ((from, to), calls) in pairs().snapshot() {
        if services.contains(&from) {
            *sums.entry(to).or_default() += calls.load(Ordering::Relaxed);
        }
    }
    let mut all: Vec<_> = sums.into_iter().collect();
    all.sort();
    all
}
