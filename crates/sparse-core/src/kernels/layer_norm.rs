//! Layer normalisation over the last dimension, one pass forward and two backward.
//!
//! candle 0.11's fused `candle_nn::ops::layer_norm` (what `candle_nn::LayerNorm`
//! runs on a contiguous input) has no backward, and `layer_norm_slow`, which has one,
//! is a dozen allocating tensor ops each way. [`layer_norm`] computes
//! `y = (x − mean) / √(var + eps) · weight + bias` per row (biased variance, statistics
//! accumulated in f64) as one custom op whose backward is one input-gradient pass and
//! one weight/bias reduction, both recomputing the row statistics instead of storing
//! them. Transformers (SMoE-Dropout) and ConvNeXt blocks (SLaK) normalise this way.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{custom_applies, f32_data};

/// Rows handled by one task of the weight/bias reduction.
const ROWS_PER_TASK: usize = 64;

/// `(x − mean) / √(var + eps) · weight + bias` over the last dimension of `x`, with
/// `weight` and `bias` of that dimension's size; differentiable in all three.
///
/// f32 tensors on the CPU run the fused kernel, everything else candle's
/// `layer_norm_slow` (the composed reference).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use sparse_core::kernels::layer_norm;
/// # fn main() -> candle_core::Result<()> {
/// let x = Tensor::new(&[[1f32, 2.0, 3.0], [0.0, 0.0, 6.0]], &Device::Cpu)?;
/// let (w, b) = (Tensor::ones(3, x.dtype(), x.device())?, Tensor::zeros(3, x.dtype(), x.device())?);
/// let y = layer_norm(&x, &w, &b, 1e-6)?;
/// let row: Vec<f32> = y.get(0)?.to_vec1()?;
/// assert!((row[0] + 1.2247).abs() < 1e-3 && row[1].abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let features = x.dims().last().copied().unwrap_or(0);
    if weight.dims() != [features] || bias.dims() != [features] {
        candle_core::bail!(
            "layer norm over {features} features got weight {:?} and bias {:?}",
            weight.shape(),
            bias.shape()
        )
    }
    if !(custom_applies(x) && custom_applies(weight) && custom_applies(bias)) || features == 0 {
        return candle_nn::ops::layer_norm_slow(x, weight, bias, eps as f32);
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps },
    )
}

/// Mean and `1/√(var + eps)` of one row, in f64.
fn row_stats(row: &[f32], eps: f64) -> (f32, f32) {
    let n = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = row
        .iter()
        .map(|&v| {
            let d = v as f64 - mean;
            d * d
        })
        .sum::<f64>()
        / n;
    (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
}

struct LayerNorm {
    eps: f64,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
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
        let x = f32_data(xs, xl, "layer-norm input")?;
        let w = f32_data(ws, wl, "layer-norm weight")?;
        let b = f32_data(bs, bl, "layer-norm bias")?;
        let d = w.len();
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(yr, xr)| {
                let (mean, inv_std) = row_stats(xr, self.eps);
                for (((y, &x), &w), &b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                    *y = (x - mean) * inv_std * w + b;
                }
            });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = x.apply_op3_no_bwd(w, &dy, &InputGrad { eps: self.eps })?;
        let params = x.apply_op2_no_bwd(&dy, &ParamGrads { eps: self.eps })?;
        Ok((Some(dx), Some(params.get(0)?), Some(params.get(1)?)))
    }
}

/// On (`x`, `weight`, `dy`): `dx = inv_std · (g − mean(g) − x̂ · mean(g · x̂))`,
/// `g = dy · weight`, per row.
struct InputGrad {
    eps: f64,
}

