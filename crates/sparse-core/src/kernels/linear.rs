//! Dense linear layer `y = x Wᵀ + b`, optionally followed by ReLU, as one op.
//!
//! candle-nn's `Linear` then `relu` is a matrix product, a broadcast add and a
//! unary map forward, and backward a ReLU mask (compare, multiply), a reduction for
//! the bias, two products and the gradient bookkeeping of each: on the MLPs of the
//! paper crates the step spent more time in those small ops and their allocations
//! than in the products. Here the forward is one product written over the bias rows
//! and clamped in place; the backward is one masking pass and two products.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

use super::activation::relu_backward;
use super::gemm::{MatRef, Write, gemm_auto};
use super::{custom_applies, f32_data};

/// A candle-nn [`Linear`] (same variables, names and initialisation) whose f32 CPU
/// forward and backward run fused, with an optional ReLU folded in
/// ([`forward_relu`](Self::forward_relu)).
#[derive(Debug, Clone)]
pub struct FusedLinear {
    inner: Linear,
}

impl FusedLinear {
    /// As [`candle_nn::linear()`]: `weight` `[out, in]` and `bias` `[out]` under `vb`.
    pub fn new(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self::from(candle_nn::linear(in_dim, out_dim, vb)?))
    }

    /// The wrapped candle module.
    pub fn inner(&self) -> &Linear {
        &self.inner
    }

    /// `relu(x Wᵀ + b)`.
    pub fn forward_relu(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        linear(x, self.inner.weight(), self.inner.bias(), Activation::Relu)
    }
}

impl From<Linear> for FusedLinear {
    fn from(inner: Linear) -> Self {
        Self { inner }
    }
}

impl Module for FusedLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        linear(
            x,
            self.inner.weight(),
            self.inner.bias(),
            Activation::Identity,
        )
    }
}

/// What follows the affine map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing.
    Identity,
    /// `max(0, ·)`.
    Relu,
}

/// `activation(x Wᵀ + bias)` for `x: [..., in]`, `w: [out, in]`, `bias: [out]`.
///
/// f32 CPU tensors run the fused op; anything else runs candle's ops.
pub fn linear(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    activation: Activation,
) -> candle_core::Result<Tensor> {
    let (out_dim, in_dim) = w.dims2()?;
    if x.dims().last() != Some(&in_dim) || bias.is_some_and(|b| b.dims() != [out_dim]) {
        candle_core::bail!(
            "linear: input {:?}, weight {:?} and bias {:?} do not fit",
            x.shape(),
            w.shape(),
            bias.map(Tensor::shape)
        )
    }
    let fused = custom_applies(x) && custom_applies(w) && bias.is_none_or(custom_applies);
    if !fused {
        let y = candle_nn::Linear::new(w.clone(), bias.cloned()).forward(x)?;
        return match activation {
            Activation::Identity => Ok(y),
            Activation::Relu => y.relu(),
        };
    }
    let mut out_dims = x.dims().to_vec();
    *out_dims.last_mut().expect("rank checked above") = out_dim;
    let x2 = x.contiguous()?.reshape(((), in_dim))?;
    let w = w.contiguous()?;
    let op = LinearOp {
        relu: activation == Activation::Relu,
    };
    let y = match bias {
        Some(b) => x2.apply_op3(&w, &b.contiguous()?, op)?,
        None => x2.apply_op2(&w, op)?,
    };
    y.reshape(out_dims)
}

/// The forward op on (`x [M, in]`, `w [out, in]`[, `b [out]`]).
#[derive(Debug, Clone, Copy)]
struct LinearOp {
    relu: bool,
}

