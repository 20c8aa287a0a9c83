//! One language-model run as the official `train.py` does it, on a small scale:
//! Adam with a cosine rate to zero, gradient clipping at 0.25, k set from the
//! schedule before every step, routers left out of the optimizer when frozen; then
//! bits per character on the test text at every k of the sweep.

use std::collections::BTreeMap;

use candle_core::{D, Device, Tensor};
use candle_nn::VarMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sparse_data::data::text::window_batch;
use sparse_repro::HarnessError;
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::derive_rng;
use sparse_repro::train::cross_entropy;

use crate::config::LmConfig;
use crate::data::CharData;
use crate::error::Result;
use crate::mode::Mode;
use crate::model::CharLm;
use crate::steps::{LoopSettings, StepLoop};

/// Sequences per evaluation batch.
const EVAL_BATCH: usize = 64;

/// What one run records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmOutcome {
    /// Test bits per character at each k of the sweep (one entry, k = N, for a dense
    /// model).
    pub test_bpc: BTreeMap<usize, f64>,
    /// Validation bits per character at k = N.
    pub validation_bpc: f64,
    /// Mean training loss (nats) over the last tenth of the steps.
    pub final_train_loss: f64,
    /// The mean k over the training steps (N for a dense model).
    pub mean_k: f64,
    /// Whether every router tensor is bit-identical to its initial value (`None`
    /// without routers).
    pub routers_unchanged: Option<bool>,
    /// Optimized parameters (a frozen router's are not counted).
    pub params: usize,
    /// Wall-clock seconds per training step (forward, backward, update), measured in
    /// this run: a timing, kept out of the reproducible metrics.
    pub train_seconds_per_step: f64,
}

/// A trained model and what it measured.
pub struct LmRun {
    /// Every variable of the model.
    pub varmap: VarMap,
    /// The model.
    pub model: CharLm,
    /// The record.
    pub outcome: LmOutcome,
}

/// Symmetric Kullback–Leibler divergence `KL(p‖q) + KL(q‖p)` between the softmaxes of
/// two logit tensors `[n, classes]`, summed over classes and averaged over rows:
/// THOR's consistency regulariser.
pub fn symmetric_kl(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(a, D::Minus1)?;
    let log_q = candle_nn::ops::log_softmax(b, D::Minus1)?;
    let diff = (log_p.exp()? - log_q.exp()?)?;
    Ok((diff * (log_p - log_q)?)?.sum(1)?.mean(0)?)
}

/// Bits per character of `model` at `k` over `tokens`, in consecutive windows of the
/// model's training length (every character after a window's first is predicted once).
pub fn bits_per_character(
    model: &CharLm,
    tokens: &[u32],
    length: usize,
    k: usize,
    device: &Device,
) -> Result<f64> {
    if tokens.len() <= length {
        return Err(HarnessError::invalid(
            "tokens",
            tokens.len(),
            format!("an evaluation text needs more than {length} characters"),
        )
        .into());
    }
    let starts: Vec<usize> = (0..tokens.len() - length).step_by(length).collect();
    let mut total = 0f64;
    let mut count = 0usize;
    for chunk in starts.chunks(EVAL_BATCH) {
        let (input, target) = window_batch(tokens, chunk, length, device)?;
        let logits = model.forward(&input, k, &mut Mode::Eval)?;
        let loss = cross_entropy(&logits, &target.flatten_all()?, 0.0)?.to_scalar::<f32>()?;
        let n = chunk.len() * length;
        total += f64::from(loss) * n as f64;
        count += n;
    }
    Ok(total / count as f64 / std::f64::consts::LN_2)
}

/// The evaluated part of a held-out text.
fn held_out<'a>(tokens: &'a [u32], config: &LmConfig) -> &'a [u32] {
    &tokens[..config.eval_chars.unwrap_or(usize::MAX).min(tokens.len())]
}

