//! One language-model run as the official `train.py` does it, on a small scale:
//! Adam with a cosine rate to zero, gradient clipping at 0.25, k set from the
//! schedule before every step, routers left out of the optimizer when frozen; then
//! bits per character on the test text at every k of the sweep.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{D, Device, Tensor};
use candle_nn::VarMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sparse_core::lr::{LrSchedule, WarmupCosine};
use sparse_core::optim::trainable_vars;
use sparse_core::{Adam, AdamConfig, Optimizer};
use sparse_data::data::text::window_batch;
use sparse_repro::HarnessError;
use sparse_repro::progress::{Progress, ProgressMode};
use sparse_repro::rng::derive_rng;
use sparse_repro::train::{clip_grad_norm, cross_entropy};

use crate::config::LmConfig;
use crate::data::CharData;
use crate::error::Result;
use crate::mode::Mode;
use crate::model::{CharLm, is_router};

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
    /// Trainable parameters.
    pub params: usize,
    /// Wall-clock seconds per training step (forward, backward, update), measured in
    /// this run: a timing, kept out of the reproducible metrics.
    pub train_seconds_per_step: f64,
}

impl LmOutcome {
    /// The test BPC at the largest k of the sweep.
    pub fn bpc_at_largest_k(&self) -> f64 {
        self.test_bpc.last_key_value().map_or(f64::NAN, |(_, v)| *v)
    }
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

fn router_values(model: &CharLm) -> Result<Vec<Vec<f32>>> {
    let mut values = Vec::new();
    for layer in model.moe_layers() {
        let (w, b) = layer.router();
        values.push(w.flatten_all()?.to_vec1()?);
        values.push(b.to_vec1()?);
    }
    Ok(values)
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
    let frozen = spec.ffn_spec().router_frozen();
    let vars: Vec<_> = trainable_vars(&varmap)
        .into_iter()
        .filter(|(name, _)| !(frozen && is_router(name)))
        .collect();
    let params = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let plain: Vec<_> = vars.iter().map(|(_, v)| v.clone()).collect();
    let mut optimizer = Adam::from_params(vars, AdamConfig::adam(config.lr).build()?)?;
    let schedule = WarmupCosine::new(config.lr, 0.0, config.steps as f64)?;
    let routers_before = router_values(&model)?;

    let mut batch_rng = derive_rng(seed, "batches");
    let mut noise_rng = derive_rng(seed, "dropout");
    let windows = data.train.len() - config.seq_len - 1;
    let tail_from = config.steps - (config.steps / 10).max(1);
    let mut tail_loss = 0f64;
    let mut k_sum = 0usize;
    // one progress unit per fiftieth of the run
    let report_every = (config.steps / 50).max(1);
    let mut bar = Progress::new(label, config.steps.div_ceil(report_every) as u64, progress)
        .with_unit("block");
    let started = Instant::now();
    for step in 0..config.steps {
        let k = if spec.is_moe() {
            config.schedule.k_at(step)
        } else {
            spec.num_experts
        };
        k_sum += k;
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
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(HarnessError::invalid(
                "loss",
                value,
                format!("diverged at step {step}; lower the learning rate"),
            )
            .into());
        }
        if step >= tail_from {
            tail_loss += value;
        }
        let mut grads = loss.backward()?;
        clip_grad_norm(&mut grads, &plain, config.grad_clip)?;
        schedule.apply(&mut optimizer, step as f64);
        optimizer.step(&grads)?;
        if (step + 1) % report_every == 0 || step + 1 == config.steps {
            bar.update(&[("loss", value), ("k", k as f64)]);
        }
    }
    let train_seconds_per_step = started.elapsed().as_secs_f64() / config.steps as f64;
    bar.finish(&format!("{train_seconds_per_step:.4} s/step"));

    let routers_unchanged = spec
        .is_moe()
        .then(|| router_values(&model).map(|after| after == routers_before))
        .transpose()?;
    let outcome = LmOutcome {
        test_bpc: test_sweep(&model, config, data, &device)?,
        validation_bpc: bits_per_character(
            &model,
            held_out(&data.validation, config),
            config.seq_len,
            spec.num_experts,
            &device,
        )?,
        final_train_loss: tail_loss / (config.steps - tail_from) as f64,
        mean_k: k_sum as f64 / config.steps as f64,
        routers_unchanged,
        params,
        train_seconds_per_step,
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
