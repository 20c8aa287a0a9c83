//! Sparse exponential moving average of a model's weights ("SEMA", SLaK decay 0.9999,
//! STU-GAN decay 0.999).
//!
//! For a masked tensor with mask `M` and weight `W`:
//!
//! ```text
//! new = M ∧ (EMA == 0)                                   (active now, never averaged: grown)
//! EMA = (decay·EMA + (1 − decay)·W) ⊙ M + new ⊙ decay·W
//! ```
//!
//! so a newly grown position starts at the current weight (`(1 − decay)·W + decay·W`)
//! and a pruned position drops to 0. (Written as "`+ new ⊙ W`" the rule would give
//! `(2 − decay)·W`; the `decay·W` form is the one that yields `EMA = W`.) Tensors
//! without a mask, including BatchNorm running statistics, get the plain EMA.

use std::collections::BTreeMap;

use candle_core::Tensor;
use candle_nn::VarMap;

use crate::error::{CheckpointError, Result};
use crate::registry::SparseParams;
use crate::selection::sorted_vars;
use crate::validate::check_fraction_below_one;

/// The EMA copy of every tensor of a `VarMap`, keyed by name.
#[derive(Debug, Clone)]
pub struct SparseEma {
    decay: f64,
    shadow: BTreeMap<String, Tensor>,
}

impl SparseEma {
    /// Starts the average at the current values of every `VarMap` entry; `decay ∈ [0, 1)`.
    pub fn new(varmap: &VarMap, decay: f64) -> Result<Self> {
        check_fraction_below_one("decay", decay)?;
        let mut ema = Self {
            decay,
            shadow: BTreeMap::new(),
        };
        ema.store(varmap)?;
        Ok(ema)
    }

    /// The decay.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// One EMA update from the model's current values; `masks` selects the sparse rule.
    /// Every `VarMap` entry must already be tracked (shapes unchanged).
    pub fn update(&mut self, varmap: &VarMap, masks: &SparseParams) -> Result<()> {
        let d = self.decay;
        for (name, var) in sorted_vars(varmap) {
            let w = var.as_tensor();
            let ema = self
                .shadow
                .get(&name)
                .ok_or_else(|| CheckpointError::MissingTensor(name.clone()))?;
            if ema.dims() != w.dims() {
                return Err(CheckpointError::ShapeMismatch {
                    name,
                    expected: w.dims().to_vec(),
                    got: ema.dims().to_vec(),
                }
                .into());
            }
            let averaged = ((ema * d)? + (w * (1.0 - d))?)?;
            let next = match masks.get(&name) {
                None => averaged,
                Some(p) => {
                    let m = p.mask.to_tensor(w.dtype(), w.device())?;
                    let never_averaged = ema.eq(0.0)?.to_dtype(w.dtype())?;
                    let new = (&m * never_averaged)?;
                    ((averaged * &m)? + ((new * w)? * d)?)?
                }
            };
            self.shadow.insert(name, next);
        }
        Ok(())
    }

    /// Overwrites the average with the model's current values (restart it).
    pub fn store(&mut self, varmap: &VarMap) -> Result<()> {
        self.shadow = sorted_vars(varmap)
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect::<Result<_>>()?;
        Ok(())
    }

    /// Writes the average into the model (e.g. for evaluation); back the model up
    /// first with [`SparseEma::tensors`]-style copies or a checkpoint if training goes on.
    pub fn copy_into(&self, varmap: &VarMap) -> Result<()> {
        for (name, var) in sorted_vars(varmap) {
            let t = self
                .shadow
                .get(&name)
                .ok_or_else(|| CheckpointError::MissingTensor(name.clone()))?;
            if t.dims() != var.dims() {
                return Err(CheckpointError::ShapeMismatch {
                    name,
                    expected: var.dims().to_vec(),
                    got: t.dims().to_vec(),
                }
                .into());
            }
            var.set(t)?;
        }
        Ok(())
    }

    /// The averaged tensors by name (save them with a checkpoint under a prefix).
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.shadow
    }

    /// Replaces the averaged tensors (from a checkpoint); names, shapes and dtypes
    /// must match the current ones.
    pub fn load_tensors(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
        for (name, cur) in &self.shadow {
            let t = tensors
                .get(name)
                .ok_or_else(|| CheckpointError::MissingTensor(name.clone()))?;
            if t.dims() != cur.dims() {
                return Err(CheckpointError::ShapeMismatch {
                    name: name.clone(),
                    expected: cur.dims().to_vec(),
                    got: t.dims().to_vec(),
                }
                .into());
            }
            if t.dtype() != cur.dtype() {
                return Err(CheckpointError::DTypeMismatch {
                    name: name.clone(),
                    expected: format!("{:?}", cur.dtype()),
                    got: format!("{:?}", t.dtype()),
                }
                .into());
            }
        }
        if let Some(extra) = tensors.keys().find(|k| !self.shadow.contains_key(*k)) {
            return Err(CheckpointError::UnexpectedTensor(extra.clone()).into());
        }
        self.shadow = tensors
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.copy()?)))
            .collect::<Result<_>>()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::Mask;
    use candle_core::{Device, Var};

    fn setup() -> (VarMap, Var, Var, SparseParams) {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let w = Var::from_tensor(&Tensor::new(&[1f32, 2., 3., 4.], &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[10f32], &dev).unwrap()).unwrap();
        {
            let mut data = varmap.data().lock().unwrap();
            data.insert("w".into(), w.clone());
            data.insert("b".into(), b.clone());
        }
        let mut params = SparseParams::new();
        params
            .insert(
                "w",
                w.clone(),
                Mask::from_bits(&[4], vec![1, 1, 0, 1]).unwrap(),
            )
            .unwrap();
        (varmap, w, b, params)
    }

    #[test]
    fn grown_positions_take_the_weight_and_pruned_ones_go_to_zero() {
        let dev = Device::Cpu;
        let (varmap, w, b, mut params) = setup();
        let mut ema = SparseEma::new(&varmap, 0.9).unwrap();
        // w = [1, 2, 0, 4]; now change weights and the mask: prune 1, grow 2.
        w.set(&Tensor::new(&[2f32, 5., 7., 8.], &dev).unwrap())
            .unwrap();
        b.set(&Tensor::new(&[20f32], &dev).unwrap()).unwrap();
        params
            .set_mask("w", Mask::from_bits(&[4], vec![1, 0, 1, 1]).unwrap())
            .unwrap();
        // w is now [2, 0, 7, 8].
        ema.update(&varmap, &params).unwrap();
        let e = ema.tensors()["w"].to_vec1::<f32>().unwrap();
        // active & averaged: 0.9·1 + 0.1·2 = 1.1 ; pruned: 0 ; grown: 7 ; 0.9·4 + 0.1·8 = 4.4
        let expected = [1.1f32, 0.0, 7.0, 4.4];
        for (a, x) in e.iter().zip(expected) {
            assert!((a - x).abs() < 1e-5, "{e:?}");
        }
        // Unmasked: plain EMA 0.9·10 + 0.1·20 = 11.
        let eb = ema.tensors()["b"].to_vec1::<f32>().unwrap();
        assert!((eb[0] - 11.0).abs() < 1e-5);
        ema.copy_into(&varmap).unwrap();
        assert_eq!(w.as_tensor().to_vec1::<f32>().unwrap(), e);
    }

    #[test]
    fn decay_outside_unit_interval_is_rejected() {
        let (varmap, ..) = setup();
        let e = SparseEma::new(&varmap, 1.0).unwrap_err().to_string();
        assert!(e.contains("`decay`"));
    }
}
