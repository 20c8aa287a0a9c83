//! Dense conv2d through im2col + gemm, forward and backward.
//!
//! candle's CPU conv2d forward is already im2col-based, but its input gradient goes
//! through a direct `conv_transpose2d` loop that is several times slower than a gemm,
//! and each of its products allocates tensors. Here the three products run one image
//! at a time on the `gemm` crate, straight between the NCHW buffers and one scratch
//! patch matrix per task (`K = C·kh·kw` rows, `P = Ho·Wo` columns): forward
//! `Y = W × patches`, input gradient `Wᵀ × dY` folded back into the image (col2im),
//! weight gradient `Σ dY × patchesᵀ`. Images are spread over rayon's threads; each
//! product is single-threaded, so results do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{MatRef, Write, gemm};
use super::{custom_applies, dims_of, f32_data, mismatch};
use crate::Result;

/// Stride and zero padding of a conv2d (the same in both spatial dimensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output positions (≥ 1).
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
        }
    }
}

/// Geometry of one conv2d (shared with the sparse conv2d).
#[derive(Debug, Clone, Copy)]
pub(super) struct Geom {
    pub(super) b: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) cout: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) stride: usize,
    pub(super) pad: usize,
    pub(super) ho: usize,
    pub(super) wo: usize,
}

impl Geom {
    /// The geometry of input dims `x` (`[B, C, H, W]`) under `weight` (`[Cout, C, kh,
    /// kw]`); a message saying what does not fit otherwise.
    pub(super) fn new(
        x: &[usize],
        weight: [usize; 4],
        p: Conv2dParams,
    ) -> std::result::Result<Self, String> {
        let [cout, wc, kh, kw] = weight;
        let &[b, c, h, w] = x else {
            return Err(format!("input {x:?} is not [B, C, H, W]"));
        };
        if p.stride == 0 {
            return Err("stride 0".into());
        }
        if wc != c || kh == 0 || kw == 0 || h == 0 || w == 0 {
            return Err(format!("weight {weight:?} does not fit input {x:?}"));
        }
        if h + 2 * p.padding < kh || w + 2 * p.padding < kw {
            return Err(format!(
                "kernel {kh}x{kw} larger than the padded input {x:?} (padding {})",
                p.padding
            ));
        }
        Ok(Self {
            b,
            c,
            h,
            w,
            cout,
            kh,
            kw,
            stride: p.stride,
            pad: p.padding,
            ho: (h + 2 * p.padding - kh) / p.stride + 1,
            wo: (w + 2 * p.padding - kw) / p.stride + 1,
        })
    }

    /// Patch length `C * kh * kw` (the gemm's inner dimension).
    pub(super) fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per image.
    pub(super) fn p(&self) -> usize {
        self.ho * self.wo
    }

    /// Output positions `o` along one axis whose input `o * stride + tap - pad` is inside
    /// `0..n_in`.
    pub(super) fn out_range(&self, tap: usize, n_in: usize, n_out: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(tap).div_ceil(self.stride);
        let hi = (n_in + self.pad)
            .saturating_sub(tap)
            .div_ceil(self.stride)
            .min(n_out);
        (lo.min(hi), hi)
    }

    /// Images per parallel task for the per-image passes: about two tasks per
    /// thread, so that each task pays for its scratch buffer once.
    pub(super) fn images_per_task(&self) -> usize {
        let tasks = (2 * rayon::current_num_threads()).clamp(1, self.b.max(1));
        self.b.div_ceil(tasks).max(1)
    }
}

