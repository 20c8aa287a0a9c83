//! One interface for the sparse layers, and keeping them in step with the masks of
//! a [`SparseParams`] registry after a topology update.
//!
//! Every sparse layer of [`kernels`](super) ([`SparseLinear`], [`PackedSparseLinear`],
//! [`SparseConv1d`], [`SparseConv2d`], [`SparseDepthwiseConv2d`]) implements
//! [`SparseLayer`]. A model
//! names each layer after its weight in the registry (`with_name`), and after the
//! engine changed the masks one call of [`sync_masks`] hands every changed mask to
//! its layer, instead of each paper crate rebuilding its layers by hand.
//!
//! ```
//! use candle_core::{Device, Module, Tensor, Var};
//! use sparse_core::kernels::{SparseLayer, SparseLinear, sync_masks};
//! use sparse_core::{Mask, SparseParams};
//!
//! # fn main() -> sparse_core::Result<()> {
//! let w = Var::ones((2, 3), candle_core::DType::F32, &Device::Cpu)?;
//! let mut params = SparseParams::new();
//! params.insert("fc.weight", w.clone(), Mask::from_bits(&[2, 3], vec![1, 0, 0, 0, 1, 0])?)?;
//! let mut fc = SparseLinear::new(w.as_tensor().clone(), params.mask("fc.weight")?)?
//!     .with_name("fc.weight");
//! // ... the engine moves a weight ...
//! params.set_mask("fc.weight", Mask::from_bits(&[2, 3], vec![0, 1, 0, 0, 1, 0])?)?;
//! let changed = sync_masks(&mut [&mut fc as &mut dyn SparseLayer], &params)?;
//! assert_eq!(changed, 1);
//! assert_eq!(fc.mask(), params.mask("fc.weight")?);
//! let y = Module::forward(&fc, &Tensor::ones((1, 3), candle_core::DType::F32, &Device::Cpu)?)?;
//! assert_eq!(y.dims(), &[1, 2]);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;

use candle_core::{Module, Tensor};

use super::{
    PackedSparseConv2d, PackedSparseLinear, SparseConv1d, SparseConv2d, SparseDepthwiseConv2d,
    SparseLinear, WeightGrad,
};
use crate::error::{Result, SparseError};
use crate::mask::Mask;
use crate::registry::SparseParams;
use crate::updater::SparsityEngine;

/// A layer whose weight is sparse under a [`Mask`] it can be given at any time.
///
/// The forward pass is [`Module::forward`], so a sparse layer fits wherever a candle
/// module does (the layers' inherent `forward` returns sparse-core's error type
/// instead and is otherwise the same function).
pub trait SparseLayer: Module {
    /// The name of the layer's weight in the [`SparseParams`] registry, set with the
    /// layer's `with_name`; `None` when the layer was not named.
    fn weight_name(&self) -> Option<&str>;

    /// The mask the layer computes with now (borrowed from a layer over a dense
    /// weight, a copy from a [`PackedWeight`](super::PackedWeight), which clones share).
    fn mask(&self) -> Cow<'_, Mask>;

    /// Replaces the mask (the layer's own shape check applies). A
    /// [`PackedSparseLinear`] gets new values `Var`s on every call: hand them to the
    /// optimizer again.
    fn set_mask(&mut self, mask: &Mask) -> Result<()>;

    /// Which weight gradient the backward pass returns.
    fn weight_grad(&self) -> WeightGrad;

    /// Sets which weight gradient the backward pass returns (e.g.
    /// [`WeightGrad::Dense`] only on the steps where gradient-based regrowth reads it).
    fn set_weight_grad(&mut self, mode: WeightGrad) -> Result<()>;

    /// The fraction of active weights.
    fn density(&self) -> f64 {
        self.mask().density()
    }

    /// The shape of the layer's weight (and mask).
    fn mask_shape(&self) -> Vec<usize> {
        self.mask().shape().to_vec()
    }

    /// Whether the layer computes with exactly `mask`. A packed layer compares in
    /// place, without copying its mask (this runs on every [`sync_masks`]).
    fn has_mask(&self, mask: &Mask) -> bool {
        *self.mask() == *mask
    }
}

