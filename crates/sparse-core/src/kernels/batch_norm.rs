//! Batch normalization in a few fused passes, forward and backward.
//!
//! candle-nn's `BatchNorm` in training mode is a dozen tensor ops (transpose, copy,
//! mean, subtract, square, mean, add, sqrt, divide, multiply, add, transpose) plus
//! their backward ops, each allocating a buffer the size of the activation; on the
//! shared ResNets that was a sixth of the training step. [`FusedBatchNorm`] wraps the
//! same module (same variables, same names, same running-statistics rule) and runs
//! it as one statistics pass and one normalisation pass forward, and one reduction
//! pass and one input-gradient pass backward.
//!
//! The statistics are the same as candle's (batch mean; biased variance for the
//! normalisation; running variance updated with the unbiased one, momentum as
//! configured), accumulated per channel in f64, so results differ from candle's by
//! float rounding only.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, InplaceOp1, Layout, Shape, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, ModuleT, VarBuilder};
use rayon::prelude::*;

use super::activation::relu_backward;
use super::{custom_applies, f32_data};

/// A candle-nn [`BatchNorm`] whose f32 CPU passes run fused (see the module docs).
///
/// Other dtypes or devices and a module without affine parameters or without mean
/// removal run candle's own code. Gradients flow in both modes: in inference mode
/// through the running statistics as constants, as in candle.
#[derive(Debug, Clone)]
pub struct FusedBatchNorm {
    inner: BatchNorm,
    /// `BatchNormConfig::remove_mean`, which candle's module does not expose.
    remove_mean: bool,
}

impl FusedBatchNorm {
    /// Creates the variables as [`candle_nn::batch_norm()`] does (`weight`, `bias`,
    /// `running_mean`, `running_var` under `vb`), so checkpoints are interchangeable.
    pub fn new(
        num_features: usize,
        config: impl Into<BatchNormConfig>,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let config = config.into();
        Ok(Self {
            remove_mean: config.remove_mean,
            inner: candle_nn::batch_norm(num_features, config, vb)?,
        })
    }

    /// The wrapped candle module.
    pub fn inner(&self) -> &BatchNorm {
        &self.inner
    }

    /// `relu(batch_norm(x))`, the ReLU folded into the normalisation pass (and its
    /// mask into the backward pass).
    pub fn forward_relu_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_with(x, train, true)
    }

    fn forward_with(&self, x: &Tensor, train: bool, relu: bool) -> candle_core::Result<Tensor> {
        if !self.fused(x) {
            let y = self.inner.forward_t(x, train)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        if train {
            self.forward_train(x, relu)
        } else {
            self.forward_eval(x, relu)
        }
    }

    /// Whether the fused passes apply to `x`.
    fn fused(&self, x: &Tensor) -> bool {
        custom_applies(x)
            && self.remove_mean
            && self.inner.weight_and_bias().is_some()
            && x.rank() >= 2
    }

    fn forward_train(&self, x: &Tensor, relu: bool) -> candle_core::Result<Tensor> {
        let Some((weight, bias)) = self.inner.weight_and_bias() else {
            candle_core::bail!("fused batch norm without affine parameters")
        };
        let x = x.contiguous()?;
        check_channels(&x, weight, true)?;
        let stats = x.apply_op1_no_bwd(&ChannelStats)?.to_vec2::<f64>()?;
        let (mean, var) = (&stats[0], &stats[1]);
        let n = (x.elem_count() / x.dim(1)?) as f64;
        let momentum = self.inner.momentum();
        self.inner.running_mean().inplace_op1(&RunningUpdate {
            momentum,
            batch: mean.clone(),
        })?;
        let unbiased = var.iter().map(|v| v * n / (n - 1.0)).collect();
        self.inner.running_var().inplace_op1(&RunningUpdate {
            momentum,
            batch: unbiased,
        })?;
        let eps = self.inner.eps();
        let normalize = Normalize {
            centering: Arc::new(Centering {
                mean: mean.iter().map(|&m| m as f32).collect(),
                inv_std: var
                    .iter()
                    .map(|v| (1.0 / (v + eps).sqrt()) as f32)
                    .collect(),
            }),
            batch_statistics: true,
            relu,
        };
        x.apply_op3(&weight.contiguous()?, &bias.contiguous()?, normalize)
    }

    fn forward_eval(&self, x: &Tensor, relu: bool) -> candle_core::Result<Tensor> {
        let Some((weight, bias)) = self.inner.weight_and_bias() else {
            candle_core::bail!("fused batch norm without affine parameters")
        };
        check_channels(x, weight, false)?;
        let eps = self.inner.eps();
        let host = |t: &Tensor| t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
        let normalize = Normalize {
            centering: Arc::new(Centering {
                mean: host(self.inner.running_mean())?
                    .iter()
                    .map(|&m| m as f32)
                    .collect(),
                inv_std: host(self.inner.running_var())?
                    .iter()
                    .map(|v| (1.0 / (v + eps).sqrt()) as f32)
                    .collect(),
            }),
            batch_statistics: false,
            relu,
        };
        x.contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, normalize)
    }
}

