//! The IMP stage: the model, one round's training in sparse-repro's epoch loop, and
//! sparse-core's IMP driver around it.
//!
//! The driver ([`sparse_core::imp::iterative_magnitude_pruning`]) prunes 20 % of the
//! remaining convolution weights globally by magnitude (PyTorch's count), rewinds
//! every state entry, BatchNorm statistics and classifier included, to the point
//! captured after `rewind_epoch` epochs of round 0, and hands each round to
//! `train_round`: a fresh SGD, the learning-rate schedule resumed at the rewind
//! epoch, the masks re-applied after every step, and the round's best-validation
//! epoch kept as its ticket (as `main_imp.py` keeps `model_SA_best`).

use candle_core::Device;
use candle_nn::{ModuleT, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::imp::{RoundPlan, Ticket, iterative_magnitude_pruning};
use sparse_core::lr::{LrSchedule, MultiStep};
use sparse_core::optim::trainable_vars;
use sparse_core::{Mask, ModelState, Optimizer, SelectionPolicy, Sgd, SgdConfig, SparseParams};
use sparse_repro::batch::BatchIndices;
use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
use sparse_repro::models::{Model, Network};
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::{derive_rng, streams};
use sparse_repro::splits::ImageSplits;
use sparse_repro::train::{Goal, cross_entropy, evaluate_classifier};

use crate::config::LotteryConfig;
use crate::error::Result;

/// Builds `config`'s model for `splits`' images, initialised from `seed`
/// (Kaiming-normal weights), every convolution weight registered with a full mask.
pub fn network(config: &LotteryConfig, splits: &ImageSplits, seed: u64) -> Result<Network> {
    let mut net = Network::kaiming(
        config.architecture(),
        splits.data.input_shape(),
        splits.data.num_classes(),
        &mut derive_rng(seed, streams::INIT),
    )?;
    for (name, var) in conv_policy(&net.model)?.select_in_model_order(&net.varmap)? {
        let mask = Mask::ones(var.dims());
        net.params.insert(name, var, mask)?;
    }
    Ok(net)
}

/// Every convolution weight (rank 4) in forward order; the classifier, biases and
/// BatchNorm are never pruned (`pruner.py` prunes `nn.Conv2d` only).
fn conv_policy(model: &Model) -> Result<SelectionPolicy> {
    Ok(SelectionPolicy::builder()
        .convolutions_only()
        .layer_order(model.weight_names_in_order())
        .build()?)
}

/// What one round measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundRecord {
    /// The round (0: dense).
    pub round: usize,
    /// Share of the convolution weights left.
    pub remaining: f64,
    /// The best-validation epoch (1-based, counted from the round's first epoch).
    pub best_epoch: usize,
    /// Its validation accuracy.
    pub validation: f64,
    /// Its test accuracy.
    pub test: f64,
}

/// Runs IMP with rewinding on a new network of `config`: one ticket per round.
pub fn run_imp(
    config: &LotteryConfig,
    splits: &ImageSplits,
    seed: u64,
    progress: ProgressMode,
    label: &str,
) -> Result<(Network, Vec<Ticket>, Vec<RoundRecord>)> {
    let mut net = network(config, splits, seed)?;
    let schedule = config.imp_schedule()?;
    let mut shuffle = derive_rng(seed, streams::SHUFFLE);
    let mut records = Vec::with_capacity(schedule.rounds());
    let varmap = net.varmap.clone();
    let model = &net.model;
    let tickets = iterative_magnitude_pruning(
        &varmap,
        &mut net.params,
        &schedule,
        |plan, params, after_epoch| {
            let (state, record) = train_round(
                RoundInputs {
                    config,
                    splits,
                    model,
                    varmap: &varmap,
                    params,
                },
                plan,
                &mut shuffle,
                after_epoch,
                progress,
                &format!("{label} round {}", plan.round),
            )
            .map_err(into_sparse)?;
            let score = record.validation;
            records.push(record);
            Ok((state, score))
        },
    )?;
    Ok((net, tickets, records))
}

