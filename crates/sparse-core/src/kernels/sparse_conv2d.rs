//! Sparse conv2d: `conv2d(x, W ⊙ M)` over the active weights only, forward and
//! backward, for masked `[O, C, kh, kw]` weights (lottery tickets, sup-tickets).
//!
//! The weight's active entries are indexed as a [`CsrPattern`] over rows `O` and
//! columns `C·kh·kw`. Every output plane is a sum of shifted input planes, one per
//! active weight, computed by the tap engine of [`taps`](super::taps) with
//! register-resident accumulator tiles, so that the cost is proportional to the number
//! of active weights:
//!
//! * **stride 1 (direct)**: each image is copied once into a zero-padded buffer of row
//!   width `Wp = W + 2p`; the output plane of channel `o` is computed in that row width
//!   (`Ho · Wp` floats, the `Wp - Wo` extra columns are discarded) as
//!   `y_o[j] = Σ_{(c, ky, kx) active} w · xpad_c[j + ky·Wp + kx]`: no im2col at all.
//!   The input gradient is the same sum over `dy` laid out in that row width with
//!   zeros in the extra columns (the zeros absorb the wrap-around between rows), the
//!   taps grouped by input channel (CSC). The masked weight gradient correlates `dy`
//!   with the padded image at the active taps only.
//! * **any stride (im2col)**: per image, the patch rows of the columns that have an
//!   active weight are written (row stride rounded up to 16 floats), and the same tap
//!   engine runs over them; the input gradient computes only the active patch rows
//!   and folds them back (col2im).
//!
//! Images are spread over rayon's threads, one image's products on one thread; the
//! weight gradient is summed over fixed groups of [`WGRAD_GROUP`] images and the
//! groups are added in order, so every result is independent of the thread count.
//! [`WeightGrad::Dense`] computes the full dense weight gradient with the gemm of
//! [`conv2d`](super::conv2d).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::conv2d::{Conv2dParams, Conv2dWeightGrad, Geom, conv2d};
use super::masked_weight::MaskedWeight;
use super::sparse_linear::{CsrPattern, Storage};
use super::taps::{LANES, Tap, reduce_lanes, round_up, taps_fwd, taps_wgrad_lanes};
use super::{WeightGrad, check_bias, custom_applies, dims_of, f32_data, mismatch};
use crate::{Mask, Result, SparseError};

/// The sparse kernel is used at or below this density; above it [`SparseConv2d::forward`]
/// runs the dense [`conv2d`](super::conv2d) on the masked weight. Chosen from
/// `cargo run --release -p sparse-benches -- kernels --only sparse_conv2d` at 1 rayon
/// thread on a 2-core AVX-512 Xeon, ResNet-8/20 3x3 layers (batch 32): at density 0.3
/// the sparse kernel is 1.3–2x faster forward and 1.07–2.2x faster forward + backward
/// than the dense im2col + gemm conv, at 0.5 it is 0.7–1.3x forward and 0.4–1.5x
/// forward + backward.
pub const SPARSE_CONV2D_MAX_DENSITY: f64 = 0.3;

/// Images per weight-gradient partial sum (fixed, so that the summation order does not
/// depend on the thread count).
const WGRAD_GROUP: usize = 8;

/// What the sparse conv2d adds to the shared [`Geom`]: the padded planes of the
/// direct path and the row stride of the sparse im2col.
impl Geom {
    /// Padded row width and plane size of the direct path.
    fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }

    fn plane(&self) -> usize {
        (self.h + 2 * self.pad) * self.wp()
    }

    /// Output floats per channel of the direct path (`Ho · Wp`, rounded up).
    fn out_width(&self) -> usize {
        round_up(self.ho * self.wp())
    }

    /// Length of the padded image buffer of the direct path: every tap read
    /// `(kh-1)·Wp + kw-1 + out_width` past a channel start stays inside.
    fn xpad_len(&self) -> usize {
        self.c * self.plane() + self.kw + LANES
    }

    /// Offset of column `k = (c, ky, kx)` into the padded image (direct path) or into
    /// the patch rows (im2col path).
    fn col_offset(&self, k: usize, direct: bool) -> usize {
        if direct {
            let khw = self.kh * self.kw;
            let (c, t) = (k / khw, k % khw);
            c * self.plane() + (t / self.kw) * self.wp() + t % self.kw
        } else {
            k * self.p_stride()
        }
    }

    /// Row stride of the patch rows of the im2col path.
    fn p_stride(&self) -> usize {
        round_up(self.p())
    }
}

/// Copies image `x` (`[C, H, W]`) into the interior of `xpad` (borders stay zero).
fn pad_image(x: &[f32], g: &Geom, xpad: &mut [f32]) {
    let (hw, wp, plane) = (g.h * g.w, g.wp(), g.plane());
    for c in 0..g.c {
        for y in 0..g.h {
            let src = &x[c * hw + y * g.w..c * hw + (y + 1) * g.w];
            let at = c * plane + (y + g.pad) * wp + g.pad;
            xpad[at..at + g.w].copy_from_slice(src);
        }
    }
}