impl ModuleT for FusedBatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_with(x, train, false)
    }
}

fn check_channels(x: &Tensor, weight: &Tensor, training: bool) -> candle_core::Result<()> {
    let channels = weight.elem_count();
    if x.dim(1)? != channels {
        candle_core::bail!(
            "batch-norm input {:?} does not have {channels} channels in dimension 1",
            x.shape()
        )
    }
    if training && x.elem_count() / channels < 2 {
        candle_core::bail!(
            "batch-norm in training mode needs more than one value per channel, got input {:?}",
            x.shape()
        )
    }
    Ok(())
}

/// `(batch, channels, values per image and channel)` of a contiguous `[B, C, ...]`.
fn dims3(layout: &Layout) -> (usize, usize, usize) {
    let dims = layout.dims();
    let (b, c) = (dims[0], dims[1]);
    (b, c, dims[2..].iter().product())
}

/// Float lanes summed independently, so the compiler vectorises the sums.
const LANES: usize = 16;

/// `(Σ f(v), for v in values)` in f32 lanes, reduced in f64.
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail.iter().map(|&v| f(v) as f64).sum::<f64>()
}

/// The image segments `[HW]` of channel `c` in a `[B, C, HW]` buffer.
fn channel_segments(
    data: &[f32],
    (b, c, hw): (usize, usize, usize),
    ch: usize,
) -> impl Iterator<Item = &[f32]> {
    (0..b).map(move |i| &data[(i * c + ch) * hw..(i * c + ch + 1) * hw])
}

/// Per channel: batch mean and biased variance (two passes), as a `[2, C]` f64 tensor.
struct ChannelStats;

impl CustomOp1 for ChannelStats {
    fn name(&self) -> &'static str {
        "batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "batch-norm input")?;
        let dims = dims3(l);
        let n = (dims.0 * dims.2) as f64;
        let stats: Vec<(f64, f64)> = (0..dims.1)
            .into_par_iter()
            .map(|ch| {
                let mean = channel_segments(x, dims, ch)
                    .map(|seg| lane_sum(seg, |v| v))
                    .sum::<f64>()
                    / n;
                let m = mean as f32;
                let var = channel_segments(x, dims, ch)
                    .map(|seg| lane_sum(seg, |v| (v - m) * (v - m)))
                    .sum::<f64>()
                    / n;
                (mean, var)
            })
            .collect();
        let mut out: Vec<f64> = stats.iter().map(|s| s.0).collect();
        out.extend(stats.iter().map(|s| s.1));
        Ok((CpuStorage::F64(out), Shape::from((2, dims.1))))
    }
}

/// `running = (1 - momentum) · running + momentum · batch`, in place.
struct RunningUpdate {
    momentum: f64,
    batch: Vec<f64>,
}