/// sparse-core's driver takes its own error type from the round closure; a
/// failure in our round travels as an invalid-input error carrying its message.
fn into_sparse(e: crate::Error) -> sparse_core::SparseError {
    match e {
        crate::Error::Harness(sparse_repro::HarnessError::Sparse(inner)) => inner,
        other => sparse_core::SparseError::invalid_input("train_round", other.to_string()),
    }
}

/// The model a round trains.
struct RoundInputs<'a> {
    config: &'a LotteryConfig,
    splits: &'a ImageSplits,
    model: &'a Model,
    varmap: &'a VarMap,
    params: &'a SparseParams,
}

/// One round: epochs `plan.start_epoch..plan.epochs` with a fresh optimizer, the
/// schedule at the epoch's own rate; returns the best-validation state.
fn train_round(
    inputs: RoundInputs<'_>,
    plan: &RoundPlan,
    shuffle: &mut ChaCha8Rng,
    after_epoch: &mut dyn FnMut(usize) -> sparse_core::Result<()>,
    progress: ProgressMode,
    label: &str,
) -> Result<(ModelState, RoundRecord)> {
    let o = inputs.config.optimizer();
    let sgd = SgdConfig::builder(o.lr)
        .momentum(o.momentum)
        .weight_decay(o.weight_decay)
        .build()?;
    let optimizer = Sgd::from_params(trainable_vars(inputs.varmap), sgd)?;
    let mut task = RoundTask {
        inputs: &inputs,
        optimizer,
        schedule: inputs.config.lr_schedule()?,
        shuffle,
        after_epoch,
        start_epoch: plan.start_epoch,
        best: ModelState::capture(inputs.varmap)?,
    };
    let outcome = EpochLoop::new(plan.epochs - plan.start_epoch, Goal::Maximize)
        .progress(label, progress)
        .run(&mut task)?;
    let record = RoundRecord {
        round: plan.round,
        remaining: plan.density,
        best_epoch: outcome.best.epoch,
        validation: outcome.best.validation,
        test: outcome.best.test,
    };
    Ok((task.best, record))
}

struct RoundTask<'a, 'b> {
    inputs: &'a RoundInputs<'a>,
    optimizer: Sgd,
    schedule: MultiStep,
    shuffle: &'b mut ChaCha8Rng,
    after_epoch: &'b mut dyn FnMut(usize) -> sparse_core::Result<()>,
    start_epoch: usize,
    best: ModelState,
}

impl EpochTask for RoundTask<'_, '_> {
    type Error = crate::Error;

    fn train_epoch(&mut self, epoch: usize) -> Result<f64> {
        let epoch = self.start_epoch + epoch;
        self.schedule.apply(&mut self.optimizer, epoch as f64);
        let RoundInputs {
            config,
            splits,
            model,
            params,
            ..
        } = *self.inputs;
        let train = &splits.train;
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for positions in BatchIndices::shuffled(
            train.len(),
            config.optimizer().batch_size,
            false,
            self.shuffle,
        )? {
            let indices: Vec<usize> = positions.iter().map(|&p| train[p]).collect();
            let (x, y) = splits.data.train_batch(&indices, &Device::Cpu)?;
            let logits = model.forward_t(&x, true)?;
            let loss = cross_entropy(&logits, &y, 0.0)?;
            self.optimizer.step(&loss.backward()?)?;
            params.apply_masks()?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            batches += 1;
        }
        (self.after_epoch)(epoch + 1)?;
        Ok(loss_sum / batches.max(1) as f64)
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Option<Scores>> {
        let (splits, model) = (self.inputs.splits, self.inputs.model);
        let val = evaluate_classifier(|x| model.forward_t(x, false), splits.validation_batches())?;
        let test = evaluate_classifier(|x| model.forward_t(x, false), splits.test_batches())?;
        Ok(Some(Scores::new(val.accuracy, test.accuracy)))
    }

    fn on_new_best(&mut self, _epoch: usize) -> Result<()> {
        self.best = ModelState::capture(self.inputs.varmap)?;
        Ok(())
    }
}