/// Writes the patch matrix of one image (`x`: `[C, H, W]`) into `cols`
/// (`[C * kh * kw, Ho * Wo]`), whose padding positions must already be zero.
///
/// Each row of `cols` is one tap `(c, ky, kx)` seen from every output pixel: a
/// shifted copy of input rows, contiguous at stride 1. Only positions inside the
/// image are written: the padding positions are the same for every image, so a
/// scratch buffer zeroed once serves a whole batch.
fn im2col(x: &[f32], g: &Geom, cols: &mut [f32]) {
    let (hw, p) = (g.h * g.w, g.p());
    for c in 0..g.c {
        let plane = &x[c * hw..(c + 1) * hw];
        for ky in 0..g.kh {
            let (oy0, oy1) = g.out_range(ky, g.h, g.ho);
            for kx in 0..g.kw {
                let tap = (c * g.kh + ky) * g.kw + kx;
                let row = &mut cols[tap * p..(tap + 1) * p];
                let (ox0, ox1) = g.out_range(kx, g.w, g.wo);
                for oy in oy0..oy1 {
                    let iy = oy * g.stride + ky - g.pad;
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    let dst = &mut row[oy * g.wo + ox0..oy * g.wo + ox1];
                    if g.stride == 1 {
                        let ix0 = ox0 + kx - g.pad;
                        dst.copy_from_slice(&src[ix0..ix0 + dst.len()]);
                    } else {
                        for (i, d) in dst.iter_mut().enumerate() {
                            *d = src[(ox0 + i) * g.stride + kx - g.pad];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the patch gradients `dcols` (`[C * kh * kw, Ho * Wo]`) of one image into its
/// input gradient `dx` (`[C, H, W]`): the transpose of [`im2col`].
fn col2im(dcols: &[f32], g: &Geom, dx: &mut [f32]) {
    let (hw, p) = (g.h * g.w, g.p());
    for c in 0..g.c {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for ky in 0..g.kh {
            let (oy0, oy1) = g.out_range(ky, g.h, g.ho);
            for kx in 0..g.kw {
                let tap = (c * g.kh + ky) * g.kw + kx;
                let row = &dcols[tap * p..(tap + 1) * p];
                let (ox0, ox1) = g.out_range(kx, g.w, g.wo);
                if ox0 == ox1 {
                    continue;
                }
                for oy in oy0..oy1 {
                    let iy = oy * g.stride + ky - g.pad;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &row[oy * g.wo + ox0..oy * g.wo + ox1];
                    if g.stride == 1 {
                        let ix0 = ox0 + kx - g.pad;
                        for (d, s) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (i, s) in src.iter().enumerate() {
                            dst[(ox0 + i) * g.stride + kx - g.pad] += s;
                        }
                    }
                }
            }
        }
    }
}

/// Images per weight-gradient partial sum. Fixed (not derived from the thread count)
/// so that the summation order, and with it every bit of the gradient, is the same
/// on any machine.
const WGRAD_GROUP: usize = 8;

impl Geom {
    /// A 1x1, stride-1, unpadded kernel: the image itself is its patch matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// The patch matrix of image `x` (`[C, H, W]`): `x` itself for a pointwise
    /// kernel, else written into `scratch` (zeroed on first use, then reused by
    /// every image of the task: see [`im2col`]).
    fn patches<'a>(&self, x: &'a [f32], scratch: &'a mut Vec<f32>) -> &'a [f32] {
        if self.is_pointwise() {
            return x;
        }
        if scratch.len() != self.k() * self.p() {
            *scratch = vec![0.0; self.k() * self.p()];
        }
        im2col(x, self, scratch);
        scratch
    }
}

fn geom_of(xl: &Layout, wl: &Layout, p: Conv2dParams) -> candle_core::Result<Geom> {
    let (cout, c, kh, kw) = wl.shape().dims4()?;
    Geom::new(xl.shape().dims(), [cout, c, kh, kw], p)
        .map_err(|reason| candle_core::Error::Msg(format!("conv2d: {reason}")))
}

/// Forward op on (`x`, `w`): per image, `Y [Cout, P] = W [Cout, K] × patches [K, P]`,
/// written straight into the NCHW output.
#[derive(Debug, Clone, Copy)]
struct Conv2dOp(Conv2dParams);

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d-gemm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = geom_of(xl, wl, self.0)?;
        let x = f32_data(xs, xl, "conv2d input")?;
        let w = MatRef::contiguous(f32_data(ws, wl, "conv2d weight")?, g.cout, g.k());
        let (p, chw, out) = (g.p(), g.c * g.h * g.w, g.cout * g.p());
        let mut y = vec![0.0f32; g.b * out];
        let per_task = g.images_per_task();
        if !y.is_empty() {
            y.par_chunks_mut(per_task * out)
                .enumerate()
                .for_each(|(t, ys)| {
                    let mut scratch = Vec::new();
                    for (i, y_img) in ys.chunks_exact_mut(out).enumerate() {
                        let img = t * per_task + i;
                        let cols = g.patches(&x[img * chw..(img + 1) * chw], &mut scratch);
                        let cols = MatRef::contiguous(cols, g.k(), p);
                        gemm(y_img, w, cols, Write::Overwrite);
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
        let dx = x.apply_op3_no_bwd(w, &dy, &Conv2dInputGrad(self.0))?;
        let dw = x.apply_op3_no_bwd(w, &dy, &Conv2dWeightGrad(self.0))?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `dx` from (`x` for its shape, `w`, `dy`): per image
/// `dpatches [K, P] = Wᵀ [K, Cout] × dY [Cout, P]`, folded back into the image.
struct Conv2dInputGrad(Conv2dParams);

impl CustomOp3 for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "conv2d-gemm-input-grad"
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
        let g = geom_of(xl, wl, self.0)?;
        let w = MatRef::contiguous(f32_data(ws, wl, "conv2d weight")?, g.cout, g.k());
        let dy = f32_data(ds, dl, "conv2d output grad")?;
        let (p, chw, out) = (g.p(), g.c * g.h * g.w, g.cout * g.p());
        let mut dx = vec![0.0f32; g.b * chw];
        let per_task = g.images_per_task();
        if !dx.is_empty() {
            dx.par_chunks_mut(per_task * chw)
                .enumerate()
                .for_each(|(t, dxs)| {
                    let mut dcols = Vec::new();
                    for (i, dx_img) in dxs.chunks_exact_mut(chw).enumerate() {
                        let img = t * per_task + i;
                        let dy_img = MatRef::contiguous(&dy[img * out..(img + 1) * out], g.cout, p);
                        if g.is_pointwise() {
                            gemm(dx_img, w.t(), dy_img, Write::Overwrite);
                        } else {
                            dcols.resize(g.k() * p, 0.0);
                            gemm(&mut dcols, w.t(), dy_img, Write::Overwrite);
                            col2im(&dcols, &g, dx_img);
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// `dw` from (`x`, `w` for its shape, `dy`): `Σ_images dY [Cout, P] × patchesᵀ [P, K]`,
/// as fixed groups of [`WGRAD_GROUP`] images summed in order.
pub(super) struct Conv2dWeightGrad(pub(super) Conv2dParams);

impl CustomOp3 for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d-gemm-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        _ws: &CpuStorage,
        wl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = geom_of(xl, wl, self.0)?;
        let x = f32_data(xs, xl, "conv2d input")?;
        let dy = f32_data(ds, dl, "conv2d output grad")?;
        let (p, k, chw, out) = (g.p(), g.k(), g.c * g.h * g.w, g.cout * g.p());
        let partials: Vec<Vec<f32>> = (0..g.b.div_ceil(WGRAD_GROUP))
            .into_par_iter()
            .map(|group| {
                let mut dw = vec![0.0f32; g.cout * k];
                let mut scratch = Vec::new();
                let images = group * WGRAD_GROUP..((group + 1) * WGRAD_GROUP).min(g.b);
                for img in images {
                    let cols = g.patches(&x[img * chw..(img + 1) * chw], &mut scratch);
                    let cols = MatRef::contiguous(cols, k, p);
                    let dy_img = MatRef::contiguous(&dy[img * out..(img + 1) * out], g.cout, p);
                    gemm(&mut dw, dy_img, cols.t(), Write::Accumulate);
                }
                dw
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut dw = partials.next().unwrap_or_else(|| vec![0.0; g.cout * k]);
        for part in partials {
            for (acc, v) in dw.iter_mut().zip(&part) {
                *acc += v;
            }
        }
        Ok((CpuStorage::F32(dw), wl.shape().clone()))
    }
}

/// Checks shapes; returns `(B, C, H, W, Cout, kh, kw, Ho, Wo)`.
fn check(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: Conv2dParams) -> Result<[usize; 9]> {
    let xd = dims_of(x, 4, "conv2d input [B, C, H, W]")?;
    let wd = dims_of(w, 4, "conv2d weight [Cout, C, kh, kw]")?;
    crate::validate::check_nonzero("stride", p.stride)?;
    if xd[2] == 0 || xd[3] == 0 {
        return Err(mismatch(
            "conv2d input [B, C, H >= 1, W >= 1]",
            &[xd[0], xd[1], 1, 1],
            xd,
        ));
    }
    if wd[1] != xd[1]
        || wd[2] == 0
        || wd[3] == 0
        || xd[2] + 2 * p.padding < wd[2]
        || xd[3] + 2 * p.padding < wd[3]
    {
        return Err(mismatch(
            "conv2d weight [Cout, C, kh <= H + 2p, kw <= W + 2p]",
            &[wd[0], xd[1], wd[2], wd[3]],
            wd,
        ));
    }
    if let Some(bias) = bias
        && bias.dims() != [wd[0]]
    {
        return Err(mismatch("conv2d bias [Cout]", &[wd[0]], bias.dims()));
    }
    let ho = (xd[2] + 2 * p.padding - wd[2]) / p.stride + 1;
    let wo = (xd[3] + 2 * p.padding - wd[3]) / p.stride + 1;
    Ok([xd[0], xd[1], xd[2], xd[3], wd[0], wd[2], wd[3], ho, wo])
}

fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    Ok(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
        None => y,
    })
}

/// Dense conv2d (`groups = 1`), `x: [B, C, H, W]`, `w: [Cout, C, kh, kw]`, optional
/// `bias: [Cout]`.
///
/// Uses [`conv2d_custom`] for f32 CPU tensors (faster than candle's conv2d for every
/// shape of the kernel report, 1x1 inference included; see the crate README) and
/// [`conv2d_candle`] for everything else.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    params: Conv2dParams,
) -> Result<Tensor> {
    if custom_applies(x) && custom_applies(w) {
        conv2d_custom(x, w, bias, params)
    } else {
        conv2d_candle(x, w, bias, params)
    }
}

/// [`conv2d`] as per-image im2col + gemm, forward and backward.
pub fn conv2d_custom(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    params: Conv2dParams,
) -> Result<Tensor> {
    check(x, w, bias, params)?;
    let y = x
        .contiguous()?
        .apply_op2(&w.contiguous()?, Conv2dOp(params))?;
    add_bias(y, bias)
}

/// [`conv2d`] with candle's own conv2d (the reference).
pub fn conv2d_candle(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    params: Conv2dParams,
) -> Result<Tensor> {
    check(x, w, bias, params)?;
    add_bias(x.conv2d(w, params.padding, params.stride, 1, 1)?, bias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{check_grads_match, finite_difference_check, rand_tensor};

    fn case(
        x: [usize; 4],
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        seed: u64,
    ) {
        let p = Conv2dParams { stride, padding };
        let mut inputs = vec![
            rand_tensor(&x, seed),
            rand_tensor(&[cout, x[1], k, k], seed + 1),
        ];
        if bias {
            inputs.push(rand_tensor(&[cout], seed + 2));
        }
        let ours = |t: &[Tensor]| conv2d_custom(&t[0], &t[1], t.get(2), p).unwrap();
        let reference = |t: &[Tensor]| conv2d_candle(&t[0], &t[1], t.get(2), p).unwrap();
        check_grads_match(&inputs, ours, reference, seed + 3);
    }

    #[test]
    fn matches_candle_on_resnet_shapes() {
        case([2, 3, 8, 8], 5, 3, 1, 1, true, 1);
        case([1, 4, 9, 7], 6, 3, 2, 1, false, 2); // odd sizes, stride 2
        case([2, 17, 6, 6], 3, 1, 1, 0, false, 3); // 1x1
        // 1x1 stride 2 (downsample). H and W share their parity: candle 0.11.1's conv2d
        // backward fails when they do not (it derives both output paddings from H);
        // that case is covered by the finite-difference test below.
        case([2, 5, 7, 9], 4, 1, 2, 0, true, 4);
        case([1, 2, 2, 2], 3, 3, 1, 1, false, 5); // kernel larger than the input
        // Several images per task: the scratch patch matrix is reused, its padding
        // positions must stay zero from one image to the next.
        case([9, 2, 5, 5], 3, 3, 1, 1, false, 6);
        case([9, 2, 5, 7], 3, 3, 2, 1, true, 7);
    }

    #[test]
    fn gradients_pass_finite_differences() {
        let inputs = [rand_tensor(&[1, 2, 5, 5], 1), rand_tensor(&[3, 2, 3, 3], 2)];
        let f = |t: &[Tensor]| {
            conv2d_custom(
                &t[0],
                &t[1],
                None,
                Conv2dParams {
                    stride: 2,
                    padding: 1,
                },
            )
            .unwrap()
        };
        finite_difference_check(&inputs, f, 3);
        let inputs = [rand_tensor(&[2, 3, 7, 8], 4), rand_tensor(&[2, 3, 1, 1], 5)];
        let f = |t: &[Tensor]| {
            conv2d_custom(
                &t[0],
                &t[1],
                None,
                Conv2dParams {
                    stride: 2,
                    padding: 0,
                },
            )
            .unwrap()
        };
        finite_difference_check(&inputs, f, 6);
    }

    #[test]
    fn dispatcher_agrees_with_both_paths() {
        use crate::kernels::testutil::assert_close;
        let p = Conv2dParams {
            stride: 2,
            padding: 0,
        };
        let x = rand_tensor(&[2, 3, 6, 6], 7);
        let w = rand_tensor(&[4, 3, 1, 1], 8);
        // Inference and training, both on our path: the values of candle's.
        let xv = candle_core::Var::from_tensor(&x).unwrap();
        let reference = conv2d_candle(&x, &w, None, p).unwrap();
        assert_close(
            &conv2d(&x, &w, None, p).unwrap(),
            &reference,
            "1x1 inference",
        );
        assert_close(
            &conv2d(xv.as_tensor(), &w, None, p).unwrap(),
            &reference,
            "1x1 training",
        );
    }

    #[test]
    fn rejects_zero_stride_and_empty_images() {
        let x = rand_tensor(&[1, 2, 5, 5], 1);
        let w = rand_tensor(&[3, 2, 3, 3], 2);
        let empty = Tensor::zeros(
            (1, 2, 0, 5),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert!(
            conv2d(
                &empty,
                &w,
                None,
                Conv2dParams {
                    stride: 1,
                    padding: 1
                }
            )
            .is_err()
        );
        assert!(
            conv2d(
                &x,
                &w,
                None,
                Conv2dParams {
                    stride: 0,
                    padding: 1
                }
            )
            .is_err()
        );
    }
}
