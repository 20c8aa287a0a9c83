//! Stochastic gradient descent exactly as `torch.optim.SGD`.

use std::collections::BTreeMap;

use candle_core::{Tensor, backprop::GradStore};

use super::{
    Optimizer, OptimizerState, PackedLayouts, ParamGroup, Slot, build_slots, checked_buffer,
    dense_buffer, follow_packed, fused, reject_unknown_keys,
};
use crate::error::{Result, SparseError};
use crate::registry::SparseParams;
use crate::state::{MaskableState, MomentumSource};
use crate::validate::{
    check_fraction, check_fraction_below_one, check_non_negative, check_positive,
};

const MOMENTUM_BUFFER: &str = "momentum_buffer";

/// Validated hyperparameters of [`Sgd`]; build with [`SgdConfig::builder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl SgdConfig {
    /// A builder with PyTorch's defaults except the learning rate, which is required.
    pub fn builder(lr: f64) -> SgdConfigBuilder {
        SgdConfigBuilder {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
    /// Learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Momentum factor.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }
    /// Dampening of the gradient in the momentum buffer.
    pub fn dampening(&self) -> f64 {
        self.dampening
    }
    /// Whether Nesterov momentum is used.
    pub fn nesterov(&self) -> bool {
        self.nesterov
    }
    /// Default (coupled, L2) weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
}

/// Builder of [`SgdConfig`]; [`SgdConfigBuilder::build`] checks every value.
#[derive(Debug, Clone, Copy)]
pub struct SgdConfigBuilder {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl SgdConfigBuilder {
    /// Momentum factor, in `[0, 1)` (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    /// Dampening, in `[0, 1]` (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }
    /// Nesterov momentum (default off; needs momentum > 0 and dampening 0).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
    /// Coupled L2 weight decay added to the gradient, `>= 0` (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
    /// Checks the values; errors name the offending parameter.
    pub fn build(self) -> Result<SgdConfig> {
        check_positive("lr", self.lr)?;
        check_fraction_below_one("momentum", self.momentum)?;
        check_fraction("dampening", self.dampening)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(SparseError::invalid(
                "nesterov",
                true,
                format!(
                    "Nesterov momentum requires momentum > 0 and dampening = 0 (got momentum {}, dampening {})",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(SgdConfig {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
        })
    }
}

/// SGD with momentum, dampening, Nesterov and coupled weight decay (`torch.optim.SGD`):
///
/// ```text
/// g   = grad + wd·p
/// buf = g                                   (first step)
/// buf = momentum·buf + (1 − dampening)·g    (later steps)
/// g   = g + momentum·buf  if nesterov, else buf
/// p   = p − lr·g
/// ```
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    lr: f64,
    step: u64,
    slots: Vec<Slot>,
    buffers: BTreeMap<String, Tensor>,
    layouts: PackedLayouts,
}

impl Sgd {
    /// An optimizer over parameter groups (names must be unique across groups).
    pub fn new(groups: Vec<ParamGroup>, config: SgdConfig) -> Result<Self> {
        let slots = build_slots(groups, config.weight_decay)?;
        Ok(Self {
            lr: config.lr,
            config,
            step: 0,
            slots,
            buffers: BTreeMap::new(),
            layouts: PackedLayouts::new(),
        })
    }

    /// An optimizer over one group using the config's weight decay.
    pub fn from_params(params: Vec<(String, candle_core::Var)>, config: SgdConfig) -> Result<Self> {
        Self::new(vec![ParamGroup::new(params)], config)
    }

    /// The configuration (its `lr` is the initial one; see [`Optimizer::learning_rate`]).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The momentum buffer of `name`, if one exists yet. On the CPU later steps
    /// update it in place: `copy()` it to keep this step's values. A packed weight's
    /// buffer holds its active entries (`[nnz]`); [`MomentumSource::momentum`] gives it
    /// in the dense shape.
    pub fn momentum_buffer(&self, name: &str) -> Option<&Tensor> {
        self.buffers.get(name)
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = self.config;
        for slot in &self.slots {
            let var = slot.var();
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let p = var.as_tensor();
            let mut buffers: Vec<&mut Tensor> =
                self.buffers.get_mut(&slot.name).into_iter().collect();
            follow_packed(slot, &mut self.layouts, &mut buffers)?;
            let buffer = self.buffers.get(&slot.name);
            let mut in_place = vec![p, grad];
            in_place.extend(buffer);
            if fused::applies(&in_place) {
                let scalars = fused::SgdScalars {
                    lr: self.lr as f32,
                    weight_decay: (slot.weight_decay != 0.0).then_some(slot.weight_decay as f32),
                    momentum: c.momentum as f32,
                    keep: (1.0 - c.dampening) as f32,
                    nesterov: c.nesterov,
                };
                if let Some(buf) = fused::sgd_step(p, grad, buffer.cloned(), scalars)? {
                    self.buffers.insert(slot.name.clone(), buf);
                }
                continue;
            }
            let mut g = grad.to_dtype(p.dtype())?;
            if slot.weight_decay != 0.0 {
                g = (g + (p * slot.weight_decay)?)?;
            }
            if c.momentum != 0.0 {
                let buf = match self.buffers.get(&slot.name) {
                    None => g.copy()?,
                    Some(buf) => ((buf * c.momentum)? + (&g * (1.0 - c.dampening))?)?,
                };
                g = if c.nesterov {
                    (g + (&buf * c.momentum)?)?
                } else {
                    buf.clone()
                };
                self.buffers.insert(slot.name.clone(), buf);
            }
            var.set(&(p - (g * self.lr)?)?)?;
        }
        self.step += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn step_count(&self) -> u64 {
        self.step
    }

    fn kind(&self) -> &'static str {
        "sgd"
    }

    fn param_names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    fn export_state(&self) -> Result<OptimizerState> {
        let mut tensors = BTreeMap::new();
        for slot in &self.slots {
            if let Some(t) = self.buffers.get(&slot.name) {
                let dense = dense_buffer(slot, &self.layouts, t)?;
                tensors.insert(format!("{}/{MOMENTUM_BUFFER}", slot.name), dense.copy()?);
            }
        }
        Ok(OptimizerState {
            step: self.step,
            learning_rate: self.lr,
            tensors,
        })
    }

    fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        reject_unknown_keys(state, &self.slots, &[MOMENTUM_BUFFER])?;
        let mut buffers = BTreeMap::new();
        for slot in &self.slots {
            if let Some(t) = checked_buffer(state, slot, MOMENTUM_BUFFER)? {
                buffers.insert(slot.name.clone(), t);
            }
        }
        self.buffers = buffers;
        // imported buffers are in the dense shape; packed ones are packed at their next step
        self.layouts.clear();
        self.step = state.step;
        self.lr = state.learning_rate;
        Ok(())
    }
}

impl MomentumSource for Sgd {
    /// The `momentum_buffer` (`None` before the first step or without momentum).
    fn momentum(&self, name: &str) -> Result<Option<Tensor>> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
        // a copy: the buffer itself is updated in place by the next step
        self.buffers
            .get(name)
            .map(|t| Ok(dense_buffer(slot, &self.layouts, t)?.copy()?))
            .transpose()
    }
}

impl MaskableState for Sgd {
    /// `momentum_buffer ← momentum_buffer ⊙ mask` for every masked parameter, as
    /// ITOP, GraNet, Sup-tickets and SLaK do after each step. Masked names that this
    /// optimizer does not hold are an error (a registry paired with the wrong optimizer).
    /// A packed weight's buffer has no inactive entries (and entries that become active
    /// start at zero), so it is left as it is.
    fn mask_state(&mut self, params: &SparseParams) -> Result<()> {
        for p in params.iter() {
            if !self.slots.iter().any(|s| s.name == p.name) {
                return Err(SparseError::UnknownParameter(p.name.clone()));
            }
            if p.packed().is_some() {
                continue;
            }
            if let Some(buf) = self.buffers.get_mut(&p.name)
                && !fused::mask_in_place(buf, &p.mask)?
            {
                let m = p.mask.to_tensor(buf.dtype(), buf.device())?;
                *buf = buf.mul(&m)?;
            }
        }
        Ok(())
    }
}
