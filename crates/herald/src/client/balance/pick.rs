//! Choosing one of the candidate endpoints.

use std::sync::Arc;

use crate::client::endpoint::Endpoint;

/// Power of two choices: two distinct candidates at random, the one of lower `cost`
/// (Mitzenmacher: nearly as good as the least loaded of all, without herding every client
/// onto the same one).
pub(crate) fn p2c(candidates: &[&Arc<Endpoint>], cost: impl Fn(&Endpoint) -> f64) -> usize {
    let n = candidates.len();
    if n <= 1 {
        return 0;
    }
    let a = rand::random_range(0..n);
    let b = (a + rand::random_range(1..n)) % n;
    if cost(candidates[b]) < cost(candidates[a]) {
        b
    } else {
        a
    }
}

/// The `turn`-th candidate, wrapping around.
pub(crate) fn round_robin(candidates: &[&Arc<Endpoint>], turn: usize) -> usize {
    turn % candidates.len().max(1)
}
