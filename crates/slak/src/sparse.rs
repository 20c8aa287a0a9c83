//! SLaK's sparse training as the official `sparse_core.py` sets it up, on sparse-core:
//!
//! - every weight of rank 2 or 4 is a candidate (stem, downsamplers, depthwise
//!   branches, pointwise MLPs, head); norms, biases and the layer scale never;
//! - layer densities by the SNIP ratio (`|W · ∂L/∂W|` on one training batch, the
//!   share of each layer among the global top `density · N`), positions drawn at
//!   random (Bernoulli);
//! - a layer sampled at density ≥ 0.99 stays dense for good;
//! - every `topology_period` optimizer steps: magnitude pruning of
//!   `ceil(rate · nnz)` per layer and random regrowth of as many (Bernoulli, so the
//!   count drifts as in the official code), the rate a cosine from `prune_rate` to
//!   0.005 over training; a weight pruned and regrown at once keeps its value.

use std::collections::BTreeMap;

use candle_core::Tensor;
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sparse_core::saliency::snip_scores_for;
use sparse_core::schedule::DEFAULT_ETA_MIN;
use sparse_core::{
    Allocation, AllocationConfig, DeathRate, DynamicSparsity, GrowthInit, GrowthMethod, ModelState,
    PruneMethod, Sampling, SelectionPolicy, SparseParams, SparsityEngine,
};

use crate::error::Result;
use crate::model::SlakNet;

/// The density above which a layer's mask is dropped (the official `0.99` rule).
pub const DENSE_THRESHOLD: f64 = 0.99;

/// How a run's sparsity is set up and updated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlakSparsity {
    /// Share of the candidate weights kept (`1 − sparsity`).
    pub density: f64,
    /// The death rate at the start of the cosine (`--prune-rate`).
    pub prune_rate: f64,
    /// Optimizer steps between topology updates (the official `-u/--update-frequency`,
    /// not `--update_freq`, which is gradient accumulation).
    pub topology_period: usize,
    /// Static sparse training (`--fix`): masks never change.
    pub fix: bool,
    /// Regrow exactly as many weights as were pruned (the official random growth is
    /// Bernoulli).
    pub exact_growth: bool,
}

impl SlakSparsity {
    /// Checks the settings; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: String, why: &str| -> crate::Error {
            sparse_repro::HarnessError::invalid(name, value, why).into()
        };
        if !(self.density > 0.0 && self.density <= 1.0) {
            return Err(bad(
                "density",
                self.density.to_string(),
                "must lie in (0, 1]",
            ));
        }
        if !(self.prune_rate > 0.0 && self.prune_rate < 1.0) {
            return Err(bad(
                "prune_rate",
                self.prune_rate.to_string(),
                "must lie in (0, 1)",
            ));
        }
        if self.topology_period == 0 {
            return Err(bad(
                "topology_period",
                "0".into(),
                "must be positive (the official -u/--update-frequency)",
            ));
        }
        Ok(())
    }
}

/// The candidate weights: rank 2 or 4, in the model's order, the 0.99 rule on.
pub fn mask_policy(varmap: &VarMap) -> Result<SelectionPolicy> {
    let order: Vec<String> = sparse_core::optim::trainable_vars(varmap)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    Ok(SelectionPolicy::builder()
        .ndims([2, 4])
        .layer_order(order)
        .dense_threshold(DENSE_THRESHOLD)
        .build()?)
}

/// SNIP scores `|W · ∂L/∂W|` of the candidate weights on one batch (`x`, labels `y`),
/// the model in training mode and the loss without smoothing, as the official
/// `SNIP()`. BatchNorm's running statistics are restored afterwards (the official
/// code scores a deep copy).
pub fn snip_scores(
    net: &SlakNet,
    varmap: &VarMap,
    policy: &SelectionPolicy,
    x: &Tensor,
    y: &Tensor,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let saved = ModelState::capture(varmap)?;
    let logits = net.forward_t(x, true)?;
    let loss = sparse_core::kernels::cross_entropy(&logits, y, 0.0)?;
    let grads = loss.backward()?;
    saved.restore(varmap)?;
    let vars = policy.select(varmap)?;
    let scores = snip_scores_for(&vars, &grads)?;
    Ok(vars.into_iter().map(|(n, _)| n).zip(scores).collect())
}

/// The masks: SNIP-ratio densities at `density`, random positions, the layers at
/// ≥ 0.99 left dense (absent from the registry). Zeroes the pruned weights.
pub fn init_masks(
    varmap: &VarMap,
    policy: &SelectionPolicy,
    scores: &BTreeMap<String, Vec<f32>>,
    density: f64,
    rng: &mut ChaCha8Rng,
) -> Result<SparseParams> {
    Ok(AllocationConfig::builder()
        .density(density)
        .allocation(Allocation::SnipRatio)
        .sampling(Sampling::Bernoulli)
        .build()?
        .init_sparse_params(varmap, policy, Some(scores), rng)?)
}

/// The topology engine: SET-style magnitude pruning and random growth every
/// `topology_period` steps with the cosine death rate over `total_steps`, or a
/// static engine under `fix`.
pub fn engine(
    sparsity: &SlakSparsity,
    params: &SparseParams,
    total_steps: usize,
    seed: u64,
) -> Result<SparsityEngine> {
    let builder = if sparsity.fix {
        DynamicSparsity::static_sparse()
    } else {
        DynamicSparsity::set(sparsity.topology_period, total_steps)
            .prune(PruneMethod::MagnitudeExact)
            .growth(if sparsity.exact_growth {
                GrowthMethod::RandomExact
            } else {
                GrowthMethod::Random
            })
            .death_rate(DeathRate::Cosine {
                initial: sparsity.prune_rate,
                eta_min: DEFAULT_ETA_MIN,
                t_max: total_steps.max(1),
            })
    };
    let config = builder
        .growth_init(GrowthInit::Previous)
        .seed(seed)
        .build()?;
    Ok(SparsityEngine::new(config, params)?)
}
