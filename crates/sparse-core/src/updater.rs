//! The one topology-update interface ([`TopologyUpdater`]) and the engine that
//! implements every dynamic-sparse-training method as a configuration of it
//! ([`SparsityEngine`] driven by a [`DynamicSparsity`] config).
//!
//! The call order is the official `Masking.step()` (methods notes §1.3): after the
//! optimizer step, masks are applied to the weights (and optionally to momentum
//! buffers), the death rate is read for the current step, and every `period` steps
//! the engine prunes, regrows and updates the ITOP record. A new DST method is a new
//! [`PruneMethod`] / [`GrowthMethod`] variant plus a preset here.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, backprop::GradStore};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, SparseError};
use crate::grow::{GrowthInit, GrowthInputs, GrowthMethod, GrowthRegion};
use crate::itop::FiredMasks;
use crate::mask::Mask;
use crate::prune::{GradualPruning, LayerView, PruneMethod};
use crate::redistribution::{Redistribution, apportion};
use crate::registry::SparseParams;
use crate::schedule::{DeathRate, check_positive, invalid};
use crate::state::{MaskableState, MomentumSource};

/// Optimizer state the engine can both read (momentum growth) and mask (ITOP-style
/// momentum masking). Implemented for every type implementing both traits.
pub trait OptimizerBuffers: MomentumSource + MaskableState {}

impl<T: MomentumSource + MaskableState + ?Sized> OptimizerBuffers for T {}

/// What a topology update may read besides the weights.
#[derive(Clone, Copy, Default)]
pub struct UpdateContext<'a> {
    /// The gradients of the last backward pass (dense, since weights are used raw in
    /// the forward pass).
    pub grads: Option<&'a GradStore>,
    /// The optimizer's momentum, for momentum growth.
    pub momentum: Option<&'a dyn MomentumSource>,
}

impl std::fmt::Debug for UpdateContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateContext")
            .field("grads", &self.grads.is_some())
            .field("momentum", &self.momentum.is_some())
            .finish()
    }
}

/// How one layer changed at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerChange {
    /// The parameter's name.
    pub name: String,
    /// Active weights before the update.
    pub nnz_before: usize,
    /// Weights removed (gradual pruning plus prune-and-regrow).
    pub pruned: usize,
    /// Positions activated by growth.
    pub grown: usize,
    /// Active weights after the update.
    pub nnz_after: usize,
}

/// What a call of the engine did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateReport {
    /// The step the report is for.
    pub step: usize,
    /// The death rate of this step (whether or not the topology changed).
    pub death_rate: f64,
    /// Whether prune-and-regrow ran at this step.
    pub prune_regrow: bool,
    /// The density gradual pruning pruned to at this step, if it ran.
    pub gradual_density: Option<f64>,
    /// Per-layer changes in name order; empty when nothing ran.
    pub layers: Vec<LayerChange>,
    /// The ITOP rate after this step.
    pub itop_rate: f64,
}

impl UpdateReport {
    /// Whether any mask changed at this step.
    pub fn topology_changed(&self) -> bool {
        self.layers.iter().any(|l| l.pruned > 0 || l.grown > 0)
    }
}

/// The single interface of topology updates.
pub trait TopologyUpdater {
    /// Runs the topology update of `step` (1-based count of optimizer steps taken,
    /// this one included): a no-op on steps that are not update steps.
    fn update(
        &mut self,
        step: usize,
        params: &mut SparseParams,
        ctx: &UpdateContext<'_>,
    ) -> Result<UpdateReport>;
}

/// A validated dynamic-sparsity configuration; build it with
/// [`DynamicSparsity::builder`] or a preset.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicSparsity {
    prune: PruneMethod,
    growth: GrowthMethod,
    death_rate: DeathRate,
    period: Option<usize>,
    end_step: Option<usize>,
    gradual: Option<GradualPruning>,
    regions: BTreeMap<String, GrowthRegion>,
    mask_momentum: bool,
    growth_init: GrowthInit,
    redistribution: Redistribution,
    seed: u64,
}

impl DynamicSparsity {
    /// A builder with the official ITOP-lineage defaults: magnitude pruning, gradient
    /// growth, constant death rate 0.5, static topology (no period), momentum masking
    /// on, zero-initialised growth, seed 0.
    pub fn builder() -> DynamicSparsityBuilder {
        DynamicSparsityBuilder {
            config: Self {
                prune: PruneMethod::Magnitude,
                growth: GrowthMethod::Gradient,
                death_rate: DeathRate::Constant(0.5),
                period: None,
                end_step: None,
                gradual: None,
                regions: BTreeMap::new(),
                mask_momentum: true,
                growth_init: GrowthInit::Zero,
                redistribution: Redistribution::PerLayer,
                seed: 0,
            },
        }
    }

    /// SET (ITOP-lineage form): magnitude pruning, Bernoulli random growth, cosine
    /// death rate 0.5 → 0.005 over `total_steps`, an update every `period` steps.
    pub fn set(period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::dst(GrowthMethod::Random, period, total_steps)
    }

