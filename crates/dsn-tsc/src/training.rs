//! Training and evaluating one arm on one data set.
//!
//! The loop is the official one (`trainer_DSN.py`): per epoch the learning rate is
//! set from a cosine over epochs (3e-4 → 1e-4), the training set is shuffled into
//! batches of `max(min(N/10, 16), 2)`, each step is `Adam.step()` followed by
//! sparse-core's [`SparsityEngine::after_optimizer_step`] (apply masks; every
//! `5 · steps_per_epoch` steps prune and regrow each constraint group). Adam's
//! moments are neither masked nor reset, as in the official code (it masks
//! only SGD momentum buffers). The epochs run in sparse-repro's
//! [`EpochLoop`]; checkpoints, evaluation of saved models and reports are the
//! harness's (see [`crate::paper`]).
//!
//! Model selection is the official one: the epoch with the **lowest training
//! loss** is kept (a [`ModelState`] of every variable plus the masks, which DSN
//! moves during training) and then evaluated on the test set. The last epoch's
//! test accuracy is reported beside it.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sparse_core::flops::InferenceFlops;
use sparse_core::kernels::WeightGrad;
use sparse_core::lr::{LrSchedule, WarmupCosine};
use sparse_core::optim::trainable_vars;
use sparse_core::{
    Adam, AdamConfig, DeathRate, DynamicSparsity, GrowthMethod, Mask, ModelState, Optimizer,
    PruneMethod, SparseParams, SparsityEngine, UpdateReport,
};
use sparse_repro::batch::BatchIndices;
use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::{derive_rng, derive_seed, streams};
use sparse_repro::train::{Evaluation, Goal, Stopwatch, evaluate_classifier};

use crate::config::{Arm, ConvBackend, Growth, TrainConfig};
use crate::data::{Split, TsData};
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Scnn};
use crate::regions::ConstraintRegions;

/// Cases per evaluation batch (fixed, so that `eval --checkpoint` repeats the
/// report's computation exactly).
pub const EVAL_BATCH: usize = 64;

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// The run's configuration (seed included).
    pub config: TrainConfig,
    /// 1-based epoch of the lowest training loss (the official model selection).
    pub selected_epoch: usize,
    /// Its training loss.
    pub selected_train_loss: f64,
    /// Test accuracy of the selected model.
    pub test_accuracy: f64,
    /// Test accuracy after the last epoch.
    pub test_accuracy_last: f64,
    /// Mean training loss of every epoch.
    pub train_losses: Vec<f64>,
    /// Wall-clock seconds of the training loop (evaluation excluded).
    pub train_seconds: f64,
    /// Trainable parameters of the dense network (BatchNorm included).
    pub params: usize,
    /// Non-zero trainable parameters of the selected model.
    pub nonzero_params: usize,
    /// Active weights of the kernel convolutions over their dense size.
    pub conv_density: f64,
    /// Forward FLOPs per sample of the kernel convolutions (`2 · nnz · length`).
    pub conv_flops: f64,
    /// Forward FLOPs per sample of the whole network (weights only, masks counted).
    pub inference_flops: f64,
    /// Share of the constraint-region positions ever active: before training,
    /// then after each epoch (empty for dense arms).
    pub region_rate: Vec<f64>,
    /// Number of prune-and-regrow updates that ran.
    pub mask_updates: usize,
}

/// A trained network with everything needed to evaluate or save it.
pub struct Trained {
    /// The run's configuration.
    pub config: TrainConfig,
    /// The network.
    pub model: Scnn,
    /// Its variables (weights and BatchNorm statistics).
    pub varmap: VarMap,
    /// The masks of the kernel convolutions (empty for dense arms).
    pub params: SparseParams,
}

impl std::fmt::Debug for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trained")
            .field("config", &self.config)
            .field("model", &self.model)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// What the observer of [`train_observed`] sees after each optimizer step.
#[derive(Debug)]
pub struct StepEvent<'a> {
    /// 1-based optimizer step.
    pub step: usize,
    /// 0-based epoch.
    pub epoch: usize,
    /// The masks after the step's topology update.
    pub params: &'a SparseParams,
    /// What the engine did (`None` for dense arms).
    pub report: Option<&'a UpdateReport>,
}

/// The constraint regions of each kernel convolution of `spec`.
pub fn constraint_regions(
    spec: &ModelSpec,
    groups: usize,
) -> Result<BTreeMap<String, ConstraintRegions>> {
    spec.kernel_convs()
        .into_iter()
        .map(|(name, shape)| Ok((name, ConstraintRegions::new(shape, groups)?)))
        .collect()
}

