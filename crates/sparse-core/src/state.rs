//! Interfaces through which the sparsity engine reads optimizer state.
//!
//! Momentum growth (sparse momentum) ranks inactive positions by the optimizer's
//! momentum, and ITOP-style training masks momentum buffers after each step. The
//! engine only sees these traits, so any optimizer that implements them works.

use candle_core::Tensor;

use crate::error::Result;
use crate::registry::SparseParams;

/// Read access to an optimizer's per-parameter momentum.
pub trait MomentumSource {
    /// The momentum of parameter `name`, with the parameter's shape: SGD's
    /// `momentum_buffer`, or Adam's `exp_avg / (sqrt(exp_avg_sq) + 1e-8)`.
    /// `None` when the optimizer keeps no momentum for it (yet).
    fn momentum(&self, name: &str) -> Result<Option<Tensor>>;
}

/// Optimizers whose buffers can be masked like the weights they belong to.
pub trait MaskableState {
    /// Multiplies the momentum buffers of every masked parameter by its mask
    /// (ITOP / GraNet / SLaK behaviour). Adam's moments are never masked by the
    /// official code; implementations document what they mask.
    fn mask_state(&mut self, params: &SparseParams) -> Result<()>;
}
