//! DSN's constraint regions, expressed with sparse-core's growth regions.
//!
//! A kernel-`K` convolution with weight `[C, C_in, K]` is split along its output
//! channels into `g` groups; group `i` (channels `[i·C/g, (i+1)·C/g)`) may only
//! use the first `k_i = ⌊K/g⌋·(i+1)` taps (13, 26 and 39 for `K = 39`, `g = 3`).
//! Each group has its own budget `int(density · C_i · C_in · k_i)`, so the
//! whole layer has density `density · (13+26+39)/(3·39) = density · 2/3`.
//!
//! The groups become one [`GrowthRegion::grouped`]: sparse-core's engine prunes
//! and regrows each group on its own and never grows outside it. This module
//! only describes the regions and draws the initial masks; all prune/regrow logic
//! is sparse-core's.

use rand_chacha::ChaCha8Rng;
use sparse_core::grow::mask_from_fn;
use sparse_core::{GrowthInputs, GrowthMethod, GrowthRegion, Mask};

use crate::config::MaskInit;
use crate::error::{Result, invalid};

/// The constraint regions of one `[out, in, kernel]` convolution weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintRegions {
    shape: [usize; 3],
    taps: Vec<usize>,
    groups: Vec<Mask>,
}

impl ConstraintRegions {
    /// The regions of a weight of `shape = [out, in, kernel]` split into `groups`.
    pub fn new(shape: [usize; 3], groups: usize) -> Result<Self> {
        let [out, _, kernel] = shape;
        if groups == 0 || !out.is_multiple_of(groups) {
            return Err(invalid(
                "groups",
                groups,
                format!("must divide {out} output channels"),
            ));
        }
        if kernel < groups {
            return Err(invalid(
                "kernel",
                kernel,
                format!("must be >= groups ({groups})"),
            ));
        }
        let per_group = out / groups;
        let taps = group_taps(kernel, groups);
        let masks = (0..groups)
            .map(|g| mask_from_fn(&shape, |ix| ix[0] / per_group == g && ix[2] < taps[g]))
            .collect();
        Ok(Self {
            shape,
            taps,
            groups: masks,
        })
    }

    /// The weight shape `[out, in, kernel]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The taps group `i` may use (`k_i`).
    pub fn taps(&self) -> &[usize] {
        &self.taps
    }

    /// Output channels per group.
    pub fn channels_per_group(&self) -> usize {
        self.shape[0] / self.taps.len()
    }

    /// The positions of each group's region.
    pub fn group_masks(&self) -> &[Mask] {
        &self.groups
    }

    /// The union of the regions (every position some group may use).
    pub fn allowed(&self) -> Result<Mask> {
        Ok(self.growth_region()?.allowed().clone())
    }

    /// The regions as sparse-core's grouped growth region.
    pub fn growth_region(&self) -> Result<GrowthRegion> {
        Ok(GrowthRegion::grouped(self.groups.clone())?)
    }

    /// The per-group budgets `int(density · C_i · C_in · k_i)` (evaluated left to
    /// right in floating point, as the official code does).
    pub fn budgets(&self, density: f64) -> Vec<usize> {
        let c_i = self.channels_per_group() as f64;
        let c_in = self.shape[1] as f64;
        self.taps
            .iter()
            .map(|&k| (density * c_i * c_in * k as f64) as usize)
            .collect()
    }

    /// Active weights of `mask` in each group.
    pub fn group_nnz(&self, mask: &Mask) -> Vec<usize> {
        self.groups
            .iter()
            .map(|g| {
                g.as_bits()
                    .iter()
                    .zip(mask.as_bits())
                    .filter(|(a, b)| **a != 0 && **b != 0)
                    .count()
            })
            .collect()
    }