    /// RigL: magnitude pruning, gradient growth, cosine death rate 0.5 → 0.005.
    pub fn rigl(period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::dst(GrowthMethod::Gradient, period, total_steps)
    }

    /// Sparse momentum (Dettmers & Zettlemoyer): magnitude pruning, momentum growth,
    /// momentum redistribution across layers ([`Redistribution::Momentum`], so only
    /// the total nnz is fixed), cosine death rate 0.5 → 0.005.
    pub fn sparse_momentum(period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        Self::dst(GrowthMethod::Momentum, period, total_steps)
            .redistribution(Redistribution::Momentum)
    }

    /// Static sparse training (`--fix`): masks are applied, never changed.
    pub fn static_sparse() -> DynamicSparsityBuilder {
        Self::builder()
    }

    /// Gradual magnitude pruning without regrowth (GMP).
    pub fn gradual_magnitude(gradual: GradualPruning) -> DynamicSparsityBuilder {
        Self::builder().gradual(gradual)
    }

    /// GraNet: gradual magnitude pruning plus prune-and-regrow (magnitude / gradient)
    /// every `period` steps with a cosine death rate.
    pub fn granet(
        gradual: GradualPruning,
        period: usize,
        total_steps: usize,
    ) -> DynamicSparsityBuilder {
        Self::rigl(period, total_steps).gradual(gradual)
    }

    fn dst(growth: GrowthMethod, period: usize, total_steps: usize) -> DynamicSparsityBuilder {
        let mut b = Self::builder().growth(growth).period(Some(period));
        b.config.death_rate = DeathRate::Cosine {
            initial: 0.5,
            eta_min: crate::schedule::DEFAULT_ETA_MIN,
            t_max: total_steps,
        };
        b
    }

    /// The pruning criterion.
    pub fn prune_method(&self) -> PruneMethod {
        self.prune
    }

    /// The growth criterion.
    pub fn growth_method(&self) -> GrowthMethod {
        self.growth
    }

    /// The death-rate schedule.
    pub fn death_rate(&self) -> DeathRate {
        self.death_rate
    }

    /// Steps between prune-and-regrow updates (`None` = static).
    pub fn period(&self) -> Option<usize> {
        self.period
    }

    /// The last step at which prune-and-regrow may run, if any.
    pub fn end_step(&self) -> Option<usize> {
        self.end_step
    }

    /// The gradual-pruning schedule, if any.
    pub fn gradual(&self) -> Option<&GradualPruning> {
        self.gradual.as_ref()
    }

    /// The growth regions by parameter name.
    pub fn regions(&self) -> &BTreeMap<String, GrowthRegion> {
        &self.regions
    }

    /// Whether optimizer momentum is masked with the weights.
    pub fn masks_momentum(&self) -> bool {
        self.mask_momentum
    }

    /// The value grown weights start from.
    pub fn growth_init(&self) -> GrowthInit {
        self.growth_init
    }

    /// How regrowth is shared out.
    pub fn redistribution(&self) -> Redistribution {
        self.redistribution
    }

    /// The seed of the engine's random generator.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether `step` (1-based) is a prune-and-regrow step.
    pub fn is_update_step(&self, step: usize) -> bool {
        self.period.is_some_and(|p| step.is_multiple_of(p))
            && self.end_step.is_none_or(|end| step <= end)
    }
}

/// Checked builder of [`DynamicSparsity`]; [`DynamicSparsityBuilder::build`]
/// validates every hyperparameter and names the offending one.
#[derive(Debug, Clone)]
pub struct DynamicSparsityBuilder {
    config: DynamicSparsity,
}

impl DynamicSparsityBuilder {
    /// The pruning criterion.
    pub fn prune(mut self, method: PruneMethod) -> Self {
        self.config.prune = method;
        self
    }

    /// The growth criterion.
    pub fn growth(mut self, method: GrowthMethod) -> Self {
        self.config.growth = method;
        self
    }

    /// The death-rate schedule.
    pub fn death_rate(mut self, schedule: DeathRate) -> Self {
        self.config.death_rate = schedule;
        self
    }

    /// Steps between prune-and-regrow updates; `None` = static topology. Must be > 0.
    pub fn period(mut self, period: Option<usize>) -> Self {
        self.config.period = period;
        self
    }

    /// No prune-and-regrow after this step (RigL stops at 75 % of training).
    pub fn end_step(mut self, end_step: Option<usize>) -> Self {
        self.config.end_step = end_step;
        self
    }

    /// Gradual magnitude pruning on its own cubic schedule.
    pub fn gradual(mut self, gradual: GradualPruning) -> Self {
        self.config.gradual = Some(gradual);
        self
    }

    /// Restricts growth in parameter `name` to `region`.
    pub fn region(mut self, name: impl Into<String>, region: GrowthRegion) -> Self {
        self.config.regions.insert(name.into(), region);
        self
    }

    /// Whether optimizer momentum buffers are masked after each step (ITOP, GraNet,
    /// SLaK: yes; Dettmers, Random_Pruning CIFAR, STU-GAN: no).
    pub fn mask_momentum(mut self, on: bool) -> Self {
        self.config.mask_momentum = on;
        self
    }

