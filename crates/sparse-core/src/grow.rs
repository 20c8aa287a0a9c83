//! Growth criteria: which inactive positions a topology update activates, and where
//! growth is allowed at all ([`GrowthRegion`]).

use rand::Rng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, SparseError};
use crate::mask::Mask;

/// How a topology update chooses the inactive positions to activate.
///
/// Positions pruned in the same update are eligible again (as in the official code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowthMethod {
    /// The official SET growth: with `n` eligible inactive positions and `r` to grow,
    /// each is activated independently with probability `r / n`. The count is `r`
    /// only in expectation, so a layer's nnz drifts (official behaviour).
    Random,
    /// Exactly `r` eligible positions, uniformly at random without replacement.
    RandomExact,
    /// RigL: the `r` eligible positions of largest `|gradient|` (exact; ties by lower
    /// index). Needs the dense gradient of the last backward pass.
    Gradient,
    /// Sparse momentum: the `r` eligible positions of largest `|momentum|`, read from
    /// the optimizer through [`crate::MomentumSource`] (exact; ties by lower index).
    Momentum,
    /// ITOP `random_unfired`: `r` positions uniformly among eligible positions that
    /// were never active; if fewer exist, all of them plus a uniform fill from the
    /// other eligible positions (exact).
    RandomUnfired,
}

impl GrowthMethod {
    /// Whether the criterion reads the gradient.
    pub fn needs_gradients(&self) -> bool {
        matches!(self, Self::Gradient)
    }

    /// Whether the criterion reads the optimizer's momentum.
    pub fn needs_momentum(&self) -> bool {
        matches!(self, Self::Momentum)
    }

    /// Whether exactly the requested number is grown (when enough positions are
    /// eligible); only [`GrowthMethod::Random`] is stochastic in count.
    pub fn is_exact(&self) -> bool {
        !matches!(self, Self::Random)
    }

    /// The mask after growing `count` positions of layer `name` (a superset of
    /// `mask`). Only inactive positions inside `inputs.region` (everywhere when `None`)
    /// are eligible; if fewer are eligible than requested, all eligible ones grow.
    pub fn grow(
        &self,
        name: &str,
        mask: &Mask,
        count: usize,
        inputs: &GrowthInputs<'_>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Mask> {
        let n = mask.numel();
        for (what, len) in [
            ("gradient", inputs.grads.map(<[f32]>::len)),
            ("momentum", inputs.momentum.map(<[f32]>::len)),
            ("fired mask", inputs.fired.map(Mask::numel)),
            ("growth region", inputs.region.map(|r| r.allowed().numel())),
        ] {
            if let Some(len) = len
                && len != n
            {
                return Err(SparseError::ShapeMismatch {
                    what: format!("{what} of `{name}`"),
                    expected: vec![n],
                    got: vec![len],
                });
            }
        }
        let eligible: Vec<usize> = mask
            .inactive_indices()
            .into_iter()
            .filter(|&i| inputs.region.is_none_or(|r| r.allows(i)))
            .collect();
        let mut out = mask.clone();
        if count == 0 || eligible.is_empty() {
            return Ok(out);
        }
        let chosen: Vec<usize> = match self {
            Self::Random => {
                let p = count as f64 / eligible.len() as f64;
                eligible
                    .into_iter()
                    .filter(|_| rng.random::<f64>() < p)
                    .collect()
            }
            Self::RandomExact => sample_from(&eligible, count, rng),
            Self::Gradient => {
                let g = inputs
                    .grads
                    .ok_or_else(|| SparseError::MissingGradient(name.to_string()))?;
                top_by_abs(&eligible, count, g)
            }
            Self::Momentum => {
                let m = inputs
                    .momentum
                    .ok_or_else(|| SparseError::MissingMomentum(name.to_string()))?;
                top_by_abs(&eligible, count, m)
            }
            Self::RandomUnfired => {
                let (unfired, fired): (Vec<usize>, Vec<usize>) = eligible
                    .into_iter()
                    .partition(|&i| inputs.fired.is_none_or(|f| !f.is_active(i)));
                if count <= unfired.len() {
                    sample_from(&unfired, count, rng)
                } else {
                    let rest = sample_from(&fired, count - unfired.len(), rng);
                    unfired.into_iter().chain(rest).collect()
                }
            }
        };
        for i in chosen {
            out.set(i, true);
        }
        Ok(out)
    }
}

