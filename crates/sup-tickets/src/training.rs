//! One run: phase 1 with sparse-core's DST engine (GraNet or RigL), then the
//! cyclic phase that takes a ticket at the end of every cycle and superposes it.
//!
//! The whole run is one [`EpochLoop`] (for progress: there is no model
//! selection, as in the official script, which keeps the last superposition).
//! Phase 1 trains with a multi-step rate and the engine's mask updates every
//! `update_period` steps; then the engine's schedule ends and, at each cycle
//! start, [`SparsityEngine::prune_and_regrow_now`] re-explores 50 % of each
//! layer by the last batch's dense gradient. A ticket `T_k` is the training
//! model as it is at the end of cycle `k`; its superposition `S_k` is built on a
//! separate, unmasked copy of the model ([`crate::superpose`]), so the training
//! model never sees it.

use candle_core::Device;
use candle_core::backprop::GradStore;
use candle_nn::ModuleT;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sparse_core::lr::{LrSchedule, MultiStep, Triangular};
use sparse_core::optim::trainable_vars;
use sparse_core::prune::GradualPruning;
use sparse_core::updater::UpdateContext;
use sparse_core::{
    DeathRate, DynamicSparsity, FiredMasks, GrowthInit, GrowthMethod, MaskableState, ModelState,
    Optimizer, Sgd, SgdConfig, SparsityEngine,
};
use sparse_repro::batch::BatchIndices;
use sparse_repro::epochs::{EpochLoop, EpochTask, Scores};
use sparse_repro::models::Network;
use sparse_repro::progress::ProgressMode;
use sparse_repro::rng::{derive_rng, derive_seed, streams};
use sparse_repro::splits::ImageSplits;
use sparse_repro::train::{Goal, cross_entropy};

use crate::config::{DstMethod, SupConfig};
use crate::error::Result;
use crate::superpose::{Stage, Superposer, masked_policy};

/// The sparse network of `config` for `splits`' images, initialised from `seed`:
/// ERK masks at the initial density over every convolution and linear weight
/// (first layer and classifier included, as the official code), drawn from the
/// seed's mask stream, weights zeroed outside them.
pub fn network(config: &SupConfig, splits: &ImageSplits, seed: u64) -> Result<Network> {
    let mut net = bare_network(config, splits, seed)?;
    let policy = masked_policy(&net)?;
    net.params = config.allocation()?.init_sparse_params(
        &net.varmap,
        &policy,
        None,
        &mut derive_rng(seed, streams::MASK),
    )?;
    Ok(net)
}

/// The model of `config` without masks: what superpositions and checkpoints are
/// loaded into.
pub fn bare_network(config: &SupConfig, splits: &ImageSplits, seed: u64) -> Result<Network> {
    Ok(Network::kaiming(
        config.architecture(),
        splits.data.input_shape(),
        splits.data.num_classes(),
        &mut derive_rng(seed, streams::INIT),
    )?)
}

/// The engine of phase 1: GraNet or RigL with the official constant death rate,
/// gradient growth, masks swapped without touching the weights
/// ([`GrowthInit::Previous`]) and the momentum masked, ending with phase 1.
pub fn engine(
    config: &SupConfig,
    net: &Network,
    steps_per_epoch: usize,
    seed: u64,
) -> Result<SparsityEngine> {
    let period = config.update_period();
    let pre_steps = config.split().pre * steps_per_epoch;
    let total = config.epochs() * steps_per_epoch;
    let builder = match config.method() {
        DstMethod::GraNet {
            initial_density,
            final_prune_epoch,
        } => {
            let gradual = GradualPruning::new(
                initial_density,
                config.density(),
                0,
                final_prune_epoch * steps_per_epoch,
                period,
                true,
            )?;
            DynamicSparsity::granet(gradual, period, total)
        }
        DstMethod::Rigl => DynamicSparsity::rigl(period, total),
        DstMethod::Set => DynamicSparsity::set(period, total),
    };
    let dynamic = builder
        .death_rate(DeathRate::Constant(config.death_rate()))
        .growth_init(GrowthInit::Previous)
        .end_step(Some(pre_steps))
        .mask_momentum(true)
        .seed(derive_seed(seed, "regrow"))
        .build()?;
    Ok(SparsityEngine::new(dynamic, &net.params)?)
}

