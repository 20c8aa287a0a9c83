//! Optimizers with PyTorch semantics and inspectable state.
//!
//! candle-nn's `SGD` has no momentum and its `AdamW` keeps its moments private, so the
//! sparsity engine (momentum growth, momentum masking) and checkpoints cannot use them.
//! [`Sgd`] and [`Adam`] (Adam or AdamW, chosen by [`AdamConfig`]) follow `torch.optim` update equations exactly, keep
//! every buffer as a named tensor (`<param>/<buffer>`), and implement
//! [`MomentumSource`](crate::MomentumSource) and [`MaskableState`](crate::MaskableState).
//!
//! Parameters are `(name, Var)` pairs, grouped in [`ParamGroup`]s that may override
//! the weight decay (PyTorch users give BatchNorm and biases none). A group may also
//! hold [`PackedWeight`]s ([`ParamGroup::with_packed`]): the optimizer then updates
//! their current values and keeps their buffers packed too (`[nnz]`), carrying them
//! over when the sparsity engine changes the topology (survivors keep their state,
//! new entries start at zero); exported state and [`MomentumSource`](
//! crate::MomentumSource) give those buffers in the weight's dense shape, so a
//! checkpoint does not depend on how the weight was stored. Internally the
//! parameters are sorted by name, so updates and exported state are deterministic.
//! A `Var` without a gradient in the `GradStore` is skipped, like PyTorch skips
//! parameters whose `.grad` is `None` (BatchNorm running statistics never get one).

mod adam;
mod fused;
mod sgd;

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{Tensor, Var, backprop::GradStore};

pub use adam::{Adam, AdamConfig, AdamConfigBuilder};
pub(crate) use fused::mask_in_place;
pub use sgd::{Sgd, SgdConfig, SgdConfigBuilder};
// The name rules live in `selection`; re-exported here for optimizer users.
pub use crate::selection::{is_bias_or_norm, trainable_vars};

use crate::error::{CheckpointError, Result, SparseError};
use crate::kernels::PackedWeight;
use crate::kernels::packed_weight::{CsrPattern, carry_over_tensor, pack_tensor, scatter_tensor};
use crate::validate::check_non_negative;

/// An optimizer whose state can be exported and re-imported bit-exactly.
pub trait Optimizer: std::fmt::Debug {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (used by [`LrSchedule::apply`](crate::lr::LrSchedule::apply)).
    fn set_learning_rate(&mut self, lr: f64);
    /// Number of completed [`Optimizer::step`] calls.
    fn step_count(&self) -> u64;
    /// A short name of the algorithm (`"sgd"`, `"adam"`, `"adamw"`), stored in checkpoints.
    fn kind(&self) -> &'static str;
    /// The names of the optimized parameters, sorted.
    fn param_names(&self) -> Vec<String>;
    /// A copy of the full state: step count, learning rate and every buffer.
    fn export_state(&self) -> Result<OptimizerState>;
    /// Replaces the state with `state`, validating names, shapes and dtypes first; on
    /// error the optimizer is left unchanged.
    fn import_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// The exported state of an optimizer.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    /// Completed steps.
    pub step: u64,
    /// Learning rate at export time.
    pub learning_rate: f64,
    /// Buffers keyed `<param name>/<buffer name>` (e.g. `fc.weight/momentum_buffer`).
    pub tensors: BTreeMap<String, Tensor>,
}

/// Parameters sharing hyperparameter overrides, like a PyTorch param group.
#[derive(Debug, Clone)]
pub struct ParamGroup {
    /// The `(name, var)` pairs of the group.
    pub params: Vec<(String, Var)>,
    /// The packed weights of the group ([`SparseParams::packed_weights`](
    /// crate::SparseParams::packed_weights)).
    pub packed: Vec<(String, PackedWeight)>,
    /// Weight decay of this group; `None` uses the optimizer config's value.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group that uses the config's weight decay.
    pub fn new(params: Vec<(String, Var)>) -> Self {
        Self {
            params,
            packed: Vec::new(),
            weight_decay: None,
        }
    }

    /// A group with its own weight decay (checked when the optimizer is built).
    pub fn with_weight_decay(params: Vec<(String, Var)>, weight_decay: f64) -> Self {
        Self {
            params,
            packed: Vec::new(),
            weight_decay: Some(weight_decay),
        }
    }

    /// Adds packed weights to the group: the optimizer updates their values as they
    /// are at each step, whatever topology changes replaced them.
    pub fn with_packed(mut self, packed: Vec<(String, PackedWeight)>) -> Self {
        self.packed.extend(packed);
        self
    }

    /// Splits `params` into a group using the config's decay and a group without
    /// decay, the latter holding every name for which `no_decay(name)` is true
    /// (see [`is_bias_or_norm`] for the common rule).
    pub fn split_no_decay(
        params: Vec<(String, Var)>,
        no_decay: impl Fn(&str) -> bool,
    ) -> Vec<ParamGroup> {
        let (free, decayed): (Vec<_>, Vec<_>) = params.into_iter().partition(|(n, _)| no_decay(n));
        vec![Self::new(decayed), Self::with_weight_decay(free, 0.0)]
    }
}

/// One parameter as the optimizers store it.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub name: String,
    pub param: SlotParam,
    pub weight_decay: f64,
}

