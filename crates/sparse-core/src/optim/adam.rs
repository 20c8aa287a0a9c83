//! Adam (coupled L2 decay, `torch.optim.Adam`) and AdamW (decoupled decay,
//! `torch.optim.AdamW`), one implementation selected by [`AdamConfig`].

use std::collections::BTreeMap;

use candle_core::{Tensor, Var, backprop::GradStore};

use super::{
    Optimizer, OptimizerState, PackedLayouts, ParamGroup, Slot, build_slots, checked_buffer,
    dense_buffer, follow_packed, fused, reject_unknown_keys,
};
use crate::error::{CheckpointError, Result, SparseError};
use crate::registry::SparseParams;
use crate::state::{MaskableState, MomentumSource};
use crate::validate::{check_fraction_below_one, check_non_negative, check_positive};

const EXP_AVG: &str = "exp_avg";
const EXP_AVG_SQ: &str = "exp_avg_sq";
const MAX_EXP_AVG_SQ: &str = "max_exp_avg_sq";
const STEP: &str = "step";

/// The epsilon of the momentum signal handed to the sparsity engine (sparselearning's value).
const MOMENTUM_SIGNAL_EPS: f64 = 1e-8;

/// Validated hyperparameters of [`Adam`]. [`AdamConfig::adam`] gives `torch.optim.Adam`
/// (L2 decay added to the gradient), [`AdamConfig::adamw`] gives `torch.optim.AdamW`
/// (decay applied to the weight, `p ← p·(1 − lr·wd)`). PyTorch's AdamW silently
/// defaults to `weight_decay = 0.01`; here the AdamW decay must be given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    amsgrad: bool,
    mask_moments: bool,
}

impl AdamConfig {
    /// Builder of `torch.optim.Adam` (betas 0.9/0.999, eps 1e-8, no decay).
    pub fn adam(lr: f64) -> AdamConfigBuilder {
        AdamConfigBuilder(AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            mask_moments: false,
        })
    }

    /// Builder of `torch.optim.AdamW` with an explicit decoupled weight decay.
    pub fn adamw(lr: f64, weight_decay: f64) -> AdamConfigBuilder {
        let mut b = Self::adam(lr);
        b.0.weight_decay = weight_decay;
        b.0.decoupled = true;
        b
    }

    /// Learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// `(beta1, beta2)`.
    pub fn betas(&self) -> (f64, f64) {
        (self.beta1, self.beta2)
    }
    /// Denominator epsilon.
    pub fn eps(&self) -> f64 {
        self.eps
    }
    /// Default weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
    /// Whether the decay is decoupled (AdamW).
    pub fn decoupled(&self) -> bool {
        self.decoupled
    }
    /// Whether the AMSGrad variant is used.
    pub fn amsgrad(&self) -> bool {
        self.amsgrad
    }
    /// Whether [`MaskableState::mask_state`] masks the moments.
    pub fn mask_moments(&self) -> bool {
        self.mask_moments
    }
}

/// Builder of [`AdamConfig`]; [`AdamConfigBuilder::build`] checks every value.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfigBuilder(AdamConfig);

impl AdamConfigBuilder {
    /// `(beta1, beta2)`, each in `[0, 1)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.0.beta1 = beta1;
        self.0.beta2 = beta2;
        self
    }
    /// Denominator epsilon, `> 0`.
    pub fn eps(mut self, eps: f64) -> Self {
        self.0.eps = eps;
        self
    }
    /// Default weight decay, `>= 0` (coupled for Adam, decoupled for AdamW).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.0.weight_decay = weight_decay;
        self
    }
    /// AMSGrad: divide by the running maximum of `exp_avg_sq`.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.0.amsgrad = amsgrad;
        self
    }
    /// Also mask `exp_avg`/`exp_avg_sq` in [`MaskableState::mask_state`]. Off by
    /// default: no official sparselearning-derived code masks Adam moments.
    pub fn mask_moments(mut self, mask_moments: bool) -> Self {
        self.0.mask_moments = mask_moments;
        self
    }
    /// Checks the values; errors name the offending parameter.
    pub fn build(self) -> Result<AdamConfig> {
        let c = self.0;
        check_positive("lr", c.lr)?;
        check_fraction_below_one("beta1", c.beta1)?;
        check_fraction_below_one("beta2", c.beta2)?;
        check_positive("eps", c.eps)?;
        check_non_negative("weight_decay", c.weight_decay)?;
        Ok(c)
    }
}