impl InplaceOp1 for RunningUpdate {
    fn name(&self) -> &'static str {
        "batch-norm-running-update"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("batch-norm running statistics must be contiguous")
        };
        let keep = 1.0 - self.momentum;
        let update = |r: &mut f64, b: f64| *r = *r * keep + b * self.momentum;
        match s {
            CpuStorage::F32(v) => v[start..end]
                .iter_mut()
                .zip(&self.batch)
                .for_each(|(r, &b)| {
                    let mut x = *r as f64;
                    update(&mut x, b);
                    *r = x as f32;
                }),
            CpuStorage::F64(v) => v[start..end]
                .iter_mut()
                .zip(&self.batch)
                .for_each(|(r, &b)| update(r, b)),
            other => candle_core::bail!(
                "batch-norm running statistics: unsupported {:?}",
                other.dtype()
            ),
        }
        Ok(())
    }
}

/// The batch statistics a normalisation used, kept for its backward pass.
#[derive(Debug)]
struct Centering {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

/// `y = (x - mean) · inv_std · weight + bias` on (`x`, `weight`, `bias`).
struct Normalize {
    centering: Arc<Centering>,
    /// The statistics are the batch's own (training), so the input gradient goes
    /// through them too; otherwise they are constants (inference).
    batch_statistics: bool,
    /// A ReLU follows.
    relu: bool,
}

impl CustomOp3 for Normalize {
    fn name(&self) -> &'static str {
        "batch-norm-normalize"
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
        let x = f32_data(xs, xl, "batch-norm input")?;
        let (w, b) = (
            f32_data(ws, wl, "batch-norm weight")?,
            f32_data(bs, bl, "batch-norm bias")?,
        );
        let c = &self.centering;
        let scale: Vec<f32> = w.iter().zip(&c.inv_std).map(|(w, s)| w * s).collect();
        let shift: Vec<f32> = b
            .iter()
            .zip(&c.mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let y = channel_affine(x, dims3(xl), &scale, &shift, self.relu);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = if self.relu {
            relu_backward(dy, y)?
        } else {
            dy.contiguous()?
        };
        let c = &self.centering;
        let param_grads = dy.apply_op2_no_bwd(x, &ParamGrads(c.clone()))?;
        let sums = param_grads.to_vec2::<f32>()?;
        let n = (x.elem_count() / x.dim(1)?) as f32;
        // With constant statistics the mean-gradient terms vanish: dx = dy · w · inv_std.
        let mean_of = |v: &[f32]| -> Vec<f32> {
            if self.batch_statistics {
                v.iter().map(|v| v / n).collect()
            } else {
                vec![0.0; v.len()]
            }
        };
        let input_grad = InputGrad {
            centering: c.clone(),
            scale: w
                .to_vec1::<f32>()?
                .iter()
                .zip(&c.inv_std)
                .map(|(w, s)| w * s)
                .collect(),
            dw_mean: mean_of(&sums[0]),
            db_mean: mean_of(&sums[1]),
        };
        let dx = x.apply_op2_no_bwd(&dy, &input_grad)?;
        Ok((
            Some(dx),
            Some(param_grads.get(0)?),
            Some(param_grads.get(1)?),
        ))
    }
}

/// `y = x · scale[c] + shift[c]` (then `max(0, ·)` if `relu`), one image per task.
fn channel_affine(
    x: &[f32],
    (_, c, hw): (usize, usize, usize),
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if x.is_empty() {
        return y;
    }
    y.par_chunks_mut(c * hw)
        .zip(x.par_chunks(c * hw))
        .for_each(|(yi, xi)| {
            for (ch, (yc, xc)) in yi.chunks_exact_mut(hw).zip(xi.chunks_exact(hw)).enumerate() {
                let (s, t) = (scale[ch], shift[ch]);
                for (y, &x) in yc.iter_mut().zip(xc) {
                    *y = x * s + t;
                }
                if relu {
                    yc.iter_mut().for_each(|y| *y = y.max(0.0));
                }
            }
        });
    y
}

/// On (`dy`, `x`): per channel `Σ dy · x̂` (weight gradient) and `Σ dy` (bias
/// gradient), as a `[2, C]` tensor.
struct ParamGrads(Arc<Centering>);

impl CustomOp2 for ParamGrads {
    fn name(&self) -> &'static str {
        "batch-norm-param-grads"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dy = f32_data(ds, dl, "batch-norm output grad")?;
        let x = f32_data(xs, xl, "batch-norm input")?;
        let dims = dims3(xl);
        let c = &self.0;
        let sums: Vec<(f32, f32)> = (0..dims.1)
            .into_par_iter()
            .map(|ch| {
                let (m, s) = (c.mean[ch], c.inv_std[ch]);
                let (mut dw, mut db) = (0.0f64, 0.0f64);
                for (d, xv) in channel_segments(dy, dims, ch).zip(channel_segments(x, dims, ch)) {
                    db += lane_sum(d, |v| v);
                    dw += lane_dot(d, xv, m);
                }
                ((dw * s as f64) as f32, db as f32)
            })
            .collect();
        let mut out: Vec<f32> = sums.iter().map(|s| s.0).collect();
        out.extend(sums.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from((2, dims.1))))
    }
}