/// The engine that re-explores at each cycle start: magnitude pruning, regrowth by
/// the dense gradient whatever phase 1's growth was (the official
/// `truncate_weights` always regrows by gradient), values kept as in phase 1.
pub fn re_exploration_engine(net: &Network, seed: u64) -> Result<SparsityEngine> {
    let dynamic = DynamicSparsity::builder()
        .growth(GrowthMethod::Gradient)
        .growth_init(GrowthInit::Previous)
        .seed(derive_seed(seed, "re-explore"))
        .build()?;
    Ok(SparsityEngine::new(dynamic, &net.params)?)
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The model at the end of phase 1 (`W_pre`, also `S_0`).
    pub pre: Stage,
    /// Every ticket `T_k` as trained.
    pub tickets: Vec<Stage>,
    /// Every ticket after BatchNorm recalibration alone (the recalibration's share
    /// of a superposition's gain).
    pub tickets_recalibrated: Vec<Stage>,
    /// Every superposition `S_k`, re-pruned and recalibrated.
    pub superpositions: Vec<Stage>,
    /// The masked weights the final density allows, `floor(N·d)`.
    pub budget: usize,
    /// Share of all masked positions ever active at the end of phase 1 (ITOP rate).
    pub itop_pre: f64,
    /// The same at the end of the run (re-explorations included).
    pub itop_final: f64,
    /// Prune-and-regrow updates of phase 1.
    pub mask_updates: usize,
}

impl RunOutcome {
    /// The ticket with the best validation accuracy (the one a user would keep).
    pub fn best_ticket(&self) -> Option<&Stage> {
        self.tickets
            .iter()
            .max_by(|a, b| a.validation.total_cmp(&b.validation))
    }

    /// The final superposition `S_M`.
    pub fn sup_ticket(&self) -> Option<&Stage> {
        self.superpositions.last()
    }
}

/// Runs `config` with `seed` on `splits`; returns the measurements and the
/// unmasked network holding the final superposition `S_M`.
pub fn train(
    config: &SupConfig,
    splits: &ImageSplits,
    seed: u64,
    progress: ProgressMode,
    label: &str,
) -> Result<(RunOutcome, Network)> {
    config.validate()?;
    let net = network(config, splits, seed)?;
    let steps_per_epoch = splits.train.len().div_ceil(config.batch_size());
    let (lr, momentum, weight_decay) = config.sgd();
    let sgd = SgdConfig::builder(lr)
        .momentum(momentum)
        .weight_decay(weight_decay)
        .build()?;
    let mut task = SupTask {
        config,
        splits,
        sgd: Sgd::from_params(trainable_vars(&net.varmap), sgd)?,
        engine: engine(config, &net, steps_per_epoch, seed)?,
        re_explorer: re_exploration_engine(&net, seed)?,
        fired: FiredMasks::new(&net.params),
        net,
        pre_schedule: config.pre_schedule()?,
        cyclic_schedule: config.cyclic_schedule()?,
        shuffle: derive_rng(seed, streams::SHUFFLE),
        step: 0,
        last_grads: None,
        superposer: Superposer::new(config, splits, bare_network(config, splits, seed)?)?,
        previous: None,
        pre: None,
        tickets: Vec::new(),
        tickets_recalibrated: Vec::new(),
        superpositions: Vec::new(),
        itop_pre: 0.0,
        mask_updates: 0,
    };
    EpochLoop::new(config.epochs(), Goal::Maximize)
        .progress(label, progress)
        .run(&mut task)?;
    let outcome = RunOutcome {
        pre: task.pre.ok_or_else(|| missing("the end of phase 1"))?,
        tickets: task.tickets,
        tickets_recalibrated: task.tickets_recalibrated,
        superpositions: task.superpositions,
        budget: task.superposer.budget(),
        itop_pre: task.itop_pre,
        itop_final: task.fired.rate(),
        mask_updates: task.mask_updates,
    };
    let last = task.previous.ok_or_else(|| missing("a superposition"))?;
    let scratch = task.superposer.into_network();
    last.restore(&scratch.varmap)?;
    Ok((outcome, scratch))
}

fn missing(what: &str) -> crate::Error {
    sparse_repro::HarnessError::invalid("epochs", what, "the run never reached it").into()
}

