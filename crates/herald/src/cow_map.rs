//! A map read on every request and written on first sight of a key (a caller, a method, a
//! pair of services): reads are one atomic snapshot load, lock-free; an insert copies the
//! map. Right for small maps of keys that stop changing early.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

use arc_swap::ArcSwap;

/// A copy-on-insert map.
#[derive(Debug)]
pub(crate) struct CowMap<K, V, S = RandomState> {
    map: ArcSwap<HashMap<K, V, S>>,
}

/// Hashes keys that are addresses of statics (method contracts): no peer chooses them, so a
/// multiply suffices where SipHash would cost more than the rest of the lookup. (As
/// rustc-hash: the product's high bits are the well-mixed ones, and hashbrown picks buckets
/// by the low bits, so `finish` rotates them down.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AddressHash;

/// The hasher of [`AddressHash`].
#[derive(Debug, Default)]
pub(crate) struct AddressHasher(u64);

impl<K, V, S: Default> Default for CowMap<K, V, S> {
    fn default() -> Self {
        CowMap {
            map: ArcSwap::from_pointee(HashMap::default()),
        }
    }
}

// === impl AddressHash ===

impl BuildHasher for AddressHash {
    type Hasher = AddressHasher;

    fn build_hasher(&self) -> AddressHasher {
        AddressHasher::default()
    }
}

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the product's high bits depend on every input bit.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

// === impl CowMap ===

impl<K: Hash + Eq + Clone, V: Clone, S: BuildHasher + Clone> CowMap<K, V, S> {
    /// The value under `key`, made by `make` (once, even when racing) if absent.
    pub(crate) fn get_or_insert_with<Q>(&self, key: &Q, make: impl FnOnce() -> V) -> V
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.map.load().get(key) {
            return value.clone();
        }
        let fresh = make();
        self.map.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.entry(key.to_owned()).or_insert_with(|| fresh.clone());
            map
        });
        // Another insert may have won the race: everyone uses the one in the map.
        self.map.load().get(key).cloned().unwrap_or(fresh)
    }

    /// `read` of the value under `key`, made by `make` (once, even when racing) if absent.
    /// Reads it in place: where the value is an `Arc`, no reference count is touched (shared
    /// by every thread reading it, a count is a cache line they would pass around).
    pub(crate) fn read_or_insert_with<Q, R>(
        &self,
        key: &Q,
        make: impl FnOnce() -> V,
        read: impl FnOnce(&V) -> R,
    ) -> R
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.map.load().get(key) {
            return read(value);
        }
        read(&self.get_or_insert_with(key, make))
    }

    /// Replaces the value under `key` when `stale` says the present one is out of date.
    pub(crate) fn replace_if(&self, key: &K, fresh: V, stale: impl Fn(&V) -> bool) -> V {
        self.map.rcu(|map| {
            let mut map = HashMap::clone(map);
            match map.get(key) {
                Some(existing) if !stale(existing) => {}
                _ => {
                    map.insert(key.clone(), fresh.clone());
                }
            }
            map
        });
        self.map.load().get(key).cloned().unwrap_or(fresh)
    }

    /// A snapshot of every entry.
    pub(crate) fn snapshot(&self) -> Vec<(K, V)> {
        self.map
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The value under `key`, if present.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.load().get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_insert_wins_and_reads_see_it() {
        let map: CowMap<String, u32> = CowMap::default();
        assert_eq!(map.get_or_insert_with("a", || 1), 1);
        assert_eq!(
            map.get_or_insert_with("a", || 2),
            1,
            "present: make is not used"
        );
        assert_eq!(map.get("a"), Some(1));
        assert_eq!(map.replace_if(&"a".to_owned(), 3, |v| *v == 1), 3);
        assert_eq!(
            map.replace_if(&"a".to_owned(), 4, |v| *v == 1),
            3,
            "not stale: kept"
        );
        assert_eq!(map.snapshot(), vec![("a".to_owned(), 3)]);
    }

    #[test]
    fn reads_in_place_insert_once() {
        let map: CowMap<String, u32> = CowMap::default();
        assert_eq!(map.read_or_insert_with("a", || 5, |v| v * 10), 50);
        assert_eq!(
            map.read_or_insert_with("a", || 6, |v| v * 10),
            50,
            "present: make is not used"
        );
        assert_eq!(map.snapshot(), vec![("a".to_owned(), 5)]);
    }
}