    /// How removed weights are shared out for regrowth (default per layer).
    pub fn redistribution(mut self, redistribution: Redistribution) -> Self {
        self.config.redistribution = redistribution;
        self
    }

    /// The value newly grown weights start from.
    pub fn growth_init(mut self, init: GrowthInit) -> Self {
        self.config.growth_init = init;
        self
    }

    /// Seed of the engine's `ChaCha8Rng`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<DynamicSparsity> {
        let c = self.config;
        c.death_rate.validate()?;
        c.prune.validate()?;
        if let Some(p) = c.period {
            check_positive("period", p)?;
        }
        if let Some(g) = &c.gradual {
            g.validate()?;
        }
        if let GrowthInit::Value(v) = c.growth_init
            && !v.is_finite()
        {
            return Err(invalid("growth_init", v, "must be finite"));
        }
        Ok(c)
    }
}

/// The engine the paper crates call once per optimizer step.
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use sparse_core::{DynamicSparsity, Mask, SparseParams, SparsityEngine};
///
/// # fn main() -> sparse_core::Result<()> {
/// let w = Var::from_tensor(&Tensor::new(&[[0.3f32, -0.2, 0.5, 0.1]], &Device::Cpu)?)?;
/// let mut params = SparseParams::new();
/// params.insert("fc.weight", w.clone(), Mask::from_bits(&[1, 4], vec![1, 1, 0, 0])?)?;
/// let rigl = DynamicSparsity::rigl(2, 100).seed(7).build()?;
/// let mut engine = SparsityEngine::new(rigl, &params)?;
/// let x = Tensor::new(&[[1f32], [2.], [3.], [4.]], &Device::Cpu)?;
/// for step in 1..=4 {
///     let loss = w.as_tensor().matmul(&x)?.sqr()?.sum_all()?;
///     let grads = loss.backward()?;
///     let g = grads.get(w.as_tensor()).expect("w is in the graph");
///     w.set(&w.as_tensor().sub(&(g * 0.01)?)?)?; // your optimizer's step
///     let report = engine.after_optimizer_step(step, &mut params, &grads, None)?;
///     assert_eq!(params.mask("fc.weight")?.nnz(), 2); // RigL keeps the budget
///     assert_eq!(report.prune_regrow, step % 2 == 0);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SparsityEngine {
    config: DynamicSparsity,
    rng: ChaCha8Rng,
    fired: FiredMasks,
}

