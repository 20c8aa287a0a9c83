//! A sparse linear layer whose trainable weight holds only the active entries.
//!
//! [`SparseLinear`](super::SparseLinear) keeps the dense `[out, in]` weight (what the
//! masks, optimizers and checkpoints of sparse-core work on) and compresses only the
//! index sets, so every call still reads the dense matrix once, and candle's autograd
//! accumulates a dense `[out, in]` weight gradient. [`PackedSparseLinear`] stores the
//! weight as its `nnz` active values in row-major order: the forward reads them
//! directly, the weight gradient is `[nnz]`, and memory and time follow the active
//! entries alone. The values are compressed again only when the mask changes
//! ([`set_mask`](PackedSparseLinear::set_mask)).

use candle_core::{Tensor, Var};

use super::packed_weight::{PackedView, PackedWeight};
use super::sparse_linear::{DenseGradProbeOp, SparseLinearOp, Storage, linear_on_rows};
use super::{Activation, WeightGrad, check_bias, custom_applies, mismatch};
use crate::{Mask, Result};

/// `y = x Wᵀ + b` for a sparse `W: [out, in]` stored as its active values.
///
/// The values are a [`Var`] of shape `[nnz]` ordered by row, then column (the order of
/// [`Mask::active_indices`]); give it to the optimizer instead of a dense weight. On
/// f32 CPU tensors [`forward`](Self::forward) runs the sparse kernel at any density;
/// elsewhere it scatters the values into a dense matrix for candle's matmul.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use sparse_core::Mask;
/// use sparse_core::kernels::PackedSparseLinear;
///
/// # fn main() -> sparse_core::Result<()> {
/// let dev = Device::Cpu;
/// let w = Tensor::randn(0f32, 0.1, (32, 64), &dev)?;
/// let keep: Vec<bool> = (0..32 * 64).map(|i| i % 10 == 0).collect();
/// let mask = Mask::from_bools(&[32, 64], &keep)?;
/// let mut layer = PackedSparseLinear::new(&w, &mask)?;
/// assert_eq!(layer.values().dims(), &[mask.nnz()]);
///
/// let x = Tensor::randn(0f32, 1.0, (4, 64), &dev)?;
/// let grads = layer.forward(&x)?.sum_all()?.backward()?;
/// let dv = grads.get(layer.values().as_tensor()).expect("gradient of the values");
/// assert_eq!(dv.dims(), &[mask.nnz()]);
///
/// // A topology update: survivors keep their values, new entries start at 0, and the
/// // values are a new `Var` to hand to the optimizer.
/// let shifted: Vec<bool> = (0..32 * 64).map(|i| i % 10 == 1).collect();
/// layer.set_mask(&Mask::from_bools(&[32, 64], &shifted)?)?;
/// assert_eq!(layer.to_dense()?.dims(), &[32, 64]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PackedSparseLinear {
    weight: PackedWeight,
    bias: Option<Tensor>,
    activation: Activation,
    pub(super) name: Option<String>,
}

impl PackedSparseLinear {
    /// The active entries of `weight: [out, in]` under `mask`, as a new trainable layer
    /// without bias.
    pub fn new(weight: &Tensor, mask: &Mask) -> Result<Self> {
        let dims = weight.dims();
        if dims.len() != 2 {
            return Err(mismatch(
                "packed sparse linear weight [out, in] (rank)",
                &[2],
                dims,
            ));
        }
        Self::from_packed(PackedWeight::new(weight, mask)?)
    }

    /// A layer computing with `weight` (`[out, in]`), shared with its other holders:
    /// register the same weight in a [`SparseParams`](crate::SparseParams) registry
    /// ([`insert_packed`](crate::SparseParams::insert_packed)) and the sparsity engine's
    /// topology updates are what this layer computes with, without a dense copy.
    pub fn from_packed(weight: PackedWeight) -> Result<Self> {
        let shape = weight.shape();
        if shape.len() != 2 {
            return Err(mismatch(
                "packed sparse linear weight [out, in] (rank)",
                &[2],
                &shape,
            ));
        }
        Ok(Self {
            weight,
            bias: None,
            activation: Activation::Identity,
            name: None,
        })
    }

    /// The shared packed weight.
    pub fn packed_weight(&self) -> &PackedWeight {
        &self.weight
    }

