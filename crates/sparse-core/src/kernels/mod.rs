//! Fast CPU kernels for sparse training, as candle custom ops with forward and backward.
//!
//! candle's CPU backend runs grouped convolutions as one convolution per group and
//! computes every convolution's input gradient with a direct `conv_transpose2d` loop,
//! and it has no sparse operations at all. The kernels here fill those gaps:
//!
//! | Layer-level entry point | Kernel |
//! |---|---|
//! | [`depthwise_conv2d`] | depthwise KxN conv2d, stride 1, "same" padding |
//! | [`SparseDepthwiseConv2d`] | the same, skipping the taps a [`Mask`](crate::Mask) prunes |
//! | [`SparseLinear`] | `x (W ⊙ M)^T` over a dense `W`, through CSR/CSC index sets of its active entries |
//! | [`PackedSparseLinear`] | the same with `W` stored as its active values only (a [`PackedWeight`], `[nnz]`), plus a dense weight gradient on request |
//! | [`SparseConv1d`] | conv1d over the active taps only, DSN-style "same" padding |
//! | [`conv2d`] | dense conv2d, one image at a time through im2col + gemm, with a gemm backward |
//! | [`SparseConv2d`] | conv2d over the active weights of a masked `[O, C, kh, kw]` weight only (shifted-plane taps at stride 1, sparse im2col otherwise) |
//! | [`PackedSparseConv2d`] | the same over a [`PackedWeight`] (`[nnz]` values shared with the registry and the optimizer), plus a dense weight gradient on request |
//! | [`FusedLinear`] ([`linear`]) | candle-nn's `Linear` (same variables) as one product over the bias, ReLU folded in on request |
//! | [`add_relu`] | a residual `relu(a + b)` in one pass forward and one backward |
//! | [`cross_entropy`] | softmax cross-entropy with label smoothing, one pass per row forward and backward |
//! | [`FusedBatchNorm`] | candle-nn's `BatchNorm` (same variables) in two fused passes forward and two backward |
//! | [`layer_norm`] | layer normalisation over the last dimension, one pass forward and two backward (candle's fused op has no backward) |
//! | [`softmax_last_dim`] | softmax over the last dimension, one pass each way (candle's fused op has no backward) |
//! | [`SparseMatrix`] ([`spmm`]) | a constant CSR matrix × a dense operand, with backward (GNN propagation) |
//!
//! The four sparse layers implement one trait, [`SparseLayer`] (a candle `Module`
//! with a settable mask and weight-gradient mode), and [`sync_masks`] hands them the
//! registry's masks after a topology update.
//!
//! Each entry point decides between the custom kernel and candle's own op (the custom
//! one needs an f32 tensor on the CPU; the sparse layers over a dense weight fall back
//! to candle's dense op above a density threshold measured with `sparse-benches`, while
//! [`PackedSparseLinear`], whose candle path must first scatter its values into a dense
//! matrix, measured faster or even at every density). Both paths compute the
//! same function up to float rounding. The `*_candle` functions are the plain candle
//! references the tests and benchmarks compare against.
//!
//! All kernels run on rayon's global pool and dispatch at run time to AVX-512, AVX2+FMA
//! or baseline code.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use sparse_core::Mask;
//! use sparse_core::kernels::{SparseLinear, WeightGrad, depthwise_conv2d};
//!
//! # fn main() -> sparse_core::Result<()> {
//! let dev = Device::Cpu;
//! // A SLaK-style 51x5 depthwise layer: "same" padding, stride 1.
//! let x = Tensor::randn(0f32, 1.0, (2, 8, 16, 16), &dev)?;
//! let w = Var::randn(0f32, 0.1, (8, 1, 51, 5), &dev)?;
//! let y = depthwise_conv2d(&x, w.as_tensor(), None)?;
//! assert_eq!(y.dims(), &[2, 8, 16, 16]);
//!
//! // A 90 %-sparse linear layer; the optimizer updates `weight` in place.
//! let weight = Var::randn(0f32, 0.1, (32, 64), &dev)?;
//! let keep: Vec<bool> = (0..32 * 64).map(|i| i % 10 == 0).collect();
//! let mask = Mask::from_bools(&[32, 64], &keep)?;
//! let layer = SparseLinear::new(weight.as_tensor().clone(), &mask)?.with_weight_grad(WeightGrad::Masked);
//! let x = Tensor::randn(0f32, 1.0, (4, 64), &dev)?;
//! let grads = layer.forward(&x)?.sum_all()?.backward()?;
//! let dw = grads.get(weight.as_tensor()).expect("weight gradient");
//! assert_eq!(dw.dims(), &[32, 64]);
//! # Ok(())
//! # }
//! ```

