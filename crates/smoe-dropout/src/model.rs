//! A small causal transformer language model, post-LN like Transformer-XL's
//! default (`LayerNorm(x + Dropout(sublayer(x)))`), with learned positions and a
//! feed-forward layer that is dense, dense with expert dropout, or a mixture of
//! experts.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sparse_core::init::{Init, init_vars};
use sparse_core::kernels::{Activation, layer_norm, linear};
use sparse_core::optim::trainable_vars;
use sparse_repro::HarnessError;
use sparse_repro::models::attention::MultiHeadAttention;
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

/// The model's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LmSpec {
    /// Vocabulary size (characters).
    pub vocab: usize,
    /// The longest input (learned positions).
    pub context: usize,
    /// Model width d.
    pub dim: usize,
    /// Attention heads (dividing `dim`).
    pub heads: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Experts N (and the dense block's groups).
    pub num_experts: usize,
    /// Hidden units per expert h; the dense block has `N · h`.
    pub expert_hidden: usize,
    /// Dropout after embeddings, attention and feed-forward, and inside experts.
    pub dropout: f64,
    /// The feed-forward block.
    pub ffn: FeedForwardKind,
}

impl LmSpec {
    /// Checks every size; the error names the parameter.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab", self.vocab),
            ("context", self.context),
            ("dim", self.dim),
            ("heads", self.heads),
            ("layers", self.layers),
            ("num_experts", self.num_experts),
            ("expert_hidden", self.expert_hidden),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(HarnessError::invalid(name, value, "must be positive").into());
            }
        }
        if !self.dim.is_multiple_of(self.heads) {
            return Err(HarnessError::invalid(
                "heads",
                self.heads,
                format!("must divide dim = {}", self.dim),
            )
            .into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(HarnessError::invalid("dropout", self.dropout, "must be in [0, 1)").into());
        }
        if let FeedForwardKind::ExpertDropout { rate } = self.ffn
            && !(0.0..1.0).contains(&rate)
        {
            return Err(HarnessError::invalid("expert_dropout", rate, "must be in [0, 1)").into());
        }
        Ok(())
    }

    /// Whether the feed-forward blocks are mixtures of experts.
    pub fn is_moe(&self) -> bool {
        matches!(self.ffn, FeedForwardKind::Moe { .. })
    }
}

/// A dense feed-forward block, optionally with expert dropout.
#[derive(Debug, Clone)]
struct DenseFfn {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    groups: usize,
    group_drop: Option<f64>,
}

impl DenseFfn {
    fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let mut hidden = linear(x, &self.w1, Some(&self.b1), Activation::Relu)?;
        if let (Some(rate), Some(rng)) = (self.group_drop, mode.rng()) {
            let keep: Vec<bool> = (0..self.groups)
                .map(|_| rng.random::<f64>() >= rate)
                .collect();
            let units = self.w1.dim(0)?;
            let mask: Vec<f32> = (0..units)
                .map(|u| if keep[u % self.groups] { 1.0 } else { 0.0 })
                .collect();
            let mask = Tensor::from_vec(mask, units, x.device())?;
            hidden = hidden.broadcast_mul(&mask)?;
        }
        let hidden = mode.dropout(&hidden)?;
        Ok(linear(
            &hidden,
            &self.w2,
            Some(&self.b2),
            Activation::Identity,
        )?)
    }
}

/// A feed-forward block.
#[derive(Debug, Clone)]
enum FeedForward {
    Dense(DenseFfn),
    Moe(MoeLayer),
}

/// One post-LN transformer layer.
#[derive(Debug, Clone)]
struct Block {
    attention: MultiHeadAttention,
    ln_attention: (Tensor, Tensor),
    ffn: FeedForward,
    ln_ffn: (Tensor, Tensor),
}

fn norm_params(dim: usize, vb: VarBuilder) -> Result<(Tensor, Tensor)> {
    Ok((
        vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?,
        vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?,
    ))
}

/// The character language model.
#[derive(Debug, Clone)]
pub struct CharLm {
    spec: LmSpec,
    tokens: Tensor,
    positions: Tensor,
    blocks: Vec<Block>,
    head_weight: Tensor,
    head_bias: Tensor,
}

