//! The SLaK / ConvNeXt network of the official `SLaK.py` on candle: a patchify stem,
//! stages of blocks (a large-kernel depthwise layer of parallel branches, each a
//! depthwise convolution and BatchNorm; then channels-last LayerNorm, a pointwise MLP
//! with GELU and a layer scale, with a residual), LayerNorm-and-2×2 downsamplers, and
//! global average pooling, LayerNorm and a linear head.
//!
//! Depthwise branches run on sparse-core's kernels ("same" padding per axis, as the
//! official cutlass kernel pads); a masked branch runs over its active taps only and
//! follows the registry's masks after each topology update ([`SlakNet::follow_masks`]).
//! Variable names mirror the official state dict.

use std::cell::RefCell;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use sparse_core::SparseParams;
use sparse_core::init::Init;
use sparse_core::kernels::{
    Activation, Conv2dParams, FusedBatchNorm, SparseDepthwiseConv2d, SparseLayer, WeightGrad,
    conv2d, depthwise_conv2d, layer_norm, linear, sync_masks,
};
use sparse_repro::models::initialise_vars;
use sparse_repro::rng::dropout_mask;

use crate::error::Result;
use crate::spec::{Branch, ModelSpec};

/// LayerNorm's epsilon in every SLaK LayerNorm.
pub const LN_EPS: f64 = 1e-6;
/// BatchNorm's epsilon in the depthwise branches.
pub const BN_EPS: f64 = 1e-5;
/// The standard deviation of the (truncated at ±2, i.e. ±100σ: plain) normal
/// initialisation of every convolution and linear weight.
pub const INIT_STD: f64 = 0.02;

/// A LayerNorm's weight and bias.
#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

impl Norm {
    fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    /// Over the last dimension.
    fn last(&self, x: &Tensor) -> Result<Tensor> {
        Ok(layer_norm(x, &self.weight, &self.bias, LN_EPS)?)
    }

    /// Over the channels of `[B, C, H, W]` (`data_format="channels_first"`).
    fn channels_first(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.last(&x.permute((0, 2, 3, 1))?)?;
        Ok(y.permute((0, 3, 1, 2))?)
    }
}

/// A convolution or linear layer's weight and bias.
#[derive(Debug, Clone)]
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn conv(c_in: usize, c_out: usize, k: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get((c_out, c_in, k, k), "weight")?,
            bias: vb.get(c_out, "bias")?,
        })
    }

    fn linear(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get((c_out, c_in), "weight")?,
            bias: vb.get(c_out, "bias")?,
        })
    }

    fn patchify(&self, x: &Tensor, k: usize) -> Result<Tensor> {
        Ok(conv2d(
            x,
            &self.weight,
            Some(&self.bias),
            Conv2dParams {
                stride: k,
                padding: 0,
            },
        )?)
    }

    fn apply(&self, x: &Tensor, activation: Activation) -> Result<Tensor> {
        Ok(linear(x, &self.weight, Some(&self.bias), activation)?)
    }
}

/// One depthwise branch: a bias-free depthwise convolution and BatchNorm.
#[derive(Debug)]
struct DwBranch {
    /// `<prefix>.conv.weight`, `[C, 1, kh, kw]`.
    name: String,
    weight: Tensor,
    sparse: Option<SparseDepthwiseConv2d>,
    bn: FusedBatchNorm,
}

impl DwBranch {
    fn new(c: usize, (kh, kw): (usize, usize), vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            name: format!("{}.conv.weight", vb.prefix()),
            weight: vb.pp("conv").get((c, 1, kh, kw), "weight")?,
            sparse: None,
            bn: FusedBatchNorm::new(c, BN_EPS, vb.pp("bn"))?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = match &self.sparse {
            Some(sparse) => sparse.forward(x)?,
            None => depthwise_conv2d(x, &self.weight, None)?,
        };
        Ok(self.bn.forward_t(&y, train)?)
    }
}