/// Gives every layer the mask its weight has in `params`, where it differs from the
/// layer's own; returns how many layers were changed (unchanged masks are not set
/// again, so the compressed patterns are rebuilt only where the topology moved).
///
/// Every layer must be named (`with_name`) after a parameter of `params` whose mask
/// has the layer's shape; this is checked for all layers before any is changed, so a
/// naming mistake leaves every layer as it was.
pub fn sync_masks(layers: &mut [&mut dyn SparseLayer], params: &SparseParams) -> Result<usize> {
    let mut targets = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let name = layer.weight_name().ok_or_else(|| {
            SparseError::invalid_input(
                "sparse layer",
                format!("layer {i} has no weight name (call `with_name`)"),
            )
        })?;
        let mask = params.mask(name)?;
        let shape = layer.mask_shape();
        if mask.shape() != shape {
            return Err(SparseError::ShapeMismatch {
                what: format!("mask of `{name}` for its sparse layer"),
                expected: shape,
                got: mask.shape().to_vec(),
            });
        }
        targets.push(mask);
    }
    let mut changed = 0;
    for (layer, mask) in layers.iter_mut().zip(targets) {
        if !layer.has_mask(mask) {
            layer.set_mask(mask)?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Sets every layer's weight gradient for the backward pass of optimizer step `step`
/// (1-based, the step the coming backward pass feeds): [`WeightGrad::Dense`] when
/// `engine`'s update after that step ranks gradients at pruned positions (gradient
/// growth on a prune-and-regrow step, [`SparsityEngine::needs_dense_gradients`]),
/// [`WeightGrad::Masked`] on every other step. Call it before each step's forward
/// pass; the engine refuses a masked gradient on an update step
/// ([`SparseError::MaskedGradient`]) rather than regrow from zeros.
///
/// A [`PackedSparseLinear`] takes the mode too: its dense gradient lands on the probe
/// of its [`PackedWeight`](super::PackedWeight), where the engine reads it when the
/// weight is registered with [`SparseParams::insert_packed`].
pub fn set_weight_grads_for_step(
    layers: &mut [&mut dyn SparseLayer],
    engine: &SparsityEngine,
    step: usize,
) -> Result<()> {
    let mode = if engine.needs_dense_gradients(step) {
        WeightGrad::Dense
    } else {
        WeightGrad::Masked
    };
    for layer in layers.iter_mut() {
        layer.set_weight_grad(mode)?;
    }
    Ok(())
}

/// A sparse-core error as a candle one, for [`Module::forward`].
fn to_candle(e: SparseError) -> candle_core::Error {
    match e {
        SparseError::Candle(e) => e,
        other => candle_core::Error::wrap(other),
    }
}

/// Implements [`Module`] and [`SparseLayer`] for a layer whose inherent methods have
/// the trait's names: `dense` for a layer over a dense-stored weight (it lends its
/// mask; setting the gradient mode cannot fail), `packed` for a layer over a
/// [`PackedWeight`](super::PackedWeight) (its mask is a copy from the shared weight;
/// setting the mode may allocate the probe).
macro_rules! sparse_layer {
    (@mask dense, $layer:expr, $ty:ty) => {
        Cow::Borrowed(<$ty>::mask($layer))
    };
    (@mask packed, $layer:expr, $ty:ty) => {
        Cow::Owned(<$ty>::mask($layer))
    };
    (@set_weight_grad dense, $layer:expr, $mode:expr, $ty:ty) => {{
        <$ty>::set_weight_grad($layer, $mode);
        Ok(())
    }};
    (@set_weight_grad packed, $layer:expr, $mode:expr, $ty:ty) => {
        <$ty>::set_weight_grad($layer, $mode)
    };
    (@mask_queries dense, $ty:ty) => {};
    (@mask_queries packed, $ty:ty) => {
        fn density(&self) -> f64 {
            self.packed_weight().density()
        }

        fn mask_shape(&self) -> Vec<usize> {
            self.packed_weight().shape()
        }

        fn has_mask(&self, mask: &Mask) -> bool {
            self.packed_weight().has_mask(mask)
        }
    };
    ($ty:ty, $storage:ident) => {
        impl Module for $ty {
            fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
                <$ty>::forward(self, xs).map_err(to_candle)
            }
        }

        impl SparseLayer for $ty {
            fn weight_name(&self) -> Option<&str> {
                self.name.as_deref()
            }

            fn mask(&self) -> Cow<'_, Mask> {
                sparse_layer!(@mask $storage, self, $ty)
            }

            fn set_mask(&mut self, mask: &Mask) -> Result<()> {
                <$ty>::set_mask(self, mask)
            }

            fn weight_grad(&self) -> WeightGrad {
                <$ty>::weight_grad(self)
            }

            fn set_weight_grad(&mut self, mode: WeightGrad) -> Result<()> {
                sparse_layer!(@set_weight_grad $storage, self, mode, $ty)
            }

            sparse_layer!(@mask_queries $storage, $ty);
        }
    };
}

