//! Image classifiers shared by the reproductions: a ReLU MLP, CIFAR-style
//! ResNet-(6n+2) and ResNet-18, and VGGs with batch norm (a small one and VGG-16),
//! each scaled by a width multiplier; and [`attention`], multi-head attention for the
//! transformer reproductions.
//!
//! Every model is a [`candle_nn::ModuleT`] whose parameters live in a
//! [`candle_nn::VarMap`] under stable names, so sparse-core can select and mask
//! their weights and checkpoints can name them. Each model lists its prunable
//! weights in forward order (`weight_names_in_order`, for allocations such as
//! uniform+ and ERK+ and for `SelectionPolicy::layer_order`) and describes them
//! for FLOP counting (`layer_flops`, sparse-core's [`LayerFlops`]).
//!
//! Building a model creates its parameters through the [`VarBuilder`] with
//! candle's default initialisation; [`build_initialised`] builds one initialised
//! from a seeded RNG instead. Convolutions are bias-free and followed by
//! BatchNorm (eps 1e-5), whose running statistics live in the same `VarMap`. The
//! layers run on sparse-core's fused kernels (`FusedLinear`, `FusedBatchNorm` with
//! the ReLU folded in, `add_relu`, `conv2d`, and `SparseConv2d` for a convolution
//! given a sparse mask through `Model::set_sparse_masks`), with candle-nn's variable
//! names.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::{ModuleT, VarBuilder, VarMap};
//! use sparse_repro::models::{Architecture, InputShape, Model};
//!
//! let varmap = VarMap::new();
//! let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
//! let input = InputShape { channels: 1, height: 28, width: 28 };
//! let arch = Architecture::ResNet { depth: 8, width: 4 };
//! let model = Model::new(&arch, input, 10, vb)?;
//! let logits = model.forward_t(&Tensor::zeros((2, 1, 28, 28), DType::F32, &Device::Cpu)?, false)?;
//! assert_eq!(logits.dims(), &[2, 10]);
//! assert_eq!(model.weight_names_in_order().len(), model.layer_flops(input).len());
//! # Ok::<(), candle_core::Error>(())
//! ```

pub mod attention;
mod conv;
mod init;
mod mlp;
mod network;
mod resnet;
mod vgg;

pub use init::{build_initialised, initialise_vars, kaiming_normal_weights};
pub use mlp::Mlp;
pub use network::{BATCHNORM_MOMENTUM, Network};
pub use resnet::CifarResNet;
/// The input a model receives (defined with the image sets in `sparse-data`).
pub use sparse_data::images::InputShape;
pub use vgg::VggBn;

use candle_core::{Result, Tensor};
use candle_nn::{ModuleT, VarBuilder};
use serde::{Deserialize, Serialize};
use sparse_core::kernels::WeightGrad;
use sparse_core::{LayerFlops, MaskSet};

use conv::MaskableConv;

#[cfg(test)]
mod tests;

/// Which architecture to build, with its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Architecture {
    /// Multilayer perceptron: `depth` hidden layers of `width` units.
    Mlp {
        /// Hidden units per layer.
        width: usize,
        /// Number of hidden layers.
        depth: usize,
    },
    /// CIFAR-style ResNet-(6n+2) with base width `width` (the official `cifar_resnet_N_W`).
    ResNet {
        /// Total depth, `6n + 2` (20, 32, 44, 56, 110, ...).
        depth: usize,
        /// Channels of the first stage (16 in the paper's default).
        width: usize,
    },
    /// A small VGG with batch norm: three stages of `width`, `2·width`, `4·width` channels.
    Vgg {
        /// Channels of the first stage.
        width: usize,
    },
    /// ResNet-18 with the CIFAR stem: four stages of two basic blocks, `width` to
    /// `8·width` channels (64 in the usual model).
    ResNet18 {
        /// Channels of the first stage.
        width: usize,
    },
    /// VGG-16 with batch norm: 13 convolutions, `width` to `8·width` channels (64 in
    /// the usual model).
    Vgg16 {
        /// Channels of the first block.
        width: usize,
    },
}

impl Architecture {
    /// A short name for reports, e.g. `mlp-64x2`, `resnet20-16`, `vgg-32`.
    pub fn label(&self) -> String {
        match self {
            Architecture::Mlp { width, depth } => format!("mlp-{width}x{depth}"),
            Architecture::ResNet { depth, width } => format!("resnet{depth}-{width}"),
            Architecture::Vgg { width } => format!("vgg-{width}"),
            Architecture::ResNet18 { width } => format!("resnet18-{width}"),
            Architecture::Vgg16 { width } => format!("vgg16-{width}"),
        }
    }