/// A block: large-kernel depthwise layer, then the channels-last MLP with layer scale,
/// added to the input (after stochastic depth).
#[derive(Debug)]
struct Block {
    branches: Vec<DwBranch>,
    norm: Norm,
    pwconv1: Dense,
    pwconv2: Dense,
    gamma: Tensor,
    drop_path: f64,
}

impl Block {
    fn new(
        spec: &ModelSpec,
        stage: usize,
        c: usize,
        drop_path: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (k, n) = (spec.kernel_size[stage], spec.small());
        let large = vb.pp("large_kernel");
        let branches = spec
            .branches(stage)
            .into_iter()
            .map(|b: Branch| DwBranch::new(c, b.kernel(k, n), large.pp(b.name())))
            .collect::<Result<_>>()?;
        Ok(Self {
            branches,
            norm: Norm::new(c, vb.pp("norm"))?,
            pwconv1: Dense::linear(c, 4 * c, vb.pp("pwconv1"))?,
            pwconv2: Dense::linear(4 * c, c, vb.pp("pwconv2"))?,
            gamma: vb.get_with_hints(c, "gamma", candle_nn::Init::Const(spec.layer_scale))?,
            drop_path,
        })
    }

    fn forward(&self, x: &Tensor, train: bool, rng: &RefCell<ChaCha8Rng>) -> Result<Tensor> {
        let mut y = self.branches[0].forward(x, train)?;
        for branch in &self.branches[1..] {
            y = (y + branch.forward(x, train)?)?;
        }
        let y = self.norm.last(&y.permute((0, 2, 3, 1))?)?;
        let y = self.pwconv1.apply(&y, Activation::Identity)?.gelu_erf()?;
        let y = self.pwconv2.apply(&y, Activation::Identity)?;
        let y = y.broadcast_mul(&self.gamma)?.permute((0, 3, 1, 2))?;
        let y = if train && self.drop_path > 0.0 {
            let keep = 1.0 - self.drop_path;
            let mask = dropout_mask(
                &mut *rng.borrow_mut(),
                (x.dim(0)?, 1, 1, 1),
                self.drop_path as f32,
                x.device(),
            )?;
            (y.broadcast_mul(&mask)? / keep)?
        } else {
            y
        };
        Ok((x + y)?)
    }
}

/// A downsampler: the stem (patchify convolution then LayerNorm) or a later one
/// (LayerNorm then a 2×2 stride-2 convolution).
#[derive(Debug)]
struct Downsample {
    norm: Norm,
    conv: Dense,
    patch: usize,
    stem: bool,
}

impl Downsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.stem {
            self.norm
                .channels_first(&self.conv.patchify(x, self.patch)?)
        } else {
            self.conv
                .patchify(&self.norm.channels_first(x)?, self.patch)
        }
    }
}

/// The network.
#[derive(Debug)]
pub struct SlakNet {
    spec: ModelSpec,
    downsample: Vec<Downsample>,
    stages: Vec<Vec<Block>>,
    norm: Norm,
    head: Dense,
    drop_rng: RefCell<ChaCha8Rng>,
}

