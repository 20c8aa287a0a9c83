//! One language-model arm's configuration, checked before training starts.

use serde::{Deserialize, Serialize};
use sparse_repro::HarnessError;

use crate::error::Result;
use crate::layers::FfnSpec;
use crate::model::LmSpec;
use crate::schedule::KSchedule;

/// Everything one run needs besides its seed and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// The model; `vocab` 0 takes the data's vocabulary size.
    pub model: LmSpec,
    /// k over training (MoE models).
    pub schedule: KSchedule,
    /// Training steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Characters per sequence (at most the model's context).
    pub seq_len: usize,
    /// Adam's peak learning rate (cosine to 0 over `steps`).
    pub lr: f64,
    /// The global gradient-norm bound (`--clip`).
    pub grad_clip: f64,
    /// THOR's consistency weight: two passes per step and `α ·` symmetric KL.
    pub consistency: Option<f64>,
    /// The k values of the self-slimmable sweep after training, ascending.
    pub sweep: Vec<usize>,
    /// Evaluate on the first this many validation and test characters (all when
    /// `None`).
    pub eval_chars: Option<usize>,
}

impl LmConfig {
    /// Checks every value; the error names the parameter.
    pub fn validate(&self) -> Result<()> {
        let mut model = self.model;
        model.vocab = model.vocab.max(1);
        model.validate()?;
        check_run(&RunSettings {
            sizes: &[
                ("steps", self.steps),
                ("batch_size", self.batch_size),
                ("seq_len", self.seq_len),
            ],
            lr: self.lr,
            grad_clip: self.grad_clip,
            schedule: &self.schedule,
            ffn: &self.model.ffn_spec(),
            sweep: &self.sweep,
        })?;
        if let Some(chars) = self.eval_chars
            && chars <= self.seq_len
        {
            return Err(HarnessError::invalid(
                "eval_chars",
                chars,
                format!("must exceed seq_len = {}", self.seq_len),
            )
            .into());
        }
        if self.seq_len > self.model.context {
            return Err(HarnessError::invalid(
                "seq_len",
                self.seq_len,
                format!("must not exceed the context {}", self.model.context),
            )
            .into());
        }
        if let Some(alpha) = self.consistency
            && !(alpha.is_finite() && alpha >= 0.0)
        {
            return Err(HarnessError::invalid("consistency", alpha, "must be >= 0").into());
        }
        Ok(())
    }
}

/// The settings every run of either task has.
pub(crate) struct RunSettings<'a> {
    /// Counts that must be positive (steps, batch size, …), by name.
    pub sizes: &'a [(&'static str, usize)],
    /// Adam's peak rate.
    pub lr: f64,
    /// The gradient-norm bound.
    pub grad_clip: f64,
    /// k over training.
    pub schedule: &'a KSchedule,
    /// The feed-forward blocks.
    pub ffn: &'a FfnSpec,
    /// The inference sweep of k.
    pub sweep: &'a [usize],
}

/// Checks what every run has; the error names the parameter.
pub(crate) fn check_run(run: &RunSettings) -> Result<()> {
    for &(name, value) in run.sizes {
        if value == 0 {
            return Err(HarnessError::invalid(name, value, "must be positive").into());
        }
    }
    if !(run.lr.is_finite() && run.lr > 0.0) {
        return Err(HarnessError::invalid("lr", run.lr, "must be positive").into());
    }
    if !(run.grad_clip.is_finite() && run.grad_clip > 0.0) {
        return Err(HarnessError::invalid("grad_clip", run.grad_clip, "must be positive").into());
    }
    run.schedule.validate()?;
    let n = run.ffn.num_experts;
    if run.ffn.is_moe() && run.schedule.k_max > n {
        return Err(HarnessError::invalid(
            "k_max",
            run.schedule.k_max,
            format!("must not exceed num_experts = {n}"),
        )
        .into());
    }
    if run.sweep.is_empty() || run.sweep.windows(2).any(|w| w[0] >= w[1]) {
        return Err(HarnessError::invalid(
            "sweep",
            format!("{:?}", run.sweep),
            "must be a non-empty ascending list of k",
        )
        .into());
    }
    if let Some(&k) = run.sweep.iter().find(|&&k| k == 0 || k > n) {
        return Err(
            HarnessError::invalid("sweep", k, format!("every k must be in 1..={n}")).into(),
        );
    }
    Ok(())
}

/// One arm's configuration: a language-model run or a math-word-problem run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmConfig {
    /// Character-level language modelling.
    Lm(LmConfig),
    /// Math word problems.
    Mwp(crate::mwp::training::MwpConfig),
}

impl ArmConfig {
    /// Checks every value; the error names the parameter.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Lm(config) => config.validate(),
            Self::Mwp(config) => config.validate(),
        }
    }
}
