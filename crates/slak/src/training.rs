//! One SLaK run: SNIP-ratio masks on the first training batch, then AdamW with a
//! warmup-cosine rate per optimizer step, label smoothing, gradient accumulation,
//! the topology engine after every optimizer step (the depthwise branches follow
//! its masks), SEMA, model selection on validation, and the effective receptive
//! field of the selected model.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sparse_core::flops::InferenceFlops;
use sparse_core::lr::{LrSchedule, WarmupCosine};
use sparse_core::optim::{ParamGroup, trainable_vars};
use sparse_core::{
    Adam, AdamConfig, Mask, ModelState, Optimizer, SparseEma, SparseParams, SparsityEngine,
};
use sparse_repro::batch::BatchIndices;
use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
use sparse_repro::erf::ErfMap;
use sparse_repro::metrics::accuracy;
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::{derive_rng, derive_seed, streams};
use sparse_repro::splits::ImageSplits;
use sparse_repro::train::Goal;

use crate::config::SlakConfig;
use crate::error::Result;
use crate::model::SlakNet;
use crate::sparse::{engine, init_masks, mask_policy, snip_scores};

/// The ERF thresholds of the official `analyze_erf.py`.
pub const ERF_THRESHOLDS: [f64; 4] = [0.2, 0.3, 0.5, 0.99];

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The epoch selected on validation (1-based).
    pub best_epoch: usize,
    /// Validation accuracy there.
    pub validation_accuracy: f64,
    /// Test accuracy there.
    pub test_accuracy: f64,
    /// Test accuracy after the last epoch.
    pub test_accuracy_last: f64,
    /// Test accuracy of the SEMA average after the last epoch.
    pub ema_test_accuracy: Option<f64>,
    /// Trainable parameters of the network (dense count).
    pub dense_params: usize,
    /// Non-zero trainable parameters of the selected model: every unmasked tensor
    /// plus the active entries of the masked ones.
    pub params: usize,
    /// Density of the masked tensors at the selected epoch (1 when dense).
    pub masked_density: f64,
    /// Forward FLOPs per image of the selected model (weights at their masks;
    /// [`crate::ModelSpec::layer_flops`]).
    pub flops: f64,
    /// Forward FLOPs per image of the same network dense.
    pub dense_flops: f64,
    /// Share of the masked positions ever active.
    pub itop_rate: f64,
    /// The largest relative change of the masked non-zero count over the run
    /// (random growth is Bernoulli).
    pub nnz_drift: f64,
    /// Topology updates that changed a mask.
    pub mask_updates: usize,
    /// The high-contribution area ratio of the ERF at each of [`ERF_THRESHOLDS`].
    pub erf: Vec<f64>,
}

/// The trained run: the selected model's variables and masks beside the outcome.
pub struct TrainedRun {
    /// The outcome.
    pub outcome: RunOutcome,
    /// The selected model.
    pub varmap: VarMap,
    /// Its masks (those of the selected epoch).
    pub masks: BTreeMap<String, Mask>,
    /// Its ERF map.
    pub erf_map: ErfMap,
}

impl std::fmt::Debug for TrainedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedRun")
            .field("outcome", &self.outcome)
            .field("masks", &self.masks.len())
            .finish_non_exhaustive()
    }
}

/// Builds `config`'s network for `seed` in a new `VarMap`.
pub fn build_network(config: &SlakConfig, seed: u64) -> Result<(VarMap, SlakNet)> {
    let varmap = VarMap::new();
    let net = SlakNet::new(
        &config.model,
        &varmap,
        &mut derive_rng(seed, streams::INIT),
        derive_rng(seed, "droppath"),
    )?;
    Ok((varmap, net))
}

/// Accuracy of `net` (evaluation mode) over `batches`.
pub fn evaluate(
    net: &SlakNet,
    batches: impl Iterator<Item = sparse_repro::HarnessResult<(Tensor, Tensor)>>,
) -> Result<f64> {
    let (mut correct, mut seen) = (0.0, 0usize);
    for batch in batches {
        let (x, y) = batch?;
        let n = x.dim(0)?;
        correct += accuracy(&net.forward_t(&x, false)?, &y)? * n as f64;
        seen += n;
    }
    Ok(correct / seen.max(1) as f64)
}

/// The ERF of `net` on the first `config.erf_images` test images, each up-sampled
/// `config.erf_upsample` times (nearest).
pub fn measure_erf(net: &SlakNet, splits: &ImageSplits, config: &SlakConfig) -> Result<ErfMap> {
    let n = config.erf_images.min(splits.test.len());
    let (x, _) = splits.data.test_batch(&splits.test[..n], &Device::Cpu)?;
    let (_, _, h, w) = x.dims4()?;
    let f = config.erf_upsample;
    let x = x.upsample_nearest2d(h * f, w * f)?;
    Ok(ErfMap::measure(
        |input| {
            net.features_t(input, false)
                .map_err(candle_core::Error::wrap)
        },
        &x,
    )?)
}

