//! One math-word-problem run: teacher-forced cross-entropy over the equation
//! tokens, Adam with a cosine rate, k from the schedule before every step; then
//! greedy decoding of every test question and value accuracy through sparse-data's
//! prefix evaluator, at each k of the sweep.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sparse_repro::HarnessError;
use sparse_repro::batch::shuffled_indices;
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::derive_rng;
use sparse_repro::train::cross_entropy;

use crate::config::{RunSettings, check_run};
use crate::error::Result;
use crate::mode::Mode;
use crate::mwp::data::{BOS, Example, MwpData, PAD, is_consistent};
use crate::mwp::model::{Seq2Seq, Seq2SeqSpec};
use crate::schedule::KSchedule;
use crate::steps::{LoopSettings, StepLoop};

/// Questions per evaluation batch.
const EVAL_BATCH: usize = 64;

/// One math-word-problem arm's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MwpConfig {
    /// The model; vocabularies and target length 0 take the data's.
    pub model: Seq2SeqSpec,
    /// k over training (MoE models).
    pub schedule: KSchedule,
    /// Training steps.
    pub steps: usize,
    /// Problems per step.
    pub batch_size: usize,
    /// Adam's peak learning rate (cosine to 0 over `steps`).
    pub lr: f64,
    /// The global gradient-norm bound.
    pub grad_clip: f64,
    /// The k values of the sweep after training, ascending.
    pub sweep: Vec<usize>,
    /// Train on the first this many problems (all when `None`).
    pub max_train: Option<usize>,
    /// Test on the first this many problems (all when `None`).
    pub max_test: Option<usize>,
}

impl MwpConfig {
    /// Checks every value; the error names the parameter.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        check_run(&RunSettings {
            sizes: &[("steps", self.steps), ("batch_size", self.batch_size)],
            lr: self.lr,
            grad_clip: self.grad_clip,
            schedule: &self.schedule,
            ffn: &self.model.ffn_spec(),
            sweep: &self.sweep,
        })?;
        for (name, value) in [("max_train", self.max_train), ("max_test", self.max_test)] {
            if value == Some(0) {
                return Err(HarnessError::invalid(name, 0, "must be positive").into());
            }
        }
        Ok(())
    }

    /// The model's spec with the data's vocabularies and lengths filled in.
    pub fn spec_for(&self, data: &MwpData) -> Seq2SeqSpec {
        let mut spec = self.model;
        let longest_source = data
            .train
            .iter()
            .chain(&data.test)
            .map(|e| e.source.len())
            .max()
            .unwrap_or(1);
        spec.source_vocab = data.source_vocab.len();
        spec.target_vocab = data.target_vocab.len();
        spec.max_source = spec.max_source.min(longest_source).max(1);
        // the decoder reads the start token and every equation token
        spec.max_target = data.max_target();
        spec
    }
}

/// What one run records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MwpOutcome {
    /// Test value accuracy at each k of the sweep (k = N only for a dense model).
    pub test_accuracy: BTreeMap<usize, f64>,
    /// Training problems used.
    pub train_problems: usize,
    /// Test problems scored.
    pub test_problems: usize,
    /// Training problems dropped for an equation that misses its answer.
    pub dropped_inconsistent: usize,
    /// Scored test problems whose reference equation misses its answer.
    pub test_inconsistent: usize,
    /// Mean training loss over the last tenth of the steps.
    pub final_train_loss: f64,
    /// The mean k over the training steps (N for a dense model).
    pub mean_k: f64,
    /// Whether every router is bit-identical to its initial value (`None` without).
    pub routers_unchanged: Option<bool>,
    /// Optimized parameters (a frozen router's are not counted).
    pub params: usize,
    /// Wall-clock seconds per training step (a timing, kept out of the metrics).
    pub train_seconds_per_step: f64,
}

/// A trained model and what it measured.
pub struct MwpRun {
    /// Every variable.
    pub varmap: VarMap,
    /// The model.
    pub model: Seq2Seq,
    /// The record.
    pub outcome: MwpOutcome,
}

/// Padded `[batch, length]` ids and the 1/0 mask of real tokens.
fn pad(rows: &[&[u32]], device: &Device) -> Result<(Tensor, Tensor)> {
    let length = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let mut ids = Vec::with_capacity(rows.len() * length);
    let mut keep = Vec::with_capacity(rows.len() * length);
    for row in rows {
        ids.extend_from_slice(row);
        ids.extend(std::iter::repeat_n(PAD, length - row.len()));
        keep.extend(std::iter::repeat_n(1f32, row.len()));
        keep.extend(std::iter::repeat_n(0f32, length - row.len()));
    }
    Ok((
        Tensor::from_vec(ids, (rows.len(), length), device)?,
        Tensor::from_vec(keep, (rows.len(), length), device)?,
    ))
}