    /// Adds a bias `[out]`.
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        check_bias("packed sparse linear bias [out]", self.dims().0, &bias)?;
        self.bias = Some(bias);
        Ok(self)
    }

    /// Applies `activation` after the bias, fused with it into one pass forward and
    /// one backward.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Chooses which weight gradients the backward pass returns; see
    /// [`set_weight_grad`](Self::set_weight_grad).
    pub fn with_weight_grad(self, mode: WeightGrad) -> Result<Self> {
        self.set_weight_grad(mode)?;
        Ok(self)
    }

    /// The values always get the gradient of their active entries. With
    /// [`WeightGrad::Dense`] (on the steps where gradient-based regrowth reads it) the
    /// forward pass also takes a zero `[out, in]` probe, [`dense_grad_probe`](
    /// Self::dense_grad_probe), whose gradient is then the dense weight gradient
    /// `dyᵀ x` at every position, pruned ones included. That costs one dense product
    /// in the backward pass and the probe's `out · in` floats; [`WeightGrad::Masked`]
    /// drops the probe. The mode belongs to the shared [`PackedWeight`].
    pub fn set_weight_grad(&self, mode: WeightGrad) -> Result<()> {
        self.weight.set_weight_grad(mode)
    }

    /// In [`WeightGrad::Dense`] mode, the zero `[out, in]` tensor whose gradient after a
    /// backward pass is the dense weight gradient: `grads.get(probe.as_tensor())`.
    /// Do not give it to an optimizer: it must stay zero.
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use sparse_core::Mask;
    /// use sparse_core::kernels::{PackedSparseLinear, WeightGrad};
    ///
    /// # fn main() -> sparse_core::Result<()> {
    /// let dev = Device::Cpu;
    /// let w = Tensor::randn(0f32, 0.1, (8, 16), &dev)?;
    /// let keep: Vec<bool> = (0..8 * 16).map(|i| i % 4 == 0).collect();
    /// let layer = PackedSparseLinear::new(&w, &Mask::from_bools(&[8, 16], &keep)?)?
    ///     .with_weight_grad(WeightGrad::Dense)?;
    /// let x = Tensor::randn(0f32, 1.0, (3, 16), &dev)?;
    /// let grads = layer.forward(&x)?.sum_all()?.backward()?;
    /// let probe = layer.dense_grad_probe().expect("dense mode has a probe");
    /// let dense = grads.get(probe.as_tensor()).expect("dense weight gradient");
    /// assert_eq!(dense.dims(), &[8, 16]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dense_grad_probe(&self) -> Option<Var> {
        self.weight.dense_grad_probe()
    }

    /// Names the layer after its weight's entry in the [`SparseParams`](crate::SparseParams)
    /// registry, so that [`sync_masks`](super::sync_masks) can find its mask.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Which weight gradients the backward pass returns: [`WeightGrad::Dense`] while
    /// the layer holds a [`dense_grad_probe`](Self::dense_grad_probe).
    pub fn weight_grad(&self) -> WeightGrad {
        self.weight.weight_grad()
    }

    /// The trainable active values, `[nnz]`, as of now (a topology change replaces
    /// them).
    pub fn values(&self) -> Var {
        self.weight.values()
    }

    /// The mask the values belong to.
    pub fn mask(&self) -> Mask {
        self.weight.mask()
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        let shape = self.weight.shape();
        (shape[0], shape[1])
    }

    /// The weight as a dense `[out, in]` tensor with zeros at pruned positions (for
    /// checkpoints, saliency, or moving to a dense layer). Differentiable in the values.
    pub fn to_dense(&self) -> Result<Tensor> {
        self.weight.to_dense()
    }

    /// Moves to `mask`: entries active before and after keep their values, newly active
    /// ones start at zero (as RigL-style regrowth does). The values become a *new*
    /// [`Var`] (its length changes). A weight registered with the sparsity engine
    /// changes through the registry instead ([`crate::SparseParams::set_mask`]).
    pub fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        self.weight.set_mask(mask)
    }

    /// `x Wᵀ + b` for `x: [.., in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let view = self.weight.view();
        if custom_applies(x) && custom_applies(view.values.as_tensor()) {
            self.forward_view(x, view)
        } else {
            self.forward_candle(x)
        }
    }

    /// [`forward`](Self::forward) forced onto the sparse kernel.
    pub fn forward_custom(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_view(x, self.weight.view())
    }

    fn forward_view(&self, x: &Tensor, view: PackedView) -> Result<Tensor> {
        let (out, inp) = self.dims();
        linear_on_rows(x, out, inp, self.bias.as_ref(), self.activation, |x2| {
            let op = SparseLinearOp {
                pattern: view.pattern.clone(),
                storage: Storage::Packed,
                weight_grad: WeightGrad::Masked,
            };
            let values = view.values.as_tensor();
            Ok(match &view.probe {
                None => x2.apply_op2(values, op)?,
                Some(probe) => x2.apply_op3(values, probe.as_tensor(), DenseGradProbeOp(op))?,
            })
        })
    }

    /// [`forward`](Self::forward) through [`to_dense`](Self::to_dense) and candle's
    /// matmul.
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        let (out, inp) = self.dims();
        let w = match self.dense_grad_probe() {
            // Adding the zero probe changes no value but routes `dyᵀ x` to it.
            Some(probe) => (self.to_dense()? + probe.as_tensor())?,
            None => self.to_dense()?,
        };
        linear_on_rows(x, out, inp, self.bias.as_ref(), self.activation, |x2| {
            Ok(x2.matmul(&w.t()?)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kernels::sparse_linear::CsrPattern;
    use crate::kernels::testutil::{assert_close, check_grads_match, rand_bits, rand_tensor};
    use crate::kernels::{SparseLinear, WeightGrad};
    use candle_core::DType;
    use candle_core::Device;

    fn mask(out: usize, inp: usize, density: f64, seed: u64) -> Mask {
        Mask::from_bits(&[out, inp], rand_bits(out * inp, density, seed)).unwrap()
    }

    #[test]
    fn computes_what_the_dense_stored_layer_computes() {
        for (batch, inp, out, density) in [(1, 7, 5, 0.3), (19, 33, 17, 0.05), (40, 20, 50, 1.0)] {
            let w = rand_tensor(&[out, inp], 1);
            let m = mask(out, inp, density, 2);
            let b = rand_tensor(&[out], 3);
            let packed = PackedSparseLinear::new(&w, &m)
                .unwrap()
                .with_bias(b.clone())
                .unwrap();
            let dense = SparseLinear::new(w, &m).unwrap().with_bias(b).unwrap();
            let x = rand_tensor(&[batch, inp], 4);
            assert_close(
                &packed.forward(&x).unwrap(),
                &dense.forward_candle(&x).unwrap(),
                "forward",
            );
            assert_eq!(packed.values().dims(), &[m.nnz()]);
            let relu = packed.with_activation(Activation::Relu);
            assert_close(
                &relu.forward(&x).unwrap(),
                &dense.forward_candle(&x).unwrap().relu().unwrap(),
                "forward with ReLU",
            );
        }
    }

    #[test]
    fn gradients_match_the_scattered_dense_reference() {
        for (i, &density) in [0.0, 0.1, 0.6, 1.0].iter().enumerate() {
            let (batch, inp, out) = (13, 21, 18);
            let m = mask(out, inp, density, 10 + i as u64);
            let nnz = m.nnz();
            let inputs = [
                rand_tensor(&[batch, inp], 20 + i as u64),
                rand_tensor(&[nnz], 30 + i as u64),
            ];
            let pattern = Arc::new(CsrPattern::new(out, inp, m.as_bits()));
            let ours = |t: &[Tensor]| {
                let op = SparseLinearOp {
                    pattern: pattern.clone(),
                    storage: Storage::Packed,
                    weight_grad: WeightGrad::Masked,
                };
                t[0].apply_op2(&t[1], op).unwrap()
            };
            let reference = |t: &[Tensor]| {
                let index: Vec<u32> = pattern.dense_offsets().iter().map(|&o| o as u32).collect();
                let index = Tensor::from_vec(index, nnz, &Device::Cpu).unwrap();
                let w = Tensor::zeros(out * inp, DType::F32, &Device::Cpu)
                    .unwrap()
                    .index_add(&index, &t[1], 0)
                    .unwrap()
                    .reshape((out, inp))
                    .unwrap();
                t[0].matmul(&w.t().unwrap()).unwrap()
            };
            check_grads_match(&inputs, ours, reference, 40 + i as u64);
        }
    }

    #[test]
    fn values_train_through_the_var() {
        let m = mask(6, 9, 0.4, 1);
        let layer = PackedSparseLinear::new(&rand_tensor(&[6, 9], 2), &m).unwrap();
        let x = rand_tensor(&[5, 9], 3);
        let grads = layer
            .forward(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads
            .get(layer.values().as_tensor())
            .expect("gradient of the values");
        assert_eq!(g.dims(), &[m.nnz()]);
        let dense_grad = {
            let w = layer.to_dense().unwrap();
            let wv = Var::from_tensor(&w).unwrap();
            let grads = x
                .matmul(&wv.as_tensor().t().unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            grads
                .get(wv.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let ours = g.to_vec1::<f32>().unwrap();
        for (i, &at) in m.active_indices().iter().enumerate() {
            assert!((ours[i] - dense_grad[at]).abs() < 1e-4, "entry {i}");
        }
    }

    #[test]
    fn dense_mode_returns_the_dense_weight_gradient_through_the_probe() {
        let (batch, inp, out) = (7, 19, 11);
        let m = mask(out, inp, 0.2, 5);
        let x = rand_tensor(&[batch, inp], 6);
        let upstream = rand_tensor(&[batch, out], 7);
        let w = rand_tensor(&[out, inp], 8);
        // Reference: dyᵀ x at every position, from a dense `Var` through candle.
        let wv = Var::from_tensor(
            &w.broadcast_mul(&m.to_tensor(DType::F32, &Device::Cpu).unwrap())
                .unwrap(),
        )
        .unwrap();
        let backward = |y: Tensor| {
            (y * &upstream)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
        let reference = backward(x.matmul(&wv.as_tensor().t().unwrap()).unwrap())
            .get(wv.as_tensor())
            .unwrap()
            .clone();
        let masked = PackedSparseLinear::new(&w, &m).unwrap();
        let layer = PackedSparseLinear::new(&w, &m)
            .unwrap()
            .with_weight_grad(WeightGrad::Dense)
            .unwrap();
        for custom in [true, false] {
            let y = if custom {
                layer.forward_custom(&x)
            } else {
                layer.forward_candle(&x)
            }
            .unwrap();
            assert_close(&y, &masked.forward(&x).unwrap(), "probe changes the output");
            let grads = backward(y);
            let probe = layer.dense_grad_probe().expect("dense mode has a probe");
            let dense = grads.get(probe.as_tensor()).expect("probe gradient");
            assert_close(dense, &reference, "dense weight gradient");
            // The values still get exactly their active entries of it.
            let dv = grads
                .get(layer.values().as_tensor())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let want = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, &at) in m.active_indices().iter().enumerate() {
                assert!(
                    (dv[i] - want[at]).abs() < 1e-4,
                    "custom {custom}, entry {i}"
                );
            }
        }
        layer.set_weight_grad(WeightGrad::Masked).unwrap();
        assert!(layer.dense_grad_probe().is_none());
    }

    #[test]
    fn set_mask_keeps_survivors_and_zeroes_new_entries() {
        // [[1 2 0], [0 3 4]] -> mask [[1 0 1], [0 1 1]]: 1 and 3, 4 survive, (0, 2) is new.
        let w = Tensor::new(&[[1f32, 2., 0.], [0., 3., 4.]], &Device::Cpu).unwrap();
        let old = Mask::from_bits(&[2, 3], vec![1, 1, 0, 0, 1, 1]).unwrap();
        let mut layer = PackedSparseLinear::new(&w, &old).unwrap();
        assert_eq!(layer.values().to_vec1::<f32>().unwrap(), [1., 2., 3., 4.]);
        let new = Mask::from_bits(&[2, 3], vec![1, 0, 1, 0, 1, 1]).unwrap();
        layer.set_mask(&new).unwrap();
        assert_eq!(layer.values().to_vec1::<f32>().unwrap(), [1., 0., 3., 4.]);
        assert_eq!(
            layer.to_dense().unwrap().to_vec2::<f32>().unwrap(),
            [[1., 0., 0.], [0., 3., 4.]]
        );
        assert_eq!(layer.mask(), new);
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let w = rand_tensor(&[4, 5], 1);
        assert!(PackedSparseLinear::new(&w, &mask(5, 4, 0.5, 1)).is_err());
        let mut layer = PackedSparseLinear::new(&w, &mask(4, 5, 0.5, 1)).unwrap();
        assert!(layer.set_mask(&mask(4, 6, 0.5, 1)).is_err());
        assert!(layer.forward(&rand_tensor(&[3, 6], 2)).is_err());
        assert!(layer.clone().with_bias(rand_tensor(&[5], 3)).is_err());
    }
}
