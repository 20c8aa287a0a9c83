//! Parameter, density and FLOP accounting.
//!
//! Conventions (as RigL and ITOP report them):
//! - one multiply-add is **2 FLOPs**; a bias add is 1 FLOP per output value;
//! - a sparse layer costs `2·nnz(W)` per output position, as if the zeros were skipped
//!   (theoretical FLOPs: mask emulation gives no wall-clock speed-up);
//! - counts are per sample (batch size 1); activations, normalisation and pooling
//!   are not counted. SLaK's `FLOPs_counter.py` differs: it also counts BN
//!   (`2·numel`), ReLU and LayerNorm, and counts `Linear` layers dense.
//! - training: a sparse step costs `3·f_S` (forward, backward to inputs, backward to
//!   weights); a step that needs the dense weight gradient (RigL's connectivity
//!   update) costs `2·f_S + f_D` (RigL paper, §4 "(3 f_S ΔT + 2 f_S + f_D)/(ΔT + 1)");
//!   dense phases (gradual pruning) cost `3·f_D`, i.e. density 1.

use std::collections::BTreeMap;

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::mask::Mask;
use crate::mask_set::MaskSet;
#[cfg(doc)]
use crate::registry::SparseParams;
use crate::selection::trainable_vars;

/// Parameter count of one tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Name in the `VarMap`.
    pub name: String,
    /// All entries.
    pub numel: usize,
    /// Existing (unmasked) entries: the mask's nnz, or `numel` for dense tensors.
    pub nnz: usize,
    /// Whether the tensor is masked.
    pub masked: bool,
}

impl ParamCount {
    /// `nnz / numel` (1 for an empty tensor).
    pub fn density(&self) -> f64 {
        ratio(self.nnz as f64, self.numel as f64)
    }
}

/// Per-tensor and total parameter counts of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamReport {
    /// One entry per trainable tensor, in name order (BN running stats excluded).
    pub tensors: Vec<ParamCount>,
}

impl ParamReport {
    /// Counts every `VarMap` entry except BatchNorm running statistics; masked
    /// tensors count their mask's non-zeros. `masks` is any [`MaskSet`]: the
    /// engine's [`SparseParams`], a score subnetwork's masks, ...
    pub fn new<M: MaskSet + ?Sized>(varmap: &VarMap, masks: &M) -> Self {
        let tensors = trainable_vars(varmap)
            .into_iter()
            .map(|(name, var)| {
                let numel = var.elem_count();
                let (nnz, masked) = match masks.mask_of(&name) {
                    Some(mask) => (mask.nnz(), true),
                    None => (numel, false),
                };
                ParamCount {
                    name,
                    numel,
                    nnz,
                    masked,
                }
            })
            .collect();
        Self { tensors }
    }

    /// Existing parameters (masked nnz + dense tensors).
    pub fn total_params(&self) -> usize {
        self.tensors.iter().map(|t| t.nnz).sum()
    }

    /// Parameters of the dense model.
    pub fn dense_params(&self) -> usize {
        self.tensors.iter().map(|t| t.numel).sum()
    }

    /// `total_params / dense_params` (1 for an empty model).
    pub fn total_density(&self) -> f64 {
        ratio(self.total_params() as f64, self.dense_params() as f64)
    }

    /// Density over masked tensors only (what papers call "the" density).
    pub fn masked_density(&self) -> f64 {
        let (nnz, numel) = self
            .tensors
            .iter()
            .filter(|t| t.masked)
            .fold((0, 0), |(a, b), t| (a + t.nnz, b + t.numel));
        ratio(nnz as f64, numel as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 1.0 } else { a / b }
}

/// The shape of a weight layer, enough to count its FLOPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerShape {
    /// `y = W x + b`, `W: [out, in]`.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether there is a bias.
        bias: bool,
    },
    /// 1-D convolution, `W: [out, in/groups, k]`.
    Conv1d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel length.
        kernel: usize,
        /// Groups.
        groups: usize,
        /// Output length.
        out_len: usize,
        /// Whether there is a bias.
        bias: bool,
    },
    /// 2-D convolution, `W: [out, in/groups, kh, kw]`.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel height.
        kernel_h: usize,
        /// Kernel width.
        kernel_w: usize,
        /// Groups (depthwise: `groups == in_channels`).
        groups: usize,
        /// Output height.
        out_h: usize,
        /// Output width.
        out_w: usize,
        /// Whether there is a bias.
        bias: bool,
    },
}

