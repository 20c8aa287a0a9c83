//! The training kit: an in-memory copy of a whole model and what runs do with it.
//!
//! A [`ModelState`] is a deep copy of every `Var` of a `VarMap` (BatchNorm running
//! statistics included), sorted by name. With it a run can
//! - keep its best epoch: [`ModelState::capture`] when validation improves,
//!   [`ModelState::restore`] at the end;
//! - interpolate two models ([`ModelState::lerp`], linear mode connectivity);
//! - average many ([`RunningAverage`], SWA-style) or track an EMA
//!   ([`ModelState::ema_update`]; [`crate::SparseEma`] is the mask-aware variant);
//! - re-prune an averaged or interpolated model to a density
//!   ([`ModelState::prune_to_density`], magnitude pruning through
//!   [`crate::keep_top_magnitude`]).
//!
//! The tensors are copies (candle's `Var::as_tensor` shares storage with the model,
//! so an uncopied capture would follow later training steps).

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use candle_nn::VarMap;

use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::prune::{KeepRule, LayerView, keep_top_magnitude};
use crate::scores::ThresholdScope;
use crate::selection::sorted_vars;
use crate::validate::check_fraction;

/// A named, deep-copied snapshot of a model's tensors, in name order.
#[derive(Debug, Clone)]
pub struct ModelState {
    tensors: BTreeMap<String, Tensor>,
}

fn mismatch(name: &str, reason: impl Into<String>) -> SparseError {
    SparseError::StateMismatch {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Checks that `b` has exactly the names, shapes and dtypes of `a`.
fn check_same_layout(
    a: &BTreeMap<String, Tensor>,
    b: &BTreeMap<String, Tensor>,
    b_is: &str,
) -> Result<()> {
    for (name, ta) in a {
        let tb = b
            .get(name)
            .ok_or_else(|| mismatch(name, format!("missing from {b_is}")))?;
        if ta.dims() != tb.dims() {
            return Err(mismatch(
                name,
                format!("shape {:?} here, {:?} in {b_is}", ta.dims(), tb.dims()),
            ));
        }
        if ta.dtype() != tb.dtype() {
            return Err(mismatch(
                name,
                format!("dtype {:?} here, {:?} in {b_is}", ta.dtype(), tb.dtype()),
            ));
        }
    }
    if let Some(name) = b.keys().find(|n| !a.contains_key(*n)) {
        return Err(mismatch(name, format!("only in {b_is}")));
    }
    Ok(())
}

impl ModelState {
    /// Deep copies of every `Var` of `varmap`.
    pub fn capture(varmap: &VarMap) -> Result<Self> {
        let tensors = sorted_vars(varmap)
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect::<Result<_>>()?;
        Ok(Self { tensors })
    }

    /// A state from tensors (e.g. the `extra/` tensors of a checkpoint); they are
    /// deep-copied.
    pub fn from_tensors(tensors: &BTreeMap<String, Tensor>) -> Result<Self> {
        let tensors = tensors
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.copy()?)))
            .collect::<Result<_>>()?;
        Ok(Self { tensors })
    }

    /// Writes every tensor back into `varmap`. The names must be exactly the
    /// `VarMap`'s, with the same shapes and dtypes; otherwise
    /// [`SparseError::StateMismatch`] names the first offending tensor and nothing
    /// is written.
    pub fn restore(&self, varmap: &VarMap) -> Result<()> {
        let vars = sorted_vars(varmap);
        let current: BTreeMap<String, Tensor> = vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        check_same_layout(&current, &self.tensors, "the model state")?;
        for (name, var) in vars {
            // `Var::set` copies the data, so the state stays independent of the model.
            var.set(&self.tensors[&name])?;
        }
        Ok(())
    }

    /// The tensors by name.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }

    /// The tensor `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// The names, ascending.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the state holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// `(1 − alpha)·a + alpha·b` tensor by tensor; `a` and `b` need the same names,
    /// shapes and dtypes. `alpha` must be finite (values outside `[0, 1]`
    /// extrapolate); at exactly 0 and 1 the result is a copy of `a` or `b`, bit for
    /// bit.
    pub fn lerp(a: &ModelState, b: &ModelState, alpha: f64) -> Result<ModelState> {
        if !alpha.is_finite() {
            return Err(SparseError::invalid("alpha", alpha, "must be finite"));
        }
        check_same_layout(&a.tensors, &b.tensors, "the second state")?;
        if alpha == 0.0 {
            return Self::from_tensors(&a.tensors);
        }
        if alpha == 1.0 {
            return Self::from_tensors(&b.tensors);
        }
        let tensors = a
            .tensors
            .iter()
            .map(|(n, ta)| {
                let tb = &b.tensors[n];
                Ok((n.clone(), ((ta * (1.0 - alpha))? + (tb * alpha)?)?))
            })
            .collect::<Result<_>>()?;
        Ok(Self { tensors })
    }

    /// One exponential-moving-average step, `self ← decay·self + (1 − decay)·other`,
    /// with `decay ∈ [0, 1]` (1 keeps `self`, 0 copies `other`). Unlike
    /// [`crate::SparseEma`] it knows no masks: every entry is averaged.
    pub fn ema_update(&mut self, other: &ModelState, decay: f64) -> Result<()> {
        check_fraction("decay", decay)?;
        check_same_layout(&self.tensors, &other.tensors, "the other state")?;
        for (name, t) in self.tensors.iter_mut() {
            let o = &other.tensors[name];
            *t = ((&*t * decay)? + (o * (1.0 - decay))?)?;
        }
        Ok(())
    }

    /// Magnitude re-pruning: among the tensors `names`, keeps the
    /// `floor(density·N + 1e-9)` entries of largest `|w|` and sets every other entry
    /// to exactly zero, where `N` is the entry count of all named tensors together
    /// ([`ThresholdScope::Global`]) or of each tensor alone
    /// ([`ThresholdScope::PerLayer`]). Ties at the cut go to the earlier tensor (by
    /// name), then the lower flat index, so exactly that many survive
    /// ([`KeepRule::Exact`] of [`keep_top_magnitude`], which does the ranking).
    /// Tensors not named are left as they are. Returns the masks of the named
    /// tensors; an unknown name or a density outside `[0, 1]` is an error and
    /// changes nothing.
    pub fn prune_to_density<S: AsRef<str>>(
        &mut self,
        names: &[S],
        density: f64,
        scope: ThresholdScope,
    ) -> Result<BTreeMap<String, Mask>> {
        check_fraction("density", density)?;
        let mut selected: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        selected.sort_unstable();
        selected.dedup();
        let mut host = Vec::with_capacity(selected.len());
        for &name in &selected {
            let t = self
                .tensors
                .get(name)
                .ok_or_else(|| mismatch(name, "not in the model state"))?;
            let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            host.push((values, Mask::ones(t.dims())));
        }
        let views: Vec<LayerView<'_>> = selected
            .iter()
            .zip(&host)
            .map(|(&name, (weights, mask))| LayerView {
                name,
                weights,
                grads: None,
                mask,
            })
            .collect();
        let global = scope == ThresholdScope::Global;
        let masks = keep_top_magnitude(&views, density, global, KeepRule::Exact)?;
        let mut out = BTreeMap::new();
        for (&name, mask) in selected.iter().zip(masks) {
            let t = &self.tensors[name];
            // `where_cond`, not a product with the mask: 0·inf would give NaN.
            let keep = mask.to_tensor(DType::U8, t.device())?;
            let pruned = keep.where_cond(t, &t.zeros_like()?)?;
            self.tensors.insert(name.to_string(), pruned);
            out.insert(name.to_string(), mask);
        }
        Ok(out)
    }
}

