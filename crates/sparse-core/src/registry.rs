//! The registry of sparse parameters: named candle [`Var`]s, each with its [`Mask`].
//!
//! A masked weight holds exact zeros at its inactive positions and is used raw in
//! the forward pass (no `w * mask` in the graph), so candle's gradient of the `Var`
//! stays dense: gradient-based growth (RigL) needs exactly that. After every
//! optimizer step [`SparseParams::apply_masks`] zeroes the inactive positions again.
//!
//! A weight may instead be stored as its active values only ([`PackedWeight`],
//! registered with [`SparseParams::insert_packed`]): the engine then prunes and regrows
//! it by re-packing the shared weight, with no dense copy between updates.
//!
//! Several registries may coexist (a GAN's generator and discriminator each have one).

use std::collections::BTreeMap;

use candle_core::{Tensor, Var, backprop::GradStore};

use crate::error::{Result, SparseError};
use crate::kernels::PackedWeight;
use crate::mask::Mask;
use crate::optim::mask_in_place;

/// How a masked parameter stores its weight.
#[derive(Debug, Clone)]
pub enum WeightStorage {
    /// The full tensor with zeros at inactive positions, as candle-nn layers and the
    /// model's `VarMap` hold it (shared with the model: updating it updates the model).
    Dense(Var),
    /// The active values only, shared with the layer that computes with them (e.g.
    /// [`PackedSparseLinear::from_packed`](crate::kernels::PackedSparseLinear::from_packed)).
    Packed(PackedWeight),
}

/// One masked parameter.
#[derive(Debug, Clone)]
pub struct SparseParam {
    /// The parameter's name (in the model's `VarMap` for a dense weight).
    pub name: String,
    /// The weight.
    pub storage: WeightStorage,
    /// Which entries of the weight exist.
    pub mask: Mask,
}

impl SparseParam {
    /// The dense weight `Var`; `None` for a packed weight.
    pub fn dense_var(&self) -> Option<&Var> {
        match &self.storage {
            WeightStorage::Dense(var) => Some(var),
            WeightStorage::Packed(_) => None,
        }
    }

    /// The packed weight; `None` for a dense one.
    pub fn packed(&self) -> Option<&PackedWeight> {
        match &self.storage {
            WeightStorage::Dense(_) => None,
            WeightStorage::Packed(weight) => Some(weight),
        }
    }

    /// The `Var` an optimizer updates now: the dense weight, or the packed weight's
    /// current values (replaced by every topology change).
    pub fn trainable_var(&self) -> Var {
        match &self.storage {
            WeightStorage::Dense(var) => var.clone(),
            WeightStorage::Packed(weight) => weight.values(),
        }
    }

    /// The weight in its dense shape, zeros at inactive positions.
    pub fn dense_weight(&self) -> Result<Tensor> {
        match &self.storage {
            WeightStorage::Dense(var) => Ok(var.as_tensor().clone()),
            WeightStorage::Packed(weight) => weight.to_dense(),
        }
    }

    /// The dense weight on the host as f32, row-major.
    pub(crate) fn dense_host(&self) -> Result<Vec<f32>> {
        match &self.storage {
            WeightStorage::Dense(var) => Ok(var
                .as_tensor()
                .flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?),
            WeightStorage::Packed(weight) => weight.dense_host(),
        }
    }

    /// The gradient with respect to the dense weight from `grads`: the `Var`'s own
    /// gradient for a dense weight, [`PackedWeight::dense_gradient`] for a packed one
    /// (dense only where the layer ran in [`WeightGrad::Dense`](
    /// crate::kernels::WeightGrad::Dense) mode). `None` when `grads` has none.
    pub fn dense_gradient(&self, grads: &GradStore) -> Result<Option<Tensor>> {
        match &self.storage {
            WeightStorage::Dense(var) => Ok(grads.get(var.as_tensor()).cloned()),
            WeightStorage::Packed(weight) => weight.dense_gradient(grads),
        }
    }
}

