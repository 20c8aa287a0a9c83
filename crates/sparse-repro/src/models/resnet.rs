use super::conv::MaskableConv;
use candle_core::{Result, Tensor};
use candle_nn::{Conv2dConfig, Module, ModuleT, VarBuilder, conv2d_no_bias};
use sparse_core::kernels::{FusedBatchNorm, FusedLinear, add_relu};
use sparse_core::{LayerFlops, LayerShape};

/// Convolution without bias followed by batch norm, as every ResNet layer here is.
#[derive(Debug)]
struct ConvBn {
    conv: MaskableConv,
    bn: FusedBatchNorm,
}

impl ConvBn {
    fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        vb: VarBuilder,
        name: &str,
    ) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: kernel / 2,
            stride,
            ..Default::default()
        };
        let conv = conv2d_no_bias(c_in, c_out, kernel, cfg, vb.pp(format!("{name}.conv")))?;
        let bn = FusedBatchNorm::new(c_out, 1e-5, vb.pp(format!("{name}.bn")))?;
        Ok(Self {
            conv: MaskableConv::new(conv),
            bn,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_t(&self.conv.forward(xs)?, train)
    }

    /// `relu(bn(conv(x)))`, the ReLU folded into the batch norm.
    fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_relu_t(&self.conv.forward(xs)?, train)
    }
}

/// The two-convolution residual block; a 1x1 projection shortcut when the shape changes.
#[derive(Debug)]
struct BasicBlock {
    first: ConvBn,
    second: ConvBn,
    shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let first = ConvBn::new(c_in, c_out, 3, stride, vb.clone(), "conv1")?;
        let second = ConvBn::new(c_out, c_out, 3, 1, vb.clone(), "conv2")?;
        let shortcut = if stride != 1 || c_in != c_out {
            Some(ConvBn::new(c_in, c_out, 1, stride, vb, "shortcut")?)
        } else {
            None
        };
        Ok(Self {
            first,
            second,
            shortcut,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.first.forward_relu_t(xs, train)?;
        let h = self.second.forward_t(&h, train)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(xs, train)?,
            None => xs.clone(),
        };
        add_relu(&h, &skip)
    }
}

/// CIFAR-style ResNet-(6n+2): a 3x3 stem, three stages of `n` basic blocks with
/// `W`, `2W`, `4W` channels (the last two downsample by 2), global average
/// pooling and a linear classifier — the official `cifar_resnet_N_W`. Also
/// ResNet-18 with the CIFAR stem ([`CifarResNet::resnet18`]): four stages of two
/// blocks, `W` to `8W` channels (64 in the usual model).
///
/// Parameters: `stem.{conv,bn}.*`, `stage{s}.block{b}.{conv1,conv2,shortcut}.{conv,bn}.*`
/// (a `shortcut` only where the block changes shape) and `classifier.*`.
#[derive(Debug)]
pub struct CifarResNet {
    stem: ConvBn,
    blocks: Vec<BasicBlock>,
    classifier: FusedLinear,
    names: Vec<String>,
    /// (weight name, c_in, c_out, kernel, stride) of every convolution, forward order.
    convs: Vec<(String, usize, usize, usize, usize)>,
    classes: usize,
}