/// The host data a growth criterion may read for one layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrowthInputs<'a> {
    /// Dense gradient, row-major.
    pub grads: Option<&'a [f32]>,
    /// Optimizer momentum, row-major.
    pub momentum: Option<&'a [f32]>,
    /// Positions ever active (ITOP record); `None` counts every position as unfired.
    pub fired: Option<&'a Mask>,
    /// Where growth is allowed; `None` allows every position.
    pub region: Option<&'a GrowthRegion>,
}

/// Positions of one parameter where growth may activate weights; growth never
/// activates a position outside it.
///
/// A region is either one set of allowed positions (the layer is pruned as a
/// whole, growth lands inside the set) or a list of disjoint **groups**, each pruned
/// and regrown on its own: the death rate applies to the group's active weights and
/// the same number is regrown inside the group, so every group keeps its own
/// budget. DSN's constraint (output-channel group `i` may only use taps `0..k_i`,
/// with a per-group nnz) is a grouped region; see [`GrowthRegion::grouped`].
/// Active weights outside every group are left untouched by the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowthRegion {
    allowed: Mask,
    groups: Vec<Mask>,
}

impl GrowthRegion {
    /// A region from a mask of allowed positions.
    pub fn new(allowed: Mask) -> Self {
        Self {
            allowed,
            groups: Vec::new(),
        }
    }

    /// A region of disjoint groups of one shape, each pruned and regrown on its own.
    pub fn grouped(groups: Vec<Mask>) -> Result<Self> {
        let first = groups
            .first()
            .ok_or_else(|| SparseError::invalid("groups", 0, "needs at least one group"))?;
        let mut allowed = Mask::zeros(first.shape());
        for (g, group) in groups.iter().enumerate() {
            if group.shape() != allowed.shape() {
                return Err(SparseError::ShapeMismatch {
                    what: format!("growth region group {g}"),
                    expected: allowed.shape().to_vec(),
                    got: group.shape().to_vec(),
                });
            }
            if group
                .active_indices()
                .into_iter()
                .any(|i| allowed.is_active(i))
            {
                return Err(SparseError::invalid("groups", g, "groups must be disjoint"));
            }
            allowed.union_with(group)?;
        }
        Ok(Self { allowed, groups })
    }

    /// A region over `shape` from a predicate on multi-indices (row-major), e.g.
    /// `|ix| ix[2] < taps_of_group(ix[0])` for a `[out, in, k]` convolution.
    pub fn from_fn(shape: &[usize], allowed: impl Fn(&[usize]) -> bool) -> Self {
        Self::new(mask_from_fn(shape, allowed))
    }

    /// The groups of a grouped region (empty for a plain one).
    pub fn groups(&self) -> &[Mask] {
        &self.groups
    }

    /// The allowed positions.
    pub fn allowed(&self) -> &Mask {
        &self.allowed
    }

    /// Whether flat position `index` is allowed.
    pub fn allows(&self, index: usize) -> bool {
        self.allowed.is_active(index)
    }
}

/// The value newly grown weights start from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum GrowthInit {
    /// Zero (official: the position was zeroed by the last mask application).
    #[default]
    Zero,
    /// A fixed value.
    Value(f32),
    /// The value the position held before the update: a weight pruned and regrown
    /// in the same update keeps its value, a position inactive before starts at
    /// zero. The sparselearning codes (ITOP, GraNet, Sup-tickets) do this: they swap
    /// masks and never touch the weights, so a layer that ERK leaves dense is
    /// unchanged by an update instead of losing the pruned half's values.
    Previous,
}

/// A mask over `shape` from a predicate on row-major multi-indices.
pub fn mask_from_fn(shape: &[usize], keep: impl Fn(&[usize]) -> bool) -> Mask {
    let numel: usize = shape.iter().product();
    let mut ix = vec![0usize; shape.len()];
    let mut mask = Mask::zeros(shape);
    for flat in 0..numel {
        if keep(&ix) {
            mask.set(flat, true);
        }
        for d in (0..shape.len()).rev() {
            ix[d] += 1;
            if ix[d] < shape[d] {
                break;
            }
            ix[d] = 0;
        }
    }
    mask
}

fn sample_from(pool: &[usize], count: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    sample(rng, pool.len(), count.min(pool.len()))
        .into_iter()
        .map(|j| pool[j])
        .collect()
}