/// Writes the patch rows `k` with `needed[k]` of image `x` into `cols` (row stride
/// [`Geom::p_stride`]); positions in the padding are left as they are (zero).
fn im2col(x: &[f32], g: &Geom, needed: &[bool], cols: &mut [f32]) {
    let (hw, ps) = (g.h * g.w, g.p_stride());
    for c in 0..g.c {
        let plane = &x[c * hw..(c + 1) * hw];
        for ky in 0..g.kh {
            let (oy0, oy1) = g.out_range(ky, g.h, g.ho);
            for kx in 0..g.kw {
                let k = (c * g.kh + ky) * g.kw + kx;
                if !needed[k] {
                    continue;
                }
                let row = &mut cols[k * ps..k * ps + g.p()];
                let (ox0, ox1) = g.out_range(kx, g.w, g.wo);
                for oy in oy0..oy1 {
                    let iy = oy * g.stride + ky - g.pad;
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    let dst = &mut row[oy * g.wo + ox0..oy * g.wo + ox1];
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = src[(ox0 + i) * g.stride + kx - g.pad];
                    }
                }
            }
        }
    }
}

/// Adds the patch-row gradients `dcols` (rows `k` with `needed[k]`, stride
/// [`Geom::p_stride`]) into the image gradient `dx` (`[C, H, W]`).
fn col2im(dcols: &[f32], g: &Geom, needed: &[bool], dx: &mut [f32]) {
    let (hw, ps) = (g.h * g.w, g.p_stride());
    for c in 0..g.c {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for ky in 0..g.kh {
            let (oy0, oy1) = g.out_range(ky, g.h, g.ho);
            for kx in 0..g.kw {
                let k = (c * g.kh + ky) * g.kw + kx;
                if !needed[k] {
                    continue;
                }
                let row = &dcols[k * ps..k * ps + g.p()];
                let (ox0, ox1) = g.out_range(kx, g.w, g.wo);
                for oy in oy0..oy1 {
                    let iy = oy * g.stride + ky - g.pad;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &row[oy * g.wo + ox0..oy * g.wo + ox1];
                    for (i, s) in src.iter().enumerate() {
                        dst[(ox0 + i) * g.stride + kx - g.pad] += s;
                    }
                }
            }
        }
    }
}

/// The pattern's index sets resolved against one geometry: tap offsets and values
/// per output channel (CSR order) and per input column (CSC order).
struct Taps {
    /// Output channel `o` owns `by_out[out_ptr[o]..out_ptr[o + 1]]`.
    by_out: Vec<Tap>,
    out_ptr: Vec<usize>,
    /// Columns with at least one active weight.
    needed: Vec<bool>,
}

impl Taps {
    fn forward(p: &CsrPattern, g: &Geom, vals: &[f32], direct: bool) -> Self {
        let mut by_out = Vec::with_capacity(p.nnz());
        let mut out_ptr = Vec::with_capacity(g.cout + 1);
        let mut needed = vec![false; g.k()];
        out_ptr.push(0);
        for o in 0..g.cout {
            for &k in p.csr.row(o) {
                needed[k as usize] = true;
                by_out.push(Tap {
                    off: g.col_offset(k as usize, direct),
                    w: vals[by_out.len()],
                });
            }
            out_ptr.push(by_out.len());
        }
        Self {
            by_out,
            out_ptr,
            needed,
        }
    }

    fn row(&self, o: usize) -> &[Tap] {
        &self.by_out[self.out_ptr[o]..self.out_ptr[o + 1]]
    }
}

/// The weight's active values in CSR order.
fn csr_values(p: &CsrPattern, w: &[f32], storage: Storage) -> Vec<f32> {
    match storage {
        Storage::Dense => p.pack(w),
        Storage::Packed => w.to_vec(),
    }
}

/// Checks the weight argument of an op against the pattern and geometry.
fn check_weight(
    p: &CsrPattern,
    g: &Geom,
    wl: &Layout,
    storage: Storage,
) -> candle_core::Result<()> {
    let expected = match storage {
        Storage::Dense => vec![g.cout, g.c, g.kh, g.kw],
        Storage::Packed => vec![p.nnz()],
    };
    if wl.shape().dims() != expected || p.csr.rows() != g.cout || p.csr.n_src() != g.k() {
        candle_core::bail!(
            "sparse conv2d: pattern [{}, {}] with {} entries does not fit weight {:?}",
            p.csr.rows(),
            p.csr.n_src(),
            p.nnz(),
            wl.shape()
        )
    }
    Ok(())
}

/// The forward op on (`x: [B, C, H, W]`, weight `[O, C, kh, kw]` or packed `[nnz]`).
#[derive(Debug, Clone)]
struct SparseConv2dOp {
    pattern: Arc<CsrPattern>,
    storage: Storage,
    weight_shape: [usize; 4],
    params: Conv2dParams,
    /// Packed storage always gets the masked gradient (its weight is `[nnz]`).
    weight_grad: WeightGrad,
    /// Run the im2col path even at stride 1 (tests).
    force_im2col: bool,
}

impl SparseConv2dOp {
    fn geom(&self, xl: &Layout) -> candle_core::Result<Geom> {
        Geom::new(xl.shape().dims(), self.weight_shape, self.params)
            .map_err(|e| candle_core::Error::Msg(format!("sparse conv2d: {e}")))
    }

    /// Whether `g` runs the direct (stride 1) path rather than im2col.
    fn direct(&self, g: &Geom) -> bool {
        g.stride == 1 && !self.force_im2col
    }
}

