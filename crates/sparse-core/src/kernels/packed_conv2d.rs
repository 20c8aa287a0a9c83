//! A sparse conv2d layer whose trainable weight holds only the active entries.
//!
//! [`SparseConv2d`](super::SparseConv2d) computes over the active weights of a dense
//! `[O, C, kh, kw]` tensor (what dense-stored registries and optimizers hold), so every
//! weight gradient is still a dense buffer that candle's autograd zero-fills and adds.
//! [`PackedSparseConv2d`] computes with a [`PackedWeight`]: its values `[nnz]` train
//! directly, and the sparsity engine prunes and regrows them through the registry
//! ([`SparseParams::insert_packed`](crate::SparseParams::insert_packed)).

use candle_core::{Tensor, Var};

use super::packed_weight::PackedWeight;
use super::sparse_conv2d::{add_bias, sparse_conv2d_packed};
use super::{Conv2dParams, WeightGrad, check_bias, conv2d_candle, custom_applies, mismatch};
use crate::{Mask, Result};

/// `conv2d(x, W) + b` for a sparse `W: [O, C, kh, kw]` stored as a [`PackedWeight`].
///
/// ```
/// use candle_core::{Device, Tensor};
/// use sparse_core::Mask;
/// use sparse_core::kernels::{Conv2dParams, PackedSparseConv2d, PackedWeight};
///
/// # fn main() -> sparse_core::Result<()> {
/// let dev = Device::Cpu;
/// let w = Tensor::randn(0f32, 0.1, (8, 4, 3, 3), &dev)?;
/// let keep: Vec<bool> = (0..8 * 4 * 9).map(|i| i % 10 == 0).collect();
/// let weight = PackedWeight::new(&w, &Mask::from_bools(&[8, 4, 3, 3], &keep)?)?;
/// let params = Conv2dParams { stride: 1, padding: 1 };
/// let conv = PackedSparseConv2d::from_packed(weight.clone(), params)?;
/// let x = Tensor::randn(0f32, 1.0, (2, 4, 6, 6), &dev)?;
/// let grads = conv.forward(&x)?.sum_all()?.backward()?;
/// assert_eq!(grads.get(weight.values().as_tensor()).unwrap().dims(), &[weight.nnz()]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PackedSparseConv2d {
    weight: PackedWeight,
    bias: Option<Tensor>,
    params: Conv2dParams,
    pub(super) name: Option<String>,
}

impl PackedSparseConv2d {
    /// A layer computing with `weight` (`[O, C, kh, kw]`, shared with its other
    /// holders), without bias.
    pub fn from_packed(weight: PackedWeight, params: Conv2dParams) -> Result<Self> {
        let shape = weight.shape();
        if shape.len() != 4 {
            return Err(mismatch(
                "packed sparse conv2d weight [O, C, kh, kw] (rank)",
                &[4],
                &shape,
            ));
        }
        Ok(Self {
            weight,
            bias: None,
            params,
            name: None,
        })
    }

