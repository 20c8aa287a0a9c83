//! A small DCGAN for the `quick` image run: cheap enough for several seeds and arms
//! on two cores, convolutional like the paper's GANs.
//!
//! - G: `l1` linear `latent → 2·width·b²`, maps `[2·width, b, b]`, `bn1` + ReLU,
//!   nearest ×2, `c1` 3×3 conv to `width`, `bn2` + ReLU, nearest ×2, `c2` 3×3 conv to
//!   the image channels, tanh (side `4b`).
//! - D: `c1` 3×3 stride-2 conv to `width`, ReLU, `c2` 3×3 stride-2 conv to `2·width`,
//!   ReLU, `l3` linear critic over the `2·width·b²` features; every weight under
//!   spectral norm when asked.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use sparse_core::kernels::{Activation, Conv2dParams, FusedBatchNorm, conv2d, linear};

use super::{Layer, Weights, upsample2x};
use crate::error::Result;

const SAME: Conv2dParams = Conv2dParams {
    stride: 1,
    padding: 1,
};
const HALVE: Conv2dParams = Conv2dParams {
    stride: 2,
    padding: 1,
};

/// The DCGAN generator.
#[derive(Debug)]
pub struct DcganGenerator {
    l1: Layer,
    bn1: FusedBatchNorm,
    c1: Layer,
    bn2: FusedBatchNorm,
    c2: Layer,
    width: usize,
    bottom: usize,
}

impl DcganGenerator {
    pub(crate) fn new(
        width: usize,
        latent: usize,
        bottom: usize,
        image_channels: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            l1: Layer::linear(latent, 2 * width * bottom * bottom, true, vb.pp("l1"))?,
            bn1: FusedBatchNorm::new(2 * width, 1e-5, vb.pp("bn1"))?,
            c1: Layer::conv(2 * width, width, 3, true, vb.pp("c1"))?,
            bn2: FusedBatchNorm::new(width, 1e-5, vb.pp("bn2"))?,
            c2: Layer::conv(width, image_channels, 3, true, vb.pp("c2"))?,
            width,
            bottom,
        })
    }

    pub(crate) fn forward(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let b = self.bottom;
        let h = linear(
            z,
            &self.l1.weight,
            self.l1.bias.as_ref(),
            Activation::Identity,
        )?
        .reshape((z.dim(0)?, 2 * self.width, b, b))?;
        let h = self.bn1.forward_relu_t(&h, train)?;
        let h = upsample2x(&h)?;
        let h = conv2d(&h, &self.c1.weight, self.c1.bias.as_ref(), SAME)?;
        let h = self.bn2.forward_relu_t(&h, train)?;
        let h = upsample2x(&h)?;
        Ok(conv2d(&h, &self.c2.weight, self.c2.bias.as_ref(), SAME)?.tanh()?)
    }
}

/// The DCGAN critic.
#[derive(Debug)]
pub struct DcganCritic {
    c1: Layer,
    c2: Layer,
    l3: Layer,
}

impl DcganCritic {
    pub(crate) fn new(
        width: usize,
        bottom: usize,
        image_channels: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            c1: Layer::conv(image_channels, width, 3, true, vb.pp("c1"))?,
            c2: Layer::conv(width, 2 * width, 3, true, vb.pp("c2"))?,
            l3: Layer::linear(2 * width * bottom * bottom, 1, true, vb.pp("l3"))?,
        })
    }

    pub(crate) fn weight_names(&self) -> Vec<String> {
        ["c1.weight", "c2.weight", "l3.weight"]
            .map(String::from)
            .to_vec()
    }

    pub(crate) fn forward(&self, x: &Tensor, weights: &Weights, train: bool) -> Result<Tensor> {
        let h = conv2d(
            x,
            &weights.get("c1.weight", train)?,
            self.c1.bias.as_ref(),
            HALVE,
        )?
        .relu()?;
        let h = conv2d(
            &h,
            &weights.get("c2.weight", train)?,
            self.c2.bias.as_ref(),
            HALVE,
        )?
        .relu()?
        .flatten_from(1)?;
        let out = linear(
            &h,
            &weights.get("l3.weight", train)?,
            self.l3.bias.as_ref(),
            Activation::Identity,
        )?;
        Ok(out.squeeze(1)?)
    }
}
