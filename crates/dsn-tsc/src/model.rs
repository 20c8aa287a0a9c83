//! The SCNN of the official code (`model/SCNN.py`, methods notes A §2.2).
//!
//! ```text
//! module i:  [1x1 bottleneck in -> C, no bias; skipped when in == 1]
//!            -> pad (right replicate K-1, or zero) -> conv K, C or in -> 3C, no bias
//!            -> BatchNorm -> ReLU
//! head:      AdaptiveAvgPool1d(50) -> 1x1 conv 3C -> classes, no bias -> BatchNorm
//!            -> global average pool -> log_softmax
//! ```
//! Parameters live in a `VarMap` under stable names (`blocks.<i>.conv.weight` for
//! the kernel-`K` convolutions, the only sparse ones). A sparse weight holds exact
//! zeros at its inactive positions and is used raw (masked-dense), so its
//! gradient is dense, as in the official PyTorch code.

use candle_core::{D, DType, Device, Module, ModuleT, Tensor};
use candle_nn::{BatchNormConfig, VarBuilder, VarMap};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sparse_core::SparseParams;
use sparse_core::batchnorm::sorted_vars;
use sparse_core::flops::{LayerFlops, LayerShape};
use sparse_core::init::torch_default_layer;
use sparse_core::kernels::FusedBatchNorm;
use sparse_core::kernels::{
    self, Conv1dPadding, Conv2dParams, SparseConv1d, SparseLayer, WeightGrad,
};

use crate::config::{OUT_NUM, Padding, TrainConfig};
use crate::error::{Result, invalid};

/// Everything needed to rebuild the network (stored in checkpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Input channels (dimensions of the series).
    pub in_channels: usize,
    /// Classes.
    pub num_classes: usize,
    /// `ch_size`: modules output `3 · channels`.
    pub channels: usize,
    /// Number of modules.
    pub depth: usize,
    /// Kernel of the large convolutions.
    pub kernel: usize,
    /// Their padding.
    pub padding: Padding,
    /// Output length of the head's adaptive pool.
    pub pooled_len: usize,
}

impl ModelSpec {
    /// The network of `config`'s arm for data of `in_channels` and `num_classes`.
    pub fn for_config(
        config: &TrainConfig,
        in_channels: usize,
        num_classes: usize,
    ) -> Result<Self> {
        if in_channels == 0 {
            return Err(invalid("in_channels", 0, "must be at least 1"));
        }
        if num_classes < 2 {
            return Err(invalid("num_classes", num_classes, "must be at least 2"));
        }
        Ok(Self {
            in_channels,
            num_classes,
            channels: config.channels(),
            depth: config.depth(),
            kernel: config.arm_kernel(),
            padding: config.padding(),
            pooled_len: config.pooled_len(),
        })
    }

    /// Output channels of every module.
    pub fn out_channels(&self) -> usize {
        OUT_NUM * self.channels
    }

    /// Input channels of module `i`.
    fn module_in(&self, i: usize) -> usize {
        if i == 0 {
            self.in_channels
        } else {
            self.out_channels()
        }
    }

    /// Name of module `i`'s kernel convolution weight (a sparse one in sparse arms).
    pub fn kernel_conv_name(i: usize) -> String {
        format!("blocks.{i}.conv.weight")
    }

    /// The kernel convolutions' names and shapes `[out, in, kernel]`, in order.
    pub fn kernel_convs(&self) -> Vec<(String, [usize; 3])> {
        (0..self.depth)
            .map(|i| {
                let conv_in = if self.module_in(i) == 1 {
                    1
                } else {
                    self.channels
                };
                (
                    Self::kernel_conv_name(i),
                    [self.out_channels(), conv_in, self.kernel],
                )
            })
            .collect()
    }

