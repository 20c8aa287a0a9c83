//! Sparse linear layer: `y = x (W ⊙ M)^T + b` with `W` kept as the CSR (forward, weight
//! gradient) and CSC (input gradient) patterns of its active entries.
//!
//! The batch is the vector dimension. Each call first packs the active values of the
//! dense weight in pattern order (one ascending pass over `W`), then the forward and
//! the input gradient run through [`spmm_rows`]: each thread transposes a tile of up
//! to 64 batch rows in cache, and each non-zero `W[o, k]` contributes a contiguous
//! multiply-add `yT[o, :] += W[o, k] · xT[k, :]` into accumulators held in registers.
//! The masked weight gradient is a dot product over a batch tile per non-zero
//! ([`sparse_dots`]). Work is proportional to `nnz · batch` plus one read of `W`; the
//! kernels read strided inputs (such as the broadcast gradient of a sum) directly,
//! and a 2-D input adds no reshape nodes, so the backward pass leaves candle only the
//! gradient additions it does for every op.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::activation::bias_activation;
use super::masked_weight::MaskedWeight;
use super::simd::AlignedScratch;
use super::taps::{LANES, round_up};
use super::tiled::{CompressedRows, MatRef, sparse_dots, spmm_rows};
use super::{Activation, WeightGrad, check_bias, custom_applies, f32_data, mismatch};
use crate::{Mask, Result};
use rayon::prelude::*;

/// The custom kernel is used at or below this density; above it candle's dense gemm
/// wins. Chosen from `cargo run --release -p sparse-benches -- kernels` on a 2-core
/// AVX-512 CPU: the custom kernel is ahead at density 0.2 and about even (forward
/// behind) at 0.5.
pub const SPARSE_LINEAR_MAX_DENSITY: f64 = 0.3;

/// How the weight argument of the ops holds the weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Storage {
    /// The dense `[out, in]` matrix; pruned entries are ignored.
    Dense,
    /// The active entries only, `[nnz]` in CSR order ([`PackedSparseLinear`]).
    ///
    /// [`PackedSparseLinear`]: super::PackedSparseLinear
    Packed,
}

/// Row- and column-compressed index sets of the active entries of an `[out, in]` mask.
#[derive(Debug)]
pub(crate) struct CsrPattern {
    out: usize,
    inp: usize,
    /// CSR: row `o` lists the active input columns `k`.
    pub(super) csr: CompressedRows,
    /// CSC: column `k` lists the active output rows `o`.
    pub(super) csc: CompressedRows,
    /// CSR entry `i` is the weight's element `csr_offsets[i]` (`o * inp + k`).
    csr_offsets: Vec<usize>,
    /// CSC entry `i` is CSR entry `csc_to_csr[i]`.
    pub(super) csc_to_csr: Vec<usize>,
}

impl CsrPattern {
    pub(super) fn new(out: usize, inp: usize, bits: &[u8]) -> Self {
        let mut row_ptr = Vec::with_capacity(out + 1);
        let mut cols = Vec::new();
        row_ptr.push(0);
        // `max(1)`: a weight with zero columns has no entries but still `out` rows.
        for row in bits.chunks_exact(inp.max(1)).take(out) {
            cols.extend((0..inp as u32).filter(|&k| row[k as usize] != 0));
            row_ptr.push(cols.len());
        }
        row_ptr.resize(out + 1, cols.len());
        let mut col_ptr = vec![0usize; inp + 1];
        for &k in &cols {
            col_ptr[k as usize + 1] += 1;
        }
        for k in 0..inp {
            col_ptr[k + 1] += col_ptr[k];
        }
        let mut next = col_ptr.clone();
        let mut rows = vec![0u32; cols.len()];
        let mut csc_to_csr = vec![0usize; cols.len()];
        for o in 0..out {
            for (i, &k) in cols
                .iter()
                .enumerate()
                .take(row_ptr[o + 1])
                .skip(row_ptr[o])
            {
                let slot = &mut next[k as usize];
                rows[*slot] = o as u32;
                csc_to_csr[*slot] = i;
                *slot += 1;
            }
        }
        let mut csr_offsets = Vec::with_capacity(cols.len());
        for o in 0..out {
            csr_offsets.extend(
                cols[row_ptr[o]..row_ptr[o + 1]]
                    .iter()
                    .map(|&k| o * inp + k as usize),
            );
        }
        Self {
            out,
            inp,
            csr_offsets,
            csr: CompressedRows::new(inp, row_ptr, cols),
            csc: CompressedRows::new(out, col_ptr, rows),
            csc_to_csr,
        }
    }

