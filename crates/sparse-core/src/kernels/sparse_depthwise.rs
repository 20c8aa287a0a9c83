//! Sparse depthwise conv2d: the depthwise kernel restricted to each channel's active
//! taps, so that its cost is proportional to the number of unpruned weights.

use std::sync::Arc;

use candle_core::Tensor;

use super::depthwise::{DepthwiseOp, add_channel_bias, check_depthwise, same_padding};
use super::{WeightGrad, check_bias, custom_applies, mismatch};
use crate::{Mask, Result};

/// A depthwise KxN conv2d (stride 1, "same" padding) whose weight `[C, 1, K, N]` is
/// masked: the effective weight is `weight ⊙ mask`, and the custom kernel visits only
/// the active taps, which it lists per channel when the mask is set.
///
/// `weight` is typically a `Var`'s tensor: the optimizer's in-place updates are seen
/// by the next [`forward`](Self::forward) without rebuilding anything.
#[derive(Debug, Clone)]
pub struct SparseDepthwiseConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    mask_tensor: Tensor,
    active: Arc<Vec<Vec<u32>>>,
    density: f64,
    weight_grad: WeightGrad,
    mask: Mask,
    pub(super) name: Option<String>,
}

impl SparseDepthwiseConv2d {
    /// A layer over `weight: [C, 1, K, N]` and a mask of the weight's shape, without
    /// bias.
    pub fn new(weight: Tensor, mask: &Mask) -> Result<Self> {
        let mask_tensor = mask.to_tensor(weight.dtype(), weight.device())?;
        let mut layer = Self {
            weight,
            bias: None,
            mask_tensor,
            active: Arc::new(Vec::new()),
            density: 0.0,
            weight_grad: WeightGrad::Masked,
            mask: mask.clone(),
            name: None,
        };
        layer.set_mask(mask)?;
        Ok(layer)
    }

    /// Adds a bias `[C]`.
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        check_bias(
            "sparse depthwise conv2d bias [C]",
            self.weight.dims()[0],
            &bias,
        )?;
        self.bias = Some(bias);
        Ok(self)
    }

    /// Replaces the mask and rebuilds the per-channel active-tap lists.
    pub fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        let dims = self.weight.dims();
        if dims.len() != 4 || mask.shape() != dims {
            return Err(mismatch("sparse depthwise conv2d mask", dims, mask.shape()));
        }
        let kn = dims[2] * dims[3];
        self.active = Arc::new(
            mask.as_bits()
                .chunks_exact(kn)
                .map(|ch| (0..kn as u32).filter(|&i| ch[i as usize] != 0).collect())
                .collect(),
        );
        self.mask_tensor = mask.to_tensor(self.weight.dtype(), self.weight.device())?;
        self.density = mask.density();
        self.mask = mask.clone();
        Ok(())
    }

    /// Chooses which weight gradient the backward pass returns.
    pub fn with_weight_grad(mut self, mode: WeightGrad) -> Self {
        self.weight_grad = mode;
        self
    }

    /// Sets which weight gradient the backward pass returns.
    pub fn set_weight_grad(&mut self, mode: WeightGrad) {
        self.weight_grad = mode;
    }

    /// Names the layer after its weight's entry in the [`SparseParams`](crate::SparseParams)
    /// registry, so that [`sync_masks`](super::sync_masks) can find its mask.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The mask the layer computes with.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    /// Which weight gradient the backward pass returns.
    pub fn weight_grad(&self) -> WeightGrad {
        self.weight_grad
    }

    /// The fraction of active taps.
    pub fn density(&self) -> f64 {
        self.density
    }

    /// The (unmasked) weight tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `conv(x, weight ⊙ mask) + bias` for `x: [B, C, H, W]`. The custom kernel runs
    /// for f32 CPU tensors (it beats candle's grouped conv at every density); candle's
    /// masked-dense op otherwise.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if custom_applies(x) && custom_applies(&self.weight) {
            self.forward_custom(x)
        } else {
            self.forward_candle(x)
        }
    }

    /// [`forward`](Self::forward) forced onto the custom kernel.
    pub fn forward_custom(&self, x: &Tensor) -> Result<Tensor> {
        let (_, k, n) = check_depthwise(x, &self.weight, self.bias.as_ref())?;
        let (pad_top, pad_left) = same_padding(k, n);
        let op = DepthwiseOp {
            pad_top,
            pad_left,
            active: Some(self.active.clone()),
            dense_wgrad: self.weight_grad == WeightGrad::Dense,
        };
        let y = x.contiguous()?.apply_op2(&self.weight.contiguous()?, op)?;
        add_channel_bias(y, self.bias.as_ref())
    }

    /// [`forward`](Self::forward) through candle's dense grouped conv on the masked
    /// weight (the reference; same gradients as the custom path).
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        let w = effective_weight(&self.weight, &self.mask_tensor, self.weight_grad)?;
        super::depthwise_conv2d_candle(x, &w, self.bias.as_ref())
    }
}

