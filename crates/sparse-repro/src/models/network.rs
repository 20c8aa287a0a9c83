//! A shared model with its variables and the masks of its pruned weights.

use std::collections::BTreeMap;

use candle_core::Tensor;
use candle_nn::{ModuleT, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::batchnorm::recalibrate;
use sparse_core::{Mask, SparseParams};

use super::{Architecture, InputShape, Model, build_initialised, kaiming_normal_weights};
use crate::error::HarnessResult;
use crate::train::{Evaluation, evaluate_classifier};

/// The momentum of the shared models' BatchNorms (candle-nn's and PyTorch's
/// default), which recalibration must know.
pub const BATCHNORM_MOMENTUM: f64 = 0.1;

/// A model, every tensor of it (BatchNorm running statistics included) and the
/// registry of its masked weights.
pub struct Network {
    /// Every tensor of the model.
    pub varmap: VarMap,
    /// The model.
    pub model: Model,
    /// The masked weights (empty until the caller registers some).
    pub params: SparseParams,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("model", &self.model)
            .field("masked", &self.params.len())
            .finish()
    }
}

impl Network {
    /// `architecture` for `input` and `classes`, initialised from `rng` with
    /// Kaiming-normal weights ([`build_initialised`]), nothing masked yet.
    pub fn kaiming(
        architecture: &Architecture,
        input: InputShape,
        classes: usize,
        rng: &mut ChaCha8Rng,
    ) -> HarnessResult<Self> {
        let (varmap, model) =
            build_initialised(architecture, input, classes, rng, kaiming_normal_weights)?;
        Ok(Self {
            varmap,
            model,
            params: SparseParams::new(),
        })
    }

    /// Loss and accuracy over `batches` in inference mode.
    pub fn evaluate<I>(&self, batches: I) -> HarnessResult<Evaluation>
    where
        I: IntoIterator<Item = HarnessResult<(Tensor, Tensor)>>,
    {
        evaluate_classifier(|x| self.model.forward_t(x, false), batches)
    }

    /// Recomputes every BatchNorm running statistic as the cumulative average over
    /// `batches` (inputs, labels ignored) in training mode: PyTorch's `update_bn`
    /// ([`sparse_core::batchnorm::recalibrate`]). Returns the number of batches.
    pub fn recalibrate_batchnorm<I>(&self, batches: I) -> HarnessResult<usize>
    where
        I: IntoIterator<Item = HarnessResult<(Tensor, Tensor)>>,
    {
        let mut failed = None;
        let seen = recalibrate(&self.varmap, BATCHNORM_MOMENTUM, batches, |batch| {
            match batch {
                Ok((x, _)) => {
                    self.model.forward_t(&x, true)?;
                }
                Err(e) => failed = Some(e),
            }
            Ok(())
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(seen),
        }
    }

    /// The names of the masked weights, in registry order.
    pub fn masked_names(&self) -> Vec<String> {
        self.params.names().map(str::to_string).collect()
    }

    /// The registered masks, by name.
    pub fn masks(&self) -> BTreeMap<String, Mask> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.mask.clone()))
            .collect()
    }

    /// The non-zero pattern of every masked weight as it is now: the masks of a
    /// model whose weights were set from elsewhere (an interpolated or superposed
    /// state, re-pruned off the registry's masks).
    pub fn nonzero_masks(&self) -> HarnessResult<BTreeMap<String, Mask>> {
        self.params
            .iter()
            .map(|p| Ok((p.name.clone(), Mask::from_nonzero(&p.dense_weight()?)?)))
            .collect()
    }
}