/// Per-parameter moments (PyTorch counts steps per parameter).
#[derive(Debug, Clone)]
struct Moments {
    step: u64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Option<Tensor>,
}

/// Adam / AdamW with bias correction and optional AMSGrad:
///
/// ```text
/// Adam:  g = grad + wd·p            AdamW: p = p·(1 − lr·wd)
/// m = β1·m + (1 − β1)·g ;  v = β2·v + (1 − β2)·g²
/// v̂ = max(v̂, v) if amsgrad else v
/// p = p − lr/(1 − β1^t) · m / (sqrt(v̂)/sqrt(1 − β2^t) + eps)
/// ```
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    lr: f64,
    step: u64,
    slots: Vec<Slot>,
    moments: BTreeMap<String, Moments>,
    layouts: PackedLayouts,
}

impl Adam {
    /// An optimizer over parameter groups (names must be unique across groups).
    pub fn new(groups: Vec<ParamGroup>, config: AdamConfig) -> Result<Self> {
        let slots = build_slots(groups, config.weight_decay)?;
        Ok(Self {
            lr: config.lr,
            config,
            step: 0,
            slots,
            moments: BTreeMap::new(),
            layouts: PackedLayouts::new(),
        })
    }

    /// An optimizer over one group using the config's weight decay.
    pub fn from_params(params: Vec<(String, Var)>, config: AdamConfig) -> Result<Self> {
        Self::new(vec![ParamGroup::new(params)], config)
    }

    /// The configuration.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// `(exp_avg, exp_avg_sq)` of `name`, if it has been stepped (a packed weight's
    /// hold its active entries, `[nnz]`).
    pub fn moments(&self, name: &str) -> Option<(&Tensor, &Tensor)> {
        self.moments.get(name).map(|m| (&m.exp_avg, &m.exp_avg_sq))
    }

