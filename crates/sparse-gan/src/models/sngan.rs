//! The official `sngan_cifar10` GAN (`paper`; the smoke preset runs it small on the
//! digits).
//!
//! - G: `l1` linear `latent → gf·b²`, maps `[gf, b, b]`, three up-sampling residual
//!   blocks `block2..4` (`b1` BN, ReLU, nearest ×2, `c1` 3×3, `b2` BN, ReLU, `c2` 3×3;
//!   shortcut nearest ×2 then `c_sc` 1×1), `b5` BN, ReLU, `c5` 3×3 to the image
//!   channels, tanh (side `8b`).
//! - D: `block1` (`c1` 3×3, ReLU, `c2` 3×3, 2×2 average pool; shortcut pool then
//!   `c_sc` 1×1), `block2` (ReLU, `c1`, ReLU, `c2`, pool; shortcut `c_sc` then pool),
//!   `block3`, `block4` (ReLU, `c1`, ReLU, `c2`; identity shortcut), ReLU, sum over
//!   space, `l5` bias-free linear critic; every weight under spectral norm.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use sparse_core::kernels::{Activation, Conv2dParams, FusedBatchNorm, conv2d, linear};

use super::{Layer, Weights, upsample2x};
use crate::error::Result;

const SAME: Conv2dParams = Conv2dParams {
    stride: 1,
    padding: 1,
};
const POINTWISE: Conv2dParams = Conv2dParams {
    stride: 1,
    padding: 0,
};

/// An up-sampling residual block of the generator.
#[derive(Debug)]
struct GenBlock {
    b1: FusedBatchNorm,
    c1: Layer,
    b2: FusedBatchNorm,
    c2: Layer,
    c_sc: Layer,
}

impl GenBlock {
    fn new(ch: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            b1: FusedBatchNorm::new(ch, 1e-5, vb.pp("b1"))?,
            c1: Layer::conv(ch, ch, 3, true, vb.pp("c1"))?,
            b2: FusedBatchNorm::new(ch, 1e-5, vb.pp("b2"))?,
            c2: Layer::conv(ch, ch, 3, true, vb.pp("c2"))?,
            c_sc: Layer::conv(ch, ch, 1, true, vb.pp("c_sc"))?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = upsample2x(&self.b1.forward_relu_t(x, train)?)?;
        let h = conv2d(&h, &self.c1.weight, self.c1.bias.as_ref(), SAME)?;
        let h = self.b2.forward_relu_t(&h, train)?;
        let h = conv2d(&h, &self.c2.weight, self.c2.bias.as_ref(), SAME)?;
        let shortcut = conv2d(
            &upsample2x(x)?,
            &self.c_sc.weight,
            self.c_sc.bias.as_ref(),
            POINTWISE,
        )?;
        Ok((h + shortcut)?)
    }
}

/// The SNGAN generator.
#[derive(Debug)]
pub struct SnGanGenerator {
    l1: Layer,
    blocks: Vec<GenBlock>,
    b5: FusedBatchNorm,
    c5: Layer,
    gf: usize,
    bottom: usize,
}

impl SnGanGenerator {
    pub(crate) fn new(
        gf: usize,
        latent: usize,
        bottom: usize,
        image_channels: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            l1: Layer::linear(latent, gf * bottom * bottom, true, vb.pp("l1"))?,
            blocks: (2..=4)
                .map(|i| GenBlock::new(gf, vb.pp(format!("block{i}"))))
                .collect::<Result<_>>()?,
            b5: FusedBatchNorm::new(gf, 1e-5, vb.pp("b5"))?,
            c5: Layer::conv(gf, image_channels, 3, true, vb.pp("c5"))?,
            gf,
            bottom,
        })
    }

    pub(crate) fn forward(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let b = self.bottom;
        let mut h = linear(
            z,
            &self.l1.weight,
            self.l1.bias.as_ref(),
            Activation::Identity,
        )?
        .reshape((z.dim(0)?, self.gf, b, b))?;
        for block in &self.blocks {
            h = block.forward(&h, train)?;
        }
        let h = self.b5.forward_relu_t(&h, train)?;
        Ok(conv2d(&h, &self.c5.weight, self.c5.bias.as_ref(), SAME)?.tanh()?)
    }
}

