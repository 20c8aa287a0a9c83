//! The shape of a SLaK / ConvNeXt network, as the official `SLaK.py` takes it, with
//! its parameter count and receptive field computed from the shape alone.

use serde::{Deserialize, Serialize};
use sparse_core::flops::{LayerFlops, LayerShape};

use crate::error::Result;

/// The depthwise branches of one block's large-kernel layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// `K×N` (`Decom1`).
    Tall,
    /// `N×K` (`Decom2`).
    Wide,
    /// `K×K` (`lkb_origin`, the undecomposed kernel).
    Square,
    /// `N×N` (`small_conv`, present when `N < K`).
    Small,
}

impl Branch {
    /// The official module name.
    pub fn name(self) -> &'static str {
        match self {
            Branch::Tall => "Decom1",
            Branch::Wide => "Decom2",
            Branch::Square => "lkb_origin",
            Branch::Small => "small_conv",
        }
    }

    /// `(height, width)` of the kernel for a large size `k` and a small size `n`.
    pub fn kernel(self, k: usize, n: usize) -> (usize, usize) {
        match self {
            Branch::Tall => (k, n),
            Branch::Wide => (n, k),
            Branch::Square => (k, k),
            Branch::Small => (n, n),
        }
    }
}

/// A SLaK (or ConvNeXt) network: `SLaK(in_chans, num_classes, depths, dims,
/// kernel_size = [K1.., N], width_factor, Decom)` plus the stem's patch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Input channels.
    pub in_chans: usize,
    /// Classes of the head.
    pub num_classes: usize,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Channels per stage before the width factor.
    pub dims: Vec<usize>,
    /// The large kernel of each stage, then the small kernel `N`
    /// (`N > K` is the ConvNeXt setting: one `K×K` branch, no small one).
    pub kernel_size: Vec<usize>,
    /// Channels are `int(dim · width_factor)`.
    pub width_factor: f64,
    /// Decompose `K×K` into `K×N ∥ N×K` (SLaK) instead of one square kernel.
    pub decompose: bool,
    /// Side and stride of the stem's patchify convolution (4 official, 2 for 32×32
    /// inputs).
    pub stem: usize,
    /// The stochastic-depth rate of the last block (linear from 0).
    pub drop_path: f64,
    /// The initial layer scale `γ`.
    pub layer_scale: f64,
}

impl ModelSpec {
    /// Channels of each stage: `int(dim · width_factor)`, as Python truncates.
    pub fn widths(&self) -> Vec<usize> {
        self.dims
            .iter()
            .map(|&d| (d as f64 * self.width_factor + 1e-9).floor() as usize)
            .collect()
    }

    /// The small kernel `N`.
    pub fn small(&self) -> usize {
        self.kernel_size.last().copied().unwrap_or(0)
    }

    /// The branches of a block of stage `stage`.
    pub fn branches(&self, stage: usize) -> Vec<Branch> {
        let (k, n) = (self.kernel_size[stage], self.small());
        let mut branches = if self.decompose {
            vec![Branch::Tall, Branch::Wide]
        } else {
            vec![Branch::Square]
        };
        if n < k {
            branches.push(Branch::Small);
        }
        branches
    }