/// Named masked parameters, iterated in name order (deterministic).
#[derive(Debug, Clone, Default)]
pub struct SparseParams {
    params: BTreeMap<String, SparseParam>,
}

impl SparseParams {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter with a mask; the weight is masked at once.
    pub fn insert(&mut self, name: impl Into<String>, var: Var, mask: Mask) -> Result<()> {
        let name = name.into();
        if var.dims() != mask.shape() {
            return Err(SparseError::ShapeMismatch {
                what: format!("mask of `{name}`"),
                expected: var.dims().to_vec(),
                got: mask.shape().to_vec(),
            });
        }
        let param = SparseParam {
            name: name.clone(),
            storage: WeightStorage::Dense(var),
            mask,
        };
        apply_mask(&param)?;
        self.params.insert(name, param);
        Ok(())
    }

    /// Adds a packed weight under `name` (a clone of the handle: the registry and the
    /// layer share it), with the mask it holds now.
    pub fn insert_packed(&mut self, name: impl Into<String>, weight: &PackedWeight) -> Result<()> {
        let name = name.into();
        let param = SparseParam {
            name: name.clone(),
            mask: weight.mask(),
            storage: WeightStorage::Packed(weight.clone()),
        };
        self.params.insert(name, param);
        Ok(())
    }

    /// The packed weights by name, for an optimizer
    /// ([`ParamGroup::with_packed`](crate::optim::ParamGroup::with_packed)).
    pub fn packed_weights(&self) -> Vec<(String, PackedWeight)> {
        self.params
            .values()
            .filter_map(|p| p.packed().map(|w| (p.name.clone(), w.clone())))
            .collect()
    }

    /// Number of masked parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = &SparseParam> {
        self.params.values()
    }

    /// The names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }

    /// One parameter by name.
    pub fn get(&self, name: &str) -> Option<&SparseParam> {
        self.params.get(name)
    }

    /// Whether `name` is masked here.
    pub fn contains(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// The mask of `name`.
    pub fn mask(&self, name: &str) -> Result<&Mask> {
        self.get(name)
            .map(|p| &p.mask)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))
    }

    /// Replaces the mask of `name` and zeroes the weight where the new mask is inactive.
    /// Newly active positions keep the weight's current value (zero after a prune); a
    /// packed weight is re-packed (survivors keep their values, new entries start at
    /// zero).
    pub fn set_mask(&mut self, name: &str, mask: Mask) -> Result<()> {
        let param = self
            .params
            .get_mut(name)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
        if param.mask.shape() != mask.shape() {
            return Err(SparseError::ShapeMismatch {
                what: format!("mask of `{name}`"),
                expected: param.mask.shape().to_vec(),
                got: mask.shape().to_vec(),
            });
        }
        if let WeightStorage::Packed(weight) = &param.storage {
            weight.set_mask(&mask)?;
        }
        param.mask = mask;
        apply_mask(param)
    }

    /// [`set_mask`](Self::set_mask) for a packed weight, with its newly active entries
    /// set to `grown` (the engine's [`GrowthInit::Value`](crate::GrowthInit::Value)).
    pub(crate) fn set_packed_mask_filling(
        &mut self,
        name: &str,
        mask: Mask,
        grown: f32,
    ) -> Result<()> {
        let param = self
            .params
            .get_mut(name)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
        if let WeightStorage::Packed(weight) = &param.storage {
            weight.set_mask_filling(&mask, grown)?;
            param.mask = mask;
        }
        Ok(())
    }

    /// Restores a packed weight from its dense tensor and mask (a checkpoint).
    pub(crate) fn load_packed(&mut self, name: &str, dense: &Tensor, mask: Mask) -> Result<()> {
        let param = self
            .params
            .get_mut(name)
            .ok_or_else(|| SparseError::UnknownParameter(name.to_string()))?;
        if let WeightStorage::Packed(weight) = &param.storage {
            weight.load_dense(dense, &mask)?;
            param.mask = mask;
        }
        Ok(())
    }

    /// Zeroes every weight at its inactive positions (call after each optimizer step).
    pub fn apply_masks(&self) -> Result<()> {
        self.params.values().try_for_each(apply_mask)
    }

    /// Zeroes the gradients of masked weights at inactive positions, in place in `grads`.
    /// Use it when an optimizer must not see the dense gradient (e.g. Adam moments).
    /// (A packed weight's values have no inactive positions: nothing to do.)
    pub fn mask_gradients(&self, grads: &mut GradStore) -> Result<()> {
        for param in self.params.values() {
            let Some(var) = param.dense_var() else {
                continue;
            };
            if let Some(g) = grads.get(var.as_tensor()) {
                let m = param.mask.to_tensor(g.dtype(), g.device())?;
                let masked = g.mul(&m)?;
                grads.insert(var.as_tensor(), masked);
            }
        }
        Ok(())
    }

    /// Per-parameter density, in name order.
    pub fn densities(&self) -> BTreeMap<String, f64> {
        self.params
            .iter()
            .map(|(n, p)| (n.clone(), p.mask.density()))
            .collect()
    }

    /// Active weights over all masked weights.
    pub fn total_density(&self) -> f64 {
        let (nnz, numel) = self.params.values().fold((0usize, 0usize), |(a, b), p| {
            (a + p.mask.nnz(), b + p.mask.numel())
        });
        if numel == 0 {
            1.0
        } else {
            nnz as f64 / numel as f64
        }
    }
}