    /// The width multiplier (hidden units or first-stage channels).
    pub fn width(&self) -> usize {
        match self {
            Architecture::Mlp { width, .. }
            | Architecture::ResNet { width, .. }
            | Architecture::Vgg { width }
            | Architecture::ResNet18 { width }
            | Architecture::Vgg16 { width } => *width,
        }
    }
}

/// A built model of any architecture.
#[derive(Debug)]
pub enum Model {
    /// See [`Mlp`].
    Mlp(Mlp),
    /// See [`CifarResNet`].
    ResNet(CifarResNet),
    /// See [`VggBn`].
    Vgg(VggBn),
}

impl Model {
    /// Builds `arch` for `input` and `classes`, creating its parameters in `vb`.
    ///
    /// # Errors
    ///
    /// A ResNet depth that is not `6n + 2` with `n >= 1`, or a parameter `vb` cannot create.
    pub fn new(
        arch: &Architecture,
        input: InputShape,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(match arch {
            Architecture::Mlp { width, depth } => {
                Model::Mlp(Mlp::new(input.numel(), *width, *depth, classes, vb)?)
            }
            Architecture::ResNet { depth, width } => Model::ResNet(CifarResNet::new(
                *depth,
                *width,
                input.channels,
                classes,
                vb,
            )?),
            Architecture::Vgg { width } => {
                Model::Vgg(VggBn::new(*width, input.channels, classes, vb)?)
            }
            Architecture::ResNet18 { width } => {
                Model::ResNet(CifarResNet::resnet18(*width, input.channels, classes, vb)?)
            }
            Architecture::Vgg16 { width } => {
                Model::Vgg(VggBn::vgg16(*width, input.channels, classes, vb)?)
            }
        })
    }

    /// Names of the prunable weights in forward order (first layer first,
    /// classifier last): allocations such as uniform+ and ERK+ need this order.
    pub fn weight_names_in_order(&self) -> Vec<String> {
        match self {
            Model::Mlp(m) => m.weight_names_in_order(),
            Model::ResNet(m) => m.weight_names_in_order(),
            Model::Vgg(m) => m.weight_names_in_order(),
        }
    }
}

impl Model {
    /// Hands the convolutions their masks from `masks` (by weight name): a convolution
    /// whose mask has density up to [`SPARSE_CONV2D_MAX_DENSITY`](
    /// sparse_core::kernels::SPARSE_CONV2D_MAX_DENSITY) then computes over its active
    /// weights only ([`SparseConv2d`](sparse_core::kernels::SparseConv2d) over the same
    /// weight), the others stay dense. Call it after the masks are drawn and after
    /// every topology change; returns how many convolutions run sparse. Their weight
    /// gradient is masked (zero at pruned positions, which the masked weights never
    /// use): before a step whose update ranks pruned positions by gradient, ask for
    /// the dense one with [`set_conv_weight_grad`](Self::set_conv_weight_grad). The
    /// MLP has no convolutions.
    pub fn set_sparse_masks(&mut self, masks: &dyn MaskSet) -> Result<usize> {
        let mut sparse = 0;
        for (name, conv) in self.convs_mut() {
            sparse += usize::from(conv.set_mask(masks.mask_of(&name))?);
        }
        Ok(sparse)
    }

    /// Sets the weight-gradient mode of every sparse convolution.
    pub fn set_conv_weight_grad(&mut self, mode: WeightGrad) {
        for (_, conv) in self.convs_mut() {
            conv.set_weight_grad(mode);
        }
    }

    /// Every convolution with its weight name, forward order.
    fn convs_mut(&mut self) -> Vec<(String, &mut MaskableConv)> {
        match self {
            Model::Mlp(_) => Vec::new(),
            Model::ResNet(m) => m.convs_mut(),
            Model::Vgg(m) => m.convs_mut(),
        }
    }

    /// FLOP descriptions of every prunable layer for inputs of shape `input`.
    pub fn layer_flops(&self, input: InputShape) -> Vec<LayerFlops> {
        match self {
            Model::Mlp(m) => m.layer_flops(),
            Model::ResNet(m) => m.layer_flops(input.height, input.width),
            Model::Vgg(m) => m.layer_flops(input.height, input.width),
        }
    }
}

impl ModuleT for Model {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Model::Mlp(m) => m.forward_t(xs, train),
            Model::ResNet(m) => m.forward_t(xs, train),
            Model::Vgg(m) => m.forward_t(xs, train),
        }
    }
}