    fn update(&self, slot: &Slot, grad: &Tensor, prev: Option<Moments>) -> Result<Moments> {
        let c = &self.config;
        let var = slot.var();
        let p = var.as_tensor();
        let mut in_place = vec![p, grad];
        if let Some(m) = &prev {
            in_place.extend([&m.exp_avg, &m.exp_avg_sq]);
            in_place.extend(&m.max_exp_avg_sq);
        }
        if fused::applies(&in_place) {
            return self.update_in_place(slot, grad, prev);
        }
        let prev = prev.as_ref();
        let mut g = grad.to_dtype(p.dtype())?;
        let mut p_new = p.clone();
        if slot.weight_decay != 0.0 {
            if c.decoupled {
                p_new = (p * (1.0 - self.lr * slot.weight_decay))?;
            } else {
                g = (g + (p * slot.weight_decay)?)?;
            }
        }
        let (step, exp_avg, exp_avg_sq) = match prev {
            None => (1, (&g * (1.0 - c.beta1))?, (g.sqr()? * (1.0 - c.beta2))?),
            Some(m) => (
                m.step + 1,
                ((&m.exp_avg * c.beta1)? + (&g * (1.0 - c.beta1))?)?,
                ((&m.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?,
            ),
        };
        let max_exp_avg_sq = if c.amsgrad {
            Some(match prev.and_then(|m| m.max_exp_avg_sq.as_ref()) {
                Some(prev_max) => prev_max.maximum(&exp_avg_sq)?,
                None => exp_avg_sq.copy()?,
            })
        } else {
            None
        };
        let bias_correction1 = 1.0 - c.beta1.powi(step as i32);
        let bias_correction2_sqrt = (1.0 - c.beta2.powi(step as i32)).sqrt();
        let second = max_exp_avg_sq.as_ref().unwrap_or(&exp_avg_sq);
        let denom = ((second.sqrt()? / bias_correction2_sqrt)? + c.eps)?;
        let step_size = self.lr / bias_correction1;
        let update = ((&exp_avg / &denom)? * step_size)?;
        var.set(&(p_new - update)?)?;
        Ok(Moments {
            step,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
        })
    }

    /// [`Adam::update`] on f32 CPU tensors: the moments and the parameter are
    /// rewritten in place (bit-identical to the candle-op path, see `fused`).
    fn update_in_place(
        &self,
        slot: &Slot,
        grad: &Tensor,
        prev: Option<Moments>,
    ) -> Result<Moments> {
        let c = &self.config;
        let step = prev.as_ref().map_or(1, |m| m.step + 1);
        let decay = slot.weight_decay != 0.0;
        let bias_correction1 = 1.0 - c.beta1.powi(step as i32);
        let bias_correction2_sqrt = (1.0 - c.beta2.powi(step as i32)).sqrt();
        let scalars = fused::AdamScalars {
            l2: (decay && !c.decoupled).then_some(slot.weight_decay as f32),
            shrink: (decay && c.decoupled).then_some((1.0 - self.lr * slot.weight_decay) as f32),
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            keep1: (1.0 - c.beta1) as f32,
            keep2: (1.0 - c.beta2) as f32,
            inv_bias2_sqrt: (1.0 / bias_correction2_sqrt) as f32,
            eps: c.eps as f32,
            step_size: (self.lr / bias_correction1) as f32,
        };
        let buffers = prev.map(|m| fused::AdamBuffers {
            exp_avg: m.exp_avg,
            exp_avg_sq: m.exp_avg_sq,
            max_exp_avg_sq: m.max_exp_avg_sq,
        });
        let b = fused::adam_step(slot.var().as_tensor(), grad, buffers, c.amsgrad, scalars)?;
        Ok(Moments {
            step,
            exp_avg: b.exp_avg,
            exp_avg_sq: b.exp_avg_sq,
            max_exp_avg_sq: b.max_exp_avg_sq,
        })
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for slot in &self.slots {
            let var = slot.var();
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let mut prev = self.moments.remove(&slot.name);
            let mut buffers: Vec<&mut Tensor> = match prev.as_mut() {
                Some(m) => [&mut m.exp_avg, &mut m.exp_avg_sq]
                    .into_iter()
                    .chain(m.max_exp_avg_sq.as_mut())
                    .collect(),
                None => Vec::new(),
            };
            follow_packed(slot, &mut self.layouts, &mut buffers)?;
            let m = self.update(slot, grad, prev)?;
            self.moments.insert(slot.name.clone(), m);
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
        if self.config.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }

    fn param_names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    fn export_state(&self) -> Result<OptimizerState> {
        let mut tensors = BTreeMap::new();
        for slot in &self.slots {
            let (name, Some(m)) = (&slot.name, self.moments.get(&slot.name)) else {
                continue;
            };
            let device = m.exp_avg.device();
            let dense = |t: &Tensor| -> Result<Tensor> {
                Ok(dense_buffer(slot, &self.layouts, t)?.copy()?)
            };
            tensors.insert(
                format!("{name}/{STEP}"),
                Tensor::new(&[m.step as i64], device)?,
            );
            tensors.insert(format!("{name}/{EXP_AVG}"), dense(&m.exp_avg)?);
            tensors.insert(format!("{name}/{EXP_AVG_SQ}"), dense(&m.exp_avg_sq)?);
            if let Some(max) = &m.max_exp_avg_sq {
                tensors.insert(format!("{name}/{MAX_EXP_AVG_SQ}"), dense(max)?);
            }
        }
        Ok(OptimizerState {
            step: self.step,
            learning_rate: self.lr,
            tensors,
        })
    }

    fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        reject_unknown_keys(
            state,
            &self.slots,
            &[STEP, EXP_AVG, EXP_AVG_SQ, MAX_EXP_AVG_SQ],
        )?;
        let mut moments = BTreeMap::new();
        for slot in &self.slots {
            let exp_avg = checked_buffer(state, slot, EXP_AVG)?;
            let exp_avg_sq = checked_buffer(state, slot, EXP_AVG_SQ)?;
            let max = checked_buffer(state, slot, MAX_EXP_AVG_SQ)?;
            let step_key = format!("{}/{STEP}", slot.name);
            let (Some(exp_avg), Some(exp_avg_sq)) = (exp_avg, exp_avg_sq) else {
                // A parameter is either fully stepped or not at all.
                if let Some(k) = [EXP_AVG, EXP_AVG_SQ, STEP]
                    .iter()
                    .map(|b| format!("{}/{b}", slot.name))
                    .find(|k| state.tensors.contains_key(k))
                {
                    let missing = if k.ends_with(EXP_AVG_SQ) {
                        EXP_AVG
                    } else {
                        EXP_AVG_SQ
                    };
                    return Err(
                        CheckpointError::MissingTensor(format!("{}/{missing}", slot.name)).into(),
                    );
                }
                continue;
            };
            if self.config.amsgrad && max.is_none() {
                return Err(CheckpointError::MissingTensor(format!(
                    "{}/{MAX_EXP_AVG_SQ}",
                    slot.name
                ))
                .into());
            }
            let step_t = state
                .tensors
                .get(&step_key)
                .ok_or_else(|| CheckpointError::MissingTensor(step_key.clone()))?;
            let step = step_t
                .flatten_all()
                .and_then(|t| t.to_dtype(candle_core::DType::I64))
                .and_then(|t| t.to_vec1::<i64>())
                .ok()
                .filter(|v| v.len() == 1 && v[0] >= 0)
                .map(|v| v[0] as u64)
                .ok_or_else(|| CheckpointError::ShapeMismatch {
                    name: step_key.clone(),
                    expected: vec![1],
                    got: step_t.dims().to_vec(),
                })?;
            moments.insert(
                slot.name.clone(),
                Moments {
                    step,
                    exp_avg,
                    exp_avg_sq,
                    max_exp_avg_sq: if self.config.amsgrad { max } else { None },
                },
            );
        }
        self.moments = moments;
        // imported moments are in the dense shape; packed ones are packed at their next step
        self.layouts.clear();
        self.step = state.step;
        self.lr = state.learning_rate;
        Ok(())
    }
}

impl MomentumSource for Adam {
    /// sparselearning's Adam momentum signal `exp_avg / (sqrt(exp_avg_sq) + 1e-8)`.
    fn momentum(&self, name: &str) -> Result<Option<Tensor>> {
        if !self.slots.iter().any(|s| s.name == name) {
            return Err(SparseError::UnknownParameter(name.to_string()));
        }
        let Some(m) = self.moments.get(name) else {
            return Ok(None);
        };
        let signal = (&m.exp_avg / (m.exp_avg_sq.sqrt()? + MOMENTUM_SIGNAL_EPS)?)?;
        let slot = self
            .slots
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
        Ok(Some(dense_buffer(slot, &self.layouts, &signal)?))
    }
}

impl MaskableState for Adam {
    /// A no-op unless [`AdamConfigBuilder::mask_moments`] was set: the official
    /// codes (ITOP, GraNet, SLaK, STU-GAN, …) never mask Adam's moments. With the
    /// option, `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq`) are multiplied by the mask.
    fn mask_state(&mut self, params: &SparseParams) -> Result<()> {
        for p in params.iter() {
            if !self.slots.iter().any(|s| s.name == p.name) {
                return Err(SparseError::UnknownParameter(p.name.clone()));
            }
        }
        if !self.config.mask_moments {
            return Ok(());
        }
        // a packed weight's moments have no inactive entries
        for p in params.iter().filter(|p| p.packed().is_none()) {
            if let Some(m) = self.moments.get_mut(&p.name) {
                let mask = p.mask.to_tensor(m.exp_avg.dtype(), m.exp_avg.device())?;
                m.exp_avg = m.exp_avg.mul(&mask)?;
                m.exp_avg_sq = m.exp_avg_sq.mul(&mask)?;
                if let Some(max) = &mut m.max_exp_avg_sq {
                    *max = max.mul(&mask)?;
                }
            }
        }
        Ok(())
    }
}