    /// Every weight layer for FLOP counting, for series of `length` samples.
    pub fn layer_flops(&self, length: usize) -> Vec<LayerFlops> {
        let conv = |in_channels, out_channels, kernel, out_len| LayerShape::Conv1d {
            in_channels,
            out_channels,
            kernel,
            groups: 1,
            out_len,
            bias: false,
        };
        let mut layers = Vec::new();
        for (i, (name, [out, conv_in, k])) in self.kernel_convs().into_iter().enumerate() {
            if self.module_in(i) > 1 {
                layers.push(LayerFlops::new(
                    format!("blocks.{i}.bottleneck.weight"),
                    conv(self.module_in(i), self.channels, 1, length),
                ));
            }
            layers.push(LayerFlops::new(name, conv(conv_in, out, k, length)));
        }
        layers.push(LayerFlops::new(
            "head.conv.weight",
            conv(self.out_channels(), self.num_classes, 1, self.pooled_len),
        ));
        layers
    }
}

/// One module: optional bottleneck, kernel convolution, BatchNorm, ReLU.
#[derive(Debug, Clone)]
struct InceptionModule {
    bottleneck: Option<Tensor>,
    conv: Tensor,
    /// The sparse kernel over the conv's active taps, when masks are attached.
    sparse: Option<SparseConv1d>,
    bn: FusedBatchNorm,
    kernel: usize,
    padding: Padding,
}

impl InceptionModule {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = match &self.bottleneck {
            Some(w) => pointwise(x, w)?,
            None => x.clone(),
        };
        let x = match &self.sparse {
            Some(layer) => layer.forward(&x).map_err(candle_core::Error::wrap)?,
            None => {
                let k = self.kernel;
                let x = match self.padding {
                    Padding::Replicate => x.pad_with_same(D::Minus1, 0, k - 1)?,
                    Padding::Zero => x.pad_with_zeros(D::Minus1, (k - 1) / 2, k / 2)?,
                };
                conv1d(&x, &self.conv)?
            }
        };
        self.bn.forward_relu_t(&x, train)
    }
}

/// The SCNN of DSN.
#[derive(Debug, Clone)]
pub struct Scnn {
    spec: ModelSpec,
    modules: Vec<InceptionModule>,
    head_conv: Tensor,
    head_bn: FusedBatchNorm,
}

fn bn_config() -> BatchNormConfig {
    BatchNormConfig {
        eps: 1e-5,
        remove_mean: true,
        affine: true,
        momentum: 0.1,
    }
}

impl Scnn {
    /// Builds the network's variables in `varmap` and initialises every
    /// convolution as PyTorch does (`U(±1/√fan_in)`), in name order from `rng`.
    pub fn new(
        spec: ModelSpec,
        varmap: &VarMap,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let model = Self::build(spec, varmap, device)?;
        for (name, var) in sorted_vars(varmap) {
            if name.ends_with("conv.weight") || name.ends_with("bottleneck.weight") {
                torch_default_layer(&var, None, rng)?;
            }
        }
        Ok(model)
    }

