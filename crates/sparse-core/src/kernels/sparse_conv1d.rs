//! Sparse conv1d over the active taps of a masked `[Cout, Cin, K]` weight, stride 1,
//! "same"-length output (total padding `K - 1`), as DSN's large-kernel convolutions use.
//!
//! Every output row `y[b, o, :]` is a sum of shifted rows of the padded input, one per
//! active tap `(i, k)` of output channel `o`, computed by the tap engine; the input
//! gradient is the same with the taps grouped by input channel, and the weight gradient
//! correlates `dy` with the padded input at the active taps only.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{MatRef, Write, gemm};
use super::sparse_depthwise::effective_weight;
use super::taps::{LANES, Tap, reduce_lanes, round_up, taps_fwd, taps_wgrad_lanes};
use super::{WeightGrad, check_bias, custom_applies, dims_of, f32_data, mismatch};
use crate::{Mask, Result};

/// The custom kernel is used at or below this weight density; above it candle's dense
/// im2col conv1d is used. Chosen from `cargo run --release -p sparse-benches -- kernels`
/// on a 2-core AVX-512 CPU: the custom kernel is still 1.3–3x ahead at density 0.5 and
/// about even with candle when dense.
pub const SPARSE_CONV1D_MAX_DENSITY: f64 = 0.5;

/// How a conv1d keeps the output length equal to the input length (total padding
/// `K - 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv1dPadding {
    /// Zeros, `(K - 1) / 2` on the left and the rest on the right (PyTorch's "same").
    Zeros,
    /// All `K - 1` on the right, repeating the last input value (DSN's choice).
    ReplicateRight,
}

impl Conv1dPadding {
    fn left(self, k: usize) -> usize {
        match self {
            Self::Zeros => (k - 1) / 2,
            Self::ReplicateRight => 0,
        }
    }
}

/// Active taps of a `[Cout, Cin, K]` weight, listed per output and per input channel.
#[derive(Debug)]
struct Conv1dPattern {
    cout: usize,
    cin: usize,
    k: usize,
    /// For each `o`: `i * K + k` of its active taps.
    by_out: Vec<Vec<u32>>,
    /// For each `i`: `o * K + k` of its active taps.
    by_in: Vec<Vec<u32>>,
}

impl Conv1dPattern {
    fn new(cout: usize, cin: usize, k: usize, bits: &[u8]) -> Self {
        let mut by_out = vec![Vec::new(); cout];
        let mut by_in = vec![Vec::new(); cin];
        for o in 0..cout {
            for i in 0..cin {
                for kk in 0..k {
                    if bits[(o * cin + i) * k + kk] != 0 {
                        by_out[o].push((i * k + kk) as u32);
                        by_in[i].push((o * k + kk) as u32);
                    }
                }
            }
        }
        Self {
            cout,
            cin,
            k,
            by_out,
            by_in,
        }
    }
}

/// Sizes shared by the forward and backward passes.
#[derive(Debug, Clone, Copy)]
struct Geom {
    b: usize,
    cin: usize,
    cout: usize,
    l: usize,
    k: usize,
    left: usize,
    /// Output row width rounded to the tile granularity.
    lr: usize,
    /// Row stride of the padded input.
    xs: usize,
}

impl Geom {
    fn new(b: usize, cin: usize, l: usize, p: &Conv1dPattern, padding: Conv1dPadding) -> Self {
        let lr = round_up(l);
        Self {
            b,
            cin,
            cout: p.cout,
            l,
            k: p.k,
            left: padding.left(p.k),
            lr,
            xs: lr + p.k - 1,
        }
    }
}

/// `[B, Cin, L]` → `[B, Cin, xs]` with the padding written out.
fn pad_input(x: &[f32], g: &Geom, padding: Conv1dPadding) -> Vec<f32> {
    let mut xp = vec![0.0f32; g.b * g.cin * g.xs];
    xp.par_chunks_mut(g.xs)
        .zip(x.par_chunks(g.l))
        .for_each(|(dst, src)| {
            dst[g.left..g.left + g.l].copy_from_slice(src);
            if padding == Conv1dPadding::ReplicateRight && g.l > 0 {
                dst[g.l..g.l + g.k - 1].fill(src[g.l - 1]);
            }
        });
    xp
}

#[derive(Debug, Clone)]
struct Conv1dOp {
    pattern: Arc<Conv1dPattern>,
    padding: Conv1dPadding,
    weight_grad: WeightGrad,
}

