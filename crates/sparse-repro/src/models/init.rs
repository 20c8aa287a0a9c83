//! Seeded initialisation of a freshly built model.

use std::collections::BTreeMap;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::init::{self, FanMode, Init, Nonlinearity};
use sparse_core::optim::trainable_vars;

use super::{Architecture, InputShape, Model};
use crate::error::HarnessResult;

/// Builds `arch` for `input` and `classes` in a new `VarMap` on the CPU and
/// initialises every trainable tensor from `rng`: weights (rank ≥ 2) by
/// `weight_init(shape)` (`None` keeps candle's), biases by PyTorch's default
/// uniform over the fan-in of their weight, BatchNorm at 1 and 0.
///
/// candle's own initialisation draws from its unseedable RNG; this is the same
/// model, the same for the same `rng`.
pub fn build_initialised(
    arch: &Architecture,
    input: InputShape,
    classes: usize,
    rng: &mut ChaCha8Rng,
    weight_init: impl Fn(&[usize]) -> Option<Init>,
) -> HarnessResult<(VarMap, Model)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Model::new(arch, input, classes, vb)?;
    initialise_vars(&varmap, rng, weight_init)?;
    Ok((varmap, model))
}

/// Initialises every trainable tensor of `varmap` from `rng`, as
/// [`build_initialised`] does: weights (rank ≥ 2) by `weight_init(shape)` (`None`
/// keeps what they hold), biases by PyTorch's default uniform over the fan-in of
/// their weight (`<prefix>.bias` of `<prefix>.weight`), normalisation layers left at
/// their 1 and 0. For models built outside [`Model`] (a paper's own networks).
pub fn initialise_vars(
    varmap: &VarMap,
    rng: &mut ChaCha8Rng,
    weight_init: impl Fn(&[usize]) -> Option<Init>,
) -> HarnessResult<()> {
    let vars = trainable_vars(varmap);
    let fan_in: BTreeMap<String, usize> = vars
        .iter()
        .filter(|(_, v)| v.rank() >= 2)
        .filter_map(|(n, v)| {
            let prefix = n.strip_suffix(".weight")?;
            Some((format!("{prefix}.bias"), v.dims()[1..].iter().product()))
        })
        .collect();
    init::init_vars(
        &vars,
        |name, shape| {
            if let Some(&fan_in) = fan_in.get(name) {
                return Some(Init::TorchDefaultBias { fan_in });
            }
            if sparse_core::selection::is_norm(name) {
                return None;
            }
            weight_init(shape)
        },
        rng,
    )?;
    Ok(())
}

/// Kaiming-normal (fan-in, ReLU gain) for every weight of rank ≥ 2: the
/// initialisation of the official CIFAR ResNets and VGGs.
pub fn kaiming_normal_weights(shape: &[usize]) -> Option<Init> {
    (shape.len() >= 2).then_some(Init::KaimingNormal {
        mode: FanMode::FanIn,
        nonlinearity: Nonlinearity::Relu,
    })
}