    /// Builds the network over the variables of `varmap` (created if missing,
    /// e.g. before a checkpoint is loaded into them), without initialising them.
    pub fn build(spec: ModelSpec, varmap: &VarMap, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, device);
        let zero = candle_nn::Init::Const(0.0);
        let mut modules = Vec::with_capacity(spec.depth);
        for (i, (_, shape)) in spec.kernel_convs().into_iter().enumerate() {
            let vb = vb.pp("blocks").pp(i);
            let module_in = spec.module_in(i);
            let bottleneck = (module_in > 1)
                .then(|| {
                    vb.pp("bottleneck").get_with_hints(
                        (spec.channels, module_in, 1),
                        "weight",
                        zero,
                    )
                })
                .transpose()?;
            let conv = vb
                .pp("conv")
                .get_with_hints(shape.to_vec(), "weight", zero)?;
            let bn = FusedBatchNorm::new(spec.out_channels(), bn_config(), vb.pp("bn"))?;
            modules.push(InceptionModule {
                bottleneck,
                conv,
                sparse: None,
                bn,
                kernel: spec.kernel,
                padding: spec.padding,
            });
        }
        let head = vb.pp("head");
        let head_conv = head.pp("conv").get_with_hints(
            (spec.num_classes, spec.out_channels(), 1),
            "weight",
            zero,
        )?;
        let head_bn = FusedBatchNorm::new(spec.num_classes, bn_config(), head.pp("bn"))?;
        Ok(Self {
            spec,
            modules,
            head_conv,
            head_bn,
        })
    }

    /// The network's description.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Runs every kernel convolution that has a mask in `params` through
    /// sparse-core's [`SparseConv1d`] over its active taps (which itself falls back
    /// to a dense convolution above its density threshold); `weight_grad` chooses the
    /// gradient it returns. After a topology update, [`Scnn::follow_masks`] brings the
    /// attached layers up to date.
    pub fn attach_masks(&mut self, params: &SparseParams, weight_grad: WeightGrad) -> Result<()> {
        let padding = match self.spec.padding {
            Padding::Replicate => Conv1dPadding::ReplicateRight,
            Padding::Zero => Conv1dPadding::Zeros,
        };
        for (i, module) in self.modules.iter_mut().enumerate() {
            module.sparse = match params.get(&ModelSpec::kernel_conv_name(i)) {
                Some(p) => Some(
                    SparseConv1d::new(module.conv.clone(), &p.mask, padding)?
                        .with_weight_grad(weight_grad)
                        .with_name(ModelSpec::kernel_conv_name(i)),
                ),
                None => None,
            };
        }
        Ok(())
    }

    /// Gives each attached sparse convolution the mask its weight now has in
    /// `params` (sparse-core's [`kernels::sync_masks`]); returns how many changed.
    pub fn follow_masks(&mut self, params: &SparseParams) -> Result<usize> {
        let mut layers: Vec<&mut dyn SparseLayer> = self
            .modules
            .iter_mut()
            .filter_map(|m| m.sparse.as_mut().map(|l| l as &mut dyn SparseLayer))
            .collect();
        Ok(kernels::sync_masks(&mut layers, params)?)
    }

    /// Log-probabilities `[batch, classes]` of inputs `[batch, in_channels, length]`;
    /// `train` selects batch statistics (and updates the running ones).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for module in &self.modules {
            x = module.forward_t(&x, train)?;
        }
        let length = x.dim(D::Minus1)?;
        let pool = adaptive_avg_pool_matrix(length, self.spec.pooled_len, x.device())?;
        let x = x.broadcast_matmul(&pool)?;
        let x = pointwise(&x, &self.head_conv)?;
        let x = self.head_bn.forward_t(&x, train)?;
        candle_nn::ops::log_softmax(&x.mean(D::Minus1)?, D::Minus1)
    }
}

impl Module for Scnn {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(xs, false)
    }
}

/// A valid (unpadded) 1-D convolution, `x [b, in, l]`, `w [out, in, k]`, as a
/// conv2d on a height-1 image through sparse-core's im2col + gemm kernel: candle
/// 0.11.1's conv1d backward gives wrong weight gradients on CPU (checked against
/// finite differences in `tests/gradients.rs`).
pub fn conv1d(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    kernels::conv2d(
        &x.unsqueeze(2)?,
        &w.unsqueeze(2)?,
        None,
        Conv2dParams::default(),
    )
    .map_err(candle_core::Error::wrap)?
    .squeeze(2)
}

/// A 1×1 convolution as a matrix product: `w [out, in, 1]`, `x [b, in, l]`.
fn pointwise(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    w.squeeze(2)?.broadcast_matmul(x)
}

