//! Optimizers with PyTorch semantics and inspectable state.
//!
//! candle-nn's `SGD` has no momentum and its `AdamW` keeps its moments private, so the
//! sparsity engine (momentum growth, momentum masking) and checkpoints cannot use them.
//! [`Sgd`] and [`Adam`] (Adam or AdamW, chosen by [`AdamConfig`]) follow `torch.optim` update equations exactly, keep
//! every buffer as a named tensor (`<param>/<buffer>`), and implement
//! [`MomentumSource`](crate::MomentumSource) and [`MaskableState`](crate::MaskableState).
//!
//! Parameters are `(name, Var)` pairs, grouped in [`ParamGroup`]s that may override
//! the weight decay (PyTorch users give BatchNorm and biases none). Internally the
//! parameters are sorted by name, so updates and exported state are deterministic.
//! A `Var` without a gradient in the `GradStore` is skipped, like PyTorch skips
//! parameters whose `.grad` is `None` (BatchNorm running statistics never get one).

mod adam;
mod fused;
mod sgd;

use std::collections::BTreeMap;

use candle_core::{Tensor, Var, backprop::GradStore};

pub use adam::{Adam, AdamConfig, AdamConfigBuilder};
pub(crate) use fused::mask_in_place;
pub use sgd::{Sgd, SgdConfig, SgdConfigBuilder};
// The name rules live in `selection`; re-exported here for optimizer users.
pub use crate::selection::{is_bias_or_norm, trainable_vars};

use crate::error::{CheckpointError, Result, SparseError};
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
    /// Weight decay of this group; `None` uses the optimizer config's value.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group that uses the config's weight decay.
    pub fn new(params: Vec<(String, Var)>) -> Self {
        Self {
            params,
            weight_decay: None,
        }
    }

    /// A group with its own weight decay (checked when the optimizer is built).
    pub fn with_weight_decay(params: Vec<(String, Var)>, weight_decay: f64) -> Self {
        Self {
            params,
            weight_decay: Some(weight_decay),
        }
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
    pub var: Var,
    pub weight_decay: f64,
}

/// Flattens groups into slots sorted by name; rejects duplicates and bad decays.
pub(crate) fn build_slots(groups: Vec<ParamGroup>, default_wd: f64) -> Result<Vec<Slot>> {
    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    for group in groups {
        let wd = group.weight_decay.unwrap_or(default_wd);
        check_non_negative("weight_decay", wd)?;
        for (name, var) in group.params {
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
                    var,
                    weight_decay: wd,
                },
            );
        }
    }
    Ok(slots.into_values().collect())
}

/// Validates an imported buffer against its parameter and returns it detached.
pub(crate) fn checked_buffer(
    state: &OptimizerState,
    slot: &Slot,
    buffer: &str,
) -> Result<Option<Tensor>> {
    let key = format!("{}/{}", slot.name, buffer);
    let Some(t) = state.tensors.get(&key) else {
        return Ok(None);
    };
    let var = slot.var.as_tensor();
    if t.dims() != var.dims() {
        return Err(CheckpointError::ShapeMismatch {
            name: key,
            expected: var.dims().to_vec(),
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
