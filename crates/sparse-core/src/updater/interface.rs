//! The single interface of topology updates and what an update may read.

use candle_core::backprop::GradStore;

use super::report::UpdateReport;
use crate::error::Result;
use crate::registry::SparseParams;
use crate::state::{MaskableState, MomentumSource};

/// Optimizer state the engine can both read (momentum growth) and mask (ITOP-style
/// momentum masking). Implemented for every type implementing both traits.
pub trait OptimizerBuffers: MomentumSource + MaskableState {}

impl<T: MomentumSource + MaskableState + ?Sized> OptimizerBuffers for T {}

/// What a topology update may read besides the weights.
#[derive(Clone, Copy, Default)]
pub struct UpdateContext<'a> {
    /// The gradients of the last backward pass (dense, since weights are used raw in
    /// the forward pass).
    pub grads: Option<&'a GradStore>,
    /// The optimizer's momentum, for momentum growth.
    pub momentum: Option<&'a dyn MomentumSource>,
}

impl std::fmt::Debug for UpdateContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateContext")
            .field("grads", &self.grads.is_some())
            .field("momentum", &self.momentum.is_some())
            .finish()
    }
}

/// The single interface of topology updates.
pub trait TopologyUpdater {
    /// Runs the topology update of `step` (1-based count of optimizer steps taken,
    /// this one included): a no-op on steps that are not update steps.
    fn update(
        &mut self,
        step: usize,
        params: &mut SparseParams,
        ctx: &UpdateContext<'_>,
    ) -> Result<UpdateReport>;
}
