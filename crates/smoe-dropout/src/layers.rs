//! The pieces both models share: the feed-forward block (dense, dense with expert
//! dropout, or MoE), post-LN residual normalisation and the initialisation.

use candle_core::Tensor;
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sparse_core::init::{Init, init_vars};
use sparse_core::kernels::{Activation, layer_norm, linear};
use sparse_core::optim::trainable_vars;
use sparse_repro::HarnessError;
use sparse_repro::rng::derive_rng;

use crate::error::Result;
use crate::mode::Mode;
use crate::moe::{MoeLayer, RouterKind};

/// The standard deviation of every weight's normal initialisation (Transformer-XL's
/// `init_std`, which the official `weights_init` applies to routers and experts too).
pub const INIT_STD: f64 = 0.02;
/// Layer normalisation's epsilon (PyTorch's default).
pub const LN_EPS: f64 = 1e-5;

/// What each layer's feed-forward block is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FeedForwardKind {
    /// One dense block of `N · h` hidden units (equal parameters to the experts).
    Dense,
    /// The official `PositionwiseFF_Dropout` baseline: the dense block whose hidden
    /// units form N interleaved groups (unit u in group u mod N), each group dropped
    /// with probability `rate` once per training forward pass, without rescaling;
    /// inference uses every unit.
    ExpertDropout {
        /// The probability of dropping one group.
        rate: f64,
    },
    /// N experts of h units behind a router.
    Moe {
        /// How the router picks experts.
        router: RouterKind,
    },
}

/// The sizes of a feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FfnSpec {
    /// Model width d.
    pub dim: usize,
    /// Experts N (and the dense block's groups).
    pub num_experts: usize,
    /// Hidden units per expert h; the dense block has `N · h`.
    pub expert_hidden: usize,
    /// Which block.
    pub kind: FeedForwardKind,
}

impl FfnSpec {
    /// Whether the block is a mixture of experts.
    pub fn is_moe(&self) -> bool {
        matches!(self.kind, FeedForwardKind::Moe { .. })
    }

    /// Checks the expert-dropout rate (the sizes are checked by the model's spec).
    pub fn validate(&self) -> Result<()> {
        if let FeedForwardKind::ExpertDropout { rate } = self.kind
            && !(0.0..1.0).contains(&rate)
        {
            return Err(HarnessError::invalid("expert_dropout", rate, "must be in [0, 1)").into());
        }
        Ok(())
    }

    /// Whether the router is frozen (SMoE-Dropout).
    pub fn router_frozen(&self) -> bool {
        self.kind
            == FeedForwardKind::Moe {
                router: RouterKind::Frozen,
            }
    }
}

/// Checks a transformer's sizes: every one of `positive` and the block's sizes
/// positive, `heads` dividing the width, `dropout` in `[0, 1)`, the block's rate;
/// the error names the parameter.
pub(crate) fn check_transformer(
    positive: &[(&'static str, usize)],
    heads: usize,
    dropout: f64,
    ffn: &FfnSpec,
) -> Result<()> {
    let sizes = [
        ("dim", ffn.dim),
        ("heads", heads),
        ("num_experts", ffn.num_experts),
        ("expert_hidden", ffn.expert_hidden),
    ];
    for &(name, value) in positive.iter().chain(&sizes) {
        if value == 0 {
            return Err(HarnessError::invalid(name, value, "must be positive").into());
        }
    }
    if !ffn.dim.is_multiple_of(heads) {
        return Err(HarnessError::invalid(
            "heads",
            heads,
            format!("must divide dim = {}", ffn.dim),
        )
        .into());
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(HarnessError::invalid("dropout", dropout, "must be in [0, 1)").into());
    }
    ffn.validate()
}

/// A linear map `x Wᵀ + b` under `weight` and `bias` (zeros until initialised).
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `inputs` to `outputs` features under `vb`.
    pub(crate) fn new(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Self> {
        let zeros = candle_nn::Init::Const(0.0);
        Ok(Self {
            weight: vb.get_with_hints((outputs, inputs), "weight", zeros)?,
            bias: vb.get_with_hints(outputs, "bias", zeros)?,
        })
    }

    /// `activation(x Wᵀ + b)` over the last dimension of `x`.
    pub(crate) fn forward(&self, x: &Tensor, activation: Activation) -> Result<Tensor> {
        Ok(linear(x, &self.weight, Some(&self.bias), activation)?)
    }
}

/// The two-layer block `W2 · Dropout(ReLU(W1 x + b1)) + b2` under `w1` and `w2`:
/// one expert, or the dense feed-forward block.
#[derive(Debug, Clone)]
pub(crate) struct TwoLayer {
    w1: Linear,
    w2: Linear,
}

impl TwoLayer {
    /// `dim` → `hidden` → `dim` under `vb`.
    pub(crate) fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            w1: Linear::new(dim, hidden, vb.pp("w1"))?,
            w2: Linear::new(hidden, dim, vb.pp("w2"))?,
        })
    }

    /// The block on `x: [n, dim]`, the hidden units scaled by `hidden_mask`
    /// (`[hidden]`) when given.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        hidden_mask: Option<&Tensor>,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let mut hidden = self.w1.forward(x, Activation::Relu)?;
        if let Some(mask) = hidden_mask {
            hidden = hidden.broadcast_mul(mask)?;
        }
        self.w2
            .forward(&mode.dropout(&hidden)?, Activation::Identity)
    }
}