mod activation;
mod batch_norm;
mod conv2d;
mod cross_entropy;
mod depthwise;
mod gemm;
mod layer;
mod layer_norm;
mod linear;
mod masked_weight;
mod packed_conv2d;
mod packed_linear;
pub(crate) mod packed_weight;
mod simd;
mod softmax;
mod sparse_conv1d;
mod sparse_conv2d;
mod sparse_depthwise;
mod sparse_linear;
pub mod spmm;
mod taps;
mod tiled;
mod transpose;

pub use activation::add_relu;
pub use batch_norm::FusedBatchNorm;
pub use conv2d::{Conv2dParams, conv2d, conv2d_candle, conv2d_custom};
pub use cross_entropy::cross_entropy;
pub use depthwise::{depthwise_conv2d, depthwise_conv2d_candle, depthwise_conv2d_custom};
pub use layer::{SparseLayer, set_weight_grads_for_step, sync_masks};
pub use layer_norm::layer_norm;
pub use linear::{Activation, FusedLinear, linear};
pub use packed_conv2d::PackedSparseConv2d;
pub use packed_linear::PackedSparseLinear;
pub use packed_weight::PackedWeight;
pub use softmax::softmax_last_dim;
pub use sparse_conv1d::{Conv1dPadding, SPARSE_CONV1D_MAX_DENSITY, SparseConv1d, conv1d_candle};
pub use sparse_conv2d::{SPARSE_CONV2D_MAX_DENSITY, SparseConv2d};
pub use sparse_depthwise::SparseDepthwiseConv2d;
pub use sparse_linear::{SPARSE_LINEAR_MAX_DENSITY, SparseLinear};
pub use spmm::SparseMatrix;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Tensor};

/// Which weight gradient a sparse kernel returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightGrad {
    /// The gradient of the loss with respect to the weight, which is zero at pruned
    /// positions (the effective weight is `w ⊙ mask`). Cost proportional to the active
    /// entries. Use this on ordinary training steps.
    #[default]
    Masked,
    /// The gradient with respect to the *effective* weight at every position, pruned
    /// ones included, as gradient-based regrowth (RigL) needs. Costs a dense product.
    Dense,
}

/// True when the custom CPU kernels can run on this tensor (f32 on the CPU).
pub(crate) fn custom_applies(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// The contiguous f32 data of a custom op's argument.
pub(crate) fn f32_data<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{what}: only f32 is supported, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: the input must be contiguous"),
    }
}

/// Checks that `t` has rank `rank` and returns its dims.
pub(crate) fn dims_of<'a>(t: &'a Tensor, rank: usize, what: &str) -> crate::Result<&'a [usize]> {
    let dims = t.dims();
    if dims.len() != rank {
        return Err(crate::SparseError::ShapeMismatch {
            what: format!("{what} (rank {rank} expected)"),
            expected: vec![rank],
            got: dims.to_vec(),
        });
    }
    Ok(dims)
}

/// A shape-mismatch error for `what`.
pub(crate) fn mismatch(what: &str, expected: &[usize], got: &[usize]) -> crate::SparseError {
    crate::SparseError::ShapeMismatch {
        what: what.to_string(),
        expected: expected.to_vec(),
        got: got.to_vec(),
    }
}

/// Checks that `bias` has one value per output channel (`channels`: the first
/// dimension of the weight).
pub(crate) fn check_bias(what: &str, channels: usize, bias: &Tensor) -> crate::Result<()> {
    if bias.dims() == [channels] {
        Ok(())
    } else {
        Err(mismatch(what, &[channels], bias.dims()))
    }
}

#[cfg(test)]
pub(crate) mod testutil;
