//! The MLP GAN of the 2-D mixtures: a ReLU MLP generator (sparse-repro's shared
//! `Mlp`) and a ReLU MLP discriminator with spectral normalisation on every layer.
//! Both use their raw weights in the forward pass, so the weight gradients stay
//! dense (what gradient regrowth needs).

use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::init::{self, Init};
use sparse_core::kernels::{Activation, linear};
use sparse_core::optim::trainable_vars;
use sparse_repro::models::{Architecture, InputShape, Model, build_initialised};

use crate::error::Result;
use crate::spectral::SpectralState;

/// Xavier-uniform weights (gain 1), the author code's initialisation.
fn xavier(shape: &[usize]) -> Option<Init> {
    (shape.len() >= 2).then_some(Init::XavierUniform { gain: 1.0 })
}

/// `latent → width (x depth) → 2`, ReLU, linear output: sparse-repro's `Mlp`
/// (parameters `hidden.{i}.*`, `classifier.*`).
pub fn generator(
    latent: usize,
    width: usize,
    depth: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(VarMap, Model)> {
    Ok(build_initialised(
        &Architecture::Mlp { width, depth },
        InputShape {
            channels: 1,
            height: 1,
            width: latent,
        },
        2,
        rng,
        xavier,
    )?)
}

/// `2 → width (x depth) → 1`, ReLU, every layer spectrally normalised when `sn`.
pub struct Discriminator {
    /// Weight and bias names of every layer, output last.
    layers: Vec<(String, String)>,
    varmap: VarMap,
    spectral: Option<SpectralState>,
}

impl std::fmt::Debug for Discriminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discriminator")
            .field("layers", &self.layers)
            .field("spectral_norm", &self.spectral.is_some())
            .finish_non_exhaustive()
    }
}

impl Discriminator {
    /// A new discriminator in its own `VarMap`, initialised from `rng` (and its
    /// spectral-norm vectors too, when `sn`).
    pub fn new(width: usize, depth: usize, sn: bool, rng: &mut ChaCha8Rng) -> Result<Self> {
        let varmap = VarMap::new();
        let mut sizes = vec![2];
        sizes.extend(std::iter::repeat_n(width, depth));
        sizes.push(1);
        let mut layers = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            let prefix = if i + 1 == sizes.len() - 1 {
                "output".to_string()
            } else {
                format!("hidden.{i}")
            };
            let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
            varmap.get(
                (pair[1], pair[0]),
                &w,
                candle_nn::Init::Const(0.0),
                DType::F32,
                &Device::Cpu,
            )?;
            varmap.get(
                pair[1],
                &b,
                candle_nn::Init::Const(0.0),
                DType::F32,
                &Device::Cpu,
            )?;
            layers.push((w, b));
        }
        let vars = trainable_vars(&varmap);
        init::init_vars(
            &vars,
            |name, shape| {
                if name.ends_with(".bias") {
                    let fan_in = sizes[layers.iter().position(|(_, b)| b == name).unwrap_or(0)];
                    return Some(Init::TorchDefaultBias { fan_in });
                }
                xavier(shape)
            },
            rng,
        )?;
        let spectral = if sn {
            let state = SpectralState::new();
            for (i, (w, _)) in layers.iter().enumerate() {
                state.register(w, sizes[i + 1], sizes[i], &Device::Cpu, rng)?;
            }
            Some(state)
        } else {
            None
        };
        Ok(Self {
            layers,
            varmap,
            spectral,
        })
    }

    /// Every tensor of the discriminator.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The spectral-norm state, if the discriminator has one.
    pub fn spectral(&self) -> Option<&SpectralState> {
        self.spectral.as_ref()
    }

    /// The critic value of every row of `x: [n, 2]`, `[n]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let data = self.varmap.data().lock().map_err(|_| {
            sparse_repro::HarnessError::invalid(
                "varmap",
                "poisoned",
                "a thread panicked holding it",
            )
        })?;
        let mut h = x.clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            let weight = data[w].as_tensor().clone();
            let weight = match &self.spectral {
                Some(state) => state.normalise(w, &weight, train)?,
                None => weight,
            };
            let last = i + 1 == self.layers.len();
            let activation = if last {
                Activation::Identity
            } else {
                Activation::Relu
            };
            h = linear(&h, &weight, Some(data[b].as_tensor()), activation)?;
        }
        Ok(h.squeeze(1)?)
    }
}

/// The generator's points for latent codes `z: [n, latent]`, `[n, 2]`.
pub fn generate(generator: &Model, z: &Tensor, train: bool) -> Result<Tensor> {
    Ok(generator.forward_t(z, train)?)
}