/// Trains `config` with `seed` on `data`.
pub fn train(
    config: &LmConfig,
    data: &CharData,
    seed: u64,
    progress: ProgressMode,
    label: &str,
) -> Result<LmRun> {
    config.validate()?;
    let device = Device::Cpu;
    let mut spec = config.model;
    spec.vocab = data.vocab_size();
    let (varmap, model) = CharLm::build(spec, seed, &device)?;
    let settings = LoopSettings {
        ffn: spec.ffn_spec(),
        schedule: config.schedule,
        steps: config.steps,
        lr: config.lr,
        grad_clip: config.grad_clip,
    };
    let mut steps = StepLoop::new(settings, &varmap, &model.moe_layers(), progress, label)?;
    let mut batch_rng = derive_rng(seed, "batches");
    let mut noise_rng = derive_rng(seed, "dropout");
    let windows = data.train.len() - config.seq_len - 1;
    for step in 0..config.steps {
        let k = steps.k_at(step);
        let starts: Vec<usize> = (0..config.batch_size)
            .map(|_| batch_rng.random_range(0..windows))
            .collect();
        let (input, target) = window_batch(&data.train, &starts, config.seq_len, &device)?;
        let target = target.flatten_all()?;
        let mut mode = Mode::Train {
            rng: &mut noise_rng,
            dropout: spec.dropout as f32,
        };
        let logits = model.forward(&input, k, &mut mode)?;
        let mut loss = cross_entropy(&logits, &target, 0.0)?;
        if let Some(alpha) = config.consistency {
            let second = model.forward(&input, k, &mut mode)?;
            let second_loss = cross_entropy(&second, &target, 0.0)?;
            loss = (((loss + second_loss)? * 0.5)? + (symmetric_kl(&logits, &second)? * alpha)?)?;
        }
        steps.update(step, k, &loss)?;
    }
    let summary = steps.finish(&model.moe_layers())?;
    let outcome = LmOutcome {
        test_bpc: test_sweep(&model, config, data, &device)?,
        validation_bpc: bits_per_character(
            &model,
            held_out(&data.validation, config),
            config.seq_len,
            spec.num_experts,
            &device,
        )?,
        final_train_loss: summary.final_train_loss,
        mean_k: summary.mean_k,
        routers_unchanged: summary.routers_unchanged,
        params: summary.params,
        train_seconds_per_step: summary.train_seconds_per_step,
    };
    Ok(LmRun {
        varmap,
        model,
        outcome,
    })
}

/// The test BPC at every k of the sweep (k = N only for a dense model).
pub fn test_sweep(
    model: &CharLm,
    config: &LmConfig,
    data: &CharData,
    device: &Device,
) -> Result<BTreeMap<usize, f64>> {
    let spec = model.spec();
    let test = held_out(&data.test, config);
    let ks: Vec<usize> = if spec.is_moe() {
        config.sweep.clone()
    } else {
        vec![spec.num_experts]
    };
    ks.into_iter()
        .map(|k| {
            Ok((
                k,
                bits_per_character(model, test, config.seq_len, k, device)?,
            ))
        })
        .collect()
}

/// What a run of either task records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A language-model run.
    Lm(LmOutcome),
    /// A math-word-problem run.
    Mwp(crate::mwp::training::MwpOutcome),
}

impl Outcome {
    /// Wall-clock seconds per training step.
    pub fn train_seconds_per_step(&self) -> f64 {
        match self {
            Self::Lm(o) => o.train_seconds_per_step,
            Self::Mwp(o) => o.train_seconds_per_step,
        }
    }

    /// Whether the routers stayed bit-identical (`None` without routers).
    pub fn routers_unchanged(&self) -> Option<bool> {
        match self {
            Self::Lm(o) => o.routers_unchanged,
            Self::Mwp(o) => o.routers_unchanged,
        }
    }

    /// The task's score at each k of the sweep: test BPC or test accuracy.
    pub fn by_k(&self) -> &BTreeMap<usize, f64> {
        match self {
            Self::Lm(o) => &o.test_bpc,
            Self::Mwp(o) => &o.test_accuracy,
        }
    }
}