impl CustomOp3 for InputGrad {
    fn name(&self) -> &'static str {
        "layer-norm-input-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(xs, xl, "layer-norm input")?;
        let w = f32_data(ws, wl, "layer-norm weight")?;
        let dy = f32_data(ds, dl, "layer-norm output grad")?;
        let d = w.len();
        let mut dx = vec![0.0f32; x.len()];
        dx.par_chunks_mut(d)
            .zip(x.par_chunks(d).zip(dy.par_chunks(d)))
            .for_each(|(dxr, (xr, dyr))| {
                let (mean, inv_std) = row_stats(xr, self.eps);
                let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
                for ((&x, &dy), &w) in xr.iter().zip(dyr).zip(w) {
                    let g = (dy * w) as f64;
                    sum_g += g;
                    sum_gx += g * ((x - mean) * inv_std) as f64;
                }
                let (mean_g, mean_gx) = ((sum_g / d as f64) as f32, (sum_gx / d as f64) as f32);
                for (((dx, &x), &dy), &w) in dxr.iter_mut().zip(xr).zip(dyr).zip(w) {
                    let x_hat = (x - mean) * inv_std;
                    *dx = inv_std * (dy * w - mean_g - x_hat * mean_gx);
                }
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// On (`x`, `dy`): `[Σ_rows dy · x̂, Σ_rows dy]`, a `[2, D]` tensor.
struct ParamGrads {
    eps: f64,
}

impl CustomOp2 for ParamGrads {
    fn name(&self) -> &'static str {
        "layer-norm-param-grads"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(xs, xl, "layer-norm input")?;
        let dy = f32_data(ds, dl, "layer-norm output grad")?;
        let d = xl.dims().last().copied().unwrap_or(0);
        let partials: Vec<Vec<f64>> = x
            .par_chunks(d * ROWS_PER_TASK)
            .zip(dy.par_chunks(d * ROWS_PER_TASK))
            .map(|(xs, dys)| {
                let mut sums = vec![0.0f64; 2 * d];
                for (xr, dyr) in xs.chunks_exact(d).zip(dys.chunks_exact(d)) {
                    let (mean, inv_std) = row_stats(xr, self.eps);
                    for (j, (&x, &dy)) in xr.iter().zip(dyr).enumerate() {
                        sums[j] += (dy * (x - mean) * inv_std) as f64;
                        sums[d + j] += dy as f64;
                    }
                }
                sums
            })
            .collect();
        let mut total = vec![0.0f64; 2 * d];
        for part in partials {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
        let out: Vec<f32> = total.into_iter().map(|v| v as f32).collect();
        Ok((CpuStorage::F32(out), Shape::from((2, d))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn matches_the_composed_layer_norm_forward_and_backward() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // 3-D input, rows of 37 features (not a multiple of any lane width), an
        // offset and scale far from 0 and 1 so the mean and variance matter
        let x = (Tensor::randn(0f32, 3.0, (5, 7, 37), &dev)? + 4.0)?;
        let x = Var::from_tensor(&x)?;
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.5, 37, &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.5, 37, &dev)?)?;
        // a non-uniform upstream gradient
        let probe = Tensor::randn(0f32, 1.0, (5, 7, 37), &dev)?;
        let ours = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)?;
        let reference =
            candle_nn::ops::layer_norm_slow(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)?;
        assert!(max_diff(&ours, &reference) < 1e-5);
        let g_ours = (ours * &probe)?.sum_all()?.backward()?;
        let g_ref = (reference * &probe)?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            let (a, r) = (
                g_ours.get(v.as_tensor()).expect("gradient"),
                g_ref.get(v.as_tensor()).expect("gradient"),
            );
            let scale = r.abs()?.max_all()?.to_scalar::<f32>()?.max(1.0);
            assert!(max_diff(a, r) / scale < 1e-4, "{:?}", v.dims());
        }
        Ok(())
    }

    #[test]
    fn a_finite_difference_confirms_the_input_gradient() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let values = [0.3f32, -1.2, 2.5, 0.7, 1.1, -0.4];
        let w = Tensor::new(&[1.5f32, -0.5, 2.0], &dev)?;
        let b = Tensor::new(&[0.1f32, 0.2, -0.3], &dev)?;
        let probe = Tensor::new(&[[1.0f32, -2.0, 0.5], [0.3, 0.9, -1.1]], &dev)?;
        let loss = |v: &[f32]| -> candle_core::Result<f64> {
            let x = Tensor::from_slice(v, (2, 3), &dev)?;
            let y = layer_norm(&x, &w, &b, 1e-5)?;
            (y * &probe)?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()
        };
        let x = Var::from_tensor(&Tensor::from_slice(&values, (2, 3), &dev)?)?;
        let grads = (layer_norm(x.as_tensor(), &w, &b, 1e-5)? * &probe)?
            .sum_all()?
            .backward()?;
        let analytic: Vec<f32> = grads
            .get(x.as_tensor())
            .expect("gradient")
            .flatten_all()?
            .to_vec1()?;
        let h = 1e-2f32;
        for i in 0..values.len() {
            let (mut up, mut down) = (values, values);
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up)? - loss(&down)?) / (2.0 * h as f64);
            assert!(
                (numeric - analytic[i] as f64).abs() < 2e-2,
                "{i}: {numeric} vs {}",
                analytic[i]
            );
        }
        Ok(())
    }

    #[test]
    fn other_shapes_are_refused() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 4), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::ones(3, candle_core::DType::F32, &dev).unwrap();
        let err = layer_norm(&x, &w, &w, 1e-5).unwrap_err().to_string();
        assert!(err.contains("4 features"), "{err}");
    }
}