/// `a + b` per variable (gradient accumulation).
fn add_grads(
    acc: &mut GradStore,
    new: GradStore,
    vars: &[(String, candle_core::Var)],
) -> Result<()> {
    for (_, var) in vars {
        if let Some(g) = new.get(var.as_tensor()) {
            let total = match acc.get(var.as_tensor()) {
                Some(a) => (a + g)?,
                None => g.clone(),
            };
            acc.insert(var.as_tensor(), total);
        }
    }
    Ok(())
}

struct Run<'a> {
    config: &'a SlakConfig,
    splits: &'a ImageSplits,
    net: SlakNet,
    varmap: VarMap,
    vars: Vec<(String, candle_core::Var)>,
    params: SparseParams,
    engine: Option<SparsityEngine>,
    adam: Adam,
    schedule: WarmupCosine,
    ema: Option<SparseEma>,
    shuffle: rand_chacha::ChaCha8Rng,
    step: usize,
    nnz0: usize,
    max_drift: f64,
    mask_updates: usize,
    best: Option<(ModelState, BTreeMap<String, Mask>)>,
}

impl Run<'_> {
    fn nnz(&self) -> usize {
        self.params.iter().map(|p| p.mask.nnz()).sum()
    }

    fn optimizer_step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        self.adam
            .set_learning_rate(self.schedule.lr_at(self.step as f64 - 1.0));
        self.adam.step(grads)?;
        if let Some(engine) = &mut self.engine {
            let report = engine.after_optimizer_step(
                self.step,
                &mut self.params,
                grads,
                Some(&mut self.adam),
            )?;
            if report.topology_changed() {
                self.mask_updates += 1;
                self.net.follow_masks(&self.params)?;
                let drift = (self.nnz() as f64 - self.nnz0 as f64).abs() / self.nnz0.max(1) as f64;
                self.max_drift = self.max_drift.max(drift);
            }
        }
        if let Some(ema) = &mut self.ema {
            ema.update(&self.varmap, &self.params)?;
        }
        Ok(())
    }
}

impl EpochTask for Run<'_> {
    type Error = crate::Error;

    fn train_epoch(&mut self, _epoch: usize) -> Result<f64> {
        let accumulation = self.config.accumulation_steps;
        let batches = BatchIndices::shuffled(
            self.splits.train.len(),
            self.config.batch_size,
            false,
            &mut self.shuffle,
        )?;
        let count = batches.num_batches();
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        let mut acc: Option<GradStore> = None;
        for (i, batch) in batches.enumerate() {
            let indices: Vec<usize> = batch.iter().map(|&j| self.splits.train[j]).collect();
            let (x, y) = self.splits.data.train_batch(&indices, &Device::Cpu)?;
            let logits = self.net.forward_t(&x, true)?;
            let loss =
                sparse_core::kernels::cross_entropy(&logits, &y, self.config.label_smoothing)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            seen += 1;
            let grads = (loss / accumulation as f64)?.backward()?;
            match &mut acc {
                Some(total) => add_grads(total, grads, &self.vars)?,
                None => acc = Some(grads),
            }
            // an optimizer step every `accumulation` micro-batches, and at the end of
            // the epoch for what is left
            if ((i + 1) % accumulation == 0 || i + 1 == count)
                && let Some(grads) = acc.take()
            {
                self.optimizer_step(&grads)?;
            }
        }
        Ok(loss_sum / seen.max(1) as f64)
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Option<Scores>> {
        let validation = evaluate(&self.net, self.splits.validation_batches())?;
        let test = evaluate(&self.net, self.splits.test_batches())?;
        Ok(Some(Scores::new(validation, test)))
    }

    fn on_new_best(&mut self, _epoch: usize) -> Result<()> {
        let masks = self
            .params
            .iter()
            .map(|p| (p.name.clone(), p.mask.clone()))
            .collect();
        self.best = Some((ModelState::capture(&self.varmap)?, masks));
        Ok(())
    }
}