/// Trains `config` on `data` (see the module docs).
pub fn train(
    config: &TrainConfig,
    data: &TsData,
    device: &Device,
    progress: ProgressMode,
) -> Result<(Trained, TrainOutcome)> {
    train_observed(config, data, device, progress, &mut |_| {})
}

/// The best epoch so far: every variable (BatchNorm statistics included) and,
/// because DSN moves them during training, every mask.
struct Snapshot {
    state: ModelState,
    masks: Vec<(String, Mask)>,
}

/// One run inside [`EpochLoop`]: the official epoch (schedule, shuffled batches,
/// Adam step, engine update) and its model selection on the training loss.
struct Trainer<'a> {
    data: &'a TsData,
    device: &'a Device,
    run: RunState,
    schedule: WarmupCosine,
    shuffle_rng: ChaCha8Rng,
    batch_size: usize,
    mask_updates: usize,
    losses: Vec<f64>,
    region_rate: Vec<f64>,
    best: Option<Snapshot>,
    observer: &'a mut dyn FnMut(&StepEvent<'_>),
}

impl EpochTask for Trainer<'_> {
    type Error = Error;

    fn train_epoch(&mut self, epoch: usize) -> Result<f64> {
        self.schedule.apply(&mut self.run.optimizer, epoch as f64);
        let n = self.data.train.len();
        let mut loss_sum = 0.0;
        for indices in BatchIndices::shuffled(n, self.batch_size, false, &mut self.shuffle_rng)? {
            let (x, y) = self.data.batch(&self.data.train, &indices, self.device)?;
            let (loss, report) = self.run.train_step(&x, &y)?;
            if report.as_ref().is_some_and(|r| r.prune_regrow) {
                self.mask_updates += 1;
            }
            (self.observer)(&StepEvent {
                step: self.run.step,
                epoch,
                params: &self.run.params,
                report: report.as_ref(),
            });
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * indices.len() as f64;
        }
        let epoch_loss = loss_sum / n as f64;
        self.losses.push(epoch_loss);
        if let Some(engine) = &self.run.engine {
            self.region_rate
                .push(region_share(engine, &self.run.regions)?);
        }
        Ok(epoch_loss)
    }

    /// Selection is on the epoch's training loss (the official rule); the test
    /// split is only measured once, on the selected model, so its score is NaN here.
    fn evaluate(&mut self, _epoch: usize) -> Result<Option<Scores>> {
        Ok(self.losses.last().map(|&loss| Scores::new(loss, f64::NAN)))
    }

    fn on_new_best(&mut self, _epoch: usize) -> Result<()> {
        self.best = Some(Snapshot {
            state: ModelState::capture(&self.run.varmap)?,
            masks: self
                .run
                .params
                .iter()
                .map(|p| (p.name.clone(), p.mask.clone()))
                .collect(),
        });
        Ok(())
    }
}