fn top_by_abs(pool: &[usize], count: usize, values: &[f32]) -> Vec<usize> {
    let mut order = pool.to_vec();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()).then(a.cmp(&b)));
    order.truncate(count);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn gradient_growth_picks_top_abs_gradient_inactive_positions() {
        let m = Mask::from_bits(&[6], vec![1, 0, 0, 1, 0, 0]).unwrap();
        // index 0 has the largest |g| but is active; inactive: 1:0.2, 2:-0.9, 4:0.5, 5:-0.1
        let g = [5.0, 0.2, -0.9, 3.0, 0.5, -0.1];
        let inputs = GrowthInputs {
            grads: Some(&g),
            ..Default::default()
        };
        let out = GrowthMethod::Gradient
            .grow("w", &m, 2, &inputs, &mut rng())
            .unwrap();
        assert_eq!(out.as_bits(), &[1, 0, 1, 1, 1, 0]);
        assert!(matches!(
            GrowthMethod::Gradient.grow("w", &m, 2, &GrowthInputs::default(), &mut rng()),
            Err(SparseError::MissingGradient(_))
        ));
    }

    #[test]
    fn momentum_growth_uses_momentum_not_gradient() {
        let m = Mask::from_bits(&[4], vec![1, 0, 0, 0]).unwrap();
        let g = [0.0, 9.0, 0.0, 0.0];
        let mom = [0.0, 0.1, 0.0, -2.0];
        let inputs = GrowthInputs {
            grads: Some(&g),
            momentum: Some(&mom),
            ..Default::default()
        };
        let out = GrowthMethod::Momentum
            .grow("w", &m, 1, &inputs, &mut rng())
            .unwrap();
        assert_eq!(out.as_bits(), &[1, 0, 0, 1]);
    }

    #[test]
    fn growth_never_leaves_the_region() {
        let m = Mask::from_bits(&[2, 4], vec![1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        // row r may use columns < 2 + 2r... here: row 0 -> cols 0..2, row 1 -> cols 0..1
        let region = GrowthRegion::from_fn(&[2, 4], |ix| ix[1] < if ix[0] == 0 { 2 } else { 1 });
        assert_eq!(region.allowed().as_bits(), &[1, 1, 0, 0, 1, 0, 0, 0]);
        let g = [0.0, 0.1, 9.0, 9.0, 0.2, 9.0, 9.0, 9.0];
        for method in [
            GrowthMethod::Random,
            GrowthMethod::RandomExact,
            GrowthMethod::Gradient,
            GrowthMethod::RandomUnfired,
        ] {
            let inputs = GrowthInputs {
                grads: Some(&g),
                region: Some(&region),
                ..Default::default()
            };
            // more requested than allowed: grows exactly the two allowed positions
            let out = method.grow("w", &m, 5, &inputs, &mut rng()).unwrap();
            assert_eq!(out.as_bits(), &[1, 1, 0, 0, 1, 0, 0, 0], "{method:?}");
        }
    }

    #[test]
    fn random_exact_and_unfired_counts() {
        let m = Mask::from_bits(&[10], vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let out = GrowthMethod::RandomExact
            .grow("w", &m, 3, &GrowthInputs::default(), &mut rng())
            .unwrap();
        assert_eq!(out.nnz(), 5);
        // fired: 0..=7; unfired eligible: 8, 9 -> both grow, plus one fired fill
        let fired = Mask::from_bits(&[10], vec![1, 1, 1, 1, 1, 1, 1, 1, 0, 0]).unwrap();
        let inputs = GrowthInputs {
            fired: Some(&fired),
            ..Default::default()
        };
        let out = GrowthMethod::RandomUnfired
            .grow("w", &m, 3, &inputs, &mut rng())
            .unwrap();
        assert_eq!(out.nnz(), 5);
        assert!(out.is_active(8) && out.is_active(9));
        let out = GrowthMethod::RandomUnfired
            .grow("w", &m, 1, &inputs, &mut rng())
            .unwrap();
        assert_eq!(out.nnz(), 3);
        assert!(out.is_active(8) || out.is_active(9));
    }

    #[test]
    fn bernoulli_growth_has_the_expected_count_on_average() {
        let m = Mask::zeros(&[1000]);
        let mut r = rng();
        let total: usize = (0..200)
            .map(|_| {
                GrowthMethod::Random
                    .grow("w", &m, 100, &GrowthInputs::default(), &mut r)
                    .unwrap()
                    .nnz()
            })
            .sum();
        let mean = total as f64 / 200.0;
        // binomial(1000, 0.1): sd of the mean over 200 draws ~ 0.67
        assert!((mean - 100.0).abs() < 4.0, "mean {mean}");
    }
}
