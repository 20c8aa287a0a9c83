//! The models' convolution: dense through sparse-core's `conv2d`, or over its active
//! weights only once it is given a sparse mask.

use candle_core::{Result, Tensor};
use candle_nn::Conv2d;
use sparse_core::Mask;
use sparse_core::kernels::{Conv2dParams, SPARSE_CONV2D_MAX_DENSITY, SparseConv2d, WeightGrad};

/// A bias-free convolution over a `VarMap` weight. With a mask at density up to
/// [`SPARSE_CONV2D_MAX_DENSITY`] it computes through [`SparseConv2d`] over the same
/// weight tensor (the optimizer's in-place updates reach it), whose weight gradient is
/// zero at pruned positions unless [`WeightGrad::Dense`] is asked for.
#[derive(Debug)]
pub(crate) struct MaskableConv {
    conv: Conv2d,
    /// Boxed: a model holds many convolutions, most of them dense.
    sparse: Option<Box<SparseConv2d>>,
}

impl MaskableConv {
    pub(crate) fn new(conv: Conv2d) -> Self {
        Self { conv, sparse: None }
    }

    fn params(&self) -> Conv2dParams {
        let cfg = self.conv.config();
        Conv2dParams {
            stride: cfg.stride,
            padding: cfg.padding,
        }
    }

    /// Computes sparsely under `mask` when it is sparse enough, densely otherwise (and
    /// when `mask` is `None`). Returns whether the convolution now runs sparse.
    pub(crate) fn set_mask(&mut self, mask: Option<&Mask>) -> Result<bool> {
        self.sparse = match mask {
            Some(m) if m.density() <= SPARSE_CONV2D_MAX_DENSITY => Some(Box::new(
                SparseConv2d::new(self.conv.weight().clone(), m, self.params())
                    .map_err(candle_core::Error::wrap)?,
            )),
            _ => None,
        };
        Ok(self.sparse.is_some())
    }

    /// Sets the weight-gradient mode of a sparse convolution (no-op when dense, whose
    /// gradient is always dense).
    pub(crate) fn set_weight_grad(&mut self, mode: WeightGrad) {
        if let Some(sparse) = &mut self.sparse {
            sparse.set_weight_grad(mode);
        }
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.sparse {
            Some(sparse) => sparse.forward(xs).map_err(candle_core::Error::wrap),
            None => sparse_core::kernels::conv2d(xs, self.conv.weight(), None, self.params())
                .map_err(candle_core::Error::wrap),
        }
    }
}
