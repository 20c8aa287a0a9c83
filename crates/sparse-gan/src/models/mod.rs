//! The GANs' networks. Every generator and critic computes with its raw weights (no
//! `W ⊙ M` in the graph, no masked-gradient kernels), so the weight gradients stay
//! dense: what gradient regrowth needs. The engine keeps pruned weights at zero.
//!
//! - [`mlp`]: the 2-D mixtures' MLPs;
//! - [`dcgan`]: a small DCGAN for the `quick` image run;
//! - [`sngan`]: the official `sngan_cifar10` ResNet GAN (`paper`).

pub mod dcgan;
pub mod mlp;
pub mod sngan;

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::init::Init;
use sparse_repro::models::initialise_vars;

use crate::config::GanArch;
use crate::error::Result;
use crate::spectral::SpectralState;

/// A generator: latent codes `[n, latent]` to samples (`[n, 2]` points or
/// `[n, c, h, w]` images in `[-1, 1]`).
#[derive(Debug)]
pub enum Generator {
    /// The mixtures' MLP (sparse-repro's shared `Mlp`).
    Mlp(sparse_repro::models::Model),
    /// The small DCGAN.
    Dcgan(dcgan::DcganGenerator),
    /// The official SNGAN generator.
    SnGan(sngan::SnGanGenerator),
}

impl Generator {
    /// A generator of `arch` in its own `VarMap`, initialised from `rng`.
    pub fn build(arch: &GanArch, rng: &mut ChaCha8Rng) -> Result<(VarMap, Self)> {
        match *arch {
            GanArch::Mlp {
                width,
                depth,
                latent,
            } => {
                let (varmap, model) = mlp::generator(latent, width, depth, rng)?;
                Ok((varmap, Generator::Mlp(model)))
            }
            GanArch::Dcgan {
                width,
                latent,
                bottom,
                image_channels,
            } => image_generator(rng, |vb| {
                Ok(Generator::Dcgan(dcgan::DcganGenerator::new(
                    width,
                    latent,
                    bottom,
                    image_channels,
                    vb,
                )?))
            }),
            GanArch::SnGan {
                gf,
                latent,
                bottom,
                image_channels,
                ..
            } => image_generator(rng, |vb| {
                Ok(Generator::SnGan(sngan::SnGanGenerator::new(
                    gf,
                    latent,
                    bottom,
                    image_channels,
                    vb,
                )?))
            }),
        }
    }

    /// The samples of latent codes `z`; `train` moves BatchNorm's running statistics.
    pub fn forward(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Generator::Mlp(model) => Ok(candle_nn::ModuleT::forward_t(model, z, train)?),
            Generator::Dcgan(g) => g.forward(z, train),
            Generator::SnGan(g) => g.forward(z, train),
        }
    }
}

/// Nearest-neighbour up-sampling by 2 in both spatial dimensions, `[n, c, h, w]` to
/// `[n, c, 2h, 2w]`, as a broadcast. candle 0.11's `upsample_nearest2d` backward
/// *overwrites* the input's gradient instead of adding to it: when the input feeds
/// another layer too (SNGAN's residual blocks up-sample their input for the
/// shortcut), that layer's gradient is lost or kept depending on the graph's order.
/// A broadcast's backward sums.
pub fn upsample2x(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    Ok(x.reshape((n, c, h, 1, w, 1))?
        .broadcast_as((n, c, h, 2, w, 2))?
        .reshape((n, c, 2 * h, 2 * w))?)
}

/// A convolutional generator built by `build` in a new `VarMap`, then initialised
/// from `rng`.
fn image_generator(
    rng: &mut ChaCha8Rng,
    build: impl FnOnce(VarBuilder) -> Result<Generator>,
) -> Result<(VarMap, Generator)> {
    let varmap = VarMap::new();
    let generator = build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    initialise(&varmap, rng)?;
    Ok((varmap, generator))
}

/// Xavier-uniform weights (gain 1), the author code's initialisation of every
/// convolution; the linear layers take it too (PyTorch's default is a uniform of
/// similar scale), biases PyTorch's default, BatchNorm 1 and 0.
pub(crate) fn initialise(varmap: &VarMap, rng: &mut ChaCha8Rng) -> Result<()> {
    Ok(initialise_vars(varmap, rng, xavier_uniform)?)
}

/// Xavier-uniform (gain 1) for every weight of rank ≥ 2.
pub(crate) fn xavier_uniform(shape: &[usize]) -> Option<Init> {
    (shape.len() >= 2).then_some(Init::XavierUniform { gain: 1.0 })
}

/// The layers of a critic.
#[derive(Debug)]
enum CriticNet {
    Mlp(mlp::MlpCritic),
    Dcgan(dcgan::DcganCritic),
    SnGan(sngan::SnGanCritic),
}

/// A discriminator (critic): samples to one score each, `[n]`; every weight
/// spectrally normalised when asked (the power-iteration vectors live in a
/// [`SpectralState`] beside the `VarMap`, so that no optimizer, average or
/// parameter count sees them).
pub struct Critic {
    varmap: VarMap,
    weights: Weights,
    net: CriticNet,
}