    /// Adds a bias `[O]`.
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        check_bias(
            "packed sparse conv2d bias [O]",
            self.weight.shape()[0],
            &bias,
        )?;
        self.bias = Some(bias);
        Ok(self)
    }

    /// Names the layer after its weight's entry in the [`SparseParams`](crate::SparseParams)
    /// registry.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The shared packed weight.
    pub fn packed_weight(&self) -> &PackedWeight {
        &self.weight
    }

    /// The mask the values belong to.
    pub fn mask(&self) -> Mask {
        self.weight.mask()
    }

    /// The trainable active values `[nnz]`, as of now.
    pub fn values(&self) -> Var {
        self.weight.values()
    }

    /// Which weight gradients the backward pass returns (see
    /// [`PackedWeight::set_weight_grad`]).
    pub fn weight_grad(&self) -> WeightGrad {
        self.weight.weight_grad()
    }

    /// Sets the weight-gradient mode of the shared weight.
    pub fn set_weight_grad(&self, mode: WeightGrad) -> Result<()> {
        self.weight.set_weight_grad(mode)
    }

    /// Moves to `mask` (see [`PackedWeight::set_mask`]).
    pub fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        self.weight.set_mask(mask)
    }

    fn weight_shape(&self) -> [usize; 4] {
        let s = self.weight.shape();
        [s[0], s[1], s[2], s[3]]
    }

    /// `conv2d(x, W) + b` for `x: [B, C, H, W]`: the sparse kernel on f32 CPU tensors,
    /// candle's conv2d on the scattered weight otherwise.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let view = self.weight.view();
        if !(custom_applies(x) && custom_applies(view.values.as_tensor())) {
            return self.forward_candle(x);
        }
        let y = sparse_conv2d_packed(
            x,
            view.values.as_tensor(),
            view.probe.as_ref().map(Var::as_tensor),
            &view.pattern,
            self.weight_shape(),
            self.params,
        )?;
        add_bias(y, self.bias.as_ref())
    }

    /// [`forward`](Self::forward) through the dense weight and candle's conv2d (the
    /// reference).
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        let w = match self.weight.dense_grad_probe() {
            // adding the zero probe changes no value but routes the dense gradient to it
            Some(probe) => (self.weight.to_dense()? + probe.as_tensor())?,
            None => self.weight.to_dense()?,
        };
        conv2d_candle(x, &w, self.bias.as_ref(), self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::SparseConv2d;
    use crate::kernels::testutil::{assert_close, rand_bits, rand_tensor};

    #[test]
    fn computes_and_differentiates_like_the_dense_stored_layer() {
        let params = Conv2dParams {
            stride: 1,
            padding: 1,
        };
        let (o, c) = (6, 5);
        let w = rand_tensor(&[o, c, 3, 3], 1);
        let m = Mask::from_bits(&[o, c, 3, 3], rand_bits(o * c * 9, 0.2, 2)).unwrap();
        let b = rand_tensor(&[o], 3);
        let x = rand_tensor(&[3, c, 7, 6], 4);
        let weight = PackedWeight::new(&w, &m).unwrap();
        let packed = PackedSparseConv2d::from_packed(weight.clone(), params)
            .unwrap()
            .with_bias(b.clone())
            .unwrap();
        let wv = Var::from_tensor(&weight.to_dense().unwrap()).unwrap();
        let dense = SparseConv2d::new(wv.as_tensor().clone(), &m, params)
            .unwrap()
            .with_bias(b)
            .unwrap();
        let upstream = rand_tensor(&[3, o, 7, 6], 5);
        let loss = |y: Tensor| (y * &upstream).unwrap().sum_all().unwrap();
        for custom in [true, false] {
            let y = if custom {
                packed.forward(&x)
            } else {
                packed.forward_candle(&x)
            }
            .unwrap();
            assert_close(&y, &dense.forward_custom(&x).unwrap(), "forward");
            let grads = loss(y).backward().unwrap();
            let reference = loss(dense.forward_custom(&x).unwrap()).backward().unwrap();
            let dw = reference.get(wv.as_tensor()).unwrap();
            let dv = grads.get(weight.values().as_tensor()).unwrap();
            let want = dw.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = dv.to_vec1::<f32>().unwrap();
            for (i, &at) in m.active_indices().iter().enumerate() {
                assert!(
                    (got[i] - want[at]).abs() < 1e-3,
                    "custom {custom}: entry {i}"
                );
            }
        }
        // dense mode: the probe receives the dense weight gradient
        packed.set_weight_grad(WeightGrad::Dense).unwrap();
        let dense_mode = dense.clone().with_weight_grad(WeightGrad::Dense);
        let grads = loss(packed.forward(&x).unwrap()).backward().unwrap();
        let reference = loss(dense_mode.forward_custom(&x).unwrap())
            .backward()
            .unwrap();
        let probe = packed.packed_weight().dense_grad_probe().unwrap();
        assert_close(
            grads.get(probe.as_tensor()).unwrap(),
            reference.get(wv.as_tensor()).unwrap(),
            "dense weight gradient",
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        let params = Conv2dParams::default();
        let w = rand_tensor(&[4, 6], 1);
        let weight = PackedWeight::new(&w, &Mask::ones(&[4, 6])).unwrap();
        assert!(PackedSparseConv2d::from_packed(weight, params).is_err());
        let w = rand_tensor(&[4, 2, 3, 3], 1);
        let weight = PackedWeight::new(&w, &Mask::ones(&[4, 2, 3, 3])).unwrap();
        let conv = PackedSparseConv2d::from_packed(weight, params).unwrap();
        assert!(conv.clone().with_bias(rand_tensor(&[3], 2)).is_err());
        assert!(conv.forward(&rand_tensor(&[1, 3, 5, 5], 3)).is_err());
    }
}