    /// Number of active entries.
    pub(super) fn nnz(&self) -> usize {
        self.csr_offsets.len()
    }

    /// Position `o * in + k` in the dense weight of every active entry, in CSR order.
    pub(super) fn dense_offsets(&self) -> &[usize] {
        &self.csr_offsets
    }

    /// The active values of the dense row-major weight `w`, in CSR order.
    pub(super) fn pack(&self, w: &[f32]) -> Vec<f32> {
        gather(w, &self.csr_offsets)
    }

    /// The weight's active values in CSR order.
    fn csr_values<'a>(&self, w: &'a [f32], storage: Storage) -> Cow<'a, [f32]> {
        match storage {
            Storage::Dense => Cow::Owned(self.pack(w)),
            Storage::Packed => Cow::Borrowed(w),
        }
    }

    /// The weight's active values in CSC order.
    fn csc_values(&self, w: &[f32], storage: Storage) -> Vec<f32> {
        // Through the packed CSR values: reading the dense weight column by column
        // would touch a new cache line for every entry.
        gather(&self.csr_values(w, storage), &self.csc_to_csr)
    }

    /// The shape the weight argument must have under `storage`.
    fn weight_dims(&self, storage: Storage) -> Vec<usize> {
        match storage {
            Storage::Dense => vec![self.out, self.inp],
            Storage::Packed => vec![self.nnz()],
        }
    }

    fn check(&self, batch_in: usize, w: &Layout, storage: Storage) -> candle_core::Result<()> {
        if w.shape().dims() != self.weight_dims(storage) || batch_in != self.inp {
            candle_core::bail!(
                "sparse linear: pattern [{}, {}] with {} entries does not fit weight {:?} / input width {batch_in}",
                self.out,
                self.inp,
                self.nnz(),
                w.shape()
            )
        }
        Ok(())
    }
}

/// `w[offsets[i]]` for every `i`, in parallel: the weight is read once per call, in
/// ascending order, and the kernels then stream the packed values instead of gathering
/// from the dense weight once per batch tile.
fn gather(w: &[f32], offsets: &[usize]) -> Vec<f32> {
    let mut vals = vec![0.0f32; offsets.len()];
    vals.par_chunks_mut(GATHER_CHUNK)
        .zip(offsets.par_chunks(GATHER_CHUNK))
        .for_each(|(v, o)| {
            for (v, &i) in v.iter_mut().zip(o) {
                *v = w[i];
            }
        });
    vals
}

/// Entries per parallel work item of [`gather`].
const GATHER_CHUNK: usize = 16 * 1024;

/// Output rows per work item of the weight gradient.
const WGRAD_ROWS: usize = 16;

/// Floats of L2 the weight gradient's transposed `x` block may fill: half of a 1 MiB
/// L2, so that the block of `dy` rows a thread works on fits beside it.
const WGRAD_L2_FLOATS: usize = 128 * 1024;

thread_local! {
    /// The transposed `x` and `dy` blocks of the weight gradient, reused across calls.
    static WGRAD_SCRATCH: RefCell<(AlignedScratch, AlignedScratch)> =
        const { RefCell::new((AlignedScratch::new(), AlignedScratch::new())) };
}

