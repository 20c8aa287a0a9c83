//! What every sparse layer over a dense-stored weight keeps beside the weight: the
//! mask, the mask as a tensor (for the candle path), and the compressed index sets of
//! the active entries, rebuilt together whenever the mask changes.

use std::sync::Arc;

use candle_core::Tensor;

use super::sparse_depthwise::effective_weight;
use super::sparse_linear::CsrPattern;
use super::{WeightGrad, mismatch};
use crate::{Mask, Result};

/// A dense weight `[rows, ..]` under a mask, with the CSR/CSC pattern of its active
/// entries over rows × (all other dimensions) and the weight-gradient mode.
#[derive(Debug, Clone)]
pub(super) struct MaskedWeight {
    pub(super) weight: Tensor,
    pub(super) mask: Mask,
    pub(super) mask_tensor: Tensor,
    pub(super) pattern: Arc<CsrPattern>,
    pub(super) density: f64,
    pub(super) weight_grad: WeightGrad,
    /// Names the layer in errors ("sparse linear", "sparse conv2d").
    what: &'static str,
}

impl MaskedWeight {
    /// `weight` of rank `rank` under `mask` (same shape), masked weight gradient.
    pub(super) fn new(
        weight: Tensor,
        mask: &Mask,
        rank: usize,
        shape_label: &str,
        what: &'static str,
    ) -> Result<Self> {
        let dims = weight.dims();
        if dims.len() != rank {
            return Err(mismatch(
                &format!("{what} weight {shape_label} (rank)"),
                &[rank],
                dims,
            ));
        }
        let mut masked = Self {
            mask_tensor: mask.to_tensor(weight.dtype(), weight.device())?,
            weight,
            mask: mask.clone(),
            pattern: Arc::new(CsrPattern::new(0, 0, &[])),
            density: 0.0,
            weight_grad: WeightGrad::Masked,
            what,
        };
        masked.set_mask(mask)?;
        Ok(masked)
    }

    /// Replaces the mask and rebuilds the index sets.
    pub(super) fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        let dims = self.weight.dims();
        if mask.shape() != dims {
            return Err(mismatch(&format!("{} mask", self.what), dims, mask.shape()));
        }
        let rest = dims[1..].iter().product();
        self.pattern = Arc::new(CsrPattern::new(dims[0], rest, mask.as_bits()));
        self.mask_tensor = mask.to_tensor(self.weight.dtype(), self.weight.device())?;
        self.density = mask.density();
        self.mask = mask.clone();
        Ok(())
    }

    /// The weight the candle path multiplies: `W ⊙ M`, routed so that the gradient is
    /// the one `weight_grad` asks for.
    pub(super) fn effective(&self) -> Result<Tensor> {
        effective_weight(&self.weight, &self.mask_tensor, self.weight_grad)
    }
}