sparse_layer!(SparseLinear, dense);
sparse_layer!(SparseConv1d, dense);
sparse_layer!(SparseConv2d, dense);
sparse_layer!(SparseDepthwiseConv2d, dense);
sparse_layer!(PackedSparseLinear, packed);
sparse_layer!(PackedSparseConv2d, packed);

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::super::Conv1dPadding;
    use super::*;

    fn var(shape: &[usize]) -> Var {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (i as f32 + 1.0) * 0.1).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn mask(shape: &[usize], keep: impl Fn(usize) -> bool) -> Mask {
        let n: usize = shape.iter().product();
        Mask::from_bools(shape, &(0..n).map(keep).collect::<Vec<_>>()).unwrap()
    }

    /// The registry, a linear layer and a conv1d layer over its weights, all named.
    fn setup() -> (SparseParams, SparseLinear, SparseConv1d, Var) {
        let (w_fc, w_conv) = (var(&[3, 4]), var(&[2, 2, 3]));
        let mut params = SparseParams::new();
        params
            .insert("fc.weight", w_fc.clone(), mask(&[3, 4], |i| i % 2 == 0))
            .unwrap();
        params
            .insert(
                "conv.weight",
                w_conv.clone(),
                mask(&[2, 2, 3], |i| i % 3 == 0),
            )
            .unwrap();
        let fc = SparseLinear::new(w_fc.as_tensor().clone(), params.mask("fc.weight").unwrap())
            .unwrap()
            .with_name("fc.weight");
        let conv = SparseConv1d::new(
            w_conv.as_tensor().clone(),
            params.mask("conv.weight").unwrap(),
            Conv1dPadding::Zeros,
        )
        .unwrap()
        .with_name("conv.weight");
        (params, fc, conv, w_fc)
    }

    #[test]
    fn a_layer_follows_a_changed_mask_and_unchanged_ones_are_left_alone() {
        let (mut params, mut fc, mut conv, w_fc) = setup();
        // Nothing moved yet: nothing is set again.
        let n = sync_masks(&mut [&mut fc as &mut dyn SparseLayer, &mut conv], &params).unwrap();
        assert_eq!(n, 0);

        let moved = mask(&[3, 4], |i| i % 2 == 1);
        params.set_mask("fc.weight", moved.clone()).unwrap();
        let conv_before = conv.mask().clone();
        let n = sync_masks(&mut [&mut fc as &mut dyn SparseLayer, &mut conv], &params).unwrap();
        assert_eq!(n, 1);
        assert_eq!(*SparseLayer::mask(&fc), moved);
        assert_eq!(*SparseLayer::mask(&conv), conv_before);

        // The layer computes with the new mask: with W = 1 and x = [1, 2, 3, 4], the
        // new mask (columns 1 and 3) gives 2 + 4 = 6 per output, the old one 1 + 3.
        w_fc.set(&Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let x = Tensor::new(&[[1f32, 2., 3., 4.]], &Device::Cpu).unwrap();
        let y = Module::forward(&fc, &x).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), vec![vec![6.0; 3]]);
        assert!((SparseLayer::density(&fc) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn packed_and_depthwise_layers_sync_too() {
        let w = var(&[2, 1, 3, 3]);
        let mut params = SparseParams::new();
        params
            .insert("dw.weight", w.clone(), mask(&[2, 1, 3, 3], |i| i % 2 == 0))
            .unwrap();
        let w_fc = var(&[2, 3]);
        params
            .insert("fc.weight", w_fc.clone(), mask(&[2, 3], |i| i < 3))
            .unwrap();
        let mut dw =
            SparseDepthwiseConv2d::new(w.as_tensor().clone(), params.mask("dw.weight").unwrap())
                .unwrap()
                .with_name("dw.weight");
        let mut packed =
            PackedSparseLinear::new(w_fc.as_tensor(), params.mask("fc.weight").unwrap())
                .unwrap()
                .with_name("fc.weight");
        params
            .set_mask("dw.weight", mask(&[2, 1, 3, 3], |i| i % 2 == 1))
            .unwrap();
        params
            .set_mask("fc.weight", mask(&[2, 3], |i| i >= 3))
            .unwrap();
        let n = sync_masks(&mut [&mut dw as &mut dyn SparseLayer, &mut packed], &params).unwrap();
        assert_eq!(n, 2);
        assert_eq!(&*SparseLayer::mask(&dw), params.mask("dw.weight").unwrap());
        assert_eq!(
            &*SparseLayer::mask(&packed),
            params.mask("fc.weight").unwrap()
        );
        assert_eq!(packed.values().as_tensor().dims(), &[3]);
    }

    #[test]
    fn weight_grad_goes_through_the_trait() {
        let (_, mut fc, _, w_fc) = setup();
        let mut packed = PackedSparseLinear::new(w_fc.as_tensor(), fc.mask()).unwrap();
        for layer in [&mut fc as &mut dyn SparseLayer, &mut packed] {
            assert_eq!(layer.weight_grad(), WeightGrad::Masked);
            layer.set_weight_grad(WeightGrad::Dense).unwrap();
            assert_eq!(layer.weight_grad(), WeightGrad::Dense);
        }
        assert!(packed.dense_grad_probe().is_some());
    }

    /// `fc.weight [4, 8]` at density about 1/3 (no row or column fully pruned), its
    /// registry, a RigL engine updating every step, and an input batch `[3, 8]`.
    fn rigl_fixture() -> (Var, SparseParams, SparsityEngine, Tensor) {
        let w = var(&[4, 8]);
        let mut params = SparseParams::new();
        params
            .insert("fc.weight", w.clone(), mask(&[4, 8], |i| i % 3 == 1))
            .unwrap();
        let config = crate::DynamicSparsity::rigl(1, 10).build().unwrap();
        let engine = SparsityEngine::new(config, &params).unwrap();
        let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1).collect();
        let x = Tensor::from_vec(x, (3, 8), &Device::Cpu).unwrap();
        (w, params, engine, x)
    }

    /// One RigL update (period 1) after a step through a sparse linear layer over
    /// `fc.weight` at density about 1/3 (no row or column fully pruned); `prepare` may set
    /// the layer's gradient mode.
    fn rigl_step_through_kernel(
        prepare: impl Fn(&mut SparseLinear, &SparsityEngine),
    ) -> (Result<crate::UpdateReport>, Mask, Vec<f32>) {
        let (w, mut params, mut engine, x) = rigl_fixture();
        let mut fc = SparseLinear::new(w.as_tensor().clone(), params.mask("fc.weight").unwrap())
            .unwrap()
            .with_name("fc.weight");
        prepare(&mut fc, &engine);
        let loss = fc
            .forward_custom(&x)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let grad = grads.get(w.as_tensor()).unwrap().flatten_all().unwrap();
        let report = engine.after_optimizer_step(1, &mut params, &grads, None);
        let after = params.mask("fc.weight").unwrap().clone();
        (report, after, grad.to_vec1().unwrap())
    }

    #[test]
    fn gradient_growth_refuses_a_masked_kernel_gradient() {
        let (report, after, _) = rigl_step_through_kernel(|_, _| {});
        let err = report.unwrap_err();
        assert!(
            matches!(&err, SparseError::MaskedGradient(name) if name == "fc.weight"),
            "{err}"
        );
        assert!(err.to_string().contains("WeightGrad::Dense"), "{err}");
        assert_eq!(after, mask(&[4, 8], |i| i % 3 == 1), "nothing changed");
    }

    #[test]
    fn gradient_growth_gets_the_dense_gradient_when_the_step_asks_for_it() {
        let (report, after, grad) = rigl_step_through_kernel(|fc, engine| {
            set_weight_grads_for_step(&mut [fc as &mut dyn SparseLayer], engine, 1).unwrap();
            assert_eq!(fc.weight_grad(), WeightGrad::Dense);
        });
        let report = report.unwrap();
        assert!(report.prune_regrow);
        // The same step through candle's dense matmul on the raw weight (the
        // official code's forward pass) gives the same gradient and the same masks.
        let (w, mut params, mut engine, x) = rigl_fixture();
        let loss = x
            .matmul(&w.as_tensor().t().unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let dense: Vec<f32> = grads
            .get(w.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in grad.iter().zip(&dense) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        engine
            .after_optimizer_step(1, &mut params, &grads, None)
            .unwrap();
        assert_eq!(&after, params.mask("fc.weight").unwrap());
        assert_ne!(after, mask(&[4, 8], |i| i % 3 == 1), "RigL moved weights");
    }

    #[test]
    fn off_update_steps_keep_the_masked_gradient() {
        let config = crate::DynamicSparsity::rigl(3, 10).build().unwrap();
        let (params, mut fc, _, _) = setup();
        let engine = SparsityEngine::new(config, &params).unwrap();
        for (step, expected) in [
            (1, WeightGrad::Masked),
            (3, WeightGrad::Dense),
            (4, WeightGrad::Masked),
        ] {
            set_weight_grads_for_step(&mut [&mut fc as &mut dyn SparseLayer], &engine, step)
                .unwrap();
            assert_eq!(fc.weight_grad(), expected, "step {step}");
        }
        let set = crate::DynamicSparsity::set(3, 10).build().unwrap();
        let engine = SparsityEngine::new(set, &params).unwrap();
        set_weight_grads_for_step(&mut [&mut fc as &mut dyn SparseLayer], &engine, 3).unwrap();
        assert_eq!(
            fc.weight_grad(),
            WeightGrad::Masked,
            "random growth reads no gradient"
        );
    }

    #[test]
    fn naming_mistakes_change_no_layer() {
        let (mut params, mut fc, conv, _) = setup();
        params
            .set_mask("fc.weight", mask(&[3, 4], |_| true))
            .unwrap();
        let before = fc.mask().clone();
        // An unnamed layer after a named one: refused before the named one is touched.
        let mut unnamed =
            SparseConv1d::new(conv.weight().clone(), conv.mask(), Conv1dPadding::Zeros).unwrap();
        let err = sync_masks(
            &mut [&mut fc as &mut dyn SparseLayer, &mut unnamed],
            &params,
        )
        .unwrap_err();
        assert!(matches!(err, SparseError::InvalidInput { .. }), "{err}");
        assert_eq!(fc.mask(), &before);
        // A name the registry does not know.
        let mut stray = unnamed.with_name("nope.weight");
        let err =
            sync_masks(&mut [&mut fc as &mut dyn SparseLayer, &mut stray], &params).unwrap_err();
        assert!(matches!(err, SparseError::UnknownParameter(_)), "{err}");
        assert_eq!(fc.mask(), &before);
        // A name whose mask has another shape.
        let mut wrong = stray.with_name("fc.weight");
        let err = sync_masks(&mut [&mut wrong as &mut dyn SparseLayer], &params).unwrap_err();
        assert!(matches!(err, SparseError::ShapeMismatch { .. }), "{err}");
    }
}