/// The forward op on (`x: [B, in]`, `w`: `[out, in]` or packed `[nnz]`).
#[derive(Debug, Clone)]
pub(super) struct SparseLinearOp {
    pub(super) pattern: Arc<CsrPattern>,
    pub(super) storage: Storage,
    /// Packed storage has no pruned positions to return a gradient for, so it always
    /// gets the masked gradient.
    pub(super) weight_grad: WeightGrad,
}

impl CustomOp2 for SparseLinearOp {
    fn name(&self) -> &'static str {
        "sparse-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = MatRef::from_layout(xs, xl, "sparse linear input")?;
        let (b, p) = (x.rows(), &self.pattern);
        p.check(x.cols(), wl, self.storage)?;
        let w = f32_data(ws, wl, "sparse linear weight")?;
        let mut y = vec![0.0f32; b * p.out];
        let vals = p.csr_values(w, self.storage);
        spmm_rows(x, &p.csr, &vals, &mut y);
        Ok((CpuStorage::F32(y), Shape::from((b, p.out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let pattern = self.pattern.clone();
        let storage = self.storage;
        let dx = dy.apply_op2_no_bwd(w, &SparseLinearInputGrad { pattern, storage })?;
        let dw = match (self.weight_grad, storage) {
            (WeightGrad::Dense, Storage::Dense) => dy.t()?.matmul(x)?,
            _ => {
                let pattern = self.pattern.clone();
                x.apply_op2_no_bwd(dy, &SparseLinearWeightGrad { pattern, storage })?
            }
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// [`SparseLinearOp`] on packed values with a third argument, a dense `[out, in]`
/// probe that the forward pass ignores and whose gradient is the dense weight
/// gradient `dyᵀ x` (the packed layer's [`WeightGrad::Dense`]).
#[derive(Debug, Clone)]
pub(super) struct DenseGradProbeOp(pub(super) SparseLinearOp);

impl CustomOp3 for DenseGradProbeOp {
    fn name(&self) -> &'static str {
        "sparse-linear-dense-grad-probe"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        _probe: &CpuStorage,
        probe: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let p = &self.0.pattern;
        if probe.shape().dims() != [p.out, p.inp] {
            candle_core::bail!(
                "sparse linear: dense gradient probe {:?} does not fit the weight [{}, {}]",
                probe.shape(),
                p.out,
                p.inp
            )
        }
        self.0.cpu_fwd(xs, xl, ws, wl)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _probe: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.0.bwd(x, w, y, dy)?;
        Ok((dx, dw, Some(dy.t()?.matmul(x)?)))
    }
}

/// `dx = dy (W ⊙ M)` from (`dy: [B, out]`, `w`), through the CSC pattern.
struct SparseLinearInputGrad {
    pattern: Arc<CsrPattern>,
    storage: Storage,
}

impl CustomOp2 for SparseLinearInputGrad {
    fn name(&self) -> &'static str {
        "sparse-linear-input-grad"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dy = MatRef::from_layout(ds, dl, "sparse linear output grad")?;
        let (b, out, p) = (dy.rows(), dy.cols(), &self.pattern);
        p.check(p.inp, wl, self.storage)?;
        if out != p.out {
            candle_core::bail!("sparse linear input grad: dy width {out} != {}", p.out)
        }
        let w = f32_data(ws, wl, "sparse linear weight")?;
        let inp = p.inp;
        let mut dx = vec![0.0f32; b * inp];
        let vals = p.csc_values(w, self.storage);
        spmm_rows(dy, &p.csc, &vals, &mut dx);
        Ok((CpuStorage::F32(dx), Shape::from((b, inp))))
    }
}

/// `dW ⊙ M = (dy^T x) ⊙ M` from (`x`, `dy`), computed only at active entries and
/// returned dense (`[out, in]`) or packed (`[nnz]`) like the weight.
struct SparseLinearWeightGrad {
    pattern: Arc<CsrPattern>,
    storage: Storage,
}

impl CustomOp2 for SparseLinearWeightGrad {
    fn name(&self) -> &'static str {
        "sparse-linear-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = MatRef::from_layout(xs, xl, "sparse linear input")?;
        let dy = MatRef::from_layout(ds, dl, "sparse linear output grad")?;
        let (b, inp, out, p) = (x.rows(), x.cols(), dy.cols(), &self.pattern);
        if b != dy.rows() || inp != p.inp || out != p.out {
            candle_core::bail!(
                "sparse linear weight grad: x {:?} / dy {:?} do not fit the pattern",
                xl.shape(),
                dl.shape()
            )
        }
        let packed = packed_weight_grad(x, dy, p);
        Ok(match self.storage {
            Storage::Packed => (CpuStorage::F32(packed), Shape::from(p.nnz())),
            Storage::Dense => {
                let mut dw = vec![0.0f32; out * inp];
                for (&at, &g) in p.csr_offsets.iter().zip(&packed) {
                    dw[at] = g;
                }
                (CpuStorage::F32(dw), Shape::from((out, inp)))
            }
        })
    }
}

/// `Σ_b dy[b, o] · x[b, k]` for every active entry `(o, k)`, in CSR order.
fn packed_weight_grad(x: MatRef<'_>, dy: MatRef<'_>, p: &CsrPattern) -> Vec<f32> {
    let (b, inp, out) = (x.rows(), p.inp, p.out);
    let mut grads = vec![0.0f32; p.nnz()];
    if b * inp * out == 0 {
        return grads;
    }
    // Disjoint slices of `grads`, one per block of output rows, for the threads.
    let mut blocks = Vec::with_capacity(out.div_ceil(WGRAD_ROWS));
    let mut rest = &mut grads[..];
    for o0 in (0..out).step_by(WGRAD_ROWS) {
        let rows = o0..out.min(o0 + WGRAD_ROWS);
        let len = rows.clone().map(|o| p.csr.row(o).len()).sum();
        let (head, tail) = rest.split_at_mut(len);
        blocks.push((rows, head));
        rest = tail;
    }
    let nb_max = round_up((WGRAD_L2_FLOATS / inp.max(1)).clamp(LANES, 256));
    WGRAD_SCRATCH.with(|cell| {
        let (xt_buf, dyt_buf) = &mut *cell.borrow_mut();
        for b0 in (0..b).step_by(nb_max) {
            let nb = nb_max.min(b - b0);
            let bp = round_up(nb);
            let xt = xt_buf.slice(inp * bp);
            let dyt = dyt_buf.slice(out * bp);
            x.par_transpose_rows_into(b0, nb, xt, bp);
            dy.par_transpose_rows_into(b0, nb, dyt, bp);
            let (xt, dyt) = (&xt[..], &dyt[..]);
            blocks.par_iter_mut().for_each(|(rows, sums)| {
                let mut at = 0;
                for o in rows.clone() {
                    let cols = p.csr.row(o);
                    let dy_row = &dyt[o * bp..(o + 1) * bp];
                    sparse_dots(dy_row, xt, bp, cols, &mut sums[at..at + cols.len()]);
                    at += cols.len();
                }
            });
        }
    });
    grads
}

/// A linear layer `y = x (W ⊙ M)^T + b` over a masked weight `[out, in]`.
///
/// The active entries are compressed (CSR and CSC) when the mask is set; the values
/// are read from `weight` at every call, so a `Var`'s in-place optimizer updates need
/// no rebuild. [`forward`](Self::forward) runs the sparse kernel for f32 CPU tensors
/// at density ≤ [`SPARSE_LINEAR_MAX_DENSITY`] and candle's dense matmul otherwise.
#[derive(Debug, Clone)]
pub struct SparseLinear {
    w: MaskedWeight,
    bias: Option<Tensor>,
    activation: Activation,
    pub(super) name: Option<String>,
}

impl SparseLinear {
    /// A layer over `weight: [out, in]` and a mask of the same shape, without bias.
    pub fn new(weight: Tensor, mask: &Mask) -> Result<Self> {
        Ok(Self {
            w: MaskedWeight::new(weight, mask, 2, "[out, in]", "sparse linear")?,
            bias: None,
            activation: Activation::Identity,
            name: None,
        })
    }

    /// Adds a bias `[out]`.
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        check_bias("sparse linear bias [out]", self.w.weight.dims()[0], &bias)?;
        self.bias = Some(bias);
        Ok(self)
    }

    /// Applies `activation` after the bias, fused with it into one pass forward and
    /// one backward.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Chooses which weight gradient the backward pass returns.
    pub fn with_weight_grad(mut self, mode: WeightGrad) -> Self {
        self.w.weight_grad = mode;
        self
    }

    /// Sets which weight gradient the backward pass returns (e.g. [`WeightGrad::Dense`]
    /// only on the steps where gradient-based regrowth reads it).
    pub fn set_weight_grad(&mut self, mode: WeightGrad) {
        self.w.weight_grad = mode;
    }

    /// Replaces the mask and rebuilds the compressed patterns.
    pub fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        self.w.set_mask(mask)
    }

    /// Names the layer after its weight's entry in the [`SparseParams`](crate::SparseParams)
    /// registry, so that [`sync_masks`](super::sync_masks) can find its mask.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The mask the layer computes with.
    pub fn mask(&self) -> &Mask {
        &self.w.mask
    }

    /// Which weight gradient the backward pass returns.
    pub fn weight_grad(&self) -> WeightGrad {
        self.w.weight_grad
    }

    /// The fraction of active weights.
    pub fn density(&self) -> f64 {
        self.w.density
    }

    /// The (unmasked) weight tensor.
    pub fn weight(&self) -> &Tensor {
        &self.w.weight
    }

    /// `x (W ⊙ M)^T + b` for `x: [.., in]`, choosing the faster kernel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.w.density <= SPARSE_LINEAR_MAX_DENSITY
            && custom_applies(x)
            && custom_applies(&self.w.weight)
        {
            self.forward_custom(x)
        } else {
            self.forward_candle(x)
        }
    }