impl Conv1dOp {
    fn geom(&self, xl: &Layout, wl: &Layout) -> candle_core::Result<Geom> {
        let (b, cin, l) = xl.shape().dims3()?;
        let p = &self.pattern;
        if wl.shape().dims() != [p.cout, p.cin, p.k] || cin != p.cin || p.k == 0 {
            candle_core::bail!(
                "sparse conv1d: weight {:?} / input {:?} do not fit the pattern",
                wl.shape(),
                xl.shape()
            )
        }
        Ok(Geom::new(b, cin, l, p, self.padding))
    }
}

impl CustomOp2 for Conv1dOp {
    fn name(&self) -> &'static str {
        "sparse-conv1d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geom(xl, wl)?;
        let x = f32_data(xs, xl, "sparse conv1d input")?;
        let w = f32_data(ws, wl, "sparse conv1d weight")?;
        let p = &self.pattern;
        let xp = pad_input(x, &g, self.padding);
        let taps: Vec<Vec<Tap>> = (0..g.cout)
            .map(|o| {
                let row = &w[o * g.cin * g.k..(o + 1) * g.cin * g.k];
                p.by_out[o]
                    .iter()
                    .map(|&t| {
                        let (i, kk) = (t as usize / g.k, t as usize % g.k);
                        Tap {
                            off: i * g.xs + kk,
                            w: row[t as usize],
                        }
                    })
                    .collect()
            })
            .collect();
        let mut y = vec![0.0f32; g.b * g.cout * g.l];
        let plane = g.cin * g.xs;
        if g.l > 0 {
            y.par_chunks_mut(g.l).enumerate().for_each_init(
                || vec![0.0f32; g.lr],
                |tmp, (row, out)| {
                    let (b, o) = (row / g.cout, row % g.cout);
                    taps_fwd(
                        &xp[b * plane..(b + 1) * plane],
                        0,
                        &taps[o],
                        0.0,
                        tmp,
                        0,
                        1,
                        g.lr,
                    );
                    out.copy_from_slice(&tmp[..g.l]);
                },
            );
        }
        Ok((CpuStorage::F32(y), Shape::from((g.b, g.cout, g.l))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &dy, &Conv1dInputGrad(self.clone()))?;
        let dw = match self.weight_grad {
            WeightGrad::Masked => x.apply_op2_no_bwd(
                &dy,
                &Conv1dWeightGrad {
                    op: self.clone(),
                    dense: false,
                },
            )?,
            WeightGrad::Dense => x.apply_op2_no_bwd(
                &dy,
                &Conv1dWeightGrad {
                    op: self.clone(),
                    dense: true,
                },
            )?,
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// `dx` from (`x` for its shape, `w`, `dy`).
struct Conv1dInputGrad(Conv1dOp);

impl candle_core::CustomOp3 for Conv1dInputGrad {
    fn name(&self) -> &'static str {
        "sparse-conv1d-input-grad"
    }

    fn cpu_fwd(
        &self,
        _xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0.geom(xl, wl)?;
        if dl.shape().dims() != [g.b, g.cout, g.l] {
            candle_core::bail!("sparse conv1d input grad: dy {:?} does not fit", dl.shape())
        }
        let w = f32_data(ws, wl, "sparse conv1d weight")?;
        let dy = f32_data(ds, dl, "sparse conv1d output grad")?;
        let p = &self.0.pattern;
        // Gradient w.r.t. the padded input (length lp = L + K - 1): correlate dy, itself
        // padded by K - 1 on the left, with the kernel reversed.
        let lp = g.l + g.k - 1;
        let upr = round_up(lp);
        let ys = upr + g.k - 1;
        let mut dyp = vec![0.0f32; g.b * g.cout * ys];
        if g.l > 0 {
            dyp.par_chunks_mut(ys)
                .zip(dy.par_chunks(g.l))
                .for_each(|(dst, src)| {
                    dst[g.k - 1..g.k - 1 + g.l].copy_from_slice(src);
                });
        }
        let taps: Vec<Vec<Tap>> = (0..g.cin)
            .map(|i| {
                p.by_in[i]
                    .iter()
                    .map(|&t| {
                        let (o, kk) = (t as usize / g.k, t as usize % g.k);
                        Tap {
                            off: o * ys + (g.k - 1 - kk),
                            w: w[(o * g.cin + i) * g.k + kk],
                        }
                    })
                    .collect()
            })
            .collect();
        let mut dx = vec![0.0f32; g.b * g.cin * g.l];
        let plane = g.cout * ys;
        let padding = self.0.padding;
        if g.l > 0 {
            dx.par_chunks_mut(g.l).enumerate().for_each_init(
                || vec![0.0f32; upr],
                |tmp, (row, out)| {
                    let (b, i) = (row / g.cin, row % g.cin);
                    taps_fwd(
                        &dyp[b * plane..(b + 1) * plane],
                        0,
                        &taps[i],
                        0.0,
                        tmp,
                        0,
                        1,
                        upr,
                    );
                    out.copy_from_slice(&tmp[g.left..g.left + g.l]);
                    if padding == Conv1dPadding::ReplicateRight {
                        out[g.l - 1] += tmp[g.l..lp].iter().sum::<f32>();
                    }
                },
            );
        }
        Ok((CpuStorage::F32(dx), Shape::from((g.b, g.cin, g.l))))
    }
}

/// `dw` (`[Cout, Cin, K]`) from (`x`, `dy`), at the active taps or everywhere.
struct Conv1dWeightGrad {
    op: Conv1dOp,
    dense: bool,
}

impl CustomOp2 for Conv1dWeightGrad {
    fn name(&self) -> &'static str {
        "sparse-conv1d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, cin, l) = xl.shape().dims3()?;
        let p = &self.op.pattern;
        if cin != p.cin || dl.shape().dims() != [b, p.cout, l] {
            candle_core::bail!(
                "sparse conv1d weight grad: x {:?} / dy {:?} do not fit",
                xl.shape(),
                dl.shape()
            )
        }
        let g = Geom::new(b, cin, l, p, self.op.padding);
        let x = f32_data(xs, xl, "sparse conv1d input")?;
        let dy = f32_data(ds, dl, "sparse conv1d output grad")?;
        let xp = pad_input(x, &g, self.op.padding);
        if self.dense {
            return Ok((
                CpuStorage::F32(dense_weight_grad(&xp, dy, &g)),
                Shape::from((g.cout, g.cin, g.k)),
            ));
        }
        let mut dyp = vec![0.0f32; g.b * g.cout * g.lr];
        if g.l > 0 {
            dyp.par_chunks_mut(g.lr)
                .zip(dy.par_chunks(g.l))
                .for_each(|(dst, src)| {
                    dst[..g.l].copy_from_slice(src);
                });
        }
        let ck = g.cin * g.k;
        let mut dw = vec![0.0f32; g.cout * ck];
        let plane = g.cin * g.xs;
        dw.par_chunks_mut(ck).enumerate().for_each_init(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(offs, grads, lane_sums), (o, dw_row)| {
                let list = &p.by_out[o];
                offs.clear();
                offs.extend(
                    list.iter()
                        .map(|&t| (t as usize / g.k) * g.xs + t as usize % g.k),
                );
                grads.clear();
                grads.resize(list.len(), 0.0f32);
                // Image by image, so that one padded image (not the whole batch) is the
                // working set; the partial sums stay lane-wise across images and are
                // reduced once per tap.
                lane_sums.clear();
                lane_sums.resize(list.len() * LANES, 0.0f32);
                for b in 0..g.b {
                    let d = &dyp[(b * g.cout + o) * g.lr..(b * g.cout + o + 1) * g.lr];
                    let x_b = &xp[b * plane..(b + 1) * plane];
                    taps_wgrad_lanes(d, 0, x_b, 0, offs, lane_sums, 1, g.lr);
                }
                reduce_lanes(lane_sums, grads);
                for (&t, &gv) in list.iter().zip(grads.iter()) {
                    dw_row[t as usize] = gv;
                }
            },
        );
        Ok((CpuStorage::F32(dw), Shape::from((g.cout, g.cin, g.k))))
    }
}

/// The dense weight gradient `dw[o, i, k] = Σ_b Σ_l dy[b, o, l] · xp[b, i, l + k]` as
/// one product per input channel and image on the `gemm` crate: the shifted rows
/// `xp[b, i, k..k + L]` form a Hankel matrix, a strided view (both strides 1) that
/// needs no copy. Channels are spread over rayon's threads, images summed in order.
fn dense_weight_grad(xp: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let blocks: Vec<Vec<f32>> = (0..g.cin)
        .into_par_iter()
        .map(|i| {
            let mut block = vec![0.0f32; g.cout * g.k];
            for b in 0..g.b {
                let dy_b =
                    MatRef::contiguous(&dy[b * g.cout * g.l..(b + 1) * g.cout * g.l], g.cout, g.l);
                let row = (b * g.cin + i) * g.xs;
                let shifted = MatRef::strided(&xp[row..row + g.xs], g.l, g.k, 1, 1);
                gemm(&mut block, dy_b, shifted, Write::Accumulate);
            }
            block
        })
        .collect();
    let mut dw = vec![0.0f32; g.cout * g.cin * g.k];
    for (i, block) in blocks.iter().enumerate() {
        for (o, taps) in block.chunks_exact(g.k).enumerate() {
            dw[(o * g.cin + i) * g.k..(o * g.cin + i + 1) * g.k].copy_from_slice(taps);
        }
    }
    dw
}

/// A conv1d (stride 1, "same"-length output) over a masked weight `[Cout, Cin, K]`:
/// `y = conv1d(pad(x), W ⊙ M) + b` for `x: [B, Cin, L]`.
///
/// Active taps are listed per output and per input channel when the mask is set;
/// weight values are read at every call. [`forward`](Self::forward) runs the sparse
/// kernel for f32 CPU tensors at density ≤ [`SPARSE_CONV1D_MAX_DENSITY`] and candle's
/// dense conv1d otherwise.
#[derive(Debug, Clone)]
pub struct SparseConv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    mask_tensor: Tensor,
    pattern: Arc<Conv1dPattern>,
    padding: Conv1dPadding,
    density: f64,
    weight_grad: WeightGrad,
    mask: Mask,
    pub(super) name: Option<String>,
}