impl LinearOp {
    fn forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, in_dim) = x.1.shape().dims2()?;
        let (out_dim, _) = w.1.shape().dims2()?;
        let x = MatRef::contiguous(f32_data(x.0, x.1, "linear input")?, m, in_dim);
        let w = MatRef::contiguous(f32_data(w.0, w.1, "linear weight")?, out_dim, in_dim);
        let mut y = match bias {
            Some((s, l)) => f32_data(s, l, "linear bias")?.repeat(m),
            None => vec![0.0; m * out_dim],
        };
        gemm_auto(&mut y, x, w.t(), Write::Accumulate);
        if self.relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        Ok((CpuStorage::F32(y), Shape::from((m, out_dim))))
    }

    /// `(dx, dw, db)` from the output gradient (masked by the ReLU first).
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let g = if self.relu {
            relu_backward(dy, y)?
        } else {
            dy.contiguous()?
        };
        let dx = g.apply_op2_no_bwd(w, &Product::GradW)?;
        let dw = g.apply_op2_no_bwd(x, &Product::GradTransposedX)?;
        let db = g.sum(0)?;
        Ok((dx, dw, db))
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward((xs, xl), (ws, wl), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, y, dy)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "linear-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward((xs, xl), (ws, wl), Some((bs, bl)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(x, w, y, dy)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// The two products of the backward pass, on (`g [M, out]`, second operand).
#[derive(Debug, Clone, Copy)]
enum Product {
    /// `g W` with `w [out, in]`: the input gradient `[M, in]`.
    GradW,
    /// `gᵀ x` with `x [M, in]`: the weight gradient `[out, in]`.
    GradTransposedX,
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        match self {
            Self::GradW => "linear-input-grad",
            Self::GradTransposedX => "linear-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        os: &CpuStorage,
        ol: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, out_dim) = gl.shape().dims2()?;
        let g = MatRef::contiguous(f32_data(gs, gl, "linear output grad")?, m, out_dim);
        let (a, b) = match self {
            Self::GradW => {
                let (_, in_dim) = ol.shape().dims2()?;
                let w = f32_data(os, ol, "linear weight")?;
                (g, MatRef::contiguous(w, out_dim, in_dim))
            }
            Self::GradTransposedX => {
                let (_, in_dim) = ol.shape().dims2()?;
                let x = f32_data(os, ol, "linear input")?;
                (g.t(), MatRef::contiguous(x, m, in_dim))
            }
        };
        let mut out = vec![0.0f32; a.rows() * b.cols()];
        gemm_auto(&mut out, a, b, Write::Overwrite);
        Ok((CpuStorage::F32(out), Shape::from((a.rows(), b.cols()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{check_grads_match, rand_tensor};

    fn reference(t: &[Tensor], activation: Activation) -> Tensor {
        let y = candle_nn::Linear::new(t[1].clone(), t.get(2).cloned())
            .forward(&t[0])
            .unwrap();
        match activation {
            Activation::Identity => y,
            Activation::Relu => y.relu().unwrap(),
        }
    }

    #[test]
    fn matches_candle_forward_and_backward() {
        for activation in [Activation::Identity, Activation::Relu] {
            for (x, bias) in [
                (vec![7, 5], true),
                (vec![2, 3, 5], true),
                (vec![4, 5], false),
            ] {
                let mut inputs = vec![rand_tensor(&x, 1), rand_tensor(&[6, 5], 2)];
                if bias {
                    inputs.push(rand_tensor(&[6], 3));
                }
                let ours = |t: &[Tensor]| linear(&t[0], &t[1], t.get(2), activation).unwrap();
                check_grads_match(&inputs, ours, |t| reference(t, activation), 4);
            }
        }
    }

    #[test]
    fn rejects_shapes_that_do_not_fit() {
        let x = rand_tensor(&[3, 4], 1);
        let w = rand_tensor(&[2, 5], 2);
        assert!(linear(&x, &w, None, Activation::Identity).is_err());
        let w = rand_tensor(&[2, 4], 2);
        let b = rand_tensor(&[3], 3);
        assert!(linear(&x, &w, Some(&b), Activation::Relu).is_err());
    }
}