/// One run's network, masks, engine and optimizer as [`train`] builds them, and
/// its training step: what the loop repeats, reachable on its own so that
/// `sparse-benches train` times exactly the step the runs take.
pub struct RunState {
    /// The network.
    pub model: Scnn,
    /// Its variables (weights and BatchNorm statistics).
    pub varmap: VarMap,
    /// The masks of the kernel convolutions (empty for dense arms).
    pub params: SparseParams,
    /// The topology engine (`None` for dense arms).
    pub engine: Option<SparsityEngine>,
    /// The constraint region of each kernel convolution.
    pub regions: BTreeMap<String, ConstraintRegions>,
    /// Adam over every trainable variable (the schedule sets its rate per epoch).
    pub optimizer: Adam,
    /// Optimizer steps taken so far.
    pub step: usize,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("model", &self.model)
            .field("params", &self.params)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl RunState {
    /// Builds the run of `config` on `n_train` training cases with `dims` input
    /// channels and `num_classes` classes (the engine's update period and death-rate
    /// horizon are counted in steps of that data set's batches).
    pub fn new(
        config: &TrainConfig,
        dims: usize,
        num_classes: usize,
        n_train: usize,
        device: &Device,
    ) -> Result<Self> {
        let seed = config.seed();
        let spec = ModelSpec::for_config(config, dims, num_classes)?;
        let varmap = VarMap::new();
        let mut model = Scnn::new(
            spec.clone(),
            &varmap,
            device,
            &mut derive_rng(seed, streams::INIT),
        )?;

        let batch_size = config.batch_size_for(n_train);
        let steps_per_epoch = n_train.div_ceil(batch_size);
        let total_steps = steps_per_epoch * config.epochs();

        let regions = constraint_regions(&spec, config.groups())?;
        let mut params = SparseParams::new();
        let mut engine = None;
        if config.arm().is_sparse() {
            let mut mask_rng = derive_rng(seed, streams::MASK);
            let mut dynamic = match config.arm() {
                Arm::Dsn => DynamicSparsity::builder()
                    .prune(PruneMethod::Magnitude)
                    .growth(match config.growth() {
                        Growth::Random => GrowthMethod::RandomExact,
                        Growth::Gradient => GrowthMethod::Gradient,
                    })
                    .death_rate(DeathRate::CosineThenFloor {
                        initial: config.death_rate(),
                        eta_min: config.death_rate_min(),
                        t_max: ((config.death_rate_fraction() * total_steps as f64) as usize)
                            .max(1),
                    })
                    .period(Some(config.update_every_epochs() * steps_per_epoch)),
                _ => DynamicSparsity::static_sparse(),
            }
            .mask_momentum(false)
            .seed(derive_seed(seed, "regrow"));
            for (name, region) in &regions {
                let var = var_of(&varmap, name)?;
                let mask =
                    region.initial_mask(config.density(), config.mask_init(), &mut mask_rng)?;
                params.insert(name.clone(), var, mask)?;
                dynamic = dynamic.region(name.clone(), region.growth_region()?);
            }
            engine = Some(SparsityEngine::new(dynamic.build()?, &params)?);
        }
        if let Some(mode) = weight_grad_of(config.conv_backend()) {
            model.attach_masks(&params, mode)?;
        }

        let optimizer = Adam::from_params(
            trainable_vars(&varmap),
            AdamConfig::adam(config.lr()).build()?,
        )?;
        Ok(Self {
            model,
            varmap,
            params,
            engine,
            regions,
            optimizer,
            step: 0,
        })
    }

    /// One optimizer step on the batch `(x, y)`: forward in training mode, NLL,
    /// backward, Adam, then the engine (masks applied; prune and regrow at its
    /// period) and the sparse kernels following a changed topology. Returns the
    /// loss and what the engine did (`None` for dense arms).
    pub fn train_step(&mut self, x: &Tensor, y: &Tensor) -> Result<(Tensor, Option<UpdateReport>)> {
        let log_probs = self.model.forward_t(x, true)?;
        let loss = candle_nn::loss::nll(&log_probs, y)?;
        let grads = loss.backward()?;
        self.optimizer.step(&grads)?;
        self.step += 1;
        let report = match self.engine.as_mut() {
            Some(engine) => {
                Some(engine.after_optimizer_step(self.step, &mut self.params, &grads, None)?)
            }
            None => None,
        };
        if report.as_ref().is_some_and(|r| r.topology_changed()) {
            self.model.follow_masks(&self.params)?;
        }
        Ok((loss, report))
    }
}

/// [`train`], calling `observer` after every optimizer step (tests check the
/// method's invariants through it).
pub fn train_observed(
    config: &TrainConfig,
    data: &TsData,
    device: &Device,
    progress: ProgressMode,
    observer: &mut dyn FnMut(&StepEvent<'_>),
) -> Result<(Trained, TrainOutcome)> {
    let n = data.train.len();
    let batch_size = config.batch_size_for(n);
    let run = RunState::new(config, data.dims, data.num_classes(), n, device)?;
    let schedule = WarmupCosine::new(config.lr(), config.lr_min(), config.epochs() as f64)?;
    let mut region_rate = Vec::new();
    if let Some(engine) = &run.engine {
        region_rate.push(region_share(engine, &run.regions)?);
    }
    let seed = config.seed();
    let mut trainer = Trainer {
        data,
        device,
        run,
        schedule,
        shuffle_rng: derive_rng(seed, streams::SHUFFLE),
        batch_size,
        mask_updates: 0,
        losses: Vec::with_capacity(config.epochs()),
        region_rate,
        best: None,
        observer,
    };
    let watch = Stopwatch::start();
    // strict improvement of the training loss, as the official `loss < min_loss`
    let selection = EpochLoop::new(config.epochs(), Goal::Minimize)
        .progress(
            format!("{}-{}-s{seed}", data.name, config.arm().name()),
            progress,
        )
        .run(&mut trainer)?;
    let train_seconds = watch.elapsed_seconds();
    let snapshot = trainer
        .best
        .take()
        .ok_or_else(|| crate::error::invalid("epochs", 0, "must be at least 1"))?;

    let Trainer {
        run:
            RunState {
                mut model,
                varmap,
                mut params,
                ..
            },
        losses,
        region_rate,
        mask_updates,
        ..
    } = trainer;
    let last = evaluate(&model, data, &data.test, device)?;
    snapshot.state.restore(&varmap)?;
    for (name, mask) in snapshot.masks {
        params.set_mask(&name, mask)?;
    }
    model.follow_masks(&params)?;
    let selected = evaluate(&model, data, &data.test, device)?;

    let trained = Trained {
        config: config.clone(),
        model,
        varmap,
        params,
    };
    let costs = costs(&trained, data.length)?;
    let outcome = TrainOutcome {
        config: config.clone(),
        selected_epoch: selection.best.epoch,
        selected_train_loss: selection.best.validation,
        test_accuracy: selected.accuracy,
        test_accuracy_last: last.accuracy,
        train_losses: losses,
        train_seconds,
        params: costs.params,
        nonzero_params: costs.nonzero_params,
        conv_density: costs.conv_density,
        conv_flops: costs.conv_flops,
        inference_flops: costs.inference_flops,
        region_rate,
        mask_updates,
    };
    Ok((trained, outcome))
}

/// The weight gradient the sparse kernel returns under `backend`, or `None` when
/// the kernel is not used.
pub(crate) fn weight_grad_of(backend: ConvBackend) -> Option<WeightGrad> {
    match backend {
        ConvBackend::SparseDenseGrad => Some(WeightGrad::Dense),
        ConvBackend::SparseMaskedGrad => Some(WeightGrad::Masked),
        ConvBackend::MaskedDense => None,
    }
}

/// Parameter and FLOP counts of a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Trainable parameters (dense count).
    pub params: usize,
    /// Non-zero trainable parameters (masked weights excluded).
    pub nonzero_params: usize,
    /// Active share of the kernel convolutions.
    pub conv_density: f64,
    /// Forward FLOPs per sample of the kernel convolutions.
    pub conv_flops: f64,
    /// Forward FLOPs per sample of every weight layer.
    pub inference_flops: f64,
}

/// Counts parameters and FLOPs of `trained` on series of `length` samples, from
/// sparse-core's FLOP model (`2 · nnz · output length` per convolution).
pub fn costs(trained: &Trained, length: usize) -> Result<Costs> {
    let spec = trained.model.spec();
    let vars = trainable_vars(&trained.varmap);
    let params: usize = vars.iter().map(|(_, v)| v.elem_count()).sum();
    let masked_out: usize = trained
        .params
        .iter()
        .map(|p| p.mask.numel() - p.mask.nnz())
        .sum();
    let layers = spec.layer_flops(length);
    let flops = InferenceFlops::new(&layers, &trained.params);
    let conv_names: Vec<String> = spec.kernel_convs().into_iter().map(|(n, _)| n).collect();
    let convs: Vec<_> = flops
        .layers
        .iter()
        .filter(|l| conv_names.contains(&l.weight))
        .collect();
    let conv_flops: f64 = convs.iter().map(|l| l.sparse).sum();
    let conv_dense: f64 = convs.iter().map(|l| l.dense).sum();
    Ok(Costs {
        params,
        nonzero_params: params - masked_out,
        conv_density: conv_flops / conv_dense,
        conv_flops,
        inference_flops: flops.sparse_total(),
    })
}

/// Share of all constraint-region positions that were ever active (sparse-core's
/// ITOP record restricted to the regions, pooled over layers).
fn region_share(
    engine: &SparsityEngine,
    regions: &BTreeMap<String, ConstraintRegions>,
) -> Result<f64> {
    let (mut hit, mut total) = (0.0, 0.0);
    for (name, region) in regions {
        let allowed = region.allowed()?;
        let size = allowed.nnz() as f64;
        hit += engine.fired_masks().region_rate(name, &allowed)? * size;
        total += size;
    }
    Ok(if total == 0.0 { 1.0 } else { hit / total })
}

/// Test-mode loss and accuracy of `model` on `split`.
pub fn evaluate(model: &Scnn, data: &TsData, split: &Split, device: &Device) -> Result<Evaluation> {
    Ok(evaluate_classifier(
        |x| model.forward_t(x, false),
        data.ordered_batches(split, EVAL_BATCH, device),
    )?)
}

/// The variable `name` of `varmap`.
pub(crate) fn var_of(varmap: &VarMap, name: &str) -> Result<Var> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    data.get(name)
        .cloned()
        .ok_or_else(|| sparse_core::SparseError::UnknownParameter(name.to_string()).into())
}
