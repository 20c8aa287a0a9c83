use candle_core::{Result, Tensor};
use candle_nn::{
    BatchNorm, Conv2d, Conv2dConfig, Linear, Module, ModuleT, VarBuilder, batch_norm,
    conv2d_no_bias, linear,
};

/// Convolution without bias followed by batch norm, as every ResNet layer here is.
#[derive(Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
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
        let bn = batch_norm(c_out, 1e-5, vb.pp(format!("{name}.bn")))?;
        Ok(Self { conv, bn })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_t(&self.conv.forward(xs)?, train)
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
        let h = self.first.forward_t(xs, train)?.relu()?;
        let h = self.second.forward_t(&h, train)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward_t(xs, train)?,
            None => xs.clone(),
        };
        (h + skip)?.relu()
    }
}

/// CIFAR-style ResNet-(6n+2): a 3x3 stem, three stages of `n` basic blocks with
/// `W`, `2W`, `4W` channels (the last two downsample by 2), global average
/// pooling and a linear classifier — the official `cifar_resnet_N_W`.
#[derive(Debug)]
pub struct CifarResNet {
    stem: ConvBn,
    blocks: Vec<BasicBlock>,
    classifier: Linear,
    names: Vec<String>,
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
        if depth < 8 || (depth - 2) % 6 != 0 {
            candle_core::bail!("ResNet depth must be 6n+2 with n >= 1, got {depth}");
        }
        let per_stage = (depth - 2) / 6;
        let stem = ConvBn::new(in_channels, width, 3, 1, vb.clone(), "stem")?;
        let mut names = vec!["stem.conv.weight".to_string()];
        let mut blocks = Vec::new();
        let mut c_in = width;
        for stage in 0..3 {
            let c_out = width << stage;
            for b in 0..per_stage {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let prefix = format!("stage{stage}.block{b}");
                let block = BasicBlock::new(c_in, c_out, stride, vb.pp(&prefix))?;
                names.push(format!("{prefix}.conv1.conv.weight"));
                names.push(format!("{prefix}.conv2.conv.weight"));
                if block.shortcut.is_some() {
                    names.push(format!("{prefix}.shortcut.conv.weight"));
                }
                blocks.push(block);
                c_in = c_out;
            }
        }
        let classifier = linear(c_in, classes, vb.pp("classifier"))?;
        names.push("classifier.weight".to_string());
        Ok(Self {
            stem,
            blocks,
            classifier,
            names,
        })
    }

    pub(crate) fn weight_names_in_order(&self) -> Vec<String> {
        self.names.clone()
    }
}

impl ModuleT for CifarResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.stem.forward_t(xs, train)?.relu()?;
        for block in &self.blocks {
            h = block.forward_t(&h, train)?;
        }
        let pooled = h.mean(3)?.mean(2)?;
        self.classifier.forward(&pooled)
    }
}
