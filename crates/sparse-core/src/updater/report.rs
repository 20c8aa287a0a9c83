//! What a call of the engine reports: per-layer changes and the step's summary.

use crate::registry::SparseParams;

/// How one layer changed at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerChange {
    /// The parameter's name.
    pub name: String,
    /// Active weights before the update.
    pub nnz_before: usize,
    /// Weights removed (gradual pruning plus prune-and-regrow).
    pub pruned: usize,
    /// Positions activated by growth.
    pub grown: usize,
    /// Active weights after the update.
    pub nnz_after: usize,
}

/// What a call of the engine did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateReport {
    /// The step the report is for.
    pub step: usize,
    /// The death rate of this step (whether or not the topology changed).
    pub death_rate: f64,
    /// Whether prune-and-regrow ran at this step.
    pub prune_regrow: bool,
    /// The density gradual pruning pruned to at this step, if it ran.
    pub gradual_density: Option<f64>,
    /// Per-layer changes in name order; empty when nothing ran.
    pub layers: Vec<LayerChange>,
    /// The ITOP rate after this step.
    pub itop_rate: f64,
}

impl UpdateReport {
    /// Whether any mask changed at this step.
    pub fn topology_changed(&self) -> bool {
        self.layers.iter().any(|l| l.pruned > 0 || l.grown > 0)
    }
}

/// Zeroed change records with the current nnz, in name order.
pub(super) fn layer_changes(params: &SparseParams) -> Vec<LayerChange> {
    params
        .iter()
        .map(|p| LayerChange {
            name: p.name.clone(),
            nnz_before: p.mask.nnz(),
            pruned: 0,
            grown: 0,
            nnz_after: 0,
        })
        .collect()
}