/// How a slot's parameter is held.
#[derive(Debug, Clone)]
pub(crate) enum SlotParam {
    Dense(Var),
    Packed(PackedWeight),
}

impl Slot {
    /// The `Var` to update now.
    pub fn var(&self) -> Var {
        match &self.param {
            SlotParam::Dense(var) => var.clone(),
            SlotParam::Packed(weight) => weight.values(),
        }
    }

    pub fn packed(&self) -> Option<&PackedWeight> {
        match &self.param {
            SlotParam::Dense(_) => None,
            SlotParam::Packed(weight) => Some(weight),
        }
    }

    /// The shape of the state as exported: the parameter's (dense) shape.
    fn state_dims(&self) -> Vec<usize> {
        match &self.param {
            SlotParam::Dense(var) => var.dims().to_vec(),
            SlotParam::Packed(weight) => weight.shape(),
        }
    }
}

/// The pattern each packed parameter's buffers are packed for, by name. A packed
/// parameter with buffers but no entry holds them in its dense shape (just imported).
pub(crate) type PackedLayouts = BTreeMap<String, Arc<CsrPattern>>;

/// Brings `buffers` of `slot` to the pattern its packed weight has now (carried over
/// from the old pattern, or packed from the dense shape after an import) and records
/// that pattern. Nothing to do for a dense parameter.
pub(crate) fn follow_packed(
    slot: &Slot,
    layouts: &mut PackedLayouts,
    buffers: &mut [&mut Tensor],
) -> Result<()> {
    let Some(weight) = slot.packed() else {
        return Ok(());
    };
    let now = weight.pattern();
    match layouts.get(&slot.name) {
        Some(old) if Arc::ptr_eq(old, &now) => return Ok(()),
        Some(old) => {
            for b in buffers.iter_mut() {
                **b = carry_over_tensor(b, old, &now)?;
            }
        }
        None => {
            for b in buffers.iter_mut() {
                **b = pack_tensor(b, &now)?;
            }
        }
    }
    layouts.insert(slot.name.clone(), now);
    Ok(())
}

/// A buffer of `slot` in the parameter's dense shape (for export and momentum), as it
/// stands for the weight's current pattern (entries pruned since the last step are
/// dropped, as the next step would).
pub(crate) fn dense_buffer(slot: &Slot, layouts: &PackedLayouts, t: &Tensor) -> Result<Tensor> {
    let (Some(weight), Some(old)) = (slot.packed(), layouts.get(&slot.name)) else {
        return Ok(t.clone());
    };
    let now = weight.pattern();
    if Arc::ptr_eq(old, &now) {
        scatter_tensor(t, old, &weight.shape())
    } else {
        scatter_tensor(&carry_over_tensor(t, old, &now)?, &now, &weight.shape())
    }
}

/// Flattens groups into slots sorted by name; rejects duplicates and bad decays.
pub(crate) fn build_slots(groups: Vec<ParamGroup>, default_wd: f64) -> Result<Vec<Slot>> {
    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    for group in groups {
        let wd = group.weight_decay.unwrap_or(default_wd);
        check_non_negative("weight_decay", wd)?;
        let dense = group
            .params
            .into_iter()
            .map(|(name, var)| (name, SlotParam::Dense(var)));
        let packed = group
            .packed
            .into_iter()
            .map(|(name, weight)| (name, SlotParam::Packed(weight)));
        for (name, param) in dense.chain(packed) {
            if slots.contains_key(&name) {
                return Err(SparseError::invalid(
                    "params",
                    name,
                    "a parameter name appears twice",
                ));
            }
            slots.insert(
                name.clone(),
                Slot {
                    name,
                    param,
                    weight_decay: wd,
                },
            );
        }
    }
    Ok(slots.into_values().collect())
}

/// Validates an imported buffer against its parameter and returns it detached, in the
/// parameter's dense shape (see [`follow_packed`]).
pub(crate) fn checked_buffer(
    state: &OptimizerState,
    slot: &Slot,
    buffer: &str,
) -> Result<Option<Tensor>> {
    let key = format!("{}/{}", slot.name, buffer);
    let Some(t) = state.tensors.get(&key) else {
        return Ok(None);
    };
    let var = slot.var();
    let var = var.as_tensor();
    let dims = slot.state_dims();
    if t.dims() != dims {
        return Err(CheckpointError::ShapeMismatch {
            name: key,
            expected: dims,
            got: t.dims().to_vec(),
        }
        .into());
    }
    if t.dtype() != var.dtype() {
        return Err(CheckpointError::DTypeMismatch {
            name: key,
            expected: format!("{:?}", var.dtype()),
            got: format!("{:?}", t.dtype()),
        }
        .into());
    }
    Ok(Some(t.to_device(var.device())?.copy()?))
}

/// Rejects imported keys that name no known `(param, buffer)` pair.
pub(crate) fn reject_unknown_keys(
    state: &OptimizerState,
    slots: &[Slot],
    buffers: &[&str],
) -> Result<()> {
    for key in state.tensors.keys() {
        let known = slots.iter().any(|s| {
            buffers.iter().any(|b| {
                key.len() == s.name.len() + 1 + b.len() && *key == format!("{}/{}", s.name, b)
            })
        });
        if !known {
            return Err(CheckpointError::UnexpectedTensor(key.clone()).into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
