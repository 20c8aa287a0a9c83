//! Softmax cross-entropy with label smoothing as one op, forward and backward.
//!
//! Written with candle ops it is a log-softmax (max, subtract, exp, sum, log,
//! subtract), a gather, a negation and a mean, plus the smoothing term, each with
//! its backward: a dozen passes and allocations for a `[batch, classes]` matrix.
//! Here one pass per row computes the loss, and the backward is `softmax − target`.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use super::{custom_applies, f32_data};

/// Mean over rows of `(1 − ε)·(−log p[label]) + ε·mean_j(−log p[j])`, with
/// `p = softmax(logits)`, for `logits: [N, C]`, integer `labels: [N]` and smoothing
/// `ε` in `[0, 1)` (PyTorch's `cross_entropy(label_smoothing=ε)`).
///
/// f32 CPU logits run the fused op; other dtypes or devices run candle's ops. A
/// label outside `0..C` is an error.
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let (rows, classes) = logits.dims2()?;
    if labels.dims() != [rows] || !(0.0..1.0).contains(&smoothing) || classes == 0 {
        candle_core::bail!(
            "cross-entropy: logits {:?} need labels [{rows}] and smoothing in [0, 1), got labels {:?} and smoothing {smoothing}",
            logits.shape(),
            labels.shape()
        )
    }
    let labels = labels.to_dtype(DType::U32)?;
    if !custom_applies(logits) {
        return candle_reference(logits, &labels, smoothing);
    }
    logits
        .contiguous()?
        .apply_op2(&labels.contiguous()?, CrossEntropy { smoothing })
}

/// The candle-op formulation (other devices and dtypes, and the tests' reference).
fn candle_reference(
    logits: &Tensor,
    labels: &Tensor,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, candle_core::D::Minus1)?;
    let nll = log_probs
        .gather(&labels.unsqueeze(1)?, 1)?
        .neg()?
        .mean_all()?;
    if smoothing == 0.0 {
        return Ok(nll);
    }
    let smooth = log_probs.mean(candle_core::D::Minus1)?.neg()?.mean_all()?;
    (nll * (1.0 - smoothing))? + (smooth * smoothing)?
}

#[derive(Debug, Clone, Copy)]
struct CrossEntropy {
    smoothing: f64,
}

/// `(max, log Σ exp(z − max))` of one row.
fn log_sum_exp(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&z| (z - max).exp()).sum();
    (max, sum.ln())
}

fn labels_of<'a>(s: &'a CpuStorage, l: &Layout, classes: usize) -> candle_core::Result<&'a [u32]> {
    let CpuStorage::U32(labels) = s else {
        candle_core::bail!("cross-entropy: labels must be u32")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("cross-entropy: labels must be contiguous")
    };
    let labels = &labels[a..b];
    if let Some((row, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, y)| **y as usize >= classes)
    {
        candle_core::bail!(
            "cross-entropy: label {label} of row {row} is not below the {classes} classes"
        )
    }
    Ok(labels)
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        zs: &CpuStorage,
        zl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, classes) = zl.shape().dims2()?;
        let logits = f32_data(zs, zl, "cross-entropy logits")?;
        let labels = labels_of(ys, yl, classes)?;
        let eps = self.smoothing;
        let total: f64 = logits
            .chunks_exact(classes)
            .zip(labels)
            .map(|(row, &y)| {
                let (max, lse) = log_sum_exp(row);
                // −log p[j] = max + lse − z_j
                let nll = (max + lse - row[y as usize]) as f64;
                if eps == 0.0 {
                    return nll;
                }
                let mean_z = row.iter().map(|&z| z as f64).sum::<f64>() / classes as f64;
                let smooth = (max + lse) as f64 - mean_z;
                (1.0 - eps) * nll + eps * smooth
            })
            .sum();
        let loss = (total / rows.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        _loss: &Tensor,
        dloss: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = dloss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let grad = logits.apply_op2_no_bwd(
            labels,
            &CrossEntropyGrad {
                smoothing: self.smoothing,
                scale,
            },
        )?;
        Ok((Some(grad), None))
    }
}

/// `d loss / d logits = scale / N · (softmax − (1 − ε)·onehot − ε / C)`.
struct CrossEntropyGrad {
    smoothing: f64,
    scale: f32,
}

impl CustomOp2 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        zs: &CpuStorage,
        zl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, classes) = zl.shape().dims2()?;
        let logits = f32_data(zs, zl, "cross-entropy logits")?;
        let labels = labels_of(ys, yl, classes)?;
        let k = self.scale / rows.max(1) as f32;
        let uniform = (self.smoothing / classes as f64) as f32;
        let hit = (1.0 - self.smoothing) as f32;
        let mut grad = vec![0.0f32; logits.len()];
        for ((g, row), &y) in grad
            .chunks_exact_mut(classes)
            .zip(logits.chunks_exact(classes))
            .zip(labels)
        {
            let (max, lse) = log_sum_exp(row);
            for (gj, &z) in g.iter_mut().zip(row) {
                *gj = k * ((z - max - lse).exp() - uniform);
            }
            g[y as usize] -= k * hit;
        }
        Ok((CpuStorage::F32(grad), zl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::{assert_close, rand_tensor};
    use candle_core::{Device, Var};

    #[test]
    fn loss_and_gradient_match_candle_with_and_without_smoothing() {
        let labels = Tensor::new(&[2u32, 0, 4, 1, 3, 3], &Device::Cpu).unwrap();
        for smoothing in [0.0, 0.1] {
            let z = Var::from_tensor(&(rand_tensor(&[6, 5], 1) * 4.0).unwrap()).unwrap();
            let ours = cross_entropy(z.as_tensor(), &labels, smoothing).unwrap();
            let want = candle_reference(z.as_tensor(), &labels, smoothing).unwrap();
            assert_close(&ours, &want, "loss");
            // A non-unit upstream gradient reaches the logits scaled.
            let g_ours = (ours * 3.0).unwrap().backward().unwrap();
            let g_want = (want * 3.0).unwrap().backward().unwrap();
            assert_close(
                g_ours.get(z.as_tensor()).unwrap(),
                g_want.get(z.as_tensor()).unwrap(),
                "gradient",
            );
        }
    }

    #[test]
    fn rejects_bad_labels_and_smoothing() {
        let z = rand_tensor(&[2, 3], 1);
        let bad = Tensor::new(&[0u32, 3], &Device::Cpu).unwrap();
        let err = cross_entropy(&z, &bad, 0.0).unwrap_err().to_string();
        assert!(err.contains("label 3 of row 1"), "{err}");
        let good = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        assert!(cross_entropy(&z, &good, 1.0).is_err());
        assert!(cross_entropy(&z, &good.unsqueeze(1).unwrap(), 0.0).is_err());
    }
}