/// The teacher-forced loss of `batch` at `k`.
fn batch_loss(model: &Seq2Seq, batch: &[&Example], k: usize, mode: &mut Mode) -> Result<Tensor> {
    let device = Device::Cpu;
    let sources: Vec<&[u32]> = batch.iter().map(|e| e.source.as_slice()).collect();
    let (source, keep) = pad(&sources, &device)?;
    let inputs: Vec<Vec<u32>> = batch
        .iter()
        .map(|e| {
            let mut input = vec![BOS];
            input.extend_from_slice(&e.target[..e.target.len() - 1]);
            input
        })
        .collect();
    let input_rows: Vec<&[u32]> = inputs.iter().map(Vec::as_slice).collect();
    let (input, _) = pad(&input_rows, &device)?;
    let length = input.dim(1)?;
    let mut positions = Vec::new();
    let mut labels = Vec::new();
    for (b, e) in batch.iter().enumerate() {
        for (t, &label) in e.target.iter().enumerate() {
            positions.push((b * length + t) as u32);
            labels.push(label);
        }
    }
    let memory = model.encode(&source, &keep, k, mode)?;
    let logits = model.decode(&memory, &keep, &input, k, mode)?;
    let n = positions.len();
    let logits = logits.index_select(&Tensor::from_vec(positions, n, &device)?, 0)?;
    Ok(cross_entropy(
        &logits,
        &Tensor::from_vec(labels, n, &device)?,
        0.0,
    )?)
}

/// Value accuracy of greedy decoding over `examples` at `k`.
pub fn accuracy(model: &Seq2Seq, data: &MwpData, examples: &[Example], k: usize) -> Result<f64> {
    let mut correct = 0usize;
    for chunk in examples.chunks(EVAL_BATCH) {
        let sources: Vec<&[u32]> = chunk.iter().map(|e| e.source.as_slice()).collect();
        let (source, keep) = pad(&sources, &Device::Cpu)?;
        for (example, ids) in chunk.iter().zip(model.greedy(&source, &keep, k)?) {
            correct += usize::from(example.problem.is_correct(&data.equation(&ids)));
        }
    }
    Ok(correct as f64 / examples.len().max(1) as f64)
}

/// The test examples a run scores.
pub fn test_examples<'a>(config: &MwpConfig, data: &'a MwpData) -> &'a [Example] {
    &data.test[..config.max_test.unwrap_or(usize::MAX).min(data.test.len())]
}

/// Test accuracy at every k of the sweep (k = N only for a dense model).
pub fn test_sweep(
    model: &Seq2Seq,
    config: &MwpConfig,
    data: &MwpData,
) -> Result<BTreeMap<usize, f64>> {
    let test = test_examples(config, data);
    let ks: Vec<usize> = if model.spec().ffn_spec().is_moe() {
        config.sweep.clone()
    } else {
        vec![model.spec().num_experts]
    };
    ks.into_iter()
        .map(|k| Ok((k, accuracy(model, data, test, k)?)))
        .collect()
}

/// Builds the model of `config` for `data` with `seed`.
pub fn build(config: &MwpConfig, data: &MwpData, seed: u64) -> Result<(VarMap, Seq2Seq)> {
    config.validate()?;
    Seq2Seq::build(config.spec_for(data), seed, &Device::Cpu)
}

/// Trains `config` with `seed` on `data`.
pub fn train(
    config: &MwpConfig,
    data: &MwpData,
    seed: u64,
    progress: ProgressMode,
    label: &str,
) -> Result<MwpRun> {
    let (varmap, model) = build(config, data, seed)?;
    let settings = LoopSettings {
        ffn: model.spec().ffn_spec(),
        schedule: config.schedule,
        steps: config.steps,
        lr: config.lr,
        grad_clip: config.grad_clip,
    };
    let mut steps = StepLoop::new(settings, &varmap, &model.moe_layers(), progress, label)?;
    let train_set = &data.train[..config.max_train.unwrap_or(usize::MAX).min(data.train.len())];
    let mut order_rng = derive_rng(seed, "batches");
    let mut noise_rng = derive_rng(seed, "dropout");
    let mut order: Vec<usize> = Vec::new();
    for step in 0..config.steps {
        let k = steps.k_at(step);
        if order.len() < config.batch_size {
            // a new pass over the training problems, reshuffled
            order.extend(shuffled_indices(train_set.len(), &mut order_rng));
        }
        let batch: Vec<&Example> = order
            .drain(..config.batch_size.min(order.len()))
            .map(|i| &train_set[i])
            .collect();
        let mut mode = Mode::Train {
            rng: &mut noise_rng,
            dropout: config.model.dropout as f32,
        };
        let loss = batch_loss(&model, &batch, k, &mut mode)?;
        steps.update(step, k, &loss)?;
    }
    let summary = steps.finish(&model.moe_layers())?;
    let test = test_examples(config, data);
    let outcome = MwpOutcome {
        test_accuracy: test_sweep(&model, config, data)?,
        train_problems: train_set.len(),
        test_problems: test.len(),
        dropped_inconsistent: data.dropped_inconsistent,
        test_inconsistent: test.iter().filter(|e| !is_consistent(&e.problem)).count(),
        final_train_loss: summary.final_train_loss,
        mean_k: summary.mean_k,
        routers_unchanged: summary.routers_unchanged,
        params: summary.params,
        train_seconds_per_step: summary.train_seconds_per_step,
    };
    Ok(MwpRun {
        varmap,
        model,
        outcome,
    })
}