/// A named weight layer for FLOP counting; `weight` is the weight's `VarMap` name
/// (the key of its mask in [`SparseParams`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerFlops {
    /// Name of the layer's weight tensor.
    pub weight: String,
    /// The layer's shape.
    pub shape: LayerShape,
}

impl LayerFlops {
    /// A layer description.
    pub fn new(weight: impl Into<String>, shape: LayerShape) -> Self {
        Self {
            weight: weight.into(),
            shape,
        }
    }

    /// Entries of the dense weight.
    pub fn weight_numel(&self) -> usize {
        match self.shape {
            LayerShape::Linear {
                in_features,
                out_features,
                ..
            } => in_features * out_features,
            LayerShape::Conv1d {
                in_channels,
                out_channels,
                kernel,
                groups,
                ..
            } => out_channels * (in_channels / groups.max(1)) * kernel,
            LayerShape::Conv2d {
                in_channels,
                out_channels,
                kernel_h,
                kernel_w,
                groups,
                ..
            } => out_channels * (in_channels / groups.max(1)) * kernel_h * kernel_w,
        }
    }

    /// Positions at which the weight is applied (1 for Linear).
    pub fn out_positions(&self) -> usize {
        match self.shape {
            LayerShape::Linear { .. } => 1,
            LayerShape::Conv1d { out_len, .. } => out_len,
            LayerShape::Conv2d { out_h, out_w, .. } => out_h * out_w,
        }
    }

    fn bias_flops(&self) -> f64 {
        let (bias, outs) = match self.shape {
            LayerShape::Linear {
                bias, out_features, ..
            } => (bias, out_features),
            LayerShape::Conv1d {
                bias, out_channels, ..
            }
            | LayerShape::Conv2d {
                bias, out_channels, ..
            } => (bias, out_channels),
        };
        if bias {
            (outs * self.out_positions()) as f64
        } else {
            0.0
        }
    }

    /// Forward FLOPs with `nnz` existing weights: `2·nnz·positions (+ bias)`.
    pub fn flops_with_nnz(&self, nnz: f64) -> f64 {
        2.0 * nnz * self.out_positions() as f64 + self.bias_flops()
    }

    /// Forward FLOPs of the dense layer.
    pub fn dense_flops(&self) -> f64 {
        self.flops_with_nnz(self.weight_numel() as f64)
    }

    /// Forward FLOPs at `density`.
    pub fn flops_at_density(&self, density: f64) -> f64 {
        self.flops_with_nnz(density * self.weight_numel() as f64)
    }
}

/// Inference FLOPs of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFlopsReport {
    /// Weight name.
    pub weight: String,
    /// Density of the weight.
    pub density: f64,
    /// Dense forward FLOPs.
    pub dense: f64,
    /// Sparse forward FLOPs.
    pub sparse: f64,
}

/// Inference FLOPs of a model, per sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceFlops {
    /// Per layer, in the given order.
    pub layers: Vec<LayerFlopsReport>,
}

impl InferenceFlops {
    /// Counts `layers` with the masks in `masks`, any [`MaskSet`] (layers without a
    /// mask are dense).
    pub fn new<M: MaskSet + ?Sized>(layers: &[LayerFlops], masks: &M) -> Self {
        let layers = layers
            .iter()
            .map(|l| {
                let nnz = masks
                    .mask_of(&l.weight)
                    .map(Mask::nnz)
                    .unwrap_or_else(|| l.weight_numel());
                LayerFlopsReport {
                    weight: l.weight.clone(),
                    density: ratio(nnz as f64, l.weight_numel() as f64),
                    dense: l.dense_flops(),
                    sparse: l.flops_with_nnz(nnz as f64),
                }
            })
            .collect();
        Self { layers }
    }

    /// Total dense FLOPs.
    pub fn dense_total(&self) -> f64 {
        self.layers.iter().map(|l| l.dense).sum()
    }

    /// Total sparse FLOPs.
    pub fn sparse_total(&self) -> f64 {
        self.layers.iter().map(|l| l.sparse).sum()
    }

    /// Sparse over dense.
    pub fn relative(&self) -> f64 {
        ratio(self.sparse_total(), self.dense_total())
    }
}

