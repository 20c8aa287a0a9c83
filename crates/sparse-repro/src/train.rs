//! Training-loop helpers: evaluation of a classifier, best-epoch selection,
//! cross-entropy with label smoothing, gradient clipping and a stopwatch.
//!
//! There is deliberately no generic epoch loop: each paper has its own.

use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::error::{HarnessError, HarnessResult};
use crate::metrics::correct_count;

/// Mean cross-entropy of `logits` (`[n, classes]`) against integer `labels` (`[n]`),
/// with optional label smoothing `ε` in `[0, 1)`:
/// `loss = (1 − ε) · nll(target) + ε · mean over classes of (−log p)`, PyTorch's definition.
///
/// The result is a differentiable scalar tensor, computed by
/// [`sparse_core::kernels::cross_entropy`] (one fused op on f32 CPU tensors).
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    label_smoothing: f64,
) -> HarnessResult<Tensor> {
    if !(0.0..1.0).contains(&label_smoothing) {
        return Err(HarnessError::invalid(
            "label_smoothing",
            label_smoothing,
            "must be in [0, 1)",
        ));
    }
    crate::metrics::rows_with_labels(logits, labels)?;
    Ok(sparse_core::kernels::cross_entropy(
        logits,
        labels,
        label_smoothing,
    )?)
}

/// Clips the gradients of `vars` in `grads` so that their global L2 norm is at most
/// `max_norm`, like PyTorch's `clip_grad_norm_` (scale `max_norm / (norm + 1e-6)`).
///
/// Returns the global norm before clipping. Vars without a gradient are skipped. Pass
/// the vars in a fixed order (sorted by name) so that the float sum is reproducible.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> HarnessResult<f64> {
    if max_norm.is_nan() || max_norm <= 0.0 {
        return Err(HarnessError::invalid(
            "max_norm",
            max_norm,
            "must be positive",
        ));
    }
    let mut squared = 0f64;
    for var in vars {
        if let Some(grad) = grads.get(var.as_tensor()) {
            squared += grad
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let norm = squared.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(grad) = grads.get(var.as_tensor()) {
                let clipped = (grad * scale)?;
                grads.insert(var.as_tensor(), clipped);
            }
        }
    }
    Ok(norm)
}

/// The loss and accuracy of a classifier over a whole evaluation set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy per sample (no label smoothing).
    pub loss: f64,
    /// Top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// The number of samples evaluated.
    pub samples: usize,
}

/// Evaluates `forward` (inputs → logits `[n, classes]`) over `batches` of
/// `(inputs, labels)`, weighting each batch by its size.
///
/// Run it in inference mode (no dropout, batch-norm running statistics): `forward`
/// is the caller's, so the caller chooses. Errors if there are no samples.
pub fn evaluate_classifier<F, I>(mut forward: F, batches: I) -> HarnessResult<Evaluation>
where
    F: FnMut(&Tensor) -> candle_core::Result<Tensor>,
    I: IntoIterator<Item = HarnessResult<(Tensor, Tensor)>>,
{
    let mut loss_sum = 0f64;
    let mut correct = 0usize;
    let mut samples = 0usize;
    for batch in batches {
        let (inputs, labels) = batch?;
        let logits = forward(&inputs)?.detach();
        let n = logits.dims2()?.0;
        loss_sum += cross_entropy(&logits, &labels, 0.0)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            * n as f64;
        correct += correct_count(&logits, &labels)?;
        samples += n;
    }
    if samples == 0 {
        return Err(HarnessError::invalid(
            "batches",
            "empty",
            "evaluation needs at least one sample",
        ));
    }
    Ok(Evaluation {
        loss: loss_sum / samples as f64,
        accuracy: correct as f64 / samples as f64,
        samples,
    })
}