    /// [`forward`](Self::forward) forced onto the sparse kernel.
    pub fn forward_custom(&self, x: &Tensor) -> Result<Tensor> {
        self.with_flat_batch(x, |x2| {
            let op = SparseLinearOp {
                pattern: self.w.pattern.clone(),
                storage: Storage::Dense,
                weight_grad: self.w.weight_grad,
            };
            Ok(x2.apply_op2(&self.w.weight.contiguous()?, op)?)
        })
    }

    /// [`forward`](Self::forward) through candle's dense matmul on the masked weight.
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        self.with_flat_batch(x, |x2| {
            let w = self.w.effective()?;
            Ok(x2.matmul(&w.t()?)?)
        })
    }

    fn with_flat_batch(
        &self,
        x: &Tensor,
        f: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (out, inp) = (self.w.weight.dims()[0], self.w.weight.dims()[1]);
        linear_on_rows(x, out, inp, self.bias.as_ref(), self.activation, f)
    }
}

/// `f` applied to `x: [.., in]` seen as `[rows, in]`, plus `bias`, through
/// `activation`, reshaped back to `[.., out]`.
pub(super) fn linear_on_rows(
    x: &Tensor,
    out: usize,
    inp: usize,
    bias: Option<&Tensor>,
    activation: Activation,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let dims = x.dims();
    if dims.is_empty() || dims[dims.len() - 1] != inp {
        return Err(mismatch("sparse linear input [.., in]", &[inp], dims));
    }
    let rows = dims[..dims.len() - 1].iter().product::<usize>();
    // A same-shape reshape would still add autograd nodes, each costing a zero-filled
    // gradient buffer and an addition in the backward pass.
    let y = if dims.len() == 2 {
        f(x)?
    } else {
        f(&x.reshape((rows, inp))?)?
    };
    let y = match (bias, activation) {
        (Some(b), _) => bias_activation(&y, b, activation)?,
        (None, Activation::Identity) => y,
        (None, Activation::Relu) => y.relu()?,
    };
    Ok(if dims.len() == 2 {
        y
    } else {
        let mut y_dims = dims[..dims.len() - 1].to_vec();
        y_dims.push(out);
        y.reshape(y_dims)?
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
    ) -> SparseLinear {
        let mask = Mask::from_bits(w.dims(), rand_bits(w.elem_count(), density, seed)).unwrap();
        let l = SparseLinear::new(w.clone(), &mask)
            .unwrap()
            .with_weight_grad(mode);
        match b {
            Some(b) => l.with_bias(b.clone()).unwrap(),
            None => l,
        }
    }

    fn case(
        batch: usize,
        inp: usize,
        out: usize,
        density: f64,
        bias: bool,
        mode: WeightGrad,
        seed: u64,
    ) {
        let mut inputs = vec![
            rand_tensor(&[batch, inp], seed),
            rand_tensor(&[out, inp], seed + 1),
        ];
        if bias {
            inputs.push(rand_tensor(&[out], seed + 2));
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
        for (i, &density) in [0.0, 0.05, 0.3, 1.0].iter().enumerate() {
            let s = 100 * i as u64;
            case(1, 7, 5, density, true, WeightGrad::Masked, s + 1);
            case(19, 33, 17, density, false, WeightGrad::Masked, s + 2);
            case(40, 20, 50, density, true, WeightGrad::Dense, s + 3);
            case(3, 1, 1, density, false, WeightGrad::Dense, s + 4);
        }
    }

    #[test]
    fn pattern_lists_rows_and_columns() {
        // [[1 0 1], [0 1 1]]
        let p = CsrPattern::new(2, 3, &[1, 0, 1, 0, 1, 1]);
        assert_eq!(p.csr.row(0), &[0, 2]);
        assert_eq!(p.csr.row(1), &[1, 2]);
        assert_eq!(p.csc.row(0), &[0]);
        assert_eq!(p.csc.row(1), &[1]);
        assert_eq!(p.csc.row(2), &[0, 1]);
        assert_eq!(p.csc_to_csr, vec![0, 2, 1, 3]);
    }

    #[test]
    fn forward_picks_a_path_by_density_with_equal_results() {
        use crate::kernels::testutil::assert_close;
        let x = rand_tensor(&[5, 12], 1);
        for density in [0.1, 0.9] {
            let l = layer(
                &rand_tensor(&[7, 12], 2),
                None,
                density,
                3,
                WeightGrad::Masked,
            );
            assert_close(
                &l.forward(&x).unwrap(),
                &l.forward_custom(&x).unwrap(),
                "custom",
            );
            assert_close(
                &l.forward(&x).unwrap(),
                &l.forward_candle(&x).unwrap(),
                "candle",
            );
        }
    }

    #[test]
    fn accepts_leading_batch_dims() {
        let w = rand_tensor(&[4, 6], 1);
        let l = layer(&w, None, 0.5, 2, WeightGrad::Masked);
        let x = rand_tensor(&[2, 3, 6], 3);
        let y = l.forward_custom(&x).unwrap();
        assert_eq!(y.dims(), &[2, 3, 4]);
        crate::kernels::testutil::assert_close(&y, &l.forward_candle(&x).unwrap(), "3-d input");
    }

    #[test]
    fn gradients_pass_finite_differences() {
        let inputs = [rand_tensor(&[3, 8], 1), rand_tensor(&[5, 8], 2)];
        let f = |t: &[Tensor]| {
            layer(&t[1], None, 0.4, 3, WeightGrad::Masked)
                .forward_custom(&t[0])
                .unwrap()
        };
        finite_difference_check(&inputs, f, 4);
    }
}