/// What a training step computes, for [`TrainingFlops::record_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    /// Sparse forward and backward: `3·f_S`.
    Sparse,
    /// Sparse step that also needs the dense weight gradient (RigL update): `2·f_S + f_D`.
    DenseGradient,
}

/// Training FLOPs of a whole run, fed one step at a time with the current densities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingFlops {
    layers: Vec<LayerFlops>,
    total: f64,
    dense_total: f64,
    steps: u64,
}

impl TrainingFlops {
    /// An empty accumulator over `layers`.
    pub fn new(layers: Vec<LayerFlops>) -> Self {
        Self {
            layers,
            total: 0.0,
            dense_total: 0.0,
            steps: 0,
        }
    }

    /// Forward FLOPs per sample at `densities` (weight name → density; missing
    /// names are dense, so a dense phase is an empty map).
    pub fn forward_flops(&self, densities: &BTreeMap<String, f64>) -> f64 {
        self.layers
            .iter()
            .map(|l| l.flops_at_density(densities.get(&l.weight).copied().unwrap_or(1.0)))
            .sum()
    }

    /// Dense forward FLOPs per sample.
    pub fn dense_forward_flops(&self) -> f64 {
        self.layers.iter().map(LayerFlops::dense_flops).sum()
    }

    /// Adds one step over `samples` samples at the current `densities`
    /// (e.g. [`SparseParams::densities`]).
    pub fn record_step(&mut self, densities: &BTreeMap<String, f64>, kind: StepKind, samples: u64) {
        let f_s = self.forward_flops(densities);
        let f_d = self.dense_forward_flops();
        let per_sample = match kind {
            StepKind::Sparse => 3.0 * f_s,
            StepKind::DenseGradient => 2.0 * f_s + f_d,
        };
        self.total += per_sample * samples as f64;
        self.dense_total += 3.0 * f_d * samples as f64;
        self.steps += 1;
    }

    /// Recorded steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Total training FLOPs so far.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// FLOPs of dense training over the same steps and samples.
    pub fn dense_total(&self) -> f64 {
        self.dense_total
    }