/// How a discriminator block starts, pools and shortcuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DisKind {
    /// The first block: no leading ReLU; shortcut pools, then convolves.
    Optimized,
    /// Down-sampling: shortcut convolves, then pools.
    Down,
    /// Same size, identity shortcut.
    Plain,
}

/// A residual block of the critic; its weights are read through [`Weights`].
#[derive(Debug)]
struct DisBlock {
    prefix: String,
    kind: DisKind,
    c1: Layer,
    c2: Layer,
    c_sc: Option<Layer>,
}

impl DisBlock {
    fn new(prefix: &str, c_in: usize, ch: usize, kind: DisKind, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp(prefix);
        Ok(Self {
            prefix: prefix.to_string(),
            kind,
            c1: Layer::conv(c_in, ch, 3, true, vb.pp("c1"))?,
            c2: Layer::conv(ch, ch, 3, true, vb.pp("c2"))?,
            c_sc: (kind != DisKind::Plain)
                .then(|| Layer::conv(c_in, ch, 1, true, vb.pp("c_sc")))
                .transpose()?,
        })
    }

    fn weight_names(&self) -> Vec<String> {
        let mut names = vec![
            format!("{}.c1.weight", self.prefix),
            format!("{}.c2.weight", self.prefix),
        ];
        if self.c_sc.is_some() {
            names.push(format!("{}.c_sc.weight", self.prefix));
        }
        names
    }

    fn forward(&self, x: &Tensor, weights: &Weights, train: bool) -> Result<Tensor> {
        let w = |name: &str| weights.get(&format!("{}.{name}.weight", self.prefix), train);
        let h = if self.kind == DisKind::Optimized {
            x.clone()
        } else {
            x.relu()?
        };
        let h = conv2d(&h, &w("c1")?, self.c1.bias.as_ref(), SAME)?.relu()?;
        let h = conv2d(&h, &w("c2")?, self.c2.bias.as_ref(), SAME)?;
        let bias_sc = self.c_sc.as_ref().and_then(|l| l.bias.as_ref());
        Ok(match self.kind {
            DisKind::Optimized => {
                let shortcut = conv2d(&x.avg_pool2d(2)?, &w("c_sc")?, bias_sc, POINTWISE)?;
                (h.avg_pool2d(2)? + shortcut)?
            }
            DisKind::Down => {
                let shortcut = conv2d(x, &w("c_sc")?, bias_sc, POINTWISE)?.avg_pool2d(2)?;
                (h.avg_pool2d(2)? + shortcut)?
            }
            DisKind::Plain => (h + x)?,
        })
    }
}

/// The SNGAN critic.
#[derive(Debug)]
pub struct SnGanCritic {
    blocks: Vec<DisBlock>,
}

impl SnGanCritic {
    pub(crate) fn new(df: usize, image_channels: usize, vb: VarBuilder) -> Result<Self> {
        let blocks = vec![
            DisBlock::new("block1", image_channels, df, DisKind::Optimized, vb.clone())?,
            DisBlock::new("block2", df, df, DisKind::Down, vb.clone())?,
            DisBlock::new("block3", df, df, DisKind::Plain, vb.clone())?,
            DisBlock::new("block4", df, df, DisKind::Plain, vb.clone())?,
        ];
        Layer::linear(df, 1, false, vb.pp("l5"))?;
        Ok(Self { blocks })
    }

    pub(crate) fn weight_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.blocks.iter().flat_map(|b| b.weight_names()).collect();
        names.push("l5.weight".to_string());
        names
    }

    pub(crate) fn forward(&self, x: &Tensor, weights: &Weights, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for block in &self.blocks {
            h = block.forward(&h, weights, train)?;
        }
        let pooled = h.relu()?.sum((2, 3))?;
        let out = linear(
            &pooled,
            &weights.get("l5.weight", train)?,
            None,
            Activation::Identity,
        )?;
        Ok(out.squeeze(1)?)
    }
}