    /// Checks the shape; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: String, why: &str| -> crate::Error {
            sparse_repro::HarnessError::invalid(name, value, why).into()
        };
        let stages = self.depths.len();
        if stages == 0 || self.dims.len() != stages {
            return Err(bad(
                "dims",
                format!("{:?}", self.dims),
                "needs one entry per stage of depths",
            ));
        }
        if self.kernel_size.len() != stages + 1 {
            return Err(bad(
                "kernel_size",
                format!("{:?}", self.kernel_size),
                "needs one large kernel per stage and the small kernel N last",
            ));
        }
        if self.kernel_size.contains(&0) {
            return Err(bad(
                "kernel_size",
                format!("{:?}", self.kernel_size),
                "kernels must be positive",
            ));
        }
        if self.widths().contains(&0) || self.in_chans == 0 || self.num_classes == 0 {
            return Err(bad(
                "dims",
                format!("{:?} x {}", self.dims, self.width_factor),
                "every stage, the input and the head need at least one channel",
            ));
        }
        if self.stem == 0 {
            return Err(bad("stem", "0".into(), "must be positive"));
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return Err(bad(
                "drop_path",
                self.drop_path.to_string(),
                "must lie in [0, 1)",
            ));
        }
        Ok(())
    }

    /// The input side the network divides evenly (the stem, then a halving per
    /// later stage).
    pub fn input_multiple(&self) -> usize {
        self.stem << (self.depths.len() - 1)
    }

    /// Trainable parameters, counted from the shape (BatchNorm running statistics
    /// excluded); the test holds it equal to the built network's.
    pub fn param_count(&self) -> usize {
        let w = self.widths();
        let mut count = self.in_chans * w[0] * self.stem * self.stem + w[0] + 2 * w[0];
        for (i, &c) in w.iter().enumerate() {
            if i > 0 {
                count += 2 * w[i - 1] + w[i - 1] * c * 4 + c;
            }
            let (k, n) = (self.kernel_size[i], self.small());
            let large: usize = self
                .branches(i)
                .iter()
                .map(|b| {
                    let (kh, kw) = b.kernel(k, n);
                    c * kh * kw + 2 * c
                })
                .sum();
            let block = large + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c;
            count += self.depths[i] * block;
        }
        let last = w[w.len() - 1];
        count + 2 * last + last * self.num_classes + self.num_classes
    }

    /// Every weight layer of the network, named as its weight in the `VarMap`, with
    /// its shape at an input of `height × width` (sparse-core's FLOP accounting:
    /// [`sparse_core::flops::InferenceFlops`] counts them at any masks). The
    /// pointwise MLP layers act at every position, so they are 1×1 convolutions
    /// here; norms, GELU and the pooling are not counted (as the paper's MACs).
    pub fn layer_flops(&self, height: usize, width: usize) -> Vec<LayerFlops> {
        let conv = |c_in, c_out, (kh, kw), groups, (h, w), bias| LayerShape::Conv2d {
            in_channels: c_in,
            out_channels: c_out,
            kernel_h: kh,
            kernel_w: kw,
            groups,
            out_h: h,
            out_w: w,
            bias,
        };
        let widths = self.widths();
        let mut layers = Vec::new();
        let mut map = (height / self.stem, width / self.stem);
        for (i, &c) in widths.iter().enumerate() {
            if i == 0 {
                let stem = conv(self.in_chans, c, (self.stem, self.stem), 1, map, true);
                layers.push(LayerFlops::new("downsample_layers.0.0.weight", stem));
            } else {
                map = (map.0 / 2, map.1 / 2);
                let down = conv(widths[i - 1], c, (2, 2), 1, map, true);
                layers.push(LayerFlops::new(
                    format!("downsample_layers.{i}.1.weight"),
                    down,
                ));
            }
            for j in 0..self.depths[i] {
                let block = format!("stages.{i}.{j}");
                for branch in self.branches(i) {
                    let kernel = branch.kernel(self.kernel_size[i], self.small());
                    layers.push(LayerFlops::new(
                        format!("{block}.large_kernel.{}.conv.weight", branch.name()),
                        conv(c, c, kernel, c, map, false),
                    ));
                }
                let pw1 = conv(c, 4 * c, (1, 1), 1, map, true);
                let pw2 = conv(4 * c, c, (1, 1), 1, map, true);
                layers.push(LayerFlops::new(format!("{block}.pwconv1.weight"), pw1));
                layers.push(LayerFlops::new(format!("{block}.pwconv2.weight"), pw2));
            }
        }
        let head = LayerShape::Linear {
            in_features: widths[widths.len() - 1],
            out_features: self.num_classes,
            bias: true,
        };
        layers.push(LayerFlops::new("head.weight", head));
        layers
    }

    /// The receptive field in input pixels of one unit of the last stage: the stem's
    /// patch, each block's largest kernel extent and each 2×2 downsampler, scaled by
    /// the stride so far.
    pub fn receptive_field(&self) -> usize {
        let (mut field, mut jump) = (self.stem, self.stem);
        for (i, &depth) in self.depths.iter().enumerate() {
            if i > 0 {
                field += jump;
                jump *= 2;
            }
            let extent = self
                .branches(i)
                .iter()
                .map(|b| {
                    let (kh, kw) = b.kernel(self.kernel_size[i], self.small());
                    kh.max(kw)
                })
                .max()
                .unwrap_or(1);
            field += depth * (extent - 1) * jump;
        }
        field
    }
}