/// The `[length, out]` matrix of PyTorch's `AdaptiveAvgPool1d(out)`: output `i`
/// averages inputs `⌊i·L/out⌋ .. ⌈(i+1)·L/out⌉` (bins overlap when `L < out`).
pub fn adaptive_avg_pool_matrix(
    length: usize,
    out: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut m = vec![0f32; length * out];
    for i in 0..out {
        let start = i * length / out;
        let end = ((i + 1) * length).div_ceil(out);
        let w = 1.0 / (end - start) as f32;
        for t in start..end {
            m[t * out + i] = w;
        }
    }
    Tensor::from_vec(m, (length, out), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arm;
    use rand::SeedableRng;

    #[test]
    fn adaptive_pool_matches_pytorch_bins() {
        let dev = Device::Cpu;
        // L = 5 -> 3 bins: [0,2), [1,4), [3,5)
        let x = Tensor::new(&[[[1f32, 2., 3., 4., 5.]]], &dev).unwrap();
        let y = x
            .broadcast_matmul(&adaptive_avg_pool_matrix(5, 3, &dev).unwrap())
            .unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.5, 3.0, 4.5]
        );
        // L = 2 -> 4 bins: each input repeated
        let x = Tensor::new(&[[[1f32, 3.]]], &dev).unwrap();
        let y = x
            .broadcast_matmul(&adaptive_avg_pool_matrix(2, 4, &dev).unwrap())
            .unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 1., 3., 3.]
        );
    }

    #[test]
    fn shapes_names_and_replicate_padding() {
        let config = TrainConfig::builder()
            .arm(Arm::Dsn)
            .channels(2)
            .depth(2)
            .kernel(6)
            .small_kernel(2)
            .build()
            .unwrap();
        let spec = ModelSpec::for_config(&config, 3, 4).unwrap();
        assert_eq!(
            spec.kernel_convs(),
            vec![
                ("blocks.0.conv.weight".to_string(), [6, 2, 6]),
                ("blocks.1.conv.weight".to_string(), [6, 2, 6])
            ]
        );
        let varmap = VarMap::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let model = Scnn::new(spec.clone(), &varmap, &Device::Cpu, &mut rng).unwrap();
        let names: Vec<String> = sorted_vars(&varmap).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"blocks.0.bottleneck.weight".to_string()));
        assert!(names.contains(&"head.bn.running_var".to_string()));
        let x = Tensor::zeros((5, 3, 7), DType::F32, &Device::Cpu).unwrap();
        let y = model.forward_t(&x, true).unwrap();
        assert_eq!(y.dims(), &[5, 4]);
        // rows are log-probabilities
        let p: Vec<f32> = y.exp().unwrap().sum(1).unwrap().to_vec1().unwrap();
        assert!(p.iter().all(|s| (s - 1.0).abs() < 1e-5));
        // univariate input: no bottleneck in module 0
        let spec1 = ModelSpec::for_config(&config, 1, 2).unwrap();
        assert_eq!(spec1.kernel_convs()[0].1, [6, 1, 6]);
        assert_eq!(spec1.layer_flops(10).len(), 4);
    }

    #[test]
    fn right_replicate_padding_looks_forward() {
        // one module, 1 -> 3 channels, kernel 3; the weight picks tap 2 only, so
        // output t = x[t+2], and the right end repeats the last value
        let config = TrainConfig::builder()
            .channels(1)
            .depth(1)
            .kernel(3)
            .small_kernel(1)
            .build()
            .unwrap();
        let spec = ModelSpec::for_config(&config, 1, 2).unwrap();
        let module = InceptionModule {
            sparse: None,
            bottleneck: None,
            conv: Tensor::new(&[[[0f32, 0., 1.]]], &Device::Cpu).unwrap(),
            bn: FusedBatchNorm::new(1, bn_config(), VarBuilder::zeros(DType::F32, &Device::Cpu))
                .unwrap(),
            kernel: spec.kernel,
            padding: Padding::Replicate,
        };
        let x = Tensor::new(&[[[1f32, 2., 3., 4.]]], &Device::Cpu).unwrap();
        let padded = x.pad_with_same(D::Minus1, 0, 2).unwrap();
        let y = padded.conv1d(&module.conv, 0, 1, 1, 1).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![3., 4., 4., 4.]
        );
        let _ = module.forward_t(&x, false).unwrap();
    }
}
