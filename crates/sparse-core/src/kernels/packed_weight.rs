//! A sparse weight stored as its active values, shared by a layer, the registry of
//! masked parameters and the optimizer.
//!
//! Dynamic sparse training changes a layer's topology while it trains. When the layer
//! stores only its active values, every topology change gives the values a new length,
//! so they must become a new `Var`, and whoever holds the old one (the layer, the
//! [`SparseParams`](crate::SparseParams) registry, the optimizer) would go on with a
//! stale copy. A [`PackedWeight`] is one shared handle instead (cloning it shares the
//! weight, as cloning a candle `Var` does): the engine re-packs it through the
//! registry, and the layer and optimizer read the current values on every call.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use super::WeightGrad;
pub(crate) use super::sparse_linear::CsrPattern;
use crate::{Mask, Result, SparseError};

/// A weight of any shape `[rows, ..]` stored as its active values `[nnz]` (row-major
/// order, as [`Mask::active_indices`]), plus an optional zero dense-gradient probe.
///
/// Cloning shares the weight: a topology change made through one clone (e.g. by the
/// sparsity engine through the registry) is what every other clone computes with.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use sparse_core::Mask;
/// use sparse_core::kernels::PackedWeight;
///
/// # fn main() -> sparse_core::Result<()> {
/// let w = Tensor::new(&[[1f32, 2., 0.], [0., 3., 4.]], &Device::Cpu)?;
/// let weight = PackedWeight::new(&w, &Mask::from_bits(&[2, 3], vec![1, 1, 0, 0, 1, 1])?)?;
/// let shared = weight.clone();
/// // 2 is pruned and (0, 2) regrows: survivors keep their values, new entries start at 0
/// weight.set_mask(&Mask::from_bits(&[2, 3], vec![1, 0, 1, 0, 1, 1])?)?;
/// assert_eq!(shared.values().to_vec1::<f32>()?, [1., 0., 3., 4.]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PackedWeight {
    inner: Arc<RwLock<Packed>>,
}

#[derive(Debug)]
struct Packed {
    values: Var,
    mask: Mask,
    pattern: Arc<CsrPattern>,
    probe: Option<Var>,
}

/// What a kernel computes with, read at one moment.
#[derive(Debug, Clone)]
pub(crate) struct PackedView {
    pub(crate) values: Var,
    pub(crate) pattern: Arc<CsrPattern>,
    pub(crate) probe: Option<Var>,
}

/// `(rows, columns)` of the compressed pattern of a weight of shape `shape`: the first
/// dimension (output units) against all the others.
fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    }
}

fn pattern_of(mask: &Mask) -> Arc<CsrPattern> {
    let (rows, cols) = rows_cols(mask.shape());
    Arc::new(CsrPattern::new(rows, cols, mask.as_bits()))
}