/// `Σ d · (x - m)` in f32 lanes, reduced in f64.
fn lane_dot(d: &[f32], x: &[f32], m: f32) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let (dc, xc) = (d.chunks_exact(LANES), x.chunks_exact(LANES));
    let tail: f64 = dc
        .remainder()
        .iter()
        .zip(xc.remainder())
        .map(|(&d, &x)| (d * (x - m)) as f64)
        .sum();
    for (dch, xch) in dc.zip(xc) {
        for ((l, &d), &x) in lanes.iter_mut().zip(dch).zip(xch) {
            *l += d * (x - m);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail
}

/// On (`x`, `dy`): `dx = w · inv_std · (dy - mean(dy) - x̂ · mean(dy · x̂))`.
struct InputGrad {
    centering: Arc<Centering>,
    scale: Vec<f32>,
    dw_mean: Vec<f32>,
    db_mean: Vec<f32>,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "batch-norm-input-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_data(xs, xl, "batch-norm input")?;
        let dy = f32_data(ds, dl, "batch-norm output grad")?;
        let (_, c, hw) = dims3(xl);
        let mut dx = vec![0.0f32; x.len()];
        if !dx.is_empty() {
            let cen = &self.centering;
            dx.par_chunks_mut(c * hw)
                .zip(x.par_chunks(c * hw).zip(dy.par_chunks(c * hw)))
                .for_each(|(dxi, (xi, dyi))| {
                    for ch in 0..c {
                        let range = ch * hw..(ch + 1) * hw;
                        let (m, s) = (cen.mean[ch], cen.inv_std[ch]);
                        let (k, dwm, dbm) = (self.scale[ch], self.dw_mean[ch], self.db_mean[ch]);
                        for ((g, &xv), &d) in dxi[range.clone()]
                            .iter_mut()
                            .zip(&xi[range.clone()])
                            .zip(&dyi[range])
                        {
                            *g = k * (d - dbm - (xv - m) * s * dwm);
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{assert_close, check_grads_match, rand_tensor};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn pair(channels: usize) -> (VarMap, FusedBatchNorm, VarMap, BatchNorm) {
        let build = || {
            let map = VarMap::new();
            let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
            let bn = FusedBatchNorm::new(channels, 1e-5, vb.pp("bn")).unwrap();
            // Non-trivial affine parameters and running statistics.
            for (name, var) in map.data().lock().unwrap().iter() {
                let seed = name.len() as u64;
                let values = rand_tensor(&[channels], seed).affine(0.5, 1.0).unwrap();
                var.set(&values).unwrap();
            }
            (map, bn)
        };
        let (fused_map, fused) = build();
        let (plain_map, plain) = build();
        (fused_map, fused, plain_map, plain.inner)
    }

    #[test]
    fn training_forward_backward_and_running_stats_match_candle() {
        for (dims, seed) in [([4usize, 3, 5, 5], 1u64), ([6, 2, 17, 1], 2)] {
            let (fused_map, fused, plain_map, plain) = pair(dims[1]);
            let x = rand_tensor(&dims, seed);
            let (w, b) = fused.inner().weight_and_bias().unwrap();
            let (pw, pb) = plain.weight_and_bias().unwrap();
            // Gradients for (x, weight, bias) through both paths.
            let ours = |t: &[Tensor]| fused.forward_t(&t[0], true).unwrap();
            let reference = |t: &[Tensor]| plain.forward_t(&t[0], true).unwrap();
            check_grads_match(std::slice::from_ref(&x), ours, reference, seed + 10);
            let wrt = |bn: &dyn Fn(&Tensor) -> Tensor, w: &Tensor, b: &Tensor| {
                let xv = candle_core::Var::from_tensor(&x).unwrap();
                let dy = rand_tensor(&dims, seed + 20);
                let loss = (bn(xv.as_tensor()) * dy).unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                (grads.get(w).unwrap().clone(), grads.get(b).unwrap().clone())
            };
            let (dw, db) = wrt(&|x| fused.forward_t(x, true).unwrap(), w, b);
            let (pdw, pdb) = wrt(&|x| plain.forward_t(x, true).unwrap(), pw, pb);
            assert_close(&dw, &pdw, "weight gradient");
            assert_close(&db, &pdb, "bias gradient");
            // Every call above updated the running statistics the same way.
            let get =
                |map: &VarMap, name: &str| map.data().lock().unwrap()[name].as_tensor().clone();
            for name in ["bn.running_mean", "bn.running_var"] {
                assert_close(&get(&fused_map, name), &get(&plain_map, name), name);
            }
            // Inference: running statistics as constants, gradients still flow.
            let ours = |t: &[Tensor]| fused.forward_t(&t[0], false).unwrap();
            let reference = |t: &[Tensor]| plain.forward_t(&t[0], false).unwrap();
            check_grads_match(std::slice::from_ref(&x), ours, reference, seed + 30);
            let (dw, db) = wrt(&|x| fused.forward_t(x, false).unwrap(), w, b);
            let (pdw, pdb) = wrt(&|x| plain.forward_t(x, false).unwrap(), pw, pb);
            assert_close(&dw, &pdw, "inference weight gradient");
            assert_close(&db, &pdb, "inference bias gradient");
        }
    }

    #[test]
    fn the_folded_relu_matches_batch_norm_then_relu() {
        for train in [true, false] {
            let (_, fused, _, plain) = pair(3);
            let x = rand_tensor(&[4, 3, 3, 3], 7);
            let ours = |t: &[Tensor]| fused.forward_relu_t(&t[0], train).unwrap();
            let reference = |t: &[Tensor]| plain.forward_t(&t[0], train).unwrap().relu().unwrap();
            check_grads_match(std::slice::from_ref(&x), ours, reference, 8);
        }
    }

    #[test]
    fn without_mean_removal_falls_back_to_candle() {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let config = BatchNormConfig {
            remove_mean: false,
            ..BatchNormConfig::default()
        };
        let bn = FusedBatchNorm::new(3, config, vb).unwrap();
        let x = rand_tensor(&[4, 3, 2, 2], 5);
        assert_close(
            &bn.forward_t(&x, true).unwrap(),
            &bn.inner().forward_t(&x, true).unwrap(),
            "no mean removal",
        );
    }

    #[test]
    fn rejects_a_wrong_channel_count_and_a_single_value_per_channel() {
        let (_, fused, _, _) = pair(3);
        assert!(
            fused
                .forward_t(&rand_tensor(&[2, 4, 3, 3], 1), true)
                .is_err()
        );
        assert!(
            fused
                .forward_t(&rand_tensor(&[1, 3, 1, 1], 1), true)
                .is_err()
        );
    }
}
