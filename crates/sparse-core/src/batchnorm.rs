//! BatchNorm statistics recalibration (`torch.optim.swa_utils.update_bn`).
//!
//! After weights change without training (superposed Sup-tickets, an EMA copy, a
//! re-pruned model) the running statistics no longer match the activations. PyTorch
//! resets them and runs one pass with `momentum = None`, i.e. a cumulative average of
//! the per-batch statistics. candle's `BatchNorm` has a fixed momentum `m`, so
//! [`recalibrate`] zeroes the statistics before every batch: after the forward pass
//! `running = (1 − m)·0 + m·batch_stat`, hence `batch_stat = running / m` exactly
//! (candle's running variance is the unbiased batch variance, like PyTorch's).

use candle_core::{Tensor, Var};
use candle_nn::VarMap;

use crate::error::Result;
pub use crate::selection::{is_running_stat, sorted_vars};
use crate::validate::check_fraction_above_zero;

/// Suffix of running-mean buffers in a `VarMap` (candle-nn's `batch_norm`).
pub const RUNNING_MEAN: &str = "running_mean";
/// Suffix of running-variance buffers in a `VarMap`.
pub const RUNNING_VAR: &str = "running_var";

/// Recomputes every BatchNorm running statistic in `varmap` as the cumulative
/// average over `batches` of the per-batch statistics (PyTorch `momentum=None`).
///
/// `momentum` must be the momentum the model's `BatchNorm`s were built with
/// (candle-nn's default is 0.1). `forward` runs the model in **train** mode
/// (`forward_t(x, true)`) on one batch. Statistics are reset to mean 0 / variance 1
/// first; with no batch they stay so. Returns the number of batches seen.
/// A BatchNorm that a batch does not reach would average in zeros: run the whole model.
pub fn recalibrate<B, I, F>(
    varmap: &VarMap,
    momentum: f64,
    batches: I,
    mut forward: F,
) -> Result<usize>
where
    I: IntoIterator<Item = B>,
    F: FnMut(B) -> Result<()>,
{
    check_fraction_above_zero("momentum", momentum)?;
    let stats: Vec<(String, Var)> = sorted_vars(varmap)
        .into_iter()
        .filter(|(n, _)| is_running_stat(n))
        .collect();
    let mut sums: Vec<Tensor> = stats
        .iter()
        .map(|(_, v)| v.as_tensor().zeros_like())
        .collect::<candle_core::Result<_>>()?;
    let mut count = 0usize;
    for batch in batches {
        for (_, v) in &stats {
            v.set(&v.as_tensor().zeros_like()?)?;
        }
        forward(batch)?;
        for ((_, v), sum) in stats.iter().zip(sums.iter_mut()) {
            *sum = (&*sum + (v.as_tensor() / momentum)?)?;
        }
        count += 1;
    }
    for ((name, v), sum) in stats.iter().zip(&sums) {
        let value = if count > 0 {
            (sum / count as f64)?
        } else if name.ends_with(RUNNING_VAR) {
            v.as_tensor().ones_like()?
        } else {
            v.as_tensor().zeros_like()?
        };
        v.set(&value)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, ModuleT};
    use candle_nn::{BatchNormConfig, VarBuilder};

    /// Four batches of 3 samples, 2 channels, 2 spatial positions (6 values per channel).
    fn batches(dev: &Device) -> Vec<Tensor> {
        (0..4)
            .map(|b| {
                let v: Vec<f32> = (0..12)
                    .map(|i| ((i * 7 + b * 5) % 11) as f32 * 0.5 - 1.0 + b as f32)
                    .collect();
                Tensor::from_vec(v, (3, 2, 2), dev).unwrap()
            })
            .collect()
    }

    fn channel_values(xs: &[Tensor], c: usize) -> Vec<f64> {
        xs.iter()
            .flat_map(|x| {
                x.narrow(1, c, 1)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .map(f64::from)
            .collect()
    }

    fn mean_var_unbiased(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn recalibration_is_the_cumulative_average_of_batch_statistics() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let cfg = BatchNormConfig {
            momentum: 0.3,
            ..Default::default()
        };
        let bn = candle_nn::batch_norm(2, cfg, vb.pp("bn")).unwrap();
        // Pollute the statistics as training would.
        bn.forward_t(&(batches(&dev)[0].clone() * 10.0).unwrap(), true)
            .unwrap();
        let xs = batches(&dev);
        let n = recalibrate(&varmap, 0.3, xs.iter(), |x| {
            bn.forward_t(x, true)?;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 4);
        let data = varmap.data().lock().unwrap();
        let mean = data["bn.running_mean"]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap();
        let var = data["bn.running_var"].as_tensor().to_vec1::<f32>().unwrap();
        for c in 0..2 {
            // Equal batch sizes: the mean of batch means is the dataset mean.
            let (true_mean, _) = mean_var_unbiased(&channel_values(&xs, c));
            assert!(
                (mean[c] as f64 - true_mean).abs() < 1e-5,
                "{} vs {true_mean}",
                mean[c]
            );
            // PyTorch's cumulative average of per-batch unbiased variances.
            let expected_var = xs
                .iter()
                .map(|x| mean_var_unbiased(&channel_values(std::slice::from_ref(x), c)).1)
                .sum::<f64>()
                / 4.0;
            assert!(
                (var[c] as f64 - expected_var).abs() < 1e-4,
                "{} vs {expected_var}",
                var[c]
            );
        }
    }

    #[test]
    fn one_full_batch_gives_the_true_dataset_mean_and_variance() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let bn = candle_nn::batch_norm(2, BatchNormConfig::default(), vb.pp("bn")).unwrap();
        let xs = batches(&dev);
        let all = Tensor::cat(&xs, 0).unwrap();
        recalibrate(&varmap, 0.1, [all], |x| {
            bn.forward_t(&x, true)?;
            Ok(())
        })
        .unwrap();
        let data = varmap.data().lock().unwrap();
        let mean = data["bn.running_mean"]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap();
        let var = data["bn.running_var"].as_tensor().to_vec1::<f32>().unwrap();
        for c in 0..2 {
            let (m, v) = mean_var_unbiased(&channel_values(&xs, c));
            assert!((mean[c] as f64 - m).abs() < 1e-5);
            assert!((var[c] as f64 - v).abs() < 1e-4, "{} vs {v}", var[c]);
        }
    }

    #[test]
    fn bad_momentum_is_rejected_and_names_momentum() {
        let varmap = VarMap::new();
        let err = recalibrate(&varmap, 0.0, Vec::<()>::new(), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`momentum`"));
    }
}