impl PackedWeight {
    /// The active entries of `weight` under `mask` (same shape), as a new trainable
    /// packed weight of `weight`'s dtype and device.
    pub fn new(weight: &Tensor, mask: &Mask) -> Result<Self> {
        if weight.dims() != mask.shape() {
            return Err(super::mismatch(
                "packed weight mask",
                weight.dims(),
                mask.shape(),
            ));
        }
        let pattern = pattern_of(mask);
        let values = packed_values(weight, &pattern)?;
        Ok(Self {
            inner: Arc::new(RwLock::new(Packed {
                values: Var::from_tensor(&values)?,
                mask: mask.clone(),
                pattern,
                probe: None,
            })),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Packed> {
        // A panic elsewhere while holding the lock leaves consistent fields (each
        // writer replaces them together), so a poisoned lock is still usable.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Packed> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `self` and `other` are clones of one weight.
    pub fn shares_storage_with(&self, other: &PackedWeight) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The trainable active values `[nnz]`, as of now (a topology change replaces them
    /// with a new `Var`; optimizers built with [`crate::optim::ParamGroup::with_packed`]
    /// follow it).
    pub fn values(&self) -> Var {
        self.read().values.clone()
    }

    /// The mask the values belong to.
    pub fn mask(&self) -> Mask {
        self.read().mask.clone()
    }

    /// The dense shape.
    pub fn shape(&self) -> Vec<usize> {
        self.read().mask.shape().to_vec()
    }

    /// Number of active values.
    pub fn nnz(&self) -> usize {
        self.read().pattern.nnz()
    }

    /// The fraction of active entries.
    pub fn density(&self) -> f64 {
        self.read().mask.density()
    }

    /// Whether the values belong to exactly `mask` (compared in place, no copy).
    pub fn has_mask(&self, mask: &Mask) -> bool {
        self.read().mask == *mask
    }

    /// The values' dtype.
    pub fn dtype(&self) -> DType {
        self.read().values.dtype()
    }

    pub(crate) fn view(&self) -> PackedView {
        let p = self.read();
        PackedView {
            values: p.values.clone(),
            pattern: p.pattern.clone(),
            probe: p.probe.clone(),
        }
    }

    pub(crate) fn pattern(&self) -> Arc<CsrPattern> {
        self.read().pattern.clone()
    }

    /// In [`WeightGrad::Dense`] mode, the zero dense tensor whose gradient after a
    /// backward pass is the dense weight gradient; `None` in masked mode. Never give it
    /// to an optimizer: it must stay zero.
    pub fn dense_grad_probe(&self) -> Option<Var> {
        self.read().probe.clone()
    }

    /// [`WeightGrad::Dense`] while the weight holds a probe.
    pub fn weight_grad(&self) -> WeightGrad {
        if self.read().probe.is_some() {
            WeightGrad::Dense
        } else {
            WeightGrad::Masked
        }
    }

    /// The values always get the gradient of their active entries; in
    /// [`WeightGrad::Dense`] mode the layers computing with this weight also route the
    /// dense weight gradient to a zero probe (one dense product in the backward pass and
    /// the probe's dense buffer, only on the steps that ask for it).
    pub fn set_weight_grad(&self, mode: WeightGrad) -> Result<()> {
        let mut p = self.write();
        p.probe = match (mode, p.probe.take()) {
            (WeightGrad::Masked, _) => None,
            (WeightGrad::Dense, Some(probe)) => Some(probe),
            (WeightGrad::Dense, None) => Some(Var::zeros(
                p.mask.shape(),
                p.values.dtype(),
                p.values.device(),
            )?),
        };
        Ok(())
    }

    /// The weight as a dense tensor with zeros at pruned positions (for checkpoints,
    /// saliency or moving to a dense layer). Differentiable in the values.
    pub fn to_dense(&self) -> Result<Tensor> {
        let (values, pattern, shape) = {
            let p = self.read();
            (p.values.clone(), p.pattern.clone(), p.mask.shape().to_vec())
        };
        scatter_tensor(values.as_tensor(), &pattern, &shape)
    }

    /// The dense weight on the host, row-major, zeros at pruned positions.
    pub(crate) fn dense_host(&self) -> Result<Vec<f32>> {
        let p = self.read();
        let values = host(p.values.as_tensor())?;
        Ok(scatter(&values, &p.pattern, p.mask.numel()))
    }

    /// Moves to `mask` (same shape): entries active before and after keep their values,
    /// newly active ones start at zero (as RigL-style regrowth does). The values become
    /// a new `Var`.
    pub fn set_mask(&self, mask: &Mask) -> Result<()> {
        self.set_mask_filling(mask, 0.0)
    }

    /// [`set_mask`](Self::set_mask) with newly active entries set to `grown`.
    pub fn set_mask_filling(&self, mask: &Mask, grown: f32) -> Result<()> {
        let mut p = self.write();
        if mask.shape() != p.mask.shape() {
            return Err(super::mismatch(
                "packed weight mask",
                p.mask.shape(),
                mask.shape(),
            ));
        }
        if *mask == p.mask {
            return Ok(());
        }
        let pattern = pattern_of(mask);
        let old = p.values.as_tensor();
        let values = carry_over(&host(old)?, &p.pattern, &pattern, grown);
        let values =
            Tensor::from_vec(values, pattern.nnz(), old.device())?.to_dtype(old.dtype())?;
        p.values = Var::from_tensor(&values)?;
        p.mask = mask.clone();
        p.pattern = pattern;
        Ok(())
    }

    /// Replaces mask and values at once: the values are `dense`'s entries at `mask`'s
    /// active positions (restoring a checkpoint, which stores the dense weight).
    pub fn load_dense(&self, dense: &Tensor, mask: &Mask) -> Result<()> {
        let mut p = self.write();
        if mask.shape() != p.mask.shape() || dense.dims() != p.mask.shape() {
            return Err(super::mismatch(
                "packed weight (dense tensor and mask)",
                p.mask.shape(),
                if dense.dims() != p.mask.shape() {
                    dense.dims()
                } else {
                    mask.shape()
                },
            ));
        }
        let pattern = pattern_of(mask);
        let values = packed_values(
            &dense
                .to_device(p.values.device())?
                .to_dtype(p.values.dtype())?,
            &pattern,
        )?;
        p.values = Var::from_tensor(&values)?;
        p.mask = mask.clone();
        p.pattern = pattern;
        Ok(())
    }

    /// The gradient of the loss with respect to the dense weight, from a backward pass
    /// that computed with this weight: the probe's gradient in
    /// [`WeightGrad::Dense`] mode (non-zero at pruned positions too), otherwise the
    /// values' gradient scattered into the dense shape (zero at pruned positions).
    /// `None` when `grads` holds neither.
    pub fn dense_gradient(&self, grads: &GradStore) -> Result<Option<Tensor>> {
        let p = self.read();
        if let Some(g) = p
            .probe
            .as_ref()
            .and_then(|probe| grads.get(probe.as_tensor()))
        {
            return Ok(Some(g.clone()));
        }
        match grads.get(p.values.as_tensor()) {
            Some(g) => Ok(Some(scatter_tensor(g, &p.pattern, p.mask.shape())?)),
            None => Ok(None),
        }
    }
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

fn packed_values(weight: &Tensor, pattern: &CsrPattern) -> Result<Tensor> {
    let values = pattern.pack(&host(weight)?);
    Ok(Tensor::from_vec(values, pattern.nnz(), weight.device())?.to_dtype(weight.dtype())?)
}

/// The dense row-major vector of `numel` entries holding `values` at `pattern`'s
/// positions and zeros elsewhere.
pub(crate) fn scatter(values: &[f32], pattern: &CsrPattern, numel: usize) -> Vec<f32> {
    let mut dense = vec![0.0f32; numel];
    for (&v, &at) in values.iter().zip(pattern.dense_offsets()) {
        dense[at] = v;
    }
    dense
}

/// [`scatter`] as a differentiable tensor op in `values`' dtype and device.
pub(crate) fn scatter_tensor(
    values: &Tensor,
    pattern: &CsrPattern,
    shape: &[usize],
) -> Result<Tensor> {
    let numel: usize = shape.iter().product();
    if u32::try_from(numel).is_err() {
        return Err(SparseError::invalid_input(
            "packed weight",
            format!("{numel} entries exceed the u32 index of a scatter"),
        ));
    }
    let offsets = pattern.dense_offsets();
    let index: Vec<u32> = offsets.iter().map(|&i| i as u32).collect();
    let index = Tensor::from_vec(index, offsets.len(), values.device())?;
    let zeros = Tensor::zeros(numel, values.dtype(), values.device())?;
    Ok(zeros.index_add(&index, values, 0)?.reshape(shape)?)
}

/// The values of pattern `to`: those at positions `from` also holds are carried over
/// from `values` (packed in `from`'s order), new positions get `fill`. Both offset
/// lists ascend, so one merge pass does it.
pub(crate) fn carry_over(
    values: &[f32],
    from: &CsrPattern,
    to: &CsrPattern,
    fill: f32,
) -> Vec<f32> {
    let old = from.dense_offsets();
    let mut next = 0;
    to.dense_offsets()
        .iter()
        .map(|&at| {
            while next < old.len() && old[next] < at {
                next += 1;
            }
            match old.get(next) {
                Some(&o) if o == at => values[next],
                _ => fill,
            }
        })
        .collect()
}

/// [`carry_over`] for a tensor (an optimizer buffer), keeping its dtype and device.
pub(crate) fn carry_over_tensor(t: &Tensor, from: &CsrPattern, to: &CsrPattern) -> Result<Tensor> {
    let values = carry_over(&host(t)?, from, to, 0.0);
    Ok(Tensor::from_vec(values, to.nnz(), t.device())?.to_dtype(t.dtype())?)
}

/// The entries of the dense tensor `t` at `pattern`'s positions, `[nnz]`.
pub(crate) fn pack_tensor(t: &Tensor, pattern: &CsrPattern) -> Result<Tensor> {
    packed_values(t, pattern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn weight() -> (Tensor, Mask) {
        let w = Tensor::new(&[[1f32, 2., 0.], [0., 3., 4.]], &Device::Cpu).unwrap();
        let m = Mask::from_bits(&[2, 3], vec![1, 1, 0, 0, 1, 1]).unwrap();
        (w, m)
    }

    #[test]
    fn clones_share_topology_changes() {
        let (w, m) = weight();
        let a = PackedWeight::new(&w, &m).unwrap();
        let b = a.clone();
        assert!(a.shares_storage_with(&b));
        let new = Mask::from_bits(&[2, 3], vec![1, 0, 1, 0, 1, 1]).unwrap();
        a.set_mask_filling(&new, 0.5).unwrap();
        assert_eq!(b.values().to_vec1::<f32>().unwrap(), [1., 0.5, 3., 4.]);
        assert_eq!(b.mask(), new);
        assert_eq!(
            b.to_dense().unwrap().to_vec2::<f32>().unwrap(),
            [[1., 0., 0.5], [0., 3., 4.]]
        );
        assert_eq!(b.dense_host().unwrap(), [1., 0., 0.5, 0., 3., 4.]);
        assert!(!a.shares_storage_with(&PackedWeight::new(&w, &m).unwrap()));
    }

    #[test]
    fn an_unchanged_mask_keeps_the_values_var() {
        let (w, m) = weight();
        let a = PackedWeight::new(&w, &m).unwrap();
        let before = a.values();
        a.set_mask(&m).unwrap();
        assert_eq!(before.as_tensor().id(), a.values().as_tensor().id());
    }

    #[test]
    fn load_dense_replaces_mask_and_values() {
        let (w, m) = weight();
        let a = PackedWeight::new(&w, &m).unwrap();
        let other = Tensor::new(&[[5f32, 0., 6.], [7., 0., 0.]], &Device::Cpu).unwrap();
        let mask = Mask::from_bits(&[2, 3], vec![1, 0, 1, 1, 0, 0]).unwrap();
        a.load_dense(&other, &mask).unwrap();
        assert_eq!(a.values().to_vec1::<f32>().unwrap(), [5., 6., 7.]);
        assert!(a.load_dense(&other, &Mask::ones(&[3, 2])).is_err());
        assert!(a.load_dense(&other.t().unwrap(), &mask).is_err());
    }

    #[test]
    fn dense_gradient_is_the_probe_or_the_scattered_values_gradient() {
        let (w, m) = weight();
        let a = PackedWeight::new(&w, &m).unwrap();
        let x = Tensor::new(&[1f32, 1., 1.], &Device::Cpu).unwrap();
        let loss = |a: &PackedWeight| {
            let mut dense = a.to_dense().unwrap();
            if let Some(probe) = a.dense_grad_probe() {
                dense = (dense + probe.as_tensor()).unwrap();
            }
            dense
                .broadcast_mul(&x)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss(&a).backward().unwrap();
        // d/dw of Σ w² is 2w at active positions, 0 elsewhere (masked)
        let g = a.dense_gradient(&grads).unwrap().unwrap();
        assert_eq!(g.to_vec2::<f32>().unwrap(), [[2., 4., 0.], [0., 6., 8.]]);
        a.set_weight_grad(WeightGrad::Dense).unwrap();
        assert_eq!(a.weight_grad(), WeightGrad::Dense);
        let grads = loss(&a).backward().unwrap();
        let g = a.dense_gradient(&grads).unwrap().unwrap();
        assert_eq!(g.to_vec2::<f32>().unwrap(), [[2., 4., 0.], [0., 6., 8.]]);
        assert!(a.dense_gradient(&GradStore::default()).unwrap().is_none());
        a.set_weight_grad(WeightGrad::Masked).unwrap();
        assert!(a.dense_grad_probe().is_none());
    }

    #[test]
    fn rejects_mismatched_masks() {
        let (w, m) = weight();
        assert!(PackedWeight::new(&w.t().unwrap(), &m).is_err());
        let a = PackedWeight::new(&w, &m).unwrap();
        assert!(a.set_mask(&Mask::ones(&[6])).is_err());
    }
}
