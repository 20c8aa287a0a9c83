//! Softmax over the last dimension, one pass forward and one backward.
//!
//! candle 0.11's fused `candle_nn::ops::softmax_last_dim` has no backward, and the
//! composed `candle_nn::ops::softmax` is five tensor ops each way (max, subtract,
//! exp, sum, divide). [`softmax_last_dim`] computes `y = exp(x − max) / Σ exp(x − max)`
//! per row (sum in f64) as one custom op whose backward is one pass,
//! `dx = y · (dy − Σ dy · y)`. Attention (SMoE-Dropout's transformers) applies it to
//! every score row.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{custom_applies, f32_data};

/// `softmax(x)` over the last dimension of `x`; differentiable.
///
/// f32 tensors on the CPU run the fused kernel, everything else candle's composed
/// `softmax`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use sparse_core::kernels::softmax_last_dim;
/// # fn main() -> candle_core::Result<()> {
/// let x = Tensor::new(&[[0f32, 0.0], [0.0, 2f32.ln()]], &Device::Cpu)?;
/// let y: Vec<Vec<f32>> = softmax_last_dim(&x)?.to_vec2()?;
/// assert_eq!(y[0], [0.5, 0.5]);
/// assert!((y[1][1] - 2.0 / 3.0).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let features = x.dims().last().copied().unwrap_or(0);
    if !custom_applies(x) || features == 0 {
        return candle_nn::ops::softmax(x, candle_core::D::Minus1);
    }
    x.contiguous()?.apply_op1(Softmax)
}

fn softmax_row(x: &[f32], y: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        // a fully masked row (every score −∞): no mass anywhere
        y.fill(0.0);
        return;
    }
    let mut sum = 0.0f64;
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (x - max).exp();
        sum += *y as f64;
    }
    let inv = (1.0 / sum) as f32;
    y.iter_mut().for_each(|y| *y *= inv);
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "softmax input")?;
        let d = l.dims().last().copied().unwrap_or(1);
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(yr, xr)| softmax_row(xr, yr));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxGrad)?))
    }
}

/// On (`y`, `dy`): `dx = y · (dy − Σ dy · y)` per row.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-last-dim-grad"
    }

    fn cpu_fwd(
        &self,
        ys: &CpuStorage,
        yl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = f32_data(ys, yl, "softmax output")?;
        let dy = f32_data(ds, dl, "softmax output grad")?;
        let d = yl.dims().last().copied().unwrap_or(1);
        let mut dx = vec![0.0f32; y.len()];
        dx.par_chunks_mut(d)
            .zip(y.par_chunks(d).zip(dy.par_chunks(d)))
            .for_each(|(dxr, (yr, dyr))| {
                let dot = yr
                    .iter()
                    .zip(dyr)
                    .map(|(&y, &g)| (y * g) as f64)
                    .sum::<f64>() as f32;
                for ((dx, &y), &g) in dxr.iter_mut().zip(yr).zip(dyr) {
                    *dx = y * (g - dot);
                }
            });
        Ok((CpuStorage::F32(dx), yl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Tensor, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap_or(f32::INFINITY)
    }

    #[test]
    fn matches_the_composed_softmax_forward_and_backward() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // large offsets: the max subtraction must keep exp finite
        let x = (Tensor::randn(0f32, 4.0, (3, 5, 19), &dev)? + 50.0)?;
        let x = Var::from_tensor(&x)?;
        let probe = Tensor::randn(0f32, 1.0, (3, 5, 19), &dev)?;
        let ours = softmax_last_dim(x.as_tensor())?;
        let reference = candle_nn::ops::softmax(x.as_tensor(), D::Minus1)?;
        assert!(max_diff(&ours, &reference) < 1e-6);
        let rows: Vec<f32> = ours.sum(D::Minus1)?.flatten_all()?.to_vec1()?;
        assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-5));
        let g_ours = (ours * &probe)?.sum_all()?.backward()?;
        let g_ref = (reference * &probe)?.sum_all()?.backward()?;
        let (a, r) = (
            g_ours.get(x.as_tensor()).expect("gradient"),
            g_ref.get(x.as_tensor()).expect("gradient"),
        );
        assert!(max_diff(a, r) < 1e-5);
        Ok(())
    }

    #[test]
    fn masked_scores_get_no_mass() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::new(
            &[[1f32, f32::NEG_INFINITY, 1.0], [f32::NEG_INFINITY; 3]],
            &dev,
        )?;
        let y: Vec<Vec<f32>> = softmax_last_dim(&x)?.to_vec2()?;
        assert_eq!(y[0], [0.5, 0.0, 0.5]);
        assert_eq!(y[1], [0.0, 0.0, 0.0]);
        Ok(())
    }
}