    /// The initial mask: each group's budget inside its region, per `init`.
    pub fn initial_mask(&self, density: f64, init: MaskInit, rng: &mut ChaCha8Rng) -> Result<Mask> {
        let budgets = self.budgets(density);
        let [_, c_in, _] = self.shape;
        let per_group = self.channels_per_group();
        let mut mask = Mask::zeros(&self.shape);
        for (g, region) in self.groups.iter().enumerate() {
            let group_mask = match init {
                // rank in (tap, out, in) order inside the group: tap 0 first
                MaskInit::RemainSort => mask_from_fn(&self.shape, |ix| {
                    ix[0] / per_group == g && ix[2] < self.taps[g] && {
                        let out = ix[0] - g * per_group;
                        ix[2] * per_group * c_in + out * c_in + ix[1] < budgets[g]
                    }
                }),
                MaskInit::RemainRandom => {
                    let region = GrowthRegion::new(region.clone());
                    let inputs = GrowthInputs {
                        region: Some(&region),
                        ..Default::default()
                    };
                    GrowthMethod::RandomExact.grow(
                        "initial mask",
                        &Mask::zeros(&self.shape),
                        budgets[g],
                        &inputs,
                        rng,
                    )?
                }
            };
            mask.union_with(&group_mask)?;
        }
        Ok(mask)
    }
}

/// `k_i = ⌊kernel / groups⌋ · (i + 1)` for `i < groups`.
pub fn group_taps(kernel: usize, groups: usize) -> Vec<usize> {
    let n = kernel / groups.max(1);
    (1..=groups).map(|i| n * i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn taps_and_budgets_follow_the_official_code() {
        assert_eq!(group_taps(39, 3), vec![13, 26, 39]);
        assert_eq!(group_taps(40, 3), vec![13, 26, 39]);
        let r = ConstraintRegions::new([141, 47, 39], 3).unwrap();
        // int(0.2 · 47 · 47 · k)
        assert_eq!(r.budgets(0.2), vec![5743, 11486, 17230]);
        let total: usize = r.budgets(0.2).iter().sum();
        let dense = 141 * 47 * 39;
        assert!((total as f64 / dense as f64 - 0.2 * 2.0 / 3.0).abs() < 1e-3);
    }

    #[test]
    fn remain_sort_fills_taps_in_order() {
        // 6 out (2 per group), 2 in, kernel 6 -> taps 2, 4, 6; density 0.25
        let r = ConstraintRegions::new([6, 2, 6], 3).unwrap();
        assert_eq!(r.budgets(0.25), vec![2, 4, 6]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let m = r
            .initial_mask(0.25, MaskInit::RemainSort, &mut rng)
            .unwrap();
        assert_eq!(r.group_nnz(&m), vec![2, 4, 6]);
        let at = |o: usize, i: usize, t: usize| m.is_active((o * 2 + i) * 6 + t);
        // group 0 (channels 0,1): budget 2 -> tap 0 of (0,0), (0,1)
        assert!(at(0, 0, 0) && at(0, 1, 0) && !at(1, 0, 0) && !at(1, 1, 0));
        // group 1 (channels 2,3): budget 4 = all pairs of tap 0
        assert!((2..4).all(|o| (0..2).all(|i| at(o, i, 0) && !at(o, i, 1))));
        // group 2 (channels 4,5): budget 6 = tap 0 (4) + first two pairs of tap 1
        assert!((4..6).all(|o| (0..2).all(|i| at(o, i, 0))));
        assert!(at(4, 0, 1) && at(4, 1, 1) && !at(5, 0, 1) && !at(5, 1, 1));
    }

    #[test]
    fn remain_random_stays_in_the_region_with_exact_budgets() {
        let r = ConstraintRegions::new([6, 3, 9], 3).unwrap();
        let allowed = r.allowed().unwrap();
        for seed in 0..5 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let m = r
                .initial_mask(0.3, MaskInit::RemainRandom, &mut rng)
                .unwrap();
            assert_eq!(r.group_nnz(&m), r.budgets(0.3));
            assert!(m.active_indices().iter().all(|&i| allowed.is_active(i)));
        }
        assert!(ConstraintRegions::new([7, 1, 9], 3).is_err());
    }
}
