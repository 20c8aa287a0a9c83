//! The MLP GAN of the 2-D mixtures: a ReLU MLP generator (sparse-repro's shared
//! `Mlp`) and a ReLU MLP critic.

use candle_core::Tensor;
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::kernels::{Activation, linear};
use sparse_repro::models::{Architecture, InputShape, Model, build_initialised};

use super::{Layer, Weights};
use crate::error::Result;

/// `latent → width (x depth) → 2`, ReLU, linear output: sparse-repro's `Mlp`
/// (parameters `hidden.{i}.*`, `classifier.*`), Xavier-uniform weights.
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
        super::xavier_uniform,
    )?)
}

/// `2 → width (x depth) → 1`, ReLU (parameters `hidden.{i}.*`, `output.*`).
#[derive(Debug)]
pub struct MlpCritic {
    /// Weight names, output last, with their biases.
    layers: Vec<(String, Layer)>,
}

impl MlpCritic {
    pub(crate) fn new(width: usize, depth: usize, vb: VarBuilder) -> Result<Self> {
        let mut sizes = vec![2];
        sizes.extend(std::iter::repeat_n(width, depth));
        sizes.push(1);
        let mut layers = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            let prefix = if i + 2 == sizes.len() {
                "output".to_string()
            } else {
                format!("hidden.{i}")
            };
            let layer = Layer::linear(pair[0], pair[1], true, vb.pp(&prefix))?;
            layers.push((format!("{prefix}.weight"), layer));
        }
        Ok(Self { layers })
    }

    pub(crate) fn weight_names(&self) -> Vec<String> {
        self.layers.iter().map(|(w, _)| w.clone()).collect()
    }

    pub(crate) fn forward(&self, x: &Tensor, weights: &Weights, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, (w, layer)) in self.layers.iter().enumerate() {
            let activation = if i + 1 == self.layers.len() {
                Activation::Identity
            } else {
                Activation::Relu
            };
            h = linear(&h, &weights.get(w, train)?, layer.bias.as_ref(), activation)?;
        }
        Ok(h.squeeze(1)?)
    }
}