/// The running mean of [`ModelState`]s (stochastic weight averaging and the like).
///
/// Sums are kept in `f64` and the mean is cast back to each tensor's dtype, so the
/// mean of two `f32` states equals [`ModelState::lerp`] at 0.5 bit for bit, and long
/// averages do not drift with the number of states.
#[derive(Debug, Clone, Default)]
pub struct RunningAverage {
    sums: BTreeMap<String, (Tensor, DType)>,
    count: usize,
}

impl RunningAverage {
    /// An empty average.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one state; every state needs the names, shapes and dtypes of the first.
    pub fn add(&mut self, state: &ModelState) -> Result<()> {
        if self.count == 0 {
            self.sums = state
                .tensors
                .iter()
                .map(|(n, t)| Ok((n.clone(), (t.to_dtype(DType::F64)?, t.dtype()))))
                .collect::<Result<_>>()?;
            self.count = 1;
            return Ok(());
        }
        for (name, t) in &state.tensors {
            let (sum, dtype) = self
                .sums
                .get(name)
                .ok_or_else(|| mismatch(name, "not in the states averaged so far"))?;
            if sum.dims() != t.dims() || *dtype != t.dtype() {
                return Err(mismatch(
                    name,
                    format!(
                        "shape {:?} / dtype {:?}, the average has {:?} / {dtype:?}",
                        t.dims(),
                        t.dtype(),
                        sum.dims()
                    ),
                ));
            }
        }
        if let Some(name) = self.sums.keys().find(|n| !state.tensors.contains_key(*n)) {
            return Err(mismatch(name, "missing from the added state"));
        }
        for (name, (sum, _)) in self.sums.iter_mut() {
            *sum = (&*sum + state.tensors[name].to_dtype(DType::F64)?)?;
        }
        self.count += 1;
        Ok(())
    }

    /// Number of states added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The mean of the states added; an error before the first.
    pub fn mean(&self) -> Result<ModelState> {
        if self.count == 0 {
            return Err(SparseError::InvalidInput {
                what: "running average".into(),
                reason: "no state has been added".into(),
            });
        }
        let scale = 1.0 / self.count as f64;
        let tensors = self
            .sums
            .iter()
            .map(|(n, (sum, dtype))| {
                let mean = if self.count == 1 {
                    sum.clone()
                } else {
                    (sum * scale)?
                };
                Ok((n.clone(), mean.to_dtype(*dtype)?))
            })
            .collect::<Result<_>>()?;
        Ok(ModelState { tensors })
    }
}

#[cfg(test)]
mod tests;