/// A dense feed-forward block, optionally with expert dropout.
#[derive(Debug, Clone)]
pub(crate) struct DenseFfn {
    block: TwoLayer,
    units: usize,
    groups: usize,
    group_drop: Option<f64>,
}

impl DenseFfn {
    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let mut mask = None;
        if let (Some(rate), Some(rng)) = (self.group_drop, mode.rng()) {
            let keep: Vec<bool> = (0..self.groups)
                .map(|_| rng.random::<f64>() >= rate)
                .collect();
            let values: Vec<f32> = (0..self.units)
                .map(|u| if keep[u % self.groups] { 1.0 } else { 0.0 })
                .collect();
            mask = Some(Tensor::from_vec(values, self.units, x.device())?);
        }
        self.block.forward(x, mask.as_ref(), mode)
    }
}

/// Token and position embeddings under `tokens` and `positions`.
#[derive(Debug, Clone)]
pub(crate) struct Embedding {
    tokens: Tensor,
    positions: Tensor,
}

impl Embedding {
    /// `vocab` tokens and `length` positions of `dim` features under `vb`.
    pub(crate) fn new(vocab: usize, length: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        let zeros = candle_nn::Init::Const(0.0);
        Ok(Self {
            tokens: vb.get_with_hints((vocab, dim), "tokens", zeros)?,
            positions: vb.get_with_hints((length, dim), "positions", zeros)?,
        })
    }

    /// `ids: [batch, length]` embedded with their positions, then dropout.
    pub(crate) fn forward(&self, ids: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let (batch, length) = ids.dims2()?;
        let holds = self.positions.dim(0)?;
        if length > holds {
            return Err(HarnessError::invalid(
                "length",
                length,
                format!("the model holds {holds} positions"),
            )
            .into());
        }
        let dim = self.tokens.dim(1)?;
        let x = self
            .tokens
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, length, dim))?
            .broadcast_add(&self.positions.narrow(0, 0, length)?)?;
        mode.dropout(&x)
    }
}

/// A feed-forward block.
#[derive(Debug, Clone)]
pub(crate) enum FeedForward {
    Dense(DenseFfn),
    Moe(MoeLayer),
}

impl FeedForward {
    /// The block of `spec` under `vb` (`w1`/`w2` for a dense block, `router` and
    /// `experts` for an MoE); `eval_seed` seeds a random router at inference.
    pub(crate) fn new(spec: &FfnSpec, eval_seed: u64, vb: VarBuilder) -> Result<Self> {
        let (d, n, h) = (spec.dim, spec.num_experts, spec.expert_hidden);
        Ok(match spec.kind {
            FeedForwardKind::Moe { router } => {
                Self::Moe(MoeLayer::new(d, n, h, router, eval_seed, vb)?)
            }
            FeedForwardKind::Dense | FeedForwardKind::ExpertDropout { .. } => {
                Self::Dense(DenseFfn {
                    block: TwoLayer::new(d, n * h, vb)?,
                    units: n * h,
                    groups: n,
                    group_drop: match spec.kind {
                        FeedForwardKind::ExpertDropout { rate } => Some(rate),
                        _ => None,
                    },
                })
            }
        })
    }

    /// The block on `x: [batch, length, d]` with `k` experts per token (MoE).
    pub(crate) fn forward_sequence(&self, x: &Tensor, k: usize, mode: &mut Mode) -> Result<Tensor> {
        let (batch, length, d) = x.dims3()?;
        let flat = x.reshape((batch * length, d))?;
        let out = match self {
            Self::Dense(dense) => dense.forward(&flat, mode)?,
            Self::Moe(moe) => moe.forward(&flat, k, mode)?,
        };
        Ok(out.reshape((batch, length, d))?)
    }

    /// The MoE layer, if this block is one.
    pub(crate) fn moe(&self) -> Option<&MoeLayer> {
        match self {
            Self::Moe(moe) => Some(moe),
            Self::Dense(_) => None,
        }
    }
}

/// Layer normalisation's weight and bias.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    weight: Tensor,
    bias: Tensor,
}

impl Norm {
    /// A layer norm over `dim` features under `vb` (`weight` 1, `bias` 0).
    pub(crate) fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    /// Post-LN: `LayerNorm(x + Dropout(sublayer))`.
    pub(crate) fn residual(
        &self,
        x: &Tensor,
        sublayer: &Tensor,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let sum = (x + mode.dropout(sublayer)?)?;
        Ok(layer_norm(&sum, &self.weight, &self.bias, LN_EPS)?)
    }
}

/// Initialises every trainable tensor of `varmap` from `seed`: weights (embeddings,
/// projections, routers, experts, outputs) `N(0, 0.02²)`, biases 0, layer norms
/// left at 1 and 0.
pub(crate) fn init_weights(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = derive_rng(seed, "init");
    init_vars(
        &trainable_vars(varmap),
        |name, _| {
            if sparse_core::selection::is_norm(name) {
                None
            } else if name.ends_with(".bias") {
                Some(Init::Constant(0.0))
            } else {
                Some(Init::Normal {
                    mean: 0.0,
                    std: INIT_STD,
                })
            }
        },
        &mut rng,
    )?;
    Ok(())
}