impl SparseConv1d {
    /// A layer over `weight: [Cout, Cin, K]` (K ≥ 1), a mask of its shape and a padding.
    pub fn new(weight: Tensor, mask: &Mask, padding: Conv1dPadding) -> Result<Self> {
        let dims = dims_of(&weight, 3, "sparse conv1d weight [Cout, Cin, K]")?;
        if dims[2] == 0 {
            return Err(mismatch(
                "sparse conv1d kernel size (K >= 1)",
                &[1],
                &dims[2..],
            ));
        }
        let mut layer = Self {
            mask_tensor: mask.to_tensor(weight.dtype(), weight.device())?,
            pattern: Arc::new(Conv1dPattern::new(0, 0, dims[2], &[])),
            weight,
            bias: None,
            padding,
            density: 0.0,
            weight_grad: WeightGrad::Masked,
            mask: mask.clone(),
            name: None,
        };
        layer.set_mask(mask)?;
        Ok(layer)
    }

    /// Adds a bias `[Cout]`.
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        check_bias("sparse conv1d bias [Cout]", self.weight.dims()[0], &bias)?;
        self.bias = Some(bias);
        Ok(self)
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

    /// Replaces the mask and rebuilds the tap lists.
    pub fn set_mask(&mut self, mask: &Mask) -> Result<()> {
        let dims = self.weight.dims();
        if mask.shape() != dims {
            return Err(mismatch("sparse conv1d mask", dims, mask.shape()));
        }
        self.pattern = Arc::new(Conv1dPattern::new(
            dims[0],
            dims[1],
            dims[2],
            mask.as_bits(),
        ));
        self.mask_tensor = mask.to_tensor(self.weight.dtype(), self.weight.device())?;
        self.density = mask.density();
        self.mask = mask.clone();
        Ok(())
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

    /// The fraction of active weights.
    pub fn density(&self) -> f64 {
        self.density
    }

    /// The (unmasked) weight tensor.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `conv1d(pad(x), W ⊙ M) + b` for `x: [B, Cin, L]`, choosing the faster kernel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.density <= SPARSE_CONV1D_MAX_DENSITY
            && custom_applies(x)
            && custom_applies(&self.weight)
        {
            self.forward_custom(x)
        } else {
            self.forward_candle(x)
        }
    }