/// Runs `forward` over `batches` and concatenates all logits and labels, for metrics
/// that need the whole set at once (ECE, AUROC).
pub fn collect_logits<F, I>(mut forward: F, batches: I) -> HarnessResult<(Tensor, Tensor)>
where
    F: FnMut(&Tensor) -> candle_core::Result<Tensor>,
    I: IntoIterator<Item = HarnessResult<(Tensor, Tensor)>>,
{
    let mut all_logits = Vec::new();
    let mut all_labels = Vec::new();
    for batch in batches {
        let (inputs, labels) = batch?;
        all_logits.push(forward(&inputs)?.detach());
        all_labels.push(labels);
    }
    if all_logits.is_empty() {
        return Err(HarnessError::invalid(
            "batches",
            "empty",
            "need at least one batch",
        ));
    }
    Ok((Tensor::cat(&all_logits, 0)?, Tensor::cat(&all_labels, 0)?))
}

/// Whether a larger or a smaller validation metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Larger is better (accuracy).
    Maximize,
    /// Smaller is better (loss, bits per character).
    Minimize,
}

/// The epoch with the best validation metric and the test metric measured at it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestEpoch {
    /// The epoch (as numbered by the caller).
    pub epoch: usize,
    /// Its validation metric.
    pub validation: f64,
    /// The test metric at that epoch.
    pub test: f64,
}

/// Keeps the epoch with the best validation metric and the test metric at that
/// epoch: model selection on validation, never on test.
///
/// Only a strict improvement replaces the best (the earliest of equal epochs is kept);
/// a NaN validation metric never counts as an improvement.
#[derive(Debug, Clone, PartialEq)]
pub struct BestTracker {
    goal: Goal,
    best: Option<BestEpoch>,
}

impl BestTracker {
    /// A tracker with nothing recorded yet.
    pub fn new(goal: Goal) -> Self {
        Self { goal, best: None }
    }

    /// Records an epoch; returns true if it is the new best (e.g. to save a checkpoint).
    pub fn update(&mut self, epoch: usize, validation: f64, test: f64) -> bool {
        if validation.is_nan() {
            return false;
        }
        let better = match self.best {
            None => true,
            Some(best) => match self.goal {
                Goal::Maximize => validation > best.validation,
                Goal::Minimize => validation < best.validation,
            },
        };
        if better {
            self.best = Some(BestEpoch {
                epoch,
                validation,
                test,
            });
        }
        better
    }

    /// The best epoch so far, if any epoch was recorded.
    pub fn best(&self) -> Option<BestEpoch> {
        self.best
    }
}

/// Measures wall-clock time of a run or a phase.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    start: Instant,
    lap: Instant,
}

impl Stopwatch {
    /// A stopwatch started now.
    pub fn start() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            lap: now,
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Seconds since the start (for `wall_seconds`).
    pub fn elapsed_seconds(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }

