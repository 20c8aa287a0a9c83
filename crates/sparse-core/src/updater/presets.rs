//! The method presets: each returns a [`DynamicSparsityBuilder`] with the official
//! settings of one method, which the caller may still adjust before `build`.

use super::config::{DynamicSparsity, DynamicSparsityBuilder};
use crate::grow::GrowthMethod;
use crate::prune::GradualPruning;
use crate::redistribution::Redistribution;
use crate::schedule::{DEFAULT_ETA_MIN, DeathRate};

impl DynamicSparsity {
    /// SET (ITOP-lineage form): magnitude pruning, Bernoulli random growth, cosine
    /// death rate 0.5 → 0.005 over `total_steps`, an update every `period` steps.
    pub fn set(period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::dst(GrowthMethod::Random, period, total_steps)
    }

    /// RigL: magnitude pruning, gradient growth, cosine death rate 0.5 → 0.005.
    pub fn rigl(period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::dst(GrowthMethod::Gradient, period, total_steps)
    }

    /// Sparse momentum (Dettmers & Zettlemoyer): magnitude pruning, momentum growth,
    /// momentum redistribution across layers ([`Redistribution::Momentum`], so only
    /// the total nnz is fixed), cosine death rate 0.5 → 0.005.
    pub fn sparse_momentum(period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::dst(GrowthMethod::Momentum, period, total_steps)
            .redistribution(Redistribution::Momentum)
    }

    /// Static sparse training (`--fix`): masks are applied, never changed.
    pub fn static_sparse() -> DynamicSparsityBuilder {
        Self::builder()
    }

    /// Gradual magnitude pruning without regrowth (GMP).
    pub fn gradual_magnitude(gradual: GradualPruning) -> DynamicSparsityBuilder {
        Self::builder().gradual(gradual)
    }

    /// GraNet: gradual magnitude pruning plus prune-and-regrow (magnitude / gradient)
    /// every `period` steps with a cosine death rate. As in the official code, neither
    /// runs before `gradual.start_step` (`init_prune_epoch`), and the gradual window
    /// is `gradual.window` (officially the last iteration is skipped).
    /// `.start_step(None)` lets prune-and-regrow run from the first period instead.
    pub fn granet(
        gradual: GradualPruning,
        period: usize,
        total_steps: usize,
    ) -> DynamicSparsityBuilder {
        Self::rigl(period, total_steps)
            .start_step(Some(gradual.start_step))
            .gradual(gradual)
    }

    fn dst(growth: GrowthMethod, period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::builder()
            .growth(growth)
            .period(Some(period))
            .death_rate(DeathRate::Cosine {
                initial: 0.5,
                eta_min: DEFAULT_ETA_MIN,
                t_max: total_steps,
            })
    }
}