/// The run as the epoch loop drives it.
struct SupTask<'a> {
    config: &'a SupConfig,
    splits: &'a ImageSplits,
    net: Network,
    sgd: Sgd,
    engine: SparsityEngine,
    re_explorer: SparsityEngine,
    /// Every position ever active (the engine's own record misses re-explorations).
    fired: FiredMasks,
    pre_schedule: MultiStep,
    cyclic_schedule: Triangular,
    shuffle: ChaCha8Rng,
    step: usize,
    /// The gradients of the last step: what re-exploration regrows by.
    last_grads: Option<GradStore>,
    superposer: Superposer<'a>,
    /// `S_{k−1}` (`W_pre` before the first cycle ends).
    previous: Option<ModelState>,
    pre: Option<Stage>,
    tickets: Vec<Stage>,
    tickets_recalibrated: Vec<Stage>,
    superpositions: Vec<Stage>,
    itop_pre: f64,
    mask_updates: usize,
}

impl SupTask<'_> {
    /// One pass over the training split; `lr_at(j, n)` sets the rate before batch `j`.
    fn pass(&mut self, lr_at: impl Fn(usize, usize) -> Option<f64>) -> Result<f64> {
        let train = &self.splits.train;
        let batches = BatchIndices::shuffled(
            train.len(),
            self.config.batch_size(),
            false,
            &mut self.shuffle,
        )?;
        let n = batches.num_batches();
        let mut loss_sum = 0.0;
        for (j, positions) in batches.into_iter().enumerate() {
            if let Some(lr) = lr_at(j, n) {
                self.sgd.set_learning_rate(lr);
            }
            let indices: Vec<usize> = positions.iter().map(|&p| train[p]).collect();
            let (x, y) = self.splits.data.train_batch(&indices, &Device::Cpu)?;
            let logits = self.net.model.forward_t(&x, true)?;
            let loss = cross_entropy(&logits, &y, 0.0)?;
            let grads = loss.backward()?;
            self.sgd.step(&grads)?;
            self.step += 1;
            let report = self.engine.after_optimizer_step(
                self.step,
                &mut self.net.params,
                &grads,
                Some(&mut self.sgd),
            )?;
            if report.prune_regrow {
                self.mask_updates += 1;
            }
            if report.topology_changed() {
                self.fired.record(&self.net.params)?;
            }
            self.last_grads = Some(grads);
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
        }
        Ok(loss_sum / n.max(1) as f64)
    }

    /// Re-exploration at a cycle start: prune `share` of each layer's active weights
    /// by magnitude and regrow as many by the last batch's dense gradient.
    fn re_explore(&mut self, share: f64) -> Result<()> {
        let grads = self
            .last_grads
            .as_ref()
            .ok_or_else(|| missing("a first step"))?;
        let ctx = UpdateContext {
            grads: Some(grads),
            momentum: None,
        };
        self.re_explorer
            .prune_and_regrow_now(self.step, share, &mut self.net.params, &ctx)?;
        self.sgd.mask_state(&self.net.params)?;
        self.fired.record(&self.net.params)?;
        Ok(())
    }
}

impl EpochTask for SupTask<'_> {
    type Error = crate::Error;

    fn train_epoch(&mut self, epoch: usize) -> Result<f64> {
        let split = self.config.split();
        if epoch < split.pre {
            self.pre_schedule.apply(&mut self.sgd, epoch as f64);
            let loss = self.pass(|_, _| None)?;
            if epoch + 1 == split.pre {
                let state = ModelState::capture(&self.net.varmap)?;
                self.pre = Some(self.superposer.measure(&state)?);
                self.previous = Some(state);
                self.itop_pre = self.fired.rate();
            }
            return Ok(loss);
        }
        let e = epoch - split.pre;
        let cycle = self.config.cycle();
        if e.is_multiple_of(cycle)
            && let Some(share) = self.config.re_explore()
        {
            self.re_explore(share)?;
        }
        let schedule = self.cyclic_schedule;
        let loss =
            self.pass(|j, n| Some(schedule.lr_at((e % cycle) as f64 + j as f64 / n as f64)))?;
        if (e + 1).is_multiple_of(cycle) {
            let k = (e + 1) / cycle;
            let ticket = ModelState::capture(&self.net.varmap)?;
            let previous = self
                .previous
                .take()
                .ok_or_else(|| missing("the end of phase 1"))?;
            let step = self.superposer.superpose(&previous, &ticket, k)?;
            self.tickets.push(step.ticket);
            self.tickets_recalibrated.push(step.ticket_recalibrated);
            self.superpositions.push(step.superposition);
            self.previous = Some(step.state);
        }
        Ok(loss)
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Option<Scores>> {
        let val = self.net.evaluate(self.splits.validation_batches())?;
        let test = self.net.evaluate(self.splits.test_batches())?;
        Ok(Some(Scores::new(val.accuracy, test.accuracy)))
    }
}
