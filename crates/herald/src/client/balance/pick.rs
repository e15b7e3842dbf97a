//! Choosing one of `n` candidate endpoints, each known by its index.

/// Power of two choices: two distinct candidates at random, the one of lower `cost`
/// (Mitzenmacher: nearly as good as the least loaded of all, without herding every client
/// onto the same one).
pub(crate) fn p2c(n: usize, cost: impl Fn(usize) -> f64) -> usize {
    if n <= 1 {
        return 0;
    }
    let a = rand::random_range(0..n);
    let b = (a + rand::random_range(1..n)) % n;
    if cost(b) < cost(a) { b } else { a }
}

/// The `turn`-th candidate, wrapping around.
pub(crate) fn round_robin(n: usize, turn: usize) -> usize {
    turn % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2c_takes_the_cheaper_of_two_distinct_candidates() {
        let costs = [5.0, 1.0, 3.0];
        let mut chosen = [0usize; 3];
        for _ in 0..3000 {
            chosen[p2c(costs.len(), |i| costs[i])] += 1;
        }
        // The most expensive is never the cheaper of two distinct candidates.
        assert_eq!(chosen[0], 0, "{chosen:?}");
        // The cheapest wins every pair it is in: 2 pairs of 3.
        assert!(chosen[1] > chosen[2], "{chosen:?}");
        assert_eq!(p2c(1, |_| 0.0), 0);
    }

    #[test]
    fn round_robin_cycles() {
        let turns: Vec<usize> = (0..5).map(|t| round_robin(3, t)).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1]);
    }
}