    /// [`forward`](Self::forward) forced onto the sparse kernel.
    pub fn forward_custom(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let op = Conv1dOp {
            pattern: self.pattern.clone(),
            padding: self.padding,
            weight_grad: self.weight_grad,
        };
        let y = x.contiguous()?.apply_op2(&self.weight.contiguous()?, op)?;
        self.add_bias(y)
    }

    /// [`forward`](Self::forward) through candle's dense conv1d on the masked weight.
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let w = effective_weight(&self.weight, &self.mask_tensor, self.weight_grad)?;
        conv1d_candle(x, &w, self.bias.as_ref(), self.padding)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let xd = dims_of(x, 3, "sparse conv1d input [B, Cin, L]")?;
        let cin = self.weight.dims()[1];
        if xd[1] != cin || xd[2] == 0 {
            return Err(mismatch(
                "sparse conv1d input [B, Cin, L >= 1]",
                &[xd[0], cin, xd[2].max(1)],
                xd,
            ));
        }
        Ok(())
    }

    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1))?)?,
            None => y,
        })
    }
}

/// Candle's dense convolution with the same "same"-length padding (the reference):
/// `x: [B, Cin, L]`, `w: [Cout, Cin, K]`, optional `bias: [Cout]`.
pub fn conv1d_candle(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    padding: Conv1dPadding,
) -> Result<Tensor> {
    let wd = dims_of(w, 3, "conv1d weight [Cout, Cin, K]")?;
    let k = wd[2];
    let left = padding.left(k);
    let xp = match padding {
        Conv1dPadding::Zeros => x.pad_with_zeros(2, left, k - 1 - left)?,
        Conv1dPadding::ReplicateRight => x.pad_with_same(2, 0, k - 1)?,
    };
    // Through conv2d with a 1xK kernel: candle 0.11.1's own conv1d returns a wrong input
    // gradient for some shapes (e.g. x [2, 4, 38], w [3, 4, 6]; found by this module's
    // tests), while its conv2d gradients are right.
    let y = xp
        .unsqueeze(2)?
        .conv2d(&w.unsqueeze(2)?, 0, 1, 1, 1)?
        .squeeze(2)?;
    Ok(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1))?)?,
        None => y,
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
        pad: Conv1dPadding,
        mode: WeightGrad,
    ) -> SparseConv1d {
        let mask = Mask::from_bits(w.dims(), rand_bits(w.elem_count(), density, seed)).unwrap();
        let l = SparseConv1d::new(w.clone(), &mask, pad)
            .unwrap()
            .with_weight_grad(mode);
        match b {
            Some(b) => l.with_bias(b.clone()).unwrap(),
            None => l,
        }
    }

    fn case(
        dims: [usize; 5],
        density: f64,
        bias: bool,
        pad: Conv1dPadding,
        mode: WeightGrad,
        seed: u64,
    ) {
        let [b, cin, cout, l, k] = dims;
        let mut inputs = vec![
            rand_tensor(&[b, cin, l], seed),
            rand_tensor(&[cout, cin, k], seed + 1),
        ];
        if bias {
            inputs.push(rand_tensor(&[cout], seed + 2));
        }
        let ours = |t: &[Tensor]| {
            layer(&t[1], t.get(2), density, seed, pad, mode)
                .forward_custom(&t[0])
                .unwrap()
        };
        let reference = |t: &[Tensor]| {
            layer(&t[1], t.get(2), density, seed, pad, mode)
                .forward_candle(&t[0])
                .unwrap()
        };
        check_grads_match(&inputs, ours, reference, seed + 3);
    }

    #[test]
    fn matches_masked_dense_reference() {
        use Conv1dPadding::*;
        use WeightGrad::*;
        for (i, &density) in [0.0, 0.13, 0.5, 1.0].iter().enumerate() {
            let s = 100 * i as u64;
            case(
                [2, 3, 5, 20, 7],
                density,
                true,
                ReplicateRight,
                Masked,
                s + 1,
            );
            case(
                [1, 17, 4, 9, 39],
                density,
                false,
                ReplicateRight,
                Masked,
                s + 2,
            ); // K > L
            case([2, 4, 3, 33, 6], density, true, Zeros, Dense, s + 3); // even K
            case([1, 2, 2, 5, 1], density, false, Zeros, Masked, s + 4); // K = 1
            case(
                [3, 1, 1, 1, 3],
                density,
                false,
                ReplicateRight,
                Dense,
                s + 5,
            ); // L = 1
        }
    }

    #[test]
    fn replicate_padding_repeats_the_last_value() {
        // y[t] = x[t] + x[t + 1] with x[L] = x[L - 1].
        let dev = candle_core::Device::Cpu;
        let w = Tensor::new(&[[[1.0f32, 1.0]]], &dev).unwrap();
        let l =
            SparseConv1d::new(w, &Mask::ones(&[1, 1, 2]), Conv1dPadding::ReplicateRight).unwrap();
        let x = Tensor::new(&[[[1.0f32, 2.0, 4.0]]], &dev).unwrap();
        let y = l
            .forward_custom(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(y, vec![3.0, 6.0, 8.0]);
    }

    #[test]
    fn gradients_pass_finite_differences() {
        for pad in [Conv1dPadding::Zeros, Conv1dPadding::ReplicateRight] {
            let inputs = [rand_tensor(&[2, 3, 6], 1), rand_tensor(&[2, 3, 4], 2)];
            let f = |t: &[Tensor]| {
                layer(&t[1], None, 0.5, 3, pad, WeightGrad::Masked)
                    .forward_custom(&t[0])
                    .unwrap()
            };
            finite_difference_check(&inputs, f, 4);
        }
    }
}