/// Trains `config` on `splits` with `seed`.
pub fn train(
    config: &SlakConfig,
    splits: &ImageSplits,
    seed: u64,
    progress: ProgressMode,
    label: &str,
) -> Result<TrainedRun> {
    config.validate()?;
    let (varmap, mut net) = build_network(config, seed)?;
    let dense_params: usize = trainable_vars(&varmap)
        .iter()
        .map(|(_, v)| v.elem_count())
        .sum();
    let steps_per_epoch = splits
        .train
        .len()
        .div_ceil(config.batch_size)
        .div_ceil(config.accumulation_steps);
    let total_steps = steps_per_epoch * config.epochs;
    let shuffle = derive_rng(seed, streams::SHUFFLE);
    let params = match &config.sparsity {
        None => SparseParams::new(),
        Some(sparsity) => {
            // SNIP on the first training batch of the run's order, as the official
            // `next(iter(train_loader))`
            let first = BatchIndices::shuffled(
                splits.train.len(),
                config.batch_size,
                false,
                &mut derive_rng(seed, "snip-batch"),
            )?
            .next()
            .unwrap_or_default();
            let indices: Vec<usize> = first.iter().map(|&j| splits.train[j]).collect();
            let (x, y) = splits.data.train_batch(&indices, &Device::Cpu)?;
            let policy = mask_policy(&varmap)?;
            let scores = snip_scores(&net, &varmap, &policy, &x, &y)?;
            init_masks(
                &varmap,
                &policy,
                &scores,
                sparsity.density,
                &mut derive_rng(seed, streams::MASK),
            )?
        }
    };
    net.attach_masks(&params, config.dw_grad.into())?;
    let engine = match &config.sparsity {
        Some(sparsity) if !params.is_empty() => Some(engine(
            sparsity,
            &params,
            total_steps,
            derive_seed(seed, "regrow"),
        )?),
        _ => None,
    };
    let vars = trainable_vars(&varmap);
    let one_d: BTreeSet<String> = vars
        .iter()
        .filter(|(_, v)| v.rank() <= 1)
        .map(|(n, _)| n.clone())
        .collect();
    let adam = Adam::new(
        ParamGroup::split_no_decay(vars.clone(), |n| one_d.contains(n)),
        AdamConfig::adamw(config.lr, config.weight_decay).build()?,
    )?;
    let warmup = config.warmup_epochs * steps_per_epoch as f64;
    let schedule = WarmupCosine::with_warmup(
        config.lr,
        config.min_lr,
        warmup,
        0.0,
        total_steps.max(1) as f64,
    )?;
    let ema = match config.ema_decay {
        Some(decay) => Some(SparseEma::new(&varmap, decay)?),
        None => None,
    };
    let nnz0 = params.iter().map(|p| p.mask.nnz()).sum();
    let mut run = Run {
        config,
        splits,
        net,
        varmap,
        vars,
        params,
        engine,
        adam,
        schedule,
        ema,
        shuffle,
        step: 0,
        nnz0,
        max_drift: 0.0,
        mask_updates: 0,
        best: None,
    };
    let outcome = EpochLoop::new(config.epochs, Goal::Maximize)
        .progress(label, progress)
        .run(&mut run)?;
    let test_last = outcome.last.map(|s| s.test).unwrap_or(f64::NAN);
    let itop_rate = run
        .engine
        .as_ref()
        .map(|e| e.fired_masks().rate())
        .unwrap_or(1.0);
    let ema_test_accuracy = match &run.ema {
        Some(ema) => {
            let (ema_vm, ema_net) = build_network(config, seed)?;
            ema.copy_into(&ema_vm)?;
            Some(evaluate(&ema_net, splits.test_batches())?)
        }
        None => None,
    };
    // the selected model, with the masks of its epoch
    let (state, masks) = run.best.take().ok_or_else(|| {
        sparse_repro::HarnessError::invalid("evaluation", "none", "no epoch was selected")
    })?;
    state.restore(&run.varmap)?;
    for (name, mask) in &masks {
        run.params.set_mask(name, mask.clone())?;
    }
    run.net.follow_masks(&run.params)?;
    let masked: usize = masks.values().map(Mask::numel).sum();
    let active: usize = masks.values().map(Mask::nnz).sum();
    let shape = splits.data.input_shape();
    let flops = InferenceFlops::new(&config.model.layer_flops(shape.height, shape.width), &masks);
    let erf_map = measure_erf(&run.net, splits, config)?;
    let erf = ERF_THRESHOLDS
        .iter()
        .map(|&t| erf_map.area_ratio(t))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let outcome = RunOutcome {
        best_epoch: outcome.best.epoch,
        validation_accuracy: outcome.best.validation,
        test_accuracy: outcome.best.test,
        test_accuracy_last: test_last,
        ema_test_accuracy,
        dense_params,
        params: dense_params - (masked - active),
        masked_density: if masked == 0 {
            1.0
        } else {
            active as f64 / masked as f64
        },
        flops: flops.sparse_total(),
        dense_flops: flops.dense_total(),
        itop_rate,
        nnz_drift: run.max_drift,
        mask_updates: run.mask_updates,
        erf,
    };
    Ok(TrainedRun {
        outcome,
        varmap: run.varmap,
        masks,
        erf_map,
    })
}