    /// Time since the previous lap (or the start), then starts a new lap.
    pub fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let lap = now - self.lap;
        self.lap = now;
        lap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    fn scalar(t: &Tensor) -> f64 {
        t.to_dtype(DType::F64)
            .and_then(|t| t.to_scalar::<f64>())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn cross_entropy_matches_hand_values() -> HarnessResult<()> {
        // Uniform logits over 4 classes: -log(1/4) = ln 4, smoothing changes nothing.
        let logits = Tensor::zeros((2, 4), DType::F32, &Device::Cpu)?;
        let labels = Tensor::new(&[0u32, 3], &Device::Cpu)?;
        assert!(close(
            scalar(&cross_entropy(&logits, &labels, 0.0)?),
            4f64.ln()
        ));
        assert!(close(
            scalar(&cross_entropy(&logits, &labels, 0.1)?),
            4f64.ln()
        ));
        // Two classes, logits (ln 3, 0): p = (3/4, 1/4). Target 0: nll = ln(4/3);
        // mean over classes of -log p = (ln(4/3) + ln 4) / 2.
        let logits = Tensor::new(&[[3f32.ln(), 0.0]], &Device::Cpu)?;
        let labels = Tensor::new(&[0u32], &Device::Cpu)?;
        let nll = (4.0f64 / 3.0).ln();
        let uniform = ((4.0f64 / 3.0).ln() + 4f64.ln()) / 2.0;
        assert!(close(scalar(&cross_entropy(&logits, &labels, 0.0)?), nll));
        assert!(close(
            scalar(&cross_entropy(&logits, &labels, 0.2)?),
            0.8 * nll + 0.2 * uniform
        ));
        assert!(cross_entropy(&logits, &labels, 1.0).is_err());
        Ok(())
    }

    #[test]
    fn clip_grad_norm_scales_to_max_norm() -> HarnessResult<()> {
        let a = Var::new(&[3f32, 0.0], &Device::Cpu)?;
        let b = Var::new(&[4f32], &Device::Cpu)?;
        // loss = sum(a * g_a) + sum(b * g_b) has gradients g_a = (3, 0)... use a^2/2: grad = a.
        let loss = ((a.as_tensor().sqr()?.sum_all()? + b.as_tensor().sqr()?.sum_all()?)? * 0.5)?;
        let mut grads = loss.backward()?;
        let vars = [a.clone(), b.clone()];
        let norm = clip_grad_norm(&mut grads, &vars, 1.0)?;
        assert!(close(norm, 5.0));
        let ga = grads
            .get(a.as_tensor())
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        let gb = grads
            .get(b.as_tensor())
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert!(close(f64::from(ga[0]), 0.6) && close(f64::from(ga[1]), 0.0));
        assert!(close(f64::from(gb[0]), 0.8));
        // Below the limit nothing changes.
        let norm = clip_grad_norm(&mut grads, &vars, 10.0)?;
        assert!(close(norm, 1.0));
        let gb = grads
            .get(b.as_tensor())
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert!(close(f64::from(gb[0]), 0.8));
        assert!(clip_grad_norm(&mut grads, &vars, 0.0).is_err());
        Ok(())
    }

    #[test]
    fn evaluate_weights_batches_by_size() -> HarnessResult<()> {
        // "Model": logits are the inputs. Batch 1: 2 samples, 1 correct; batch 2: 1 correct.
        let b1 = (
            Tensor::new(&[[1f32, 0.], [1., 0.]], &Device::Cpu)?,
            Tensor::new(&[0u32, 1], &Device::Cpu)?,
        );
        let b2 = (
            Tensor::new(&[[0f32, 1.]], &Device::Cpu)?,
            Tensor::new(&[1u32], &Device::Cpu)?,
        );
        let eval = evaluate_classifier(|x| Ok(x.clone()), [Ok(b1.clone()), Ok(b2.clone())])?;
        assert_eq!(eval.samples, 3);
        assert!(close(eval.accuracy, 2.0 / 3.0));
        // Per-sample nll: softplus(-1), softplus(1), softplus(-1) with softplus(z) = ln(1 + e^z).
        let low = (1.0 + (-1f64).exp()).ln();
        let high = (1.0 + 1f64.exp()).ln();
        assert!(close(eval.loss, (2.0 * low + high) / 3.0));
        let (logits, labels) = collect_logits(|x| Ok(x.clone()), [Ok(b1), Ok(b2)])?;
        assert_eq!(logits.dims(), &[3, 2]);
        assert_eq!(labels.to_vec1::<u32>()?, vec![0, 1, 1]);
        assert!(evaluate_classifier(|x| Ok(x.clone()), Vec::new()).is_err());
        Ok(())
    }

    #[test]
    fn best_tracker_selects_on_validation() {
        let mut tracker = BestTracker::new(Goal::Maximize);
        assert!(tracker.best().is_none());
        assert!(tracker.update(0, 0.5, 0.4));
        assert!(tracker.update(1, 0.7, 0.6));
        assert!(!tracker.update(2, 0.7, 0.9)); // tie: keep the earlier epoch
        assert!(!tracker.update(3, 0.6, 0.95)); // higher test, lower validation: ignored
        assert!(!tracker.update(4, f64::NAN, 1.0));
        assert_eq!(
            tracker.best(),
            Some(BestEpoch {
                epoch: 1,
                validation: 0.7,
                test: 0.6
            })
        );
        let mut loss = BestTracker::new(Goal::Minimize);
        loss.update(0, 2.0, 0.1);
        loss.update(1, 1.5, 0.2);
        loss.update(2, 1.8, 0.3);
        assert_eq!(loss.best().map(|b| b.epoch), Some(1));
    }

    #[test]
    fn stopwatch_laps_are_ordered() {
        let mut watch = Stopwatch::start();
        let lap = watch.lap();
        assert!(watch.elapsed() >= lap);
    }
}
