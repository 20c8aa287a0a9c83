//! The engine that runs every dynamic-sparse-training method as a configuration.

use candle_core::{DType, Tensor, backprop::GradStore};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::DynamicSparsity;
use super::interface::{OptimizerBuffers, TopologyUpdater, UpdateContext};
use super::report::{LayerChange, UpdateReport, layer_changes};
use crate::error::{Result, SparseError};
use crate::grow::{GrowthInit, GrowthInputs, GrowthRegion};
use crate::itop::FiredMasks;
use crate::mask::Mask;
use crate::prune::LayerView;
use crate::redistribution::{Redistribution, apportion};
use crate::registry::{SparseParam, SparseParams, WeightStorage};
use crate::state::MomentumSource;
use crate::validate::check_fraction;

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

    /// Whether the update after optimizer step `step` reads the weight gradients at
    /// pruned positions (gradient growth on a prune-and-regrow step). A sparse kernel
    /// must then return the dense weight gradient in that step's backward pass
    /// ([`crate::kernels::WeightGrad::Dense`]; see
    /// [`crate::kernels::set_weight_grads_for_step`]); on every other step the cheaper
    /// masked gradient is enough.
    pub fn needs_dense_gradients(&self, step: usize) -> bool {
        self.config.growth.needs_gradients() && self.config.is_update_step(step)
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
        check_fraction("death_rate", rate)?;
        if self.config.growth.needs_gradients() {
            check_dense_gradients(params, ctx)?;
        }
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
            if self.config.growth_init == GrowthInit::Previous {
                // survivors and regrown positions keep what they hold (the others are 0)
                params.set_mask(&host.name, after_growth[l].clone())?;
                continue;
            }
            // zero the pruned weights first, so regrown positions start from zero
            params.set_mask(&host.name, after_prune[l].clone())?;
            let packed = params.get(&host.name).and_then(|p| p.packed()).is_some();
            if let (true, GrowthInit::Value(v)) = (packed, self.config.growth_init) {
                // survivors keep their values, grown entries (pruned ones too) get `v`
                params.set_packed_mask_filling(&host.name, after_growth[l].clone(), v)?;
                continue;
            }
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
            return Err(SparseError::invalid(
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
        if prune_regrow && self.config.growth.needs_gradients() {
            check_dense_gradients(params, ctx)?;
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

/// Host copies of one layer.
struct HostLayer {
    name: String,
    weights: Vec<f32>,
    grads: Option<Vec<f32>>,
    mask: Mask,
}

pub(super) fn to_host(t: &Tensor) -> Result<Vec<f32>> {
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
                Some(to_host(&dense_gradient(p, ctx)?)?)
            } else {
                None
            };
            Ok(HostLayer {
                name: p.name.clone(),
                weights: p.dense_host()?,
                grads,
                mask: p.mask.clone(),
            })
        })
        .collect()
}

/// The gradient of `p`'s dense weight in `ctx`.
fn dense_gradient(p: &SparseParam, ctx: &UpdateContext<'_>) -> Result<Tensor> {
    match ctx.grads {
        Some(grads) => p.dense_gradient(grads)?,
        None => None,
    }
    .ok_or_else(|| SparseError::MissingGradient(p.name.clone()))
}

/// Refuses a masked gradient before gradient growth ranks it.
///
/// A masked gradient is zero at every position the forward pass saw as inactive (the
/// registry's masks before this update). A dense gradient can be zero there too, but
/// only through whole rows (an output unit whose gradient is zero, e.g. a fully
/// pruned unit behind a ReLU) or whole columns (an input that is always zero). So the
/// check looks at the inactive positions whose row and column both carry some
/// non-zero gradient: if there are any and all of them are zero, the gradient was
/// masked. (A layer whose pruned positions all sit in dead rows or columns tells
/// nothing and passes; in a weight of rank < 2 every pruned position counts.)
fn check_dense_gradients(params: &SparseParams, ctx: &UpdateContext<'_>) -> Result<()> {
    for p in params.iter() {
        let inactive = p.mask.inactive_indices();
        if inactive.is_empty() {
            continue;
        }
        let g = to_host(&dense_gradient(p, ctx)?)?;
        let telling = telling_positions(&g, p.mask.shape(), &inactive);
        if !telling.is_empty() && telling.iter().all(|&i| g[i] == 0.0) {
            return Err(SparseError::MaskedGradient(p.name.clone()));
        }
    }
    Ok(())
}

/// The inactive positions where a dense gradient is expected to be non-zero: those
/// whose row (output unit, `shape[0]`) and column (the remaining dimensions) both hold
/// a non-zero gradient somewhere; for a weight of rank < 2, all of them unless the
/// gradient is zero everywhere.
pub(super) fn telling_positions(g: &[f32], shape: &[usize], inactive: &[usize]) -> Vec<usize> {
    if shape.len() < 2 || g.is_empty() {
        return if g.iter().any(|&x| x != 0.0) {
            inactive.to_vec()
        } else {
            Vec::new()
        };
    }
    let cols = g.len() / shape[0];
    let (mut live_rows, mut live_cols) = (vec![false; shape[0]], vec![false; cols]);
    for (i, _) in g.iter().enumerate().filter(|(_, x)| **x != 0.0) {
        live_rows[i / cols] = true;
        live_cols[i % cols] = true;
    }
    inactive
        .iter()
        .copied()
        .filter(|&i| live_rows[i / cols] && live_cols[i % cols])
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
    let WeightStorage::Dense(var) = &param.storage else {
        return Err(SparseError::invalid_input(
            name,
            "a packed weight takes its grown values when it is re-packed",
        ));
    };
    let t = var.as_tensor();
    let mut w = to_host(t)?;
    for (i, x) in w.iter_mut().enumerate() {
        if grown.is_active(i) && !before.is_active(i) {
            *x = value;
        }
    }
    let new = Tensor::from_vec(w, t.dims(), t.device())?.to_dtype(t.dtype())?;
    var.set(&new)?;
    Ok(())
}
