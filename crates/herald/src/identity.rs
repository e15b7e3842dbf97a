//! The caller's identity: the global name used by ACLs, rate limits and stats.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// A service or user identity, e.g. `cache`, `user.boo` or `host.web-1`.
///
/// It comes from the peer's certificate (its SPIFFE URI SAN) once mutual TLS is on; over an
/// explicitly insecure plaintext listener there is none.
///
/// Identities are interned: each name gets a small number once per process, which per-caller
/// statistics use to find a caller's counters without hashing its name on every request.
#[derive(Clone)]
pub struct Identity(Arc<Interned>);

struct Interned {
    name: Arc<str>,
    /// The order in which this process first saw the name: 0, 1, 2...
    index: usize,
}

/// Names interned at most: beyond this (a process fed arbitrary names), identities are made
/// without a number (`usize::MAX`) and the table stops growing.
const MAX_INTERNED: usize = 4096;

/// Every name seen so far. Names come from certificates and configuration — a service's set
/// of peers — so the table stays small; an identity is made per connection, not per request.
fn names() -> &'static Mutex<HashMap<Arc<str>, Identity>> {
    static NAMES: OnceLock<Mutex<HashMap<Arc<str>, Identity>>> = OnceLock::new();
    NAMES.get_or_init(Mutex::default)
}

// === impl Identity ===

impl Identity {
    /// An identity with this name.
    pub fn new(name: impl Into<Arc<str>>) -> Identity {
        let name = name.into();
        let mut names = names().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = names.get(&name) {
            return known.clone();
        }
        if names.len() >= MAX_INTERNED {
            return Identity(Arc::new(Interned {
                name,
                index: usize::MAX,
            }));
        }
        let identity = Identity(Arc::new(Interned {
            name: name.clone(),
            index: names.len(),
        }));
        names.insert(name, identity.clone());
        identity
    }

    /// The identity's name.
    pub fn as_str(&self) -> &str {
        &self.0.name
    }

    /// The identity's number in this process (dense, from 0, in order of first sight;
    /// `usize::MAX` once 4096 names were seen).
    pub(crate) fn index(&self) -> usize {
        self.0.index
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.name == other.0.name
    }
}

impl Eq for Identity {}

impl Hash for Identity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for Identity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Identity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.name.cmp(&other.0.name)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0.name, f)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

impl From<&str> for Identity {
    fn from(name: &str) -> Self {
        Identity::new(name)
    }
}

impl From<String> for Identity {
    fn from(name: String) -> Self {
        Identity::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_is_one_identity_with_one_number() {
        let first = Identity::new("identity-test.a");
        let again = Identity::from(String::from("identity-test.a"));
        let other = Identity::new("identity-test.b");
        assert_eq!(first, again);
        assert_eq!(first.index(), again.index());
        assert_ne!(first, other);
        assert_ne!(first.index(), other.index());
        assert!(first < other);
        assert_eq!(
            format!("{first} {first:?}"),
            "identity-test.a \"identity-test.a\""
        );
    }
}