impl CharLm {
    /// Builds the model in a new `VarMap` and initialises it from `seed`: every
    /// weight (embeddings, projections, routers, experts, output) `N(0, 0.02²)`,
    /// biases 0, layer norms 1 and 0.
    pub fn build(spec: LmSpec, seed: u64, device: &Device) -> Result<(VarMap, Self)> {
        spec.validate()?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let zeros = candle_nn::Init::Const(0.0);
        let (d, n, h) = (spec.dim, spec.num_experts, spec.expert_hidden);
        let mut blocks = Vec::with_capacity(spec.layers);
        for layer in 0..spec.layers {
            let vb = vb.pp(format!("layers.{layer}"));
            let ffn_vb = vb.pp("ffn");
            let ffn = match spec.ffn {
                FeedForwardKind::Moe { router } => FeedForward::Moe(MoeLayer::new(
                    d,
                    n,
                    h,
                    router,
                    sparse_repro::rng::derive_seed(seed, &format!("eval-routes-{layer}")),
                    ffn_vb,
                )?),
                FeedForwardKind::Dense | FeedForwardKind::ExpertDropout { .. } => {
                    FeedForward::Dense(DenseFfn {
                        w1: ffn_vb.get_with_hints((n * h, d), "w1.weight", zeros)?,
                        b1: ffn_vb.get_with_hints(n * h, "w1.bias", zeros)?,
                        w2: ffn_vb.get_with_hints((d, n * h), "w2.weight", zeros)?,
                        b2: ffn_vb.get_with_hints(d, "w2.bias", zeros)?,
                        groups: n,
                        group_drop: match spec.ffn {
                            FeedForwardKind::ExpertDropout { rate } => Some(rate),
                            _ => None,
                        },
                    })
                }
            };
            blocks.push(Block {
                attention: MultiHeadAttention::new(d, spec.heads, vb.pp("attention"))?,
                ln_attention: norm_params(d, vb.pp("ln_attention"))?,
                ffn,
                ln_ffn: norm_params(d, vb.pp("ln_ffn"))?,
            });
        }
        let model = Self {
            spec,
            tokens: vb.get_with_hints((spec.vocab, d), "embedding.tokens", zeros)?,
            positions: vb.get_with_hints((spec.context, d), "embedding.positions", zeros)?,
            blocks,
            head_weight: vb.get_with_hints((spec.vocab, d), "head.weight", zeros)?,
            head_bias: vb.get_with_hints(spec.vocab, "head.bias", zeros)?,
        };
        let mut rng = derive_rng(seed, "init");
        init_vars(
            &trainable_vars(&varmap),
            |name, shape| {
                if sparse_core::selection::is_norm(name) {
                    None
                } else if name.ends_with(".bias") {
                    Some(Init::Constant(0.0))
                } else {
                    debug_assert!(shape.len() == 2, "{name}");
                    Some(Init::Normal {
                        mean: 0.0,
                        std: INIT_STD,
                    })
                }
            },
            &mut rng,
        )?;
        Ok((varmap, model))
    }

    /// The model's sizes.
    pub fn spec(&self) -> &LmSpec {
        &self.spec
    }

    /// The logits `[batch · length, vocab]` of the next character after each
    /// position of `input: [batch, length]` (u32 ids), with `k` experts per token in
    /// MoE layers (ignored by dense ones).
    pub fn forward(&self, input: &Tensor, k: usize, mode: &mut Mode) -> Result<Tensor> {
        let (batch, length) = input.dims2()?;
        if length > self.spec.context {
            return Err(HarnessError::invalid(
                "length",
                length,
                format!("the model's context is {}", self.spec.context),
            )
            .into());
        }
        let d = self.spec.dim;
        let embedded = self
            .tokens
            .index_select(&input.flatten_all()?, 0)?
            .reshape((batch, length, d))?
            .broadcast_add(&self.positions.narrow(0, 0, length)?)?;
        let mut x = mode.dropout(&embedded)?;
        for block in &self.blocks {
            let attended = block.attention.forward(&x, None, true, None)?;
            let (w, b) = &block.ln_attention;
            x = layer_norm(&(x + mode.dropout(&attended)?)?, w, b, LN_EPS)?;
            let flat = x.reshape((batch * length, d))?;
            let fed = match &block.ffn {
                FeedForward::Dense(dense) => dense.forward(&flat, mode)?,
                FeedForward::Moe(moe) => moe.forward(&flat, k, mode)?,
            };
            let fed = fed.reshape((batch, length, d))?;
            let (w, b) = &block.ln_ffn;
            x = layer_norm(&(x + mode.dropout(&fed)?)?, w, b, LN_EPS)?;
        }
        Ok(linear(
            &x.reshape((batch * length, d))?,
            &self.head_weight,
            Some(&self.head_bias),
            Activation::Identity,
        )?)
    }

    /// The MoE layers, in order (empty for a dense model).
    pub fn moe_layers(&self) -> Vec<&MoeLayer> {
        self.blocks
            .iter()
            .filter_map(|b| match &b.ffn {
                FeedForward::Moe(moe) => Some(moe),
                FeedForward::Dense(_) => None,
            })
            .collect()
    }
}

/// Whether `name` is a router parameter (`….ffn.router.weight` or `.bias`).
pub fn is_router(name: &str) -> bool {
    name.contains(".router.")
}