    /// `total / dense_total` (1 before any step).
    pub fn relative(&self) -> f64 {
        ratio(self.total, self.dense_total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::SparseParams;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarBuilder;

    /// conv 3→4 k3 on 8×8 → 6×6 (no bias), then Linear 144→10 with bias.
    fn net() -> Vec<LayerFlops> {
        vec![
            LayerFlops::new(
                "conv.weight",
                LayerShape::Conv2d {
                    in_channels: 3,
                    out_channels: 4,
                    kernel_h: 3,
                    kernel_w: 3,
                    groups: 1,
                    out_h: 6,
                    out_w: 6,
                    bias: false,
                },
            ),
            LayerFlops::new(
                "fc.weight",
                LayerShape::Linear {
                    in_features: 144,
                    out_features: 10,
                    bias: true,
                },
            ),
        ]
    }

    fn masks(dev: &Device) -> SparseParams {
        let mut p = SparseParams::new();
        let conv = Var::ones((4, 3, 3, 3), DType::F32, dev).unwrap();
        // 27 of 108 conv weights kept.
        let bits: Vec<u8> = (0..108).map(|i| u8::from(i % 4 == 0)).collect();
        p.insert(
            "conv.weight",
            conv,
            Mask::from_bits(&[4, 3, 3, 3], bits).unwrap(),
        )
        .unwrap();
        let fc = Var::ones((10, 144), DType::F32, dev).unwrap();
        let bits: Vec<u8> = (0..1440).map(|i| u8::from(i % 10 == 0)).collect();
        p.insert("fc.weight", fc, Mask::from_bits(&[10, 144], bits).unwrap())
            .unwrap();
        p
    }

    #[test]
    fn inference_flops_by_hand() {
        let dev = Device::Cpu;
        let f = InferenceFlops::new(&net(), &masks(&dev));
        // conv dense: 2·108·36 = 7776; sparse 2·27·36 = 1944.
        // fc dense: 2·1440 + 10 = 2890; sparse 2·144 + 10 = 298.
        assert_eq!(f.layers[0].dense, 7776.0);
        assert_eq!(f.layers[0].sparse, 1944.0);
        assert_eq!(f.layers[1].dense, 2890.0);
        assert_eq!(f.layers[1].sparse, 298.0);
        assert_eq!(f.dense_total(), 10666.0);
        assert_eq!(f.sparse_total(), 2242.0);
        assert!((f.layers[0].density - 0.25).abs() < 1e-12);
    }

    #[test]
    fn depthwise_conv1d_weight_count() {
        let l = LayerFlops::new(
            "dw",
            LayerShape::Conv1d {
                in_channels: 8,
                out_channels: 8,
                kernel: 5,
                groups: 8,
                out_len: 10,
                bias: true,
            },
        );
        assert_eq!(l.weight_numel(), 40);
        assert_eq!(l.dense_flops(), 2.0 * 40.0 * 10.0 + 80.0);
    }

    #[test]
    fn training_flops_with_rigl_updates_and_dense_phase() {
        let dev = Device::Cpu;
        let params = masks(&dev);
        let mut t = TrainingFlops::new(net());
        let d = params.densities();
        t.record_step(&BTreeMap::new(), StepKind::Sparse, 2); // dense phase: 3·10666·2
        t.record_step(&d, StepKind::Sparse, 2); // 3·2242·2
        t.record_step(&d, StepKind::DenseGradient, 2); // (2·2242 + 10666)·2
        let expected = 3.0 * 10666.0 * 2.0 + 3.0 * 2242.0 * 2.0 + (2.0 * 2242.0 + 10666.0) * 2.0;
        assert_eq!(t.total(), expected);
        assert_eq!(t.dense_total(), 3.0 * 10666.0 * 6.0);
        assert!((t.relative() - expected / (3.0 * 10666.0 * 6.0)).abs() < 1e-12);
        assert_eq!(t.steps(), 3);
    }

    #[test]
    fn param_report_excludes_running_stats() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let lin = candle_nn::linear(4, 2, vb.pp("fc")).unwrap();
        let _bn =
            candle_nn::batch_norm(2, candle_nn::BatchNormConfig::default(), vb.pp("bn")).unwrap();
        let mut params = SparseParams::new();
        params
            .insert(
                "fc.weight",
                Var::from_tensor(lin.weight()).unwrap(),
                Mask::from_bits(&[2, 4], vec![1, 0, 0, 0, 1, 1, 0, 0]).unwrap(),
            )
            .unwrap();
        let r = ParamReport::new(&varmap, &params);
        // fc.weight 3/8, fc.bias 2, bn.weight 2, bn.bias 2 (running stats excluded).
        assert_eq!(r.tensors.len(), 4);
        assert_eq!(r.total_params(), 3 + 2 + 2 + 2);
        assert_eq!(r.dense_params(), 8 + 2 + 2 + 2);
        assert!((r.masked_density() - 3.0 / 8.0).abs() < 1e-12);
        assert!((r.tensors[3].density() - 3.0 / 8.0).abs() < 1e-12);
        assert_eq!(r.tensors[3].name, "fc.weight");
        assert!((r.total_density() - 9.0 / 14.0).abs() < 1e-12);
    }

    #[test]
    fn score_subnetwork_masks_count_like_engine_masks() -> crate::error::Result<()> {
        // A score subnetwork's masks are a plain map: the same MaskSet view.
        let layer = LayerFlops::new(
            "gcn.lin",
            LayerShape::Linear {
                in_features: 4,
                out_features: 2,
                bias: false,
            },
        );
        let bits = vec![1, 0, 0, 1, 1, 0, 0, 0];
        let masks = BTreeMap::from([("gcn.lin".to_string(), Mask::from_bits(&[2, 4], bits)?)]);
        let flops = InferenceFlops::new(std::slice::from_ref(&layer), &masks);
        assert_eq!(flops.sparse_total(), layer.flops_with_nnz(3.0));
        assert_eq!(flops.dense_total(), layer.dense_flops());
        assert!(flops.sparse_total() < flops.dense_total());
        let varmap = VarMap::new();
        varmap.get(
            (2, 4),
            "gcn.lin",
            candle_nn::Init::Const(1.0),
            DType::F32,
            &Device::Cpu,
        )?;
        let params = ParamReport::new(&varmap, &masks);
        assert_eq!((params.total_params(), params.dense_params()), (3, 8));
        assert!(params.tensors[0].masked);
        Ok(())
    }
}