impl CustomOp2 for SparseConv2dOp {
    fn name(&self) -> &'static str {
        "sparse-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geom(xl)?;
        check_weight(&self.pattern, &g, wl, self.storage)?;
        let x = f32_data(xs, xl, "sparse conv2d input")?;
        let w = f32_data(ws, wl, "sparse conv2d weight")?;
        let vals = csr_values(&self.pattern, w, self.storage);
        let direct = self.direct(&g);
        let taps = Taps::forward(&self.pattern, &g, &vals, direct);
        let (chw, plane_out) = (g.c * g.h * g.w, g.ho * g.wo);
        let out = g.cout * plane_out;
        let mut y = vec![0.0f32; g.b * out];
        let per_task = g.images_per_task();
        if !y.is_empty() {
            y.par_chunks_mut(per_task * out)
                .enumerate()
                .for_each(|(t, ys)| {
                    let mut src = Vec::new();
                    let (width, wp) = if direct {
                        (g.out_width(), g.wp())
                    } else {
                        (g.p_stride(), g.wo)
                    };
                    let mut row = vec![0.0f32; width];
                    for (i, y_img) in ys.chunks_exact_mut(out).enumerate() {
                        let img = t * per_task + i;
                        let x_img = &x[img * chw..(img + 1) * chw];
                        if direct {
                            src.resize(g.xpad_len(), 0.0);
                            pad_image(x_img, &g, &mut src);
                        } else {
                            src.resize(g.k() * g.p_stride() + LANES, 0.0);
                            im2col(x_img, &g, &taps.needed, &mut src);
                        }
                        for o in 0..g.cout {
                            let y_o = &mut y_img[o * plane_out..(o + 1) * plane_out];
                            let tp = taps.row(o);
                            if tp.is_empty() {
                                continue;
                            }
                            taps_fwd(&src, 0, tp, 0.0, &mut row, 0, 1, width);
                            for (oy, dst) in y_o.chunks_exact_mut(g.wo).enumerate() {
                                dst.copy_from_slice(&row[oy * wp..oy * wp + g.wo]);
                            }
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(y), Shape::from((g.b, g.cout, g.ho, g.wo))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &dy, &SparseConv2dInputGrad(self.clone()))?;
        let dw = match (self.weight_grad, self.storage) {
            (WeightGrad::Dense, Storage::Dense) => {
                x.apply_op3_no_bwd(w, &dy, &Conv2dWeightGrad(self.params))?
            }
            _ => x.apply_op2_no_bwd(&dy, &SparseConv2dWeightGrad(self.clone()))?,
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// [`SparseConv2dOp`] on packed values with a third argument, a zero dense
/// `[O, C, kh, kw]` probe that the forward pass ignores and whose gradient is the
/// dense weight gradient.
#[derive(Debug, Clone)]
struct DenseGradProbeOp(SparseConv2dOp);

impl CustomOp3 for DenseGradProbeOp {
    fn name(&self) -> &'static str {
        "sparse-conv2d-dense-grad-probe"
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
        if probe.shape().dims() != self.0.weight_shape {
            candle_core::bail!(
                "sparse conv2d: dense gradient probe {:?} does not fit the weight {:?}",
                probe.shape(),
                self.0.weight_shape
            )
        }
        self.0.cpu_fwd(xs, xl, ws, wl)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        probe: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.0.bwd(x, w, y, dy)?;
        let dy = dy.contiguous()?;
        let dense = x.apply_op3_no_bwd(probe, &dy, &Conv2dWeightGrad(self.0.params))?;
        Ok((dx, dw, Some(dense)))
    }
}

/// `dx` from (`x` for its shape, the weight, `dy`): the transposed convolution over
/// the active weights.
struct SparseConv2dInputGrad(SparseConv2dOp);

impl CustomOp3 for SparseConv2dInputGrad {
    fn name(&self) -> &'static str {
        "sparse-conv2d-input-grad"
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
        let op = &self.0;
        let g = op.geom(xl)?;
        check_weight(&op.pattern, &g, wl, op.storage)?;
        if dl.shape().dims() != [g.b, g.cout, g.ho, g.wo] {
            candle_core::bail!("sparse conv2d input grad: dy {:?}", dl.shape())
        }
        let w = f32_data(ws, wl, "sparse conv2d weight")?;
        let dy = f32_data(ds, dl, "sparse conv2d output grad")?;
        let vals = csr_values(&op.pattern, w, op.storage);
        let p = &op.pattern;
        let direct = op.direct(&g);
        let (chw, plane_out) = (g.c * g.h * g.w, g.ho * g.wo);
        let out = g.cout * plane_out;
        // Taps grouped by input column (CSC), offsets into the laid-out `dy`.
        let (wp, khw) = (g.wp(), g.kh * g.kw);
        let front = (g.kh - 1) * wp + (g.kw - 1);
        // Direct path: channel `o` of `dy` starts at `o * ch_len + front`, rows of
        // width `Wp`, zeros around; the input-gradient rows are computed over the
        // padded rows `pad..pad + H`.
        let ch_len = front + (g.ho.max(g.pad + g.h)) * wp + LANES;
        let in_width = round_up(g.h * wp);
        let ps = g.p_stride();
        let mut by_in: Vec<Tap> = Vec::with_capacity(p.nnz());
        let mut in_ptr = Vec::with_capacity(g.k() + 1);
        in_ptr.push(0);
        let mut csc_at = 0;
        for k in 0..g.k() {
            let rows = p.csc.row(k);
            let entries = &p.csc_to_csr[csc_at..csc_at + rows.len()];
            csc_at += rows.len();
            for (&o, &i) in rows.iter().zip(entries) {
                let o = o as usize;
                let (ky, kx) = ((k % khw) / g.kw, k % g.kw);
                let off = if direct {
                    o * ch_len + front - ky * wp - kx + g.pad * wp
                } else {
                    o * ps
                };
                by_in.push(Tap { off, w: vals[i] });
            }
            in_ptr.push(by_in.len());
        }
        let needed: Vec<bool> = in_ptr.windows(2).map(|r| r[1] > r[0]).collect();
        let mut dx = vec![0.0f32; g.b * chw];
        let per_task = g.images_per_task();
        if !dx.is_empty() {
            dx.par_chunks_mut(per_task * chw)
                .enumerate()
                .for_each(|(t, dxs)| {
                    let mut src = Vec::new();
                    let mut row = Vec::new();
                    for (i, dx_img) in dxs.chunks_exact_mut(chw).enumerate() {
                        let img = t * per_task + i;
                        let dy_img = &dy[img * out..(img + 1) * out];
                        if direct {
                            src.resize(g.cout * ch_len + LANES, 0.0);
                            for o in 0..g.cout {
                                let base = o * ch_len + front;
                                for oy in 0..g.ho {
                                    let at = base + oy * wp;
                                    let s = o * plane_out + oy * g.wo;
                                    src[at..at + g.wo].copy_from_slice(&dy_img[s..s + g.wo]);
                                }
                            }
                            row.resize(in_width, 0.0);
                            for c in 0..g.c {
                                let taps = &by_in[in_ptr[c * khw]..in_ptr[(c + 1) * khw]];
                                let dx_c = &mut dx_img[c * g.h * g.w..(c + 1) * g.h * g.w];
                                if taps.is_empty() {
                                    continue;
                                }
                                taps_fwd(&src, 0, taps, 0.0, &mut row, 0, 1, in_width);
                                for (y, dst) in dx_c.chunks_exact_mut(g.w).enumerate() {
                                    let s = y * wp + g.pad;
                                    dst.copy_from_slice(&row[s..s + g.w]);
                                }
                            }
                        } else {
                            src.resize(g.cout * ps, 0.0);
                            for o in 0..g.cout {
                                src[o * ps..o * ps + plane_out]
                                    .copy_from_slice(&dy_img[o * plane_out..(o + 1) * plane_out]);
                            }
                            row.resize(g.k() * ps + LANES, 0.0);
                            for k in 0..g.k() {
                                let taps = &by_in[in_ptr[k]..in_ptr[k + 1]];
                                if !taps.is_empty() {
                                    taps_fwd(&src, 0, taps, 0.0, &mut row[k * ps..], 0, 1, ps);
                                }
                            }
                            col2im(&row, &g, &needed, dx_img);
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// The masked weight gradient from (`x`, `dy`), at the active positions only, returned
/// dense (`[O, C, kh, kw]`, zeros elsewhere) or packed (`[nnz]`) like the weight.
struct SparseConv2dWeightGrad(SparseConv2dOp);

impl CustomOp2 for SparseConv2dWeightGrad {
    fn name(&self) -> &'static str {
        "sparse-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let op = &self.0;
        let g = op.geom(xl)?;
        if dl.shape().dims() != [g.b, g.cout, g.ho, g.wo] {
            candle_core::bail!("sparse conv2d weight grad: dy {:?}", dl.shape())
        }
        let x = f32_data(xs, xl, "sparse conv2d input")?;
        let dy = f32_data(ds, dl, "sparse conv2d output grad")?;
        let p = &op.pattern;
        let direct = op.direct(&g);
        let zeros = vec![0.0f32; p.nnz()];
        let taps = Taps::forward(p, &g, &zeros, direct);
        let offs: Vec<usize> = taps.by_out.iter().map(|t| t.off).collect();
        let (chw, plane_out) = (g.c * g.h * g.w, g.ho * g.wo);
        let out = g.cout * plane_out;
        let (width, wp) = if direct {
            (g.out_width(), g.wp())
        } else {
            (g.p_stride(), g.wo)
        };
        let partials: Vec<Vec<f32>> = (0..g.b.div_ceil(WGRAD_GROUP))
            .into_par_iter()
            .map(|group| {
                // Lane-wise partial sums (`LANES` per active weight) over the group's
                // images, reduced once at the end: one horizontal sum per weight and
                // group instead of one per weight and image.
                let mut lane_sums = vec![0.0f32; p.nnz() * LANES];
                let mut src = Vec::new();
                let mut dyp = vec![0.0f32; g.cout * width];
                for img in group * WGRAD_GROUP..((group + 1) * WGRAD_GROUP).min(g.b) {
                    let x_img = &x[img * chw..(img + 1) * chw];
                    if direct {
                        src.resize(g.xpad_len(), 0.0);
                        pad_image(x_img, &g, &mut src);
                    } else {
                        src.resize(g.k() * g.p_stride() + LANES, 0.0);
                        im2col(x_img, &g, &taps.needed, &mut src);
                    }
                    let dy_img = &dy[img * out..(img + 1) * out];
                    for o in 0..g.cout {
                        let range = taps.out_ptr[o]..taps.out_ptr[o + 1];
                        if range.is_empty() {
                            continue;
                        }
                        let d = &mut dyp[o * width..(o + 1) * width];
                        for oy in 0..g.ho {
                            let s = o * plane_out + oy * g.wo;
                            d[oy * wp..oy * wp + g.wo].copy_from_slice(&dy_img[s..s + g.wo]);
                        }
                        taps_wgrad_lanes(
                            d,
                            0,
                            &src,
                            0,
                            &offs[range.clone()],
                            &mut lane_sums[range.start * LANES..range.end * LANES],
                            1,
                            width,
                        );
                    }
                }
                let mut grads = vec![0.0f32; p.nnz()];
                reduce_lanes(&lane_sums, &mut grads);
                grads
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut grads = partials.next().unwrap_or_else(|| vec![0.0; p.nnz()]);
        for part in partials {
            for (acc, v) in grads.iter_mut().zip(&part) {
                *acc += v;
            }
        }
        Ok(match op.storage {
            Storage::Packed => (CpuStorage::F32(grads), Shape::from(p.nnz())),
            Storage::Dense => {
                let mut dw = vec![0.0f32; g.cout * g.k()];
                for (&at, &v) in p.dense_offsets().iter().zip(&grads) {
                    dw[at] = v;
                }
                (CpuStorage::F32(dw), Shape::from(op.weight_shape.to_vec()))
            }
        })
    }
}

/// Checks `x` against a `[O, C, kh, kw]` weight and the pattern; an error, never a
/// panic.
fn check_shapes(
    x: &Tensor,
    pattern: &CsrPattern,
    weight_shape: [usize; 4],
    params: Conv2dParams,
) -> Result<()> {
    let xd = dims_of(x, 4, "sparse conv2d input [B, C, H, W]")?;
    crate::validate::check_nonzero("stride", params.stride)?;
    Geom::new(xd, weight_shape, params)
        .map_err(|e| SparseError::invalid_input("sparse conv2d", e))?;
    let [o, c, kh, kw] = weight_shape;
    if pattern.csr.rows() != o || pattern.csr.n_src() != c * kh * kw {
        return Err(mismatch(
            "sparse conv2d pattern [O, C·kh·kw]",
            &[o, c * kh * kw],
            &[pattern.csr.rows(), pattern.csr.n_src()],
        ));
    }
    Ok(())
}

pub(super) fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    Ok(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
        None => y,
    })
}

/// `conv2d(x, W)` for a sparse `W: [O, C, kh, kw]` given as its active `values: [nnz]`
/// in row-major order of the pattern (`pattern = CsrPattern::new(O, C·kh·kw, bits)`),
/// for a packed layer.
///
/// `x` must be an f32 CPU tensor `[B, C, H, W]`. The gradient of `values` is the masked
/// weight gradient `[nnz]`. When `dense_grad_probe` (a zero `[O, C, kh, kw]` tensor,
/// typically a `Var`) is given, the forward pass ignores it and its gradient is the
/// dense weight gradient (every position, pruned ones included), as gradient-based
/// regrowth needs. No bias: add it to the result.
pub(crate) fn sparse_conv2d_packed(
    x: &Tensor,
    values: &Tensor,
    dense_grad_probe: Option<&Tensor>,
    pattern: &Arc<CsrPattern>,
    weight_shape: [usize; 4],
    params: Conv2dParams,
) -> Result<Tensor> {
    check_shapes(x, pattern, weight_shape, params)?;
    if values.dims() != [pattern.nnz()] {
        return Err(mismatch(
            "sparse conv2d packed values [nnz]",
            &[pattern.nnz()],
            values.dims(),
        ));
    }
    let op = SparseConv2dOp {
        pattern: pattern.clone(),
        storage: Storage::Packed,
        weight_shape,
        params,
        weight_grad: WeightGrad::Masked,
        force_im2col: false,
    };
    let (x, values) = (x.contiguous()?, values.contiguous()?);
    Ok(match dense_grad_probe {
        None => x.apply_op2(&values, op)?,
        Some(probe) => {
            if probe.dims() != weight_shape {
                return Err(mismatch(
                    "sparse conv2d dense gradient probe",
                    &weight_shape,
                    probe.dims(),
                ));
            }
            x.apply_op3(&values, &probe.contiguous()?, DenseGradProbeOp(op))?
        }
    })
}

/// A conv2d layer `conv2d(x, W ⊙ M) + b` over a masked weight `[O, C, kh, kw]`
/// (stride and zero padding from [`Conv2dParams`], no groups, no dilation).
///
/// The active entries are indexed when the mask is set; the values are read from
/// `weight` at every call, so a `Var`'s in-place optimizer updates need no rebuild.
/// [`forward`](Self::forward) runs the sparse kernel (cost proportional to the active
/// weights) for f32 CPU tensors at density ≤ [`SPARSE_CONV2D_MAX_DENSITY`], and the
/// dense [`conv2d`](super::conv2d) on `W ⊙ M` otherwise.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use sparse_core::Mask;
/// use sparse_core::kernels::{Conv2dParams, SparseConv2d, WeightGrad};
///
/// # fn main() -> sparse_core::Result<()> {
/// let dev = Device::Cpu;
/// let weight = Var::randn(0f32, 0.1, (16, 8, 3, 3), &dev)?;
/// let keep: Vec<bool> = (0..16 * 8 * 9).map(|i| i % 10 == 0).collect();
/// let mask = Mask::from_bools(&[16, 8, 3, 3], &keep)?;
/// let params = Conv2dParams { stride: 1, padding: 1 };
/// let layer = SparseConv2d::new(weight.as_tensor().clone(), &mask, params)?
///     .with_weight_grad(WeightGrad::Masked);
/// let x = Tensor::randn(0f32, 1.0, (2, 8, 10, 10), &dev)?;
/// let y = layer.forward(&x)?;
/// assert_eq!(y.dims(), &[2, 16, 10, 10]);
/// let grads = y.sum_all()?.backward()?;
/// let dw = grads.get(weight.as_tensor()).expect("weight gradient");
/// assert_eq!(dw.dims(), &[16, 8, 3, 3]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SparseConv2d {
    w: MaskedWeight,
    bias: Option<Tensor>,
    params: Conv2dParams,
    pub(super) name: Option<String>,
    force_im2col: bool,
}

impl SparseConv2d {
    /// A layer over `weight: [O, C, kh, kw]` and a mask of the same shape, without
    /// bias.
    pub fn new(weight: Tensor, mask: &Mask, params: Conv2dParams) -> Result<Self> {
        crate::validate::check_nonzero("stride", params.stride)?;
        Ok(Self {
            w: MaskedWeight::new(weight, mask, 4, "[O, C, kh, kw]", "sparse conv2d")?,
            bias: None,
            params,
            name: None,
            force_im2col: false,
        })
    }

    /// Adds a bias `[O]`.
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        check_bias("sparse conv2d bias [O]", self.w.weight.dims()[0], &bias)?;
        self.bias = Some(bias);
        Ok(self)
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

    /// Replaces the mask and rebuilds the index sets of the active weights.
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

    fn weight_shape(&self) -> [usize; 4] {
        let d = self.w.weight.dims();
        [d[0], d[1], d[2], d[3]]
    }

    /// `conv2d(x, W ⊙ M) + b` for `x: [B, C, H, W]`, choosing the faster kernel.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.w.density <= SPARSE_CONV2D_MAX_DENSITY
            && custom_applies(x)
            && custom_applies(&self.w.weight)
        {
            self.forward_custom(x)
        } else {
            let w = self.w.effective()?;
            conv2d(x, &w, self.bias.as_ref(), self.params)
        }
    }

    /// [`forward`](Self::forward) forced onto the sparse kernel (f32 CPU tensors only).
    pub fn forward_custom(&self, x: &Tensor) -> Result<Tensor> {
        let weight_shape = self.weight_shape();
        check_shapes(x, &self.w.pattern, weight_shape, self.params)?;
        let op = SparseConv2dOp {
            pattern: self.w.pattern.clone(),
            storage: Storage::Dense,
            weight_shape,
            params: self.params,
            weight_grad: self.w.weight_grad,
            force_im2col: self.force_im2col,
        };
        let y = x
            .contiguous()?
            .apply_op2(&self.w.weight.contiguous()?, op)?;
        add_bias(y, self.bias.as_ref())
    }

    /// [`forward`](Self::forward) through candle's own conv2d on the masked weight
    /// (the reference; same gradients as the sparse kernel).
    pub fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.w.effective()?;
        super::conv2d_candle(x, &w, self.bias.as_ref(), self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::SparseLayer;
    use crate::kernels::testutil::{
        assert_close, check_grads_match, finite_difference_check, rand_bits, rand_tensor,
    };
    use candle_core::Module;
    use candle_core::{Device, Var};

    /// One geometry: input dims, output channels, kernel, stride, padding.
    #[derive(Clone, Copy)]
    struct Case {
        x: [usize; 4],
        o: usize,
        k: (usize, usize),
        stride: usize,
        pad: usize,
    }

    impl Case {
        fn w(&self) -> [usize; 4] {
            [self.o, self.x[1], self.k.0, self.k.1]
        }

        fn params(&self) -> Conv2dParams {
            Conv2dParams {
                stride: self.stride,
                padding: self.pad,
            }
        }
    }

    /// Awkward shapes. For stride 2, H and W share their parity (candle 0.11.1's conv2d
    /// backward fails otherwise, see conv2d.rs).
    const CASES: [Case; 8] = [
        // 3x3 stride 1 pad 1, with bias below
        Case {
            x: [2, 3, 8, 8],
            o: 5,
            k: (3, 3),
            stride: 1,
            pad: 1,
        },
        // 1x1, batch 1, 17 channels
        Case {
            x: [1, 17, 6, 5],
            o: 5,
            k: (1, 1),
            stride: 1,
            pad: 0,
        },
        // 3x3 stride 2 pad 1, odd sizes
        Case {
            x: [2, 4, 9, 7],
            o: 6,
            k: (3, 3),
            stride: 2,
            pad: 1,
        },
        // kernel larger than the input
        Case {
            x: [1, 2, 2, 2],
            o: 3,
            k: (3, 3),
            stride: 1,
            pad: 1,
        },
        Case {
            x: [2, 3, 3, 3],
            o: 2,
            k: (5, 5),
            stride: 1,
            pad: 1,
        },
        // more images than a weight-gradient group and than a task
        Case {
            x: [9, 3, 5, 7],
            o: 4,
            k: (3, 3),
            stride: 1,
            pad: 1,
        },
        // 1x1 stride 2 (downsampling shortcut), non-square kernel without padding
        Case {
            x: [3, 5, 6, 8],
            o: 3,
            k: (1, 1),
            stride: 2,
            pad: 0,
        },
        Case {
            x: [2, 3, 7, 6],
            o: 4,
            k: (3, 1),
            stride: 1,
            pad: 0,
        },
    ];

    const DENSITIES: [f64; 4] = [0.0, 0.05, 0.3, 1.0];

    fn mask(dims: &[usize], density: f64, seed: u64) -> Mask {
        let n = dims.iter().product();
        Mask::from_bits(dims, rand_bits(n, density, seed)).unwrap()
    }

    fn layer(
        w: &Tensor,
        b: Option<&Tensor>,
        case: Case,
        density: f64,
        seed: u64,
        mode: WeightGrad,
        im2col: bool,
    ) -> SparseConv2d {
        let mut l = SparseConv2d::new(w.clone(), &mask(w.dims(), density, seed), case.params())
            .unwrap()
            .with_weight_grad(mode);
        l.force_im2col = im2col;
        match b {
            Some(b) => l.with_bias(b.clone()).unwrap(),
            None => l,
        }
    }

    #[test]
    fn dense_storage_matches_candle_on_masked_weight() {
        for (d, &density) in DENSITIES.iter().enumerate() {
            for (i, &case) in CASES.iter().enumerate() {
                for mode in [WeightGrad::Masked, WeightGrad::Dense] {
                    for im2col in [false, true] {
                        let seed = (100 * d + 10 * i) as u64;
                        let mut inputs =
                            vec![rand_tensor(&case.x, seed), rand_tensor(&case.w(), seed + 1)];
                        if i % 2 == 0 {
                            inputs.push(rand_tensor(&[case.o], seed + 2));
                        }
                        let make = |t: &[Tensor]| {
                            layer(&t[1], t.get(2), case, density, seed, mode, im2col)
                        };
                        let ours = |t: &[Tensor]| make(t).forward_custom(&t[0]).unwrap();
                        let reference = |t: &[Tensor]| make(t).forward_candle(&t[0]).unwrap();
                        check_grads_match(&inputs, ours, reference, seed + 3);
                    }
                }
            }
        }
    }

    /// The packed entry point against candle's conv2d on the scattered dense weight:
    /// output, input gradient, `[nnz]` value gradient and the probe's dense gradient.
    fn packed_case(case: Case, density: f64, seed: u64, probe: bool) {
        let dev = Device::Cpu;
        let wd = case.w();
        let m = mask(&wd, density, seed);
        let pattern = Arc::new(CsrPattern::new(wd[0], wd[1] * wd[2] * wd[3], m.as_bits()));
        let w_dense = (rand_tensor(&wd, seed + 1)
            * m.to_tensor(candle_core::DType::F32, &dev).unwrap())
        .unwrap();
        let w_flat = w_dense.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let values = Tensor::from_vec(pattern.pack(&w_flat), pattern.nnz(), &dev).unwrap();
        let x = Var::from_tensor(&rand_tensor(&case.x, seed + 2)).unwrap();
        let v = Var::from_tensor(&values).unwrap();
        let probe_var = Var::zeros(wd.to_vec(), candle_core::DType::F32, &dev).unwrap();
        let probe_t = probe.then(|| probe_var.as_tensor());
        let y = sparse_conv2d_packed(
            x.as_tensor(),
            v.as_tensor(),
            probe_t,
            &pattern,
            wd,
            case.params(),
        )
        .unwrap();
        let w_ref = Var::from_tensor(&w_dense).unwrap();
        let y_ref = x
            .as_tensor()
            .conv2d(w_ref.as_tensor(), case.pad, case.stride, 1, 1)
            .unwrap();
        assert_close(&y, &y_ref, "packed forward");
        let g = rand_tensor(y_ref.dims(), seed + 3);
        let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let grads_ref = (y_ref * &g).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(
            grads.get(x.as_tensor()).unwrap(),
            grads_ref.get(x.as_tensor()).unwrap(),
            "packed dx",
        );
        let dense_ref = grads_ref.get(w_ref.as_tensor()).unwrap();
        let dense_flat = dense_ref.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let masked_ref = Tensor::from_vec(pattern.pack(&dense_flat), pattern.nnz(), &dev).unwrap();
        assert_close(
            grads.get(v.as_tensor()).unwrap(),
            &masked_ref,
            "packed value grad",
        );
        if probe {
            assert_close(
                grads.get(probe_var.as_tensor()).unwrap(),
                dense_ref,
                "probe grad",
            );
        } else {
            assert!(grads.get(probe_var.as_tensor()).is_none());
        }
    }

    #[test]
    fn packed_storage_matches_candle_on_scattered_weight() {
        for (d, &density) in DENSITIES.iter().enumerate() {
            for (i, &case) in CASES.iter().enumerate() {
                let seed = (1000 + 100 * d + 10 * i) as u64;
                packed_case(case, density, seed, false);
                packed_case(case, density, seed, true);
            }
        }
    }

    /// Output, input gradient and weight gradient of one forward + backward.
    fn run_once(case: Case, density: f64, mode: WeightGrad) -> Vec<Vec<f32>> {
        let x = Var::from_tensor(&rand_tensor(&case.x, 1)).unwrap();
        let w = Var::from_tensor(&rand_tensor(&case.w(), 2)).unwrap();
        let l = layer(w.as_tensor(), None, case, density, 3, mode, false);
        let y = l.forward_custom(x.as_tensor()).unwrap();
        let grads = (&y * rand_tensor(y.dims(), 4))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        [
            &y,
            grads.get(x.as_tensor()).unwrap(),
            grads.get(w.as_tensor()).unwrap(),
        ]
        .iter()
        .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect()
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let cases = [
            Case {
                x: [19, 6, 9, 9],
                o: 7,
                k: (3, 3),
                stride: 1,
                pad: 1,
            },
            Case {
                x: [17, 6, 9, 9],
                o: 7,
                k: (3, 3),
                stride: 2,
                pad: 1,
            },
        ];
        for case in cases {
            for mode in [WeightGrad::Masked, WeightGrad::Dense] {
                let at = |threads| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| run_once(case, 0.3, mode))
                };
                let (one, two, three) = (at(1), at(2), at(3));
                assert_eq!(one, two, "1 vs 2 threads");
                assert_eq!(one, three, "1 vs 3 threads");
            }
        }
    }

    #[test]
    fn gradients_pass_finite_differences() {
        for (case, seed) in [
            (
                Case {
                    x: [2, 2, 5, 5],
                    o: 3,
                    k: (3, 3),
                    stride: 1,
                    pad: 1,
                },
                1,
            ),
            (
                Case {
                    x: [1, 2, 5, 5],
                    o: 3,
                    k: (3, 3),
                    stride: 2,
                    pad: 1,
                },
                2,
            ),
        ] {
            let inputs = [rand_tensor(&case.x, seed), rand_tensor(&case.w(), seed + 1)];
            let f = |t: &[Tensor]| {
                layer(&t[1], None, case, 0.4, seed + 2, WeightGrad::Masked, false)
                    .forward_custom(&t[0])
                    .unwrap()
            };
            finite_difference_check(&inputs, f, seed + 3);
        }
    }

    #[test]
    fn forward_picks_a_path_by_density_with_equal_results() {
        let case = CASES[0];
        let x = rand_tensor(&case.x, 1);
        for density in [0.1, 0.9] {
            let l = layer(
                &rand_tensor(&case.w(), 2),
                None,
                case,
                density,
                3,
                WeightGrad::Masked,
                false,
            );
            let y = l.forward(&x).unwrap();
            assert_close(&y, &l.forward_custom(&x).unwrap(), "custom");
            assert_close(&y, &l.forward_candle(&x).unwrap(), "candle");
            assert_close(&y, &Module::forward(&l, &x).unwrap(), "module");
        }
    }

    #[test]
    fn masked_gradient_is_zero_at_pruned_weights() {
        let case = CASES[2];
        let x = rand_tensor(&case.x, 5);
        let w = Var::from_tensor(&rand_tensor(&case.w(), 6)).unwrap();
        let l = layer(w.as_tensor(), None, case, 0.3, 7, WeightGrad::Masked, false);
        let grads = l
            .forward(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dw = grads
            .get(w.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let bits = l.mask().as_bits();
        assert!(dw.iter().zip(bits).all(|(g, &b)| b == 1 || *g == 0.0));
        assert!(dw.iter().zip(bits).any(|(g, &b)| b == 1 && *g != 0.0));
    }

    #[test]
    fn sparse_layer_trait_sets_mask_and_mode() {
        let case = CASES[0];
        let w = rand_tensor(&case.w(), 1);
        let mut l =
            layer(&w, None, case, 0.1, 2, WeightGrad::Masked, false).with_name("conv.weight");
        let layer_dyn: &mut dyn SparseLayer = &mut l;
        assert_eq!(layer_dyn.weight_name(), Some("conv.weight"));
        let m = mask(&case.w(), 0.5, 9);
        layer_dyn.set_mask(&m).unwrap();
        layer_dyn.set_weight_grad(WeightGrad::Dense).unwrap();
        assert_eq!(*layer_dyn.mask(), m);
        assert_eq!(layer_dyn.weight_grad(), WeightGrad::Dense);
        assert!((layer_dyn.density() - 0.5).abs() < 1e-2);
        assert!(layer_dyn.set_mask(&mask(&[5, 3, 3, 1], 0.5, 9)).is_err());
    }

    #[test]
    fn bad_shapes_are_errors() {
        let dev = Device::Cpu;
        let case = CASES[0];
        let w = rand_tensor(&case.w(), 1);
        let m = mask(&case.w(), 0.3, 2);
        let l = SparseConv2d::new(w.clone(), &m, case.params()).unwrap();
        // Wrong channel count, wrong rank, an input smaller than the kernel, empty images.
        for x in [
            rand_tensor(&[2, 4, 8, 8], 3),
            rand_tensor(&[3, 8, 8], 3),
            Tensor::zeros((1, 3, 0, 5), candle_core::DType::F32, &dev).unwrap(),
        ] {
            assert!(l.forward_custom(&x).is_err());
            assert!(l.forward(&x).is_err());
        }
        let tiny = Conv2dParams {
            stride: 1,
            padding: 0,
        };
        let l0 = SparseConv2d::new(w.clone(), &m, tiny).unwrap();
        assert!(l0.forward_custom(&rand_tensor(&[1, 3, 2, 2], 4)).is_err());
        assert!(
            SparseConv2d::new(
                w.clone(),
                &m,
                Conv2dParams {
                    stride: 0,
                    padding: 0
                }
            )
            .is_err()
        );
        assert!(SparseConv2d::new(w.clone(), &mask(&[5, 3, 3, 1], 0.3, 2), case.params()).is_err());
        assert!(
            SparseConv2d::new(
                rand_tensor(&[5, 27], 1),
                &mask(&[5, 27], 0.3, 2),
                case.params()
            )
            .is_err()
        );
        assert!(l.clone().with_bias(rand_tensor(&[4], 5)).is_err());
        // The packed entry point: values, probe and pattern that do not fit.
        let pattern = Arc::new(CsrPattern::new(5, 27, m.as_bits()));
        let x = rand_tensor(&case.x, 6);
        let good = rand_tensor(&[pattern.nnz()], 7);
        let p = case.params();
        let wd = case.w();
        assert!(sparse_conv2d_packed(&x, &good, None, &pattern, wd, p).is_ok());
        assert!(
            sparse_conv2d_packed(
                &x,
                &rand_tensor(&[pattern.nnz() + 1], 7),
                None,
                &pattern,
                wd,
                p
            )
            .is_err()
        );
        assert!(
            sparse_conv2d_packed(
                &x,
                &good,
                Some(&rand_tensor(&[5, 3, 3, 2], 8)),
                &pattern,
                wd,
                p
            )
            .is_err()
        );
        assert!(sparse_conv2d_packed(&x, &good, None, &pattern, [5, 3, 3, 2], p).is_err());
        assert!(sparse_conv2d_packed(&x, &good, None, &pattern, [5, 2, 3, 3], p).is_err());
    }
}
