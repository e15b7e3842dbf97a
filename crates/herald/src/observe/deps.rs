//! Who calls whom: each client call made with a handler's [`Context`](crate::Context) notes
//! (the handler's service, the called service), so a server's `/deps` lists exactly the
//! services its own handlers call — even when one process hosts several servers. Lock-free on
//! the call path after a pair's first call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::contract::MethodContract;
use crate::cow_map::{AddressHash, CowMap};

/// (calling method's contract address, or 0 outside any handler; called method's) → the
/// services' names and the calls. Keyed by address, not name: a call hashes two words.
type Pairs = CowMap<Key, Arc<Pair>, AddressHash>;

/// (calling method's contract address or 0, called method's).
type Key = (usize, usize);

#[derive(Debug)]
struct Pair {
    from: &'static str,
    to: &'static str,
    calls: AtomicU64,
}

fn pairs() -> &'static Pairs {
    static PAIRS: OnceLock<Pairs> = OnceLock::new();
    PAIRS.get_or_init(Pairs::default)
}

thread_local! {
    /// The pair this thread noted last: a thread mostly makes the same call again, and then
    /// counts it without looking the pair up.
    static LAST: RefCell<Option<(Key, Arc<Pair>)>> = const { RefCell::new(None) };
}

/// Notes one call from a handler of `from` (None: not from a handler) to `to`.
pub(crate) fn note_call(from: Option<&'static MethodContract>, to: &'static MethodContract) {
    let address = |m: &'static MethodContract| std::ptr::from_ref(m) as usize;
    let key = (from.map_or(0, address), address(to));
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.as_ref().is_none_or(|(noted, _)| *noted != key) {
            let pair = pairs().get_or_insert_with(&key, || {
                Arc::new(Pair {
                    from: from.map_or("", |m| m.service),
                    to: to.service,
                    calls: AtomicU64::new(0),
                })
            });
            *last = Some((key, pair));
        }
        if let Some((_, pair)) = &*last {
            pair.calls.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// The services called by handlers of `services`: (called service, calls), summed.
pub(crate) fn callees_of(services: &[&'static str]) -> Vec<(&'static str, u64)> {
    let mut sums: HashMap<&'static str, u64> = HashMap::new();
    for (_, pair) in pairs().snapshot() {
        if services.contains(&pair.from) {
            *sums.entry(pair.to).or_default() += pair.calls.load(Ordering::Relaxed);
        }
    }
    let mut all: Vec<_> = sums.into_iter().collect();
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::RpcKind;

    const fn method(service: &'static str) -> MethodContract {
        MethodContract::bare(service, "M", "/deps-test/M", RpcKind::Unary)
    }

    static FROM: MethodContract = method("deps-test.From");
    static A: MethodContract = method("deps-test.A");
    static B: MethodContract = method("deps-test.B");

    #[test]
    fn calls_are_counted_per_pair_whatever_order_and_thread_they_come_from() {
        for to in [&A, &A, &B, &A, &B] {
            note_call(Some(&FROM), to);
        }
        std::thread::spawn(|| {
            note_call(Some(&FROM), &A);
            note_call(None, &B);
        })
        .join()
        .expect("thread");
        assert_eq!(
            callees_of(&["deps-test.From"]),
            [("deps-test.A", 4), ("deps-test.B", 2)]
        );
    }
}