impl SlakNet {
    /// Builds `spec` in `varmap` (weights `N(0, 0.02²)`, biases 0, norms 1 and 0,
    /// `γ` the layer scale), drawing from `init` and keeping `drop_rng` for
    /// stochastic depth.
    pub fn new(
        spec: &ModelSpec,
        varmap: &VarMap,
        init: &mut ChaCha8Rng,
        drop_rng: ChaCha8Rng,
    ) -> Result<Self> {
        spec.validate()?;
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let widths = spec.widths();
        let total_blocks: usize = spec.depths.iter().sum();
        let rates: Vec<f64> = (0..total_blocks)
            .map(|i| {
                if total_blocks > 1 {
                    spec.drop_path * i as f64 / (total_blocks - 1) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let mut downsample = Vec::new();
        let mut stages = Vec::new();
        let mut block_index = 0;
        for (i, &c) in widths.iter().enumerate() {
            let ds = vb.pp(format!("downsample_layers.{i}"));
            downsample.push(if i == 0 {
                Downsample {
                    conv: Dense::conv(spec.in_chans, c, spec.stem, ds.pp("0"))?,
                    norm: Norm::new(c, ds.pp("1"))?,
                    patch: spec.stem,
                    stem: true,
                }
            } else {
                Downsample {
                    norm: Norm::new(widths[i - 1], ds.pp("0"))?,
                    conv: Dense::conv(widths[i - 1], c, 2, ds.pp("1"))?,
                    patch: 2,
                    stem: false,
                }
            });
            let mut blocks = Vec::new();
            for j in 0..spec.depths[i] {
                let prefix = vb.pp(format!("stages.{i}.{j}"));
                blocks.push(Block::new(spec, i, c, rates[block_index], prefix)?);
                block_index += 1;
            }
            stages.push(blocks);
        }
        let last = widths[widths.len() - 1];
        let net = Self {
            spec: spec.clone(),
            downsample,
            stages,
            norm: Norm::new(last, vb.pp("norm"))?,
            head: Dense::linear(last, spec.num_classes, vb.pp("head"))?,
            drop_rng: RefCell::new(drop_rng),
        };
        initialise_vars(varmap, init, |shape| {
            (shape.len() >= 2).then_some(Init::Normal {
                mean: 0.0,
                std: INIT_STD,
            })
        })?;
        // biases start at 0 (timm's `_init_weights`), not PyTorch's uniform
        for (name, var) in sparse_core::optim::trainable_vars(varmap) {
            let is_bias = name.ends_with(".bias");
            let is_norm = sparse_core::selection::is_norm(&name);
            if is_bias && !is_norm {
                var.set(&var.zeros_like()?)?;
            }
        }
        Ok(net)
    }

    /// The network's shape.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The last stage's feature map `[B, C, H', W']` (before pooling): what the
    /// effective receptive field is measured on.
    pub fn features_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (ds, blocks) in self.downsample.iter().zip(&self.stages) {
            h = ds.forward(&h)?;
            for block in blocks {
                h = block.forward(&h, train, &self.drop_rng)?;
            }
        }
        Ok(h)
    }

    /// Class scores `[B, classes]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let pooled = self.features_t(x, train)?.mean((2, 3))?;
        self.head
            .apply(&self.norm.last(&pooled)?, Activation::Identity)
    }

    fn branches_mut(&mut self) -> impl Iterator<Item = &mut DwBranch> {
        self.stages
            .iter_mut()
            .flatten()
            .flat_map(|b| b.branches.iter_mut())
    }

    /// Runs every depthwise branch that has a mask in `params` over its active taps
    /// (a [`SparseDepthwiseConv2d`] over the same weight tensor, weight gradient
    /// `grad`); the others stay dense. Returns how many branches run sparse.
    pub fn attach_masks(&mut self, params: &SparseParams, grad: WeightGrad) -> Result<usize> {
        let mut attached = 0;
        for branch in self.branches_mut() {
            branch.sparse = match params.iter().find(|p| p.name == branch.name) {
                Some(p) => {
                    attached += 1;
                    Some(
                        SparseDepthwiseConv2d::new(branch.weight.clone(), &p.mask)?
                            .with_weight_grad(grad)
                            .with_name(branch.name.clone()),
                    )
                }
                None => None,
            };
        }
        Ok(attached)
    }

    /// Hands the registry's masks to the sparse branches after a topology update;
    /// returns how many changed.
    pub fn follow_masks(&mut self, params: &SparseParams) -> Result<usize> {
        let mut layers: Vec<&mut dyn SparseLayer> = self
            .branches_mut()
            .filter_map(|b| b.sparse.as_mut().map(|s| s as &mut dyn SparseLayer))
            .collect();
        Ok(sync_masks(&mut layers, params)?)
    }

    /// The names of the depthwise branch weights, in order.
    pub fn branch_weight_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .flatten()
            .flat_map(|b| b.branches.iter().map(|br| br.name.clone()))
            .collect()
    }
}
