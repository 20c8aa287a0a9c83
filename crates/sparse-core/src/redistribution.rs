//! How the weights removed at a topology update are shared out for regrowth.

/// Where regrowth goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Redistribution {
    /// Each layer (or region group) regrows what it lost: per-layer budgets stay
    /// fixed (official ITOP / RigL / GraNet behaviour).
    #[default]
    PerLayer,
    /// Sparse-momentum style (Dettmers & Zettlemoyer 2019): the total removed is
    /// regrown across layers in proportion to each layer's mean `|momentum|` over its
    /// active weights (measured before pruning), capped by the positions a layer can
    /// still grow, overflow going to the other layers. Only the total nnz is kept.
    /// Simplified from the official code: largest-remainder rounding instead of
    /// `ceil` plus the `adjusted_growth` feedback term, and no special rate for
    /// layers below 20 % sparsity.
    Momentum,
}

/// Splits `total` over units in proportion to `shares`, never giving a unit more
/// than its `capacity`; what a capped unit cannot take goes to the others. Rounding
/// is by largest remainder (ties: lower index), so the result sums to
/// `min(total, Σ capacity)`. Zero or non-finite shares everywhere mean equal shares.
pub fn apportion(total: usize, shares: &[f64], capacity: &[usize]) -> Vec<usize> {
    let n = shares.len().min(capacity.len());
    let mut out = vec![0usize; n];
    let mut remaining = total.min(capacity.iter().take(n).sum());
    while remaining > 0 {
        let open: Vec<usize> = (0..n).filter(|&u| out[u] < capacity[u]).collect();
        let weight = |u: usize| {
            let s = shares[u];
            if s.is_finite() && s > 0.0 { s } else { 0.0 }
        };
        let sum: f64 = open.iter().map(|&u| weight(u)).sum();
        let share = |u: usize| {
            if sum > 0.0 {
                weight(u) / sum
            } else {
                1.0 / open.len() as f64
            }
        };
        let ideal: Vec<f64> = open.iter().map(|&u| share(u) * remaining as f64).collect();
        let mut give: Vec<usize> = ideal.iter().map(|x| x.floor() as usize).collect();
        let mut left = remaining - give.iter().sum::<usize>();
        let mut order: Vec<usize> = (0..open.len()).collect();
        order.sort_by(|&a, &b| {
            let (fa, fb) = (ideal[a] - ideal[a].floor(), ideal[b] - ideal[b].floor());
            fb.total_cmp(&fa).then(a.cmp(&b))
        });
        for &j in &order {
            if left == 0 {
                break;
            }
            give[j] += 1;
            left -= 1;
        }
        let mut placed = 0;
        for (j, &u) in open.iter().enumerate() {
            let room = capacity[u] - out[u];
            let g = give[j].min(room);
            out[u] += g;
            placed += g;
        }
        remaining -= placed;
        if placed == 0 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_split_with_caps_and_overflow() {
        assert_eq!(apportion(4, &[3.0, 1.0], &[10, 10]), vec![3, 1]);
        assert_eq!(apportion(6, &[1.0, 1.0], &[1, 10]), vec![1, 5]);
        // 5 by 1:1:1 -> 2, 2, 1 (largest remainder, lower index first)
        assert_eq!(apportion(5, &[1.0, 1.0, 1.0], &[9, 9, 9]), vec![2, 2, 1]);
        // no information: equal shares; more than capacity: capacity
        assert_eq!(apportion(4, &[0.0, 0.0], &[9, 9]), vec![2, 2]);
        assert_eq!(apportion(30, &[1.0, 2.0], &[3, 4]), vec![3, 4]);
    }
}