/// `var <- var * mask`, skipped when the mask is all ones or the weight is packed.
fn apply_mask(param: &SparseParam) -> Result<()> {
    let Some(var) = param.dense_var() else {
        return Ok(());
    };
    if param.mask.nnz() == param.mask.numel() {
        return Ok(());
    }
    let t: &Tensor = var.as_tensor();
    // in place where possible: no mask tensor and no product buffer on every step
    if mask_in_place(t, &param.mask)? {
        return Ok(());
    }
    let m = param.mask.to_tensor(t.dtype(), t.device())?;
    var.set(&t.mul(&m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn insert_masks_the_weight_and_set_mask_updates_it() {
        let dev = Device::Cpu;
        let var = Var::from_tensor(&Tensor::new(&[[1f32, 2.], [3., 4.]], &dev).unwrap()).unwrap();
        let mut reg = SparseParams::new();
        let mask = Mask::from_bits(&[2, 2], vec![1, 0, 0, 1]).unwrap();
        reg.insert("w", var.clone(), mask).unwrap();
        assert_eq!(
            var.as_tensor().to_vec2::<f32>().unwrap(),
            vec![vec![1., 0.], vec![0., 4.]]
        );
        reg.set_mask("w", Mask::from_bits(&[2, 2], vec![0, 0, 0, 1]).unwrap())
            .unwrap();
        assert_eq!(
            var.as_tensor().to_vec2::<f32>().unwrap(),
            vec![vec![0., 0.], vec![0., 4.]]
        );
        assert!((reg.total_density() - 0.25).abs() < 1e-12);
        assert!(reg.set_mask("nope", Mask::ones(&[2, 2])).is_err());
        assert!(reg.set_mask("w", Mask::ones(&[4])).is_err());
        let _ = DType::F32;
    }

    #[test]
    fn masks_are_applied_in_place_exactly_as_a_product() {
        let values = [0.5f32, -0.25, 1.5, -2.0, 0.0, -0.0];
        let w = Var::from_tensor(&Tensor::new(&values, &Device::Cpu).unwrap()).unwrap();
        let mask = Mask::from_bits(&[6], vec![1, 0, 1, 0, 0, 1]).unwrap();
        let product = w
            .as_tensor()
            .mul(&mask.to_tensor(DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let mut params = SparseParams::new();
        params.insert("w", w.clone(), mask).unwrap();
        params.apply_masks().unwrap();
        let bits = |t: &Tensor| -> Vec<u32> {
            t.to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect()
        };
        // -0.25 · 0 is -0.0: the signs of zero match the product too
        assert_eq!(bits(w.as_tensor()), bits(&product));
    }
}
