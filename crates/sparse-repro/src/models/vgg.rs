use super::conv::MaskableConv;
use candle_core::{Result, Tensor};
use candle_nn::{Conv2dConfig, Module, ModuleT, VarBuilder, conv2d_no_bias};
use sparse_core::kernels::{FusedBatchNorm, FusedLinear};
use sparse_core::{LayerFlops, LayerShape};

/// A VGG with batch norm: the small `[W, pool, 2W, pool, 4W, 4W, pool]`
/// ([`VggBn::new`]) or VGG-16 ([`VggBn::vgg16`]), global average pooling and a
/// linear classifier. Pools are 2x2 with stride 2 (the only
/// max-pool candle can differentiate); a pool is skipped once the map is below 2x2.
///
/// Parameters: `features.{i}.{conv,bn}.*` (i = 0..4, or 0..13 for VGG-16) and
/// `classifier.*`.
#[derive(Debug)]
pub struct VggBn {
    layers: Vec<(MaskableConv, FusedBatchNorm, bool)>,
    classifier: FusedLinear,
    names: Vec<String>,
    /// (c_in, c_out, pool after) of every convolution.
    plan: Vec<(usize, usize, bool)>,
    classes: usize,
}

impl VggBn {
    /// Builds the network with first-stage width `width`.
    pub fn new(width: usize, in_channels: usize, classes: usize, vb: VarBuilder) -> Result<Self> {
        // (output channels, pool after)
        let plan = [
            (width, true),
            (2 * width, true),
            (4 * width, false),
            (4 * width, true),
        ];
        Self::from_plan(&plan, in_channels, classes, vb)
    }

    /// VGG-16 with batch norm (configuration D): 13 convolutions in five blocks of
    /// `width`, `2·width`, `4·width`, `8·width`, `8·width` channels, each block
    /// closed by a pool, then global average pooling and one linear classifier (the
    /// CIFAR `vgg16_bn` of the sparse-training codes; 64 in the usual model).
    pub fn vgg16(width: usize, in_channels: usize, classes: usize, vb: VarBuilder) -> Result<Self> {
        let blocks = [
            (width, 2),
            (2 * width, 2),
            (4 * width, 3),
            (8 * width, 3),
            (8 * width, 3),
        ];
        let plan: Vec<(usize, bool)> = blocks
            .iter()
            .flat_map(|&(c, n)| (0..n).map(move |i| (c, i + 1 == n)))
            .collect();
        Self::from_plan(&plan, in_channels, classes, vb)
    }

    /// Convolutions of `(output channels, pool after)`, in order.
    fn from_plan(
        plan: &[(usize, bool)],
        in_channels: usize,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let mut layers = Vec::new();
        let mut names = Vec::new();
        let mut c_in = in_channels;
        let mut shapes = Vec::new();
        for (i, &(c_out, pool)) in plan.iter().enumerate() {
            shapes.push((c_in, c_out, pool));
            let conv = conv2d_no_bias(c_in, c_out, 3, cfg, vb.pp(format!("features.{i}.conv")))?;
            let bn = FusedBatchNorm::new(c_out, 1e-5, vb.pp(format!("features.{i}.bn")))?;
            names.push(format!("features.{i}.conv.weight"));
            layers.push((MaskableConv::new(conv), bn, pool));
            c_in = c_out;
        }
        let classifier = FusedLinear::new(c_in, classes, vb.pp("classifier"))?;
        names.push("classifier.weight".to_string());
        Ok(Self {
            layers,
            classifier,
            names,
            plan: shapes,
            classes,
        })
    }

    /// Every convolution with its weight name, forward order.
    pub(crate) fn convs_mut(&mut self) -> Vec<(String, &mut MaskableConv)> {
        self.names
            .iter()
            .cloned()
            .zip(self.layers.iter_mut().map(|(conv, _, _)| conv))
            .collect()
    }

    /// Names of the convolution and linear weights in forward order, classifier
    /// last (no biases, no BatchNorm).
    pub fn weight_names_in_order(&self) -> Vec<String> {
        self.names.clone()
    }

    /// FLOP descriptions of every weight layer for `height x width` inputs, in
    /// `weight_names_in_order` order.
    pub fn layer_flops(&self, height: usize, width: usize) -> Vec<LayerFlops> {
        let (mut h, mut w) = (height, width);
        let mut layers = Vec::new();
        for (name, &(c_in, c_out, pool)) in self.names.iter().zip(&self.plan) {
            layers.push(LayerFlops::new(
                name.clone(),
                LayerShape::Conv2d {
                    in_channels: c_in,
                    out_channels: c_out,
                    kernel_h: 3,
                    kernel_w: 3,
                    groups: 1,
                    out_h: h,
                    out_w: w,
                    bias: false,
                },
            ));
            if pool && h >= 2 && w >= 2 {
                (h, w) = (h / 2, w / 2);
            }
        }
        let c_last = self.plan.last().map_or(0, |p| p.1);
        layers.push(LayerFlops::new(
            "classifier.weight",
            LayerShape::Linear {
                in_features: c_last,
                out_features: self.classes,
                bias: true,
            },
        ));
        layers
    }
}

impl ModuleT for VggBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = xs.clone();
        for (conv, bn, pool) in &self.layers {
            h = bn.forward_relu_t(&conv.forward(&h)?, train)?;
            if *pool && h.dim(2)? >= 2 && h.dim(3)? >= 2 {
                h = h.max_pool2d(2)?;
            }
        }
        let pooled = h.mean(3)?.mean(2)?;
        self.classifier.forward(&pooled)
    }
}
