//! The validated density + allocation + sampling of random pruning at
//! initialisation, and its builder.

use candle_nn::VarMap;
use rand::Rng;

use super::rules::{Allocation, LayerSpec};
use super::sampling::{Sampling, sample_masks};
use crate::error::{Result, SparseError};
use crate::registry::SparseParams;
use crate::selection::SelectionPolicy;
use crate::validate::check_density;

/// A validated density + allocation + sampling; build it with
/// [`AllocationConfig::builder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllocationConfig {
    density: f64,
    allocation: Allocation,
    sampling: Sampling,
}

impl AllocationConfig {
    /// A builder: density required, allocation defaults to ERK (p = 1), sampling to
    /// Bernoulli (the official choices of Random_Pruning's README).
    pub fn builder() -> AllocationConfigBuilder {
        AllocationConfigBuilder {
            density: None,
            allocation: Allocation::erk(),
            sampling: Sampling::Bernoulli,
        }
    }

    /// The global density.
    pub fn density(&self) -> f64 {
        self.density
    }

    /// The layer-wise allocation.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The sampling of positions.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// Per-layer densities; see [`Allocation::densities`].
    pub fn layer_densities(
        &self,
        layers: &[LayerSpec],
        scores: Option<&[Vec<f32>]>,
    ) -> Result<Vec<f64>> {
        self.allocation.densities(layers, self.density, scores)
    }

    /// Random pruning at initialisation: selects the vars of `varmap` with `policy`
    /// (in its `layer_order`, needed by uniform+ / ERK+), allocates densities, draws
    /// masks from `rng` in model order, and registers each masked var (its weights are
    /// zeroed at once). A layer whose mask density is `>= policy.dense_threshold()`
    /// is left out, i.e. stays dense (SLaK). `scores` (name → flat scores) is needed
    /// by the score-based allocations.
    pub fn init_sparse_params<R: Rng + ?Sized>(
        &self,
        varmap: &VarMap,
        policy: &SelectionPolicy,
        scores: Option<&std::collections::BTreeMap<String, Vec<f32>>>,
        rng: &mut R,
    ) -> Result<SparseParams> {
        if self.allocation.needs_model_order() && policy.layer_order().is_none() {
            return Err(SparseError::invalid_input(
                "selection policy",
                format!(
                    "{:?} singles out the first layer / classifier: give the model order \
                     with `SelectionPolicy::builder().layer_order(..)`",
                    self.allocation
                ),
            ));
        }
        let vars = policy.select_in_model_order(varmap)?;
        let layers: Vec<LayerSpec> = vars
            .iter()
            .map(|(n, v)| LayerSpec::new(n.clone(), v.dims()))
            .collect();
        let ordered_scores = match (self.allocation.needs_scores(), scores) {
            (false, _) => None,
            (true, None) => {
                return Err(SparseError::invalid_input(
                    "scores",
                    format!("{:?} needs scores", self.allocation),
                ));
            }
            (true, Some(map)) => Some(
                layers
                    .iter()
                    .map(|l| {
                        map.get(&l.name).cloned().ok_or_else(|| {
                            SparseError::invalid_input(
                                "scores",
                                format!("no scores for `{}`", l.name),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        let densities = self.layer_densities(&layers, ordered_scores.as_deref())?;
        let masks = sample_masks(&layers, &densities, self.sampling, rng)?;
        let mut params = SparseParams::new();
        for ((name, var), mask) in vars.into_iter().zip(masks) {
            if !policy.keeps_dense(mask.density()) {
                params.insert(name, var, mask)?;
            }
        }
        Ok(params)
    }
}

/// Checked builder of an [`AllocationConfig`].
#[derive(Debug, Clone, Copy)]
pub struct AllocationConfigBuilder {
    density: Option<f64>,
    allocation: Allocation,
    sampling: Sampling,
}

impl AllocationConfigBuilder {
    /// The global density (kept / masked weights), in `(0, 1]`. Required.
    pub fn density(mut self, density: f64) -> Self {
        self.density = Some(density);
        self
    }

    /// The layer-wise allocation (default ERK, `power_scale = 1`).
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// How positions are drawn (default Bernoulli).
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Validates: `density` in `(0, 1]`, `erk_power_scale` finite and `>= 0`,
    /// `classifier_density` in `(0, 1]`. The error names the parameter.
    pub fn build(self) -> Result<AllocationConfig> {
        let density = self
            .density
            .ok_or_else(|| SparseError::invalid("density", "unset", "is required"))?;
        check_density(density)?;
        self.allocation.validate()?;
        Ok(AllocationConfig {
            density,
            allocation: self.allocation,
            sampling: self.sampling,
        })
    }
}
