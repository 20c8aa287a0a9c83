//! What every run of either task does around its forward pass: k from the schedule
//! before each step, routers left out of the optimizer when frozen, Adam with a
//! cosine rate to zero, gradient clipping, the loss tail, the step time, progress,
//! and the frozen-router check at the end.

use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use sparse_core::lr::{LrSchedule, WarmupCosine};
use sparse_core::optim::trainable_vars;
use sparse_core::{Adam, AdamConfig, Optimizer};
use sparse_repro::HarnessError;
use sparse_repro::progress::{Progress, ProgressMode};
use sparse_repro::train::clip_grad_norm;

use crate::error::Result;
use crate::layers::FfnSpec;
use crate::model::is_router;
use crate::moe::MoeLayer;
use crate::schedule::KSchedule;

/// How a run trains, whatever its model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoopSettings {
    /// The feed-forward blocks (dense or MoE; frozen routers are not optimized).
    pub ffn: FfnSpec,
    /// k over training (MoE models).
    pub schedule: KSchedule,
    /// Training steps.
    pub steps: usize,
    /// Adam's peak rate.
    pub lr: f64,
    /// The global gradient-norm bound.
    pub grad_clip: f64,
}

/// What the loop measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LoopSummary {
    /// Mean training loss over the last tenth of the steps.
    pub final_train_loss: f64,
    /// The mean k over the steps (N for a dense model).
    pub mean_k: f64,
    /// Whether every router is bit-identical to its initial value (`None` without).
    pub routers_unchanged: Option<bool>,
    /// Optimized parameters.
    pub params: usize,
    /// Wall-clock seconds per step.
    pub train_seconds_per_step: f64,
}

fn router_values(layers: &[&MoeLayer]) -> Result<Vec<Vec<f32>>> {
    let mut values = Vec::new();
    for layer in layers {
        let (w, b) = layer.router();
        values.push(w.flatten_all()?.to_vec1()?);
        values.push(b.to_vec1()?);
    }
    Ok(values)
}

/// The optimizer side of a run; the caller computes each step's loss.
pub(crate) struct StepLoop {
    settings: LoopSettings,
    optimizer: Adam,
    rate: WarmupCosine,
    vars: Vec<Var>,
    params: usize,
    routers_before: Vec<Vec<f32>>,
    tail_from: usize,
    tail_loss: f64,
    k_sum: usize,
    report_every: usize,
    progress: Progress,
    started: Instant,
}

impl StepLoop {
    /// A loop over `varmap`'s trainable tensors (frozen routers excepted); `routers`
    /// are the model's MoE layers, checked bit for bit at the end.
    pub(crate) fn new(
        settings: LoopSettings,
        varmap: &VarMap,
        routers: &[&MoeLayer],
        progress: ProgressMode,
        label: &str,
    ) -> Result<Self> {
        let frozen = settings.ffn.router_frozen();
        let named: Vec<(String, Var)> = trainable_vars(varmap)
            .into_iter()
            .filter(|(name, _)| !(frozen && is_router(name)))
            .collect();
        let params = named.iter().map(|(_, v)| v.elem_count()).sum();
        let vars = named.iter().map(|(_, v)| v.clone()).collect();
        let optimizer = Adam::from_params(named, AdamConfig::adam(settings.lr).build()?)?;
        // one progress unit per fiftieth of the run
        let report_every = (settings.steps / 50).max(1);
        Ok(Self {
            settings,
            optimizer,
            rate: WarmupCosine::new(settings.lr, 0.0, settings.steps as f64)?,
            vars,
            params,
            routers_before: router_values(routers)?,
            tail_from: settings.steps - (settings.steps / 10).max(1),
            tail_loss: 0.0,
            k_sum: 0,
            report_every,
            progress: Progress::new(
                label,
                settings.steps.div_ceil(report_every) as u64,
                progress,
            )
            .with_unit("block"),
            started: Instant::now(),
        })
    }

    /// The k of training step `step` (N for a dense model).
    pub(crate) fn k_at(&self, step: usize) -> usize {
        if self.settings.ffn.is_moe() {
            self.settings.schedule.k_at(step)
        } else {
            self.settings.ffn.num_experts
        }
    }

    /// Backpropagates step `step`'s `loss` (computed at `k`), clips, and updates.
    pub(crate) fn update(&mut self, step: usize, k: usize, loss: &Tensor) -> Result<()> {
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(HarnessError::invalid(
                "loss",
                value,
                format!("diverged at step {step}; lower the learning rate"),
            )
            .into());
        }
        self.k_sum += k;
        if step >= self.tail_from {
            self.tail_loss += value;
        }
        let mut grads = loss.backward()?;
        clip_grad_norm(&mut grads, &self.vars, self.settings.grad_clip)?;
        self.rate.apply(&mut self.optimizer, step as f64);
        self.optimizer.step(&grads)?;
        if (step + 1).is_multiple_of(self.report_every) || step + 1 == self.settings.steps {
            self.progress.update(&[("loss", value), ("k", k as f64)]);
        }
        Ok(())
    }

    /// Ends the loop: the summary, and whether `routers` are what they were.
    pub(crate) fn finish(self, routers: &[&MoeLayer]) -> Result<LoopSummary> {
        let steps = self.settings.steps;
        let train_seconds_per_step = self.started.elapsed().as_secs_f64() / steps as f64;
        self.progress
            .finish(&format!("{train_seconds_per_step:.4} s/step"));
        let routers_unchanged = if routers.is_empty() {
            None
        } else {
            Some(router_values(routers)? == self.routers_before)
        };
        Ok(LoopSummary {
            final_train_loss: self.tail_loss / (steps - self.tail_from) as f64,
            mean_k: self.k_sum as f64 / steps as f64,
            routers_unchanged,
            params: self.params,
            train_seconds_per_step,
        })
    }
}