impl Critic {
    /// A critic of `arch` in its own `VarMap`, initialised from `rng` (and its
    /// spectral-norm vectors after the weights, when `spectral_norm`).
    pub fn build(arch: &GanArch, spectral_norm: bool, rng: &mut ChaCha8Rng) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let net = match *arch {
            GanArch::Mlp { width, depth, .. } => {
                CriticNet::Mlp(mlp::MlpCritic::new(width, depth, vb)?)
            }
            GanArch::Dcgan {
                width,
                bottom,
                image_channels,
                ..
            } => CriticNet::Dcgan(dcgan::DcganCritic::new(width, bottom, image_channels, vb)?),
            GanArch::SnGan {
                df, image_channels, ..
            } => CriticNet::SnGan(sngan::SnGanCritic::new(df, image_channels, vb)?),
        };
        initialise(&varmap, rng)?;
        let names = match &net {
            CriticNet::Mlp(n) => n.weight_names(),
            CriticNet::Dcgan(n) => n.weight_names(),
            CriticNet::SnGan(n) => n.weight_names(),
        };
        let mut weights = Weights::new(&varmap, &names)?;
        if spectral_norm {
            let state = SpectralState::new();
            for name in &names {
                let w = &weights.raw[name];
                let out = w.dim(0)?;
                state.register(name, out, w.elem_count() / out, &Device::Cpu, rng)?;
            }
            weights.spectral = Some(state);
        }
        Ok(Self {
            varmap,
            weights,
            net,
        })
    }

    /// Every tensor of the critic.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The spectral-norm state, if the critic has one.
    pub fn spectral(&self) -> Option<&SpectralState> {
        self.weights.spectral.as_ref()
    }

    /// One score per sample; `train` advances the spectral-norm power iteration.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.net {
            CriticNet::Mlp(n) => n.forward(x, &self.weights, train),
            CriticNet::Dcgan(n) => n.forward(x, &self.weights, train),
            CriticNet::SnGan(n) => n.forward(x, &self.weights, train),
        }
    }
}

impl std::fmt::Debug for Critic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Critic")
            .field("net", &self.net)
            .field("spectral_norm", &self.weights.spectral.is_some())
            .finish_non_exhaustive()
    }
}

/// A critic's weights by name, normalised on the way out when spectral norm is on.
#[derive(Debug)]
pub(crate) struct Weights {
    raw: BTreeMap<String, Tensor>,
    spectral: Option<SpectralState>,
}

impl Weights {
    fn new(varmap: &VarMap, names: &[String]) -> Result<Self> {
        let data = varmap.data().lock().map_err(|_| {
            sparse_repro::HarnessError::invalid(
                "varmap",
                "poisoned",
                "a thread panicked holding it",
            )
        })?;
        let mut raw = BTreeMap::new();
        for name in names {
            let var = data.get(name).ok_or_else(|| {
                sparse_repro::HarnessError::invalid("critic", name, "no such weight")
            })?;
            raw.insert(name.clone(), var.as_tensor().clone());
        }
        Ok(Self {
            raw,
            spectral: None,
        })
    }

    /// The weight `name` as the forward pass uses it: `W / σ(W)` under spectral norm.
    pub(crate) fn get(&self, name: &str, train: bool) -> Result<Tensor> {
        let w = self
            .raw
            .get(name)
            .ok_or_else(|| sparse_repro::HarnessError::invalid("critic", name, "no such weight"))?;
        match &self.spectral {
            Some(state) => state.normalise(name, w, train),
            None => Ok(w.clone()),
        }
    }
}

/// A convolution's or linear layer's weight and optional bias, as `VarMap` tensors.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) weight: Tensor,
    pub(crate) bias: Option<Tensor>,
}

impl Layer {
    pub(crate) fn conv(
        c_in: usize,
        c_out: usize,
        k: usize,
        bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((c_out, c_in, k, k), "weight")?;
        let bias = if bias {
            Some(vb.get(c_out, "bias")?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    pub(crate) fn linear(c_in: usize, c_out: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((c_out, c_in), "weight")?;
        let bias = if bias {
            Some(vb.get(c_out, "bias")?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_matches_candle_forward_and_adds_gradients() -> Result<()> {
        let values: Vec<f32> = (0..2 * 3 * 2 * 3).map(|v| v as f32).collect();
        let x =
            candle_core::Var::from_tensor(&Tensor::from_vec(values, (2, 3, 2, 3), &Device::Cpu)?)?;
        let ours = upsample2x(x.as_tensor())?;
        let candle = x.as_tensor().upsample_nearest2d(4, 6)?;
        assert_eq!(
            ours.flatten_all()?.to_vec1::<f32>()?,
            candle.flatten_all()?.to_vec1::<f32>()?
        );
        // x feeds two paths: d/dx [Σ up(x) + Σ x] = 4 + 1 everywhere
        let loss = (ours.sum_all()? + x.as_tensor().sum_all()?)?;
        let grads = loss.backward()?;
        let grad = grads
            .get(x.as_tensor())
            .map(|g| g.flatten_all())
            .transpose()?;
        let grad = grad
            .map(|g| g.to_vec1::<f32>())
            .transpose()?
            .unwrap_or_default();
        assert_eq!(grad, vec![5.0; 36]);
        Ok(())
    }
}