impl SparsityEngine {
    /// An engine for the masks now in `params`; the ITOP record starts from them and
    /// every region must belong to a registered parameter of the same shape.
    pub fn new(config: DynamicSparsity, params: &SparseParams) -> Result<Self> {
        for (name, region) in &config.regions {
            let mask = params.mask(name)?;
            if mask.shape() != region.allowed().shape() {
                return Err(SparseError::ShapeMismatch {
                    what: format!("growth region of `{name}`"),
                    expected: mask.shape().to_vec(),
                    got: region.allowed().shape().to_vec(),
                });
            }
        }
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            fired: FiredMasks::new(params),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DynamicSparsity {
        &self.config
    }

    /// The ITOP record.
    pub fn fired_masks(&self) -> &FiredMasks {
        &self.fired
    }

    /// Call right after `optimizer.step()`. `step` is the 1-based count of optimizer
    /// steps taken (this one included). Applies the masks to the weights, masks the
    /// optimizer's momentum when configured, and runs the topology update of `step`
    /// (prune + regrow + ITOP record on update steps), masking the state again after
    /// a change. After the call no inactive weight is non-zero.
    pub fn after_optimizer_step(
        &mut self,
        step: usize,
        params: &mut SparseParams,
        grads: &GradStore,
        mut optimizer: Option<&mut dyn OptimizerBuffers>,
    ) -> Result<UpdateReport> {
        params.apply_masks()?;
        if self.config.mask_momentum
            && let Some(opt) = optimizer.as_deref_mut()
        {
            opt.mask_state(params)?;
        }
        let report = {
            let ctx = UpdateContext {
                grads: Some(grads),
                momentum: optimizer.as_deref().map(|o| o as &dyn MomentumSource),
            };
            self.update(step, params, &ctx)?
        };
        if report.topology_changed()
            && self.config.mask_momentum
            && let Some(opt) = optimizer
        {
            opt.mask_state(params)?;
        }
        Ok(report)
    }

    /// Runs one prune-and-regrow at `rate` now, whatever the schedule, and records
    /// it in the ITOP record (Sup-tickets' re-exploration at the start of each cycle,
    /// `truncate_weights(prune_rate = 0.5)`). `step` only labels the report.
    pub fn prune_and_regrow_now(
        &mut self,
        step: usize,
        rate: f64,
        params: &mut SparseParams,
        ctx: &UpdateContext<'_>,
    ) -> Result<UpdateReport> {
        crate::schedule::check_unit("death_rate", rate)?;
        let mut changes = layer_changes(params);
        self.prune_and_regrow(rate, params, ctx, &mut changes)?;
        self.finish(
            params,
            changes,
            UpdateReport {
                step,
                death_rate: rate,
                prune_regrow: true,
                gradual_density: None,
                layers: Vec::new(),
                itop_rate: 0.0,
            },
        )
    }

    /// Fills in the after-counts and the ITOP rate.
    fn finish(
        &mut self,
        params: &SparseParams,
        mut changes: Vec<LayerChange>,
        mut report: UpdateReport,
    ) -> Result<UpdateReport> {
        for (p, change) in params.iter().zip(changes.iter_mut()) {
            change.nnz_after = p.mask.nnz();
        }
        self.fired.record(params)?;
        report.itop_rate = self.fired.rate();
        report.layers = changes;
        Ok(report)
    }

    /// Prunes and regrows every layer (or every group of a grouped region). Units
    /// are pruned together, so [`PruneMethod::GlobalMagnitude`] ranks all of them.
    fn prune_and_regrow(
        &mut self,
        rate: f64,
        params: &mut SparseParams,
        ctx: &UpdateContext<'_>,
        changes: &mut [LayerChange],
    ) -> Result<()> {
        let prune = self.config.prune;
        let growth = self.config.growth;
        let hosts = host_data(
            params,
            ctx,
            prune.needs_gradients() || growth.needs_gradients(),
        )?;
        let units = self.units(&hosts);
        let views: Vec<LayerView<'_>> = units
            .iter()
            .map(|u| {
                let h = &hosts[u.layer];
                LayerView {
                    name: &h.name,
                    weights: &h.weights,
                    grads: h.grads.as_deref(),
                    mask: &u.mask,
                }
            })
            .collect();
        let pruned = prune.prune(&views, rate, &mut self.rng)?;
        // layer masks after pruning, then after growth
        let mut after_prune: Vec<Mask> = hosts.iter().map(|h| h.mask.clone()).collect();
        for (unit, new) in units.iter().zip(&pruned) {
            for i in unit.mask.active_indices() {
                if !new.is_active(i) {
                    after_prune[unit.layer].set(i, false);
                }
            }
        }
        let redistribute = self.config.redistribution == Redistribution::Momentum;
        let momenta: Vec<Option<Vec<f32>>> = hosts
            .iter()
            .map(|h| {
                (growth.needs_momentum() || redistribute)
                    .then(|| momentum_of(ctx, &h.name))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let removed: Vec<usize> = units
            .iter()
            .zip(&pruned)
            .map(|(u, new)| u.mask.nnz() - new.nnz())
            .collect();
        let regrow = if redistribute {
            let shares: Vec<f64> = units
                .iter()
                .map(|u| mean_abs_over(&u.mask, momenta[u.layer].as_deref().unwrap_or(&[])))
                .collect();
            let capacity: Vec<usize> = units
                .iter()
                .map(|u| {
                    after_prune[u.layer]
                        .inactive_indices()
                        .into_iter()
                        .filter(|&i| u.region.as_ref().is_none_or(|r| r.allows(i)))
                        .count()
                })
                .collect();
            apportion(removed.iter().sum(), &shares, &capacity)
        } else {
            removed
        };
        let mut after_growth = after_prune.clone();
        for (unit, &count) in units.iter().zip(&regrow) {
            let host = &hosts[unit.layer];
            let inputs = GrowthInputs {
                grads: host.grads.as_deref(),
                momentum: momenta[unit.layer].as_deref(),
                fired: self.fired.fired(&host.name),
                region: unit.region.as_ref(),
            };
            // grow against the whole layer's pruned mask, so positions of other
            // groups count as taken
            let layer_mask = &after_prune[unit.layer];
            let grown = growth.grow(&host.name, layer_mask, count, &inputs, &mut self.rng)?;
            for i in grown.active_indices() {
                if !layer_mask.is_active(i) {
                    after_growth[unit.layer].set(i, true);
                }
            }
        }
        for (l, host) in hosts.iter().enumerate() {
            let change = &mut changes[l];
            change.pruned += host.mask.nnz() - after_prune[l].nnz();
            change.grown += after_growth[l].nnz() - after_prune[l].nnz();
            // zero the pruned weights first, so regrown positions start from zero
            params.set_mask(&host.name, after_prune[l].clone())?;
            if let GrowthInit::Value(v) = self.config.growth_init {
                write_grown(params, &host.name, &after_prune[l], &after_growth[l], v)?;
            }
            params.set_mask(&host.name, after_growth[l].clone())?;
        }
        Ok(())
    }

    /// The prune-and-regrow units: one per plain layer, one per group of a grouped
    /// region.
    fn units(&self, hosts: &[HostLayer]) -> Vec<Unit> {
        let mut units = Vec::new();
        for (layer, host) in hosts.iter().enumerate() {
            match self.config.regions.get(&host.name) {
                Some(region) if !region.groups().is_empty() => {
                    for group in region.groups() {
                        let mut mask = host.mask.clone();
                        for i in host.mask.active_indices() {
                            if !group.is_active(i) {
                                mask.set(i, false);
                            }
                        }
                        units.push(Unit {
                            layer,
                            mask,
                            region: Some(GrowthRegion::new(group.clone())),
                        });
                    }
                }
                region => units.push(Unit {
                    layer,
                    mask: host.mask.clone(),
                    region: region.cloned(),
                }),
            }
        }
        units
    }
}

/// One prune-and-regrow unit: a layer, or one group of a grouped region.
struct Unit {
    layer: usize,
    /// The active weights the unit may prune.
    mask: Mask,
    region: Option<GrowthRegion>,
}

impl TopologyUpdater for SparsityEngine {
    fn update(
        &mut self,
        step: usize,
        params: &mut SparseParams,
        ctx: &UpdateContext<'_>,
    ) -> Result<UpdateReport> {
        if step == 0 {
            return Err(invalid(
                "step",
                0,
                "is the 1-based count of optimizer steps",
            ));
        }
        let death_rate = self.config.death_rate.rate_at(step);
        let gradual = self
            .config
            .gradual
            .filter(|g| g.schedule().is_pruning_step(step));
        let prune_regrow = self.config.is_update_step(step);
        let mut report = UpdateReport {
            step,
            death_rate,
            prune_regrow,
            gradual_density: None,
            layers: Vec::new(),
            itop_rate: self.fired.rate(),
        };
        if gradual.is_none() && !prune_regrow {
            return Ok(report);
        }
        let mut changes = layer_changes(params);
        if let Some(g) = gradual {
            let hosts = host_data(params, ctx, false)?;
            let views: Vec<LayerView<'_>> = hosts
                .iter()
                .map(|h| LayerView {
                    name: &h.name,
                    weights: &h.weights,
                    grads: None,
                    mask: &h.mask,
                })
                .collect();
            let masks = g.prune(step, &views)?;
            for ((host, mask), change) in hosts.iter().zip(masks).zip(changes.iter_mut()) {
                change.pruned += host.mask.nnz() - mask.nnz();
                params.set_mask(&host.name, mask)?;
            }
            report.gradual_density = Some(g.schedule().density_at(step));
        }
        if prune_regrow {
            self.prune_and_regrow(death_rate, params, ctx, &mut changes)?;
        }
        self.finish(params, changes, report)
    }
}

/// Zeroed change records with the current nnz, in name order.
fn layer_changes(params: &SparseParams) -> Vec<LayerChange> {
    params
        .iter()
        .map(|p| LayerChange {
            name: p.name.clone(),
            nnz_before: p.mask.nnz(),
            pruned: 0,
            grown: 0,
            nnz_after: 0,
        })
        .collect()
}

/// Host copies of one layer.
struct HostLayer {
    name: String,
    weights: Vec<f32>,
    grads: Option<Vec<f32>>,
    mask: Mask,
}

fn to_host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

fn host_data(
    params: &SparseParams,
    ctx: &UpdateContext<'_>,
    with_grads: bool,
) -> Result<Vec<HostLayer>> {
    params
        .iter()
        .map(|p| {
            let grads = if with_grads {
                let g = ctx
                    .grads
                    .and_then(|gs| gs.get(p.var.as_tensor()))
                    .ok_or_else(|| SparseError::MissingGradient(p.name.clone()))?;
                Some(to_host(g)?)
            } else {
                None
            };
            Ok(HostLayer {
                name: p.name.clone(),
                weights: to_host(p.var.as_tensor())?,
                grads,
                mask: p.mask.clone(),
            })
        })
        .collect()
}

/// Mean `|values|` over the active positions of `mask` (0 when none).
fn mean_abs_over(mask: &Mask, values: &[f32]) -> f64 {
    let active = mask.active_indices();
    if active.is_empty() || values.len() != mask.numel() {
        return 0.0;
    }
    active
        .iter()
        .map(|&i| f64::from(values[i].abs()))
        .sum::<f64>()
        / active.len() as f64
}

fn momentum_of(ctx: &UpdateContext<'_>, name: &str) -> Result<Vec<f32>> {
    let source = ctx
        .momentum
        .ok_or_else(|| SparseError::MissingMomentum(name.to_string()))?;
    let m = source
        .momentum(name)?
        .ok_or_else(|| SparseError::MissingMomentum(name.to_string()))?;
    to_host(&m)
}

/// Writes `value` at the positions active in `grown` but not in `before`.
fn write_grown(
    params: &SparseParams,
    name: &str,
    before: &Mask,
    grown: &Mask,
    value: f32,
) -> Result<()> {
    let param = params
        .get(name)
        .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
    let t = param.var.as_tensor();
    let mut w = to_host(t)?;
    for (i, x) in w.iter_mut().enumerate() {
        if grown.is_active(i) && !before.is_active(i) {
            *x = value;
        }
    }
    let new = Tensor::from_vec(w, t.dims(), t.device())?.to_dtype(t.dtype())?;
    param.var.set(&new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::Rng;
    use std::cell::Cell;

    fn random_tensor(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn random_mask(rng: &mut ChaCha8Rng, shape: &[usize], density: f64) -> Mask {
        let n: usize = shape.iter().product();
        let bits = (0..n)
            .map(|_| u8::from(rng.random::<f64>() < density))
            .collect();
        Mask::from_bits(shape, bits).unwrap()
    }

    /// Two-layer linear model with plain SGD; returns the masks after every step
    /// and the reports.
    fn train(
        config: DynamicSparsity,
        steps: usize,
    ) -> (Vec<BTreeMap<String, Mask>>, Vec<UpdateReport>) {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let w1 = Var::from_tensor(&random_tensor(&mut rng, &[8, 6])).unwrap();
        let w2 = Var::from_tensor(&random_tensor(&mut rng, &[3, 8])).unwrap();
        let mut params = SparseParams::new();
        params
            .insert("l1", w1.clone(), random_mask(&mut rng, &[8, 6], 0.4))
            .unwrap();
        params
            .insert("l2", w2.clone(), random_mask(&mut rng, &[3, 8], 0.5))
            .unwrap();
        let x = random_tensor(&mut rng, &[16, 6]);
        let y = random_tensor(&mut rng, &[16, 3]);
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let (mut masks, mut reports) = (Vec::new(), Vec::new());
        for step in 1..=steps {
            let h = x
                .matmul(&w1.as_tensor().t().unwrap())
                .unwrap()
                .relu()
                .unwrap();
            let out = h.matmul(&w2.as_tensor().t().unwrap()).unwrap();
            let loss = out.sub(&y).unwrap().sqr().unwrap().mean_all().unwrap();
            let grads = loss.backward().unwrap();
            for w in [&w1, &w2] {
                let g = grads.get(w.as_tensor()).unwrap();
                w.set(&w.as_tensor().sub(&(g * 0.1).unwrap()).unwrap())
                    .unwrap();
            }
            let report = engine
                .after_optimizer_step(step, &mut params, &grads, None)
                .unwrap();
            masks.push(
                params
                    .iter()
                    .map(|p| (p.name.clone(), p.mask.clone()))
                    .collect(),
            );
            for p in params.iter() {
                let w = to_host(p.var.as_tensor()).unwrap();
                for (i, v) in w.iter().enumerate() {
                    assert!(
                        p.mask.is_active(i) || *v == 0.0,
                        "step {step}: masked weight non-zero"
                    );
                }
            }
            reports.push(report);
        }
        (masks, reports)
    }

    #[test]
    fn rigl_training_loop_keeps_the_invariants() {
        let config = DynamicSparsity::rigl(3, 30).seed(1).build().unwrap();
        let (masks, reports) = train(config.clone(), 30);
        let nnz0: Vec<usize> = masks[0].values().map(Mask::nnz).collect();
        let mut changed_updates = 0;
        for (s, report) in reports.iter().enumerate() {
            let step = s + 1;
            let nnz: Vec<usize> = masks[s].values().map(Mask::nnz).collect();
            assert_eq!(nnz, nnz0, "per-layer nnz constant with exact growth");
            assert_eq!(report.prune_regrow, step % 3 == 0);
            if s > 0 && step % 3 != 0 {
                assert_eq!(
                    masks[s],
                    masks[s - 1],
                    "mask changed off an update step {step}"
                );
            }
            if step % 3 == 0 {
                for l in &report.layers {
                    assert_eq!(l.pruned, l.grown, "{}", l.name);
                    assert!(l.pruned > 0, "death rate > 0 removes something");
                }
                if s > 0 && masks[s] != masks[s - 1] {
                    changed_updates += 1;
                }
            }
            if s > 0 {
                assert!(report.itop_rate >= reports[s - 1].itop_rate);
            }
        }
        assert!(changed_updates > 0, "RigL never changed the topology");
        assert!(reports.last().unwrap().itop_rate > reports[0].itop_rate);
        // deterministic: same seed, same masks
        let (again, _) = train(config, 30);
        assert_eq!(again, masks);
    }

    #[test]
    fn static_sparse_never_changes_masks() {
        let config = DynamicSparsity::static_sparse().build().unwrap();
        let (masks, reports) = train(config, 6);
        assert!(masks.windows(2).all(|w| w[0] == w[1]));
        assert!(reports.iter().all(|r| r.layers.is_empty()));
    }

    #[test]
    fn gradual_magnitude_reaches_the_final_density() {
        let gp = GradualPruning::new(1.0, 0.2, 2, 8, 2, true)
            .unwrap()
            .with_rule(crate::prune::KeepRule::Exact);
        let config = DynamicSparsity::gradual_magnitude(gp).build().unwrap();
        let (masks, reports) = train(config, 10);
        // l1 (48) + l2 (24) = 72 weights; keep floor(72 * 0.2) = 14 at step 8
        let total = |m: &BTreeMap<String, Mask>| m.values().map(Mask::nnz).sum::<usize>();
        assert_eq!(total(&masks[7]), 14);
        assert_eq!(reports[7].gradual_density, Some(0.2));
        assert!(masks.windows(2).all(|w| total(&w[1]) <= total(&w[0])));
    }

    #[test]
    fn invalid_configs_name_the_parameter() {
        let err = |b: DynamicSparsityBuilder| b.build().unwrap_err().to_string();
        assert!(err(DynamicSparsity::rigl(0, 10)).contains("`period`"));
        assert!(err(DynamicSparsity::rigl(5, 0)).contains("death_rate.t_max"));
        let e = err(DynamicSparsity::builder().death_rate(DeathRate::Constant(-0.1)));
        assert!(e.contains("`death_rate`"), "{e}");
        let e = err(DynamicSparsity::builder().death_rate(DeathRate::Constant(1.5)));
        assert!(e.contains("`death_rate`"), "{e}");
        let bad = GradualPruning {
            initial_density: 1.0,
            final_density: 1.2,
            start_step: 0,
            end_step: 10,
            period: 1,
            global: true,
            rule: crate::prune::KeepRule::Strict,
        };
        assert!(err(DynamicSparsity::gradual_magnitude(bad)).contains("final_density"));
    }

    /// A fake optimizer: fixed momentum, counts how often its state was masked.
    struct FakeOptimizer {
        momentum: Tensor,
        masked: Cell<usize>,
    }

    impl MomentumSource for FakeOptimizer {
        fn momentum(&self, name: &str) -> Result<Option<Tensor>> {
            Ok((name == "w").then(|| self.momentum.clone()))
        }
    }

    impl MaskableState for FakeOptimizer {
        fn mask_state(&mut self, _params: &SparseParams) -> Result<()> {
            self.masked.set(self.masked.get() + 1);
            Ok(())
        }
    }

    /// candle's `GradStore::new` is private: a store from an unrelated backward pass.
    fn empty_grads() -> GradStore {
        let v = Var::zeros(1, DType::F32, &Device::Cpu).unwrap();
        v.as_tensor().sum_all().unwrap().backward().unwrap()
    }

    fn one_layer(w: &[f32], bits: Vec<u8>) -> (Var, SparseParams) {
        let var =
            Var::from_tensor(&Tensor::from_slice(w, &[w.len()], &Device::Cpu).unwrap()).unwrap();
        let mut params = SparseParams::new();
        params
            .insert("w", var.clone(), Mask::from_bits(&[w.len()], bits).unwrap())
            .unwrap();
        (var, params)
    }

    #[test]
    fn momentum_growth_reads_the_optimizer_and_masks_its_state() {
        let (_var, mut params) = one_layer(&[0.9, 0.1, 0.0, 0.0, 0.0, 0.0], vec![1, 1, 0, 0, 0, 0]);
        let config = DynamicSparsity::builder()
            .growth(GrowthMethod::Momentum)
            .death_rate(DeathRate::Constant(0.5))
            .period(Some(1))
            .build()
            .unwrap();
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let mut opt = FakeOptimizer {
            momentum: Tensor::new(&[0f32, 0.0, 0.3, -0.8, 0.1, 0.2], &Device::Cpu).unwrap(),
            masked: Cell::new(0),
        };
        let grads = empty_grads();
        let report = engine
            .after_optimizer_step(1, &mut params, &grads, Some(&mut opt))
            .unwrap();
        // 0.1 pruned (ceil(0.5 * 2) = 1), the largest |momentum| inactive (index 3) grown
        assert_eq!(params.mask("w").unwrap().as_bits(), &[1, 0, 0, 1, 0, 0]);
        assert_eq!(report.layers[0].pruned, 1);
        assert_eq!(
            opt.masked.get(),
            2,
            "masked after the step and after the update"
        );
        // without a momentum source momentum growth is an error
        let err = engine.after_optimizer_step(2, &mut params, &grads, None);
        assert!(matches!(err, Err(SparseError::MissingMomentum(_))));
    }

    #[test]
    fn region_restricts_growth_and_grown_value_is_set() {
        let (var, mut params) = one_layer(&[0.9, 0.1, 0.0, 0.0, 0.0, 0.0], vec![1, 1, 0, 0, 0, 0]);
        let region = GrowthRegion::new(Mask::from_bits(&[6], vec![1, 1, 0, 0, 1, 0]).unwrap());
        let config = DynamicSparsity::builder()
            .growth(GrowthMethod::RandomExact)
            .death_rate(DeathRate::Constant(0.5))
            .period(Some(1))
            .region("w", region)
            .growth_init(GrowthInit::Value(0.5))
            .build()
            .unwrap();
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let grads = empty_grads();
        for step in 1..=5 {
            engine
                .after_optimizer_step(step, &mut params, &grads, None)
                .unwrap();
            let m = params.mask("w").unwrap();
            assert_eq!(m.nnz(), 2);
            for i in [2, 3, 5] {
                assert!(!m.is_active(i), "grew outside the region at step {step}");
            }
        }
        // the first update prunes 0.1 (index 1) and grows index 1 or 4 with value 0.5
        let w = to_host(var.as_tensor()).unwrap();
        assert!(w.iter().filter(|&&v| v == 0.5).count() >= 1);
        let region_rate = engine
            .fired_masks()
            .region_rate("w", &Mask::from_bits(&[6], vec![1, 1, 0, 0, 1, 0]).unwrap())
            .unwrap();
        assert!(region_rate > 2.0 / 3.0 - 1e-12);
    }

    #[test]
    fn grouped_region_keeps_per_group_budgets_dsn_style() {
        // a [6 out, 1 in, 6 taps] kernel; group g = channels 2g..2g+2, taps < 2(g+1)
        let shape = [6, 1, 6];
        let groups: Vec<Mask> = (0..3)
            .map(|g| crate::grow::mask_from_fn(&shape, |ix| ix[0] / 2 == g && ix[2] < 2 * (g + 1)))
            .collect();
        let region = GrowthRegion::grouped(groups.clone()).unwrap();
        // init: tap 0 of every channel, plus tap 1 of group 2 (per-group nnz 2, 2, 4)
        let init = crate::grow::mask_from_fn(&shape, |ix| ix[2] == 0 || (ix[0] >= 4 && ix[2] == 1));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let var = Var::from_tensor(&random_tensor(&mut rng, &shape)).unwrap();
        let mut params = SparseParams::new();
        params.insert("conv", var.clone(), init).unwrap();
        let config = DynamicSparsity::rigl(1, 100)
            .region("conv", region)
            .build()
            .unwrap();
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let per_group = |m: &Mask| -> Vec<usize> {
            groups
                .iter()
                .map(|g| {
                    g.active_indices()
                        .into_iter()
                        .filter(|&i| m.is_active(i))
                        .count()
                })
                .collect()
        };
        let mut changed = false;
        for step in 1..=6 {
            // a gradient that favours the far taps, so growth wants to leave the region
            let loss = var
                .as_tensor()
                .mul(&random_tensor(&mut rng, &shape))
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let before = params.mask("conv").unwrap().clone();
            engine
                .after_optimizer_step(step, &mut params, &grads, None)
                .unwrap();
            let m = params.mask("conv").unwrap();
            changed |= *m != before;
            assert_eq!(per_group(m), vec![2, 2, 4], "step {step}");
            let allowed = crate::grow::mask_from_fn(&shape, |ix| ix[2] < 2 * (ix[0] / 2 + 1));
            for i in m.active_indices() {
                assert!(
                    allowed.is_active(i),
                    "position {i} outside its group's taps"
                );
            }
        }
        assert!(changed, "the topology never moved");
        assert!(GrowthRegion::grouped(vec![groups[0].clone(), groups[0].clone()]).is_err());
    }

    /// Momentum for two layers, larger in "a".
    struct TwoLayerMomentum;

    impl MomentumSource for TwoLayerMomentum {
        fn momentum(&self, name: &str) -> Result<Option<Tensor>> {
            let v = if name == "a" { 3.0f32 } else { 1.0 };
            Ok(Some(Tensor::full(v, 8, &Device::Cpu)?))
        }
    }

    impl MaskableState for TwoLayerMomentum {
        fn mask_state(&mut self, _params: &SparseParams) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn momentum_redistribution_moves_budget_to_high_momentum_layers() {
        let mut params = SparseParams::new();
        for name in ["a", "b"] {
            let w = [0.5f32, 0.4, 0.3, 0.2, 0.0, 0.0, 0.0, 0.0];
            let var = Var::from_tensor(&Tensor::new(&w, &Device::Cpu).unwrap()).unwrap();
            let mask = Mask::from_bits(&[8], vec![1, 1, 1, 1, 0, 0, 0, 0]).unwrap();
            params.insert(name, var, mask).unwrap();
        }
        let config = DynamicSparsity::sparse_momentum(1, 100)
            .death_rate(DeathRate::Constant(0.5))
            .build()
            .unwrap();
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let mut opt = TwoLayerMomentum;
        let report = engine
            .after_optimizer_step(1, &mut params, &empty_grads(), Some(&mut opt))
            .unwrap();
        // each layer loses 2; the 4 regrown split 3:1 by mean |momentum|
        let grown: Vec<usize> = report.layers.iter().map(|l| l.grown).collect();
        assert_eq!(grown, vec![3, 1]);
        assert_eq!(
            params.mask("a").unwrap().nnz() + params.mask("b").unwrap().nnz(),
            8
        );
    }

    #[test]
    fn forced_update_prunes_at_the_given_rate() {
        let (_var, mut params) = one_layer(&[0.9, 0.1, 0.4, 0.3, 0.0, 0.0], vec![1, 1, 1, 1, 0, 0]);
        let config = DynamicSparsity::static_sparse()
            .growth(GrowthMethod::RandomExact)
            .build()
            .unwrap();
        let mut engine = SparsityEngine::new(config, &params).unwrap();
        let report = engine
            .prune_and_regrow_now(7, 0.5, &mut params, &UpdateContext::default())
            .unwrap();
        assert_eq!((report.layers[0].pruned, report.layers[0].grown), (2, 2));
        let m = params.mask("w").unwrap();
        assert!(m.is_active(0) && m.is_active(2), "the two largest survive");
        assert!(
            engine
                .prune_and_regrow_now(8, 1.5, &mut params, &UpdateContext::default())
                .is_err()
        );
    }

    #[test]
    fn step_zero_is_rejected() {
        let (_var, mut params) = one_layer(&[1.0], vec![1]);
        let mut engine =
            SparsityEngine::new(DynamicSparsity::static_sparse().build().unwrap(), &params)
                .unwrap();
        let err = engine.after_optimizer_step(0, &mut params, &empty_grads(), None);
        assert!(err.unwrap_err().to_string().contains("`step`"));
    }
}