/// `w ⊙ mask`, differentiable either as itself (masked gradient) or straight through
/// to `w` (dense gradient of the effective weight).
pub(crate) fn effective_weight(w: &Tensor, mask: &Tensor, mode: WeightGrad) -> Result<Tensor> {
    let masked = (w * mask)?;
    Ok(match mode {
        WeightGrad::Masked => masked,
        WeightGrad::Dense => (w + (masked - w)?.detach())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{
        check_grads_match, finite_difference_check, rand_bits, rand_tensor,
    };

    fn layer(
        w: &Tensor,
        b: Option<&Tensor>,
        density: f64,
        seed: u64,
        mode: WeightGrad,
    ) -> SparseDepthwiseConv2d {
        let mask = Mask::from_bits(w.dims(), rand_bits(w.elem_count(), density, seed)).unwrap();
        let l = SparseDepthwiseConv2d::new(w.clone(), &mask)
            .unwrap()
            .with_weight_grad(mode);
        match b {
            Some(b) => l.with_bias(b.clone()).unwrap(),
            None => l,
        }
    }

    fn case(dims: [usize; 6], density: f64, bias: bool, mode: WeightGrad, seed: u64) {
        let [b, c, h, w, k, n] = dims;
        let mut inputs = vec![
            rand_tensor(&[b, c, h, w], seed),
            rand_tensor(&[c, 1, k, n], seed + 1),
        ];
        if bias {
            inputs.push(rand_tensor(&[c], seed + 2));
        }
        let ours = |t: &[Tensor]| {
            layer(&t[1], t.get(2), density, seed, mode)
                .forward_custom(&t[0])
                .unwrap()
        };
        let reference = |t: &[Tensor]| {
            layer(&t[1], t.get(2), density, seed, mode)
                .forward_candle(&t[0])
                .unwrap()
        };
        check_grads_match(&inputs, ours, reference, seed + 3);
    }

    #[test]
    fn matches_masked_dense_reference() {
        for (i, &density) in [0.0, 0.05, 0.4, 1.0].iter().enumerate() {
            let s = 100 * i as u64;
            case(
                [2, 3, 9, 11, 5, 5],
                density,
                true,
                WeightGrad::Masked,
                s + 1,
            );
            case(
                [1, 17, 6, 5, 7, 3],
                density,
                false,
                WeightGrad::Masked,
                s + 2,
            );
            case([1, 2, 3, 4, 9, 9], density, false, WeightGrad::Dense, s + 3);
            case([2, 4, 5, 7, 1, 1], density, true, WeightGrad::Dense, s + 4);
        }
    }

    #[test]
    fn masked_gradient_is_zero_at_pruned_taps() {
        let w = rand_tensor(&[3, 1, 3, 3], 5);
        let x = candle_core::Var::from_tensor(&rand_tensor(&[1, 3, 4, 4], 6)).unwrap();
        let wv = candle_core::Var::from_tensor(&w).unwrap();
        let l = layer(wv.as_tensor(), None, 0.3, 7, WeightGrad::Masked);
        let grads = l
            .forward(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dw = grads
            .get(wv.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let bits = rand_bits(27, 0.3, 7);
        assert!(dw.iter().zip(&bits).all(|(g, &b)| b == 1 || *g == 0.0));
        assert!(dw.iter().zip(&bits).any(|(g, &b)| b == 1 && *g != 0.0));
    }

    #[test]
    fn gradients_pass_finite_differences() {
        let inputs = [rand_tensor(&[1, 2, 5, 4], 1), rand_tensor(&[2, 1, 3, 3], 2)];
        let f = |t: &[Tensor]| {
            layer(&t[1], None, 0.5, 3, WeightGrad::Masked)
                .forward_custom(&t[0])
                .unwrap()
        };
        finite_difference_check(&inputs, f, 4);
    }
}