impl CifarResNet {
    /// Builds ResNet-`depth` (depth = 6n+2) with first-stage width `width`.
    pub fn new(
        depth: usize,
        width: usize,
        in_channels: usize,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            candle_core::bail!("ResNet depth must be 6n+2 with n >= 1, got {depth}");
        }
        let per_stage = (depth - 2) / 6;
        Self::with_stages(&[per_stage; 3], width, in_channels, classes, vb)
    }

    /// ResNet-18 for small images (a 3x3 stride-1 stem, no max-pool, as the CIFAR
    /// code of Lottery Pools and most sparse-training papers): four stages of two
    /// basic blocks with `width`, `2·width`, `4·width`, `8·width` channels.
    pub fn resnet18(
        width: usize,
        in_channels: usize,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::with_stages(&[2; 4], width, in_channels, classes, vb)
    }

    /// `blocks[s]` basic blocks in stage `s`, with `width << s` channels; every
    /// stage after the first downsamples by 2 in its first block.
    fn with_stages(
        blocks_per_stage: &[usize],
        width: usize,
        in_channels: usize,
        classes: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let stem = ConvBn::new(in_channels, width, 3, 1, vb.clone(), "stem")?;
        let mut names = vec!["stem.conv.weight".to_string()];
        let mut convs = vec![("stem.conv.weight".to_string(), in_channels, width, 3, 1)];
        let mut blocks = Vec::new();
        let mut c_in = width;
        for (stage, &per_stage) in blocks_per_stage.iter().enumerate() {
            let c_out = width << stage;
            for b in 0..per_stage {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let prefix = format!("stage{stage}.block{b}");
                let block = BasicBlock::new(c_in, c_out, stride, vb.pp(&prefix))?;
                convs.push((
                    format!("{prefix}.conv1.conv.weight"),
                    c_in,
                    c_out,
                    3,
                    stride,
                ));
                convs.push((format!("{prefix}.conv2.conv.weight"), c_out, c_out, 3, 1));
                if block.shortcut.is_some() {
                    convs.push((
                        format!("{prefix}.shortcut.conv.weight"),
                        c_in,
                        c_out,
                        1,
                        stride,
                    ));
                }
                blocks.push(block);
                c_in = c_out;
            }
        }
        let classifier = FusedLinear::new(c_in, classes, vb.pp("classifier"))?;
        names.extend(convs[1..].iter().map(|c| c.0.clone()));
        names.push("classifier.weight".to_string());
        Ok(Self {
            stem,
            blocks,
            classifier,
            names,
            convs,
            classes,
        })
    }

    /// Every convolution with its weight name, forward order.
    pub(crate) fn convs_mut(&mut self) -> Vec<(String, &mut MaskableConv)> {
        let mut convs = vec![&mut self.stem.conv];
        for block in &mut self.blocks {
            convs.push(&mut block.first.conv);
            convs.push(&mut block.second.conv);
            if let Some(s) = &mut block.shortcut {
                convs.push(&mut s.conv);
            }
        }
        self.convs.iter().map(|c| c.0.clone()).zip(convs).collect()
    }

    /// Names of the convolution and linear weights in forward order, classifier
    /// last (no biases, no BatchNorm).
    pub fn weight_names_in_order(&self) -> Vec<String> {
        self.names.clone()
    }

    /// FLOP descriptions of every weight layer for `height x width` inputs, in
    /// `weight_names_in_order` order.
    pub fn layer_flops(&self, height: usize, width: usize) -> Vec<LayerFlops> {
        // A stride-2 3x3 (padding 1) or 1x1 (padding 0) convolution gives ceil(n / 2).
        let (mut h, mut w) = (height, width);
        let mut layers = Vec::new();
        for (name, c_in, c_out, k, stride) in &self.convs {
            // A projection shortcut is listed after its block's main path and has
            // the block's output size; the main path moves the size on.
            let shortcut = name.ends_with("shortcut.conv.weight");
            let (oh, ow) = if shortcut {
                (h, w)
            } else {
                (h.div_ceil(*stride), w.div_ceil(*stride))
            };
            layers.push(LayerFlops::new(
                name.clone(),
                LayerShape::Conv2d {
                    in_channels: *c_in,
                    out_channels: *c_out,
                    kernel_h: *k,
                    kernel_w: *k,
                    groups: 1,
                    out_h: oh,
                    out_w: ow,
                    bias: false,
                },
            ));
            (h, w) = (oh, ow);
        }
        let c_last = self.convs.last().map_or(0, |c| c.2);
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

impl ModuleT for CifarResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward_relu_t(xs, train)?;
        for block in &self.blocks {
            h = block.forward_t(&h, train)?;
        }
        let pooled = h.mean(3)?.mean(2)?;
        self.classifier.forward(&pooled)
    }
}
