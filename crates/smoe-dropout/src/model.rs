//! A small causal transformer language model, post-LN like Transformer-XL's
//! default (`LayerNorm(x + Dropout(sublayer(x)))`), with learned positions and a
//! feed-forward layer that is dense, dense with expert dropout, or a mixture of
//! experts.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use sparse_core::kernels::Activation;
use sparse_repro::models::attention::MultiHeadAttention;
use sparse_repro::rng::derive_seed;

use crate::error::Result;
use crate::layers::{Embedding, FeedForward, Linear, Norm, check_transformer, init_weights};
pub use crate::layers::{FeedForwardKind, FfnSpec, INIT_STD, LN_EPS};
use crate::mode::Mode;
use crate::moe::MoeLayer;

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
        check_transformer(
            &[
                ("vocab", self.vocab),
                ("context", self.context),
                ("layers", self.layers),
            ],
            self.heads,
            self.dropout,
            &self.ffn_spec(),
        )
    }

    /// Whether the feed-forward blocks are mixtures of experts.
    pub fn is_moe(&self) -> bool {
        self.ffn_spec().is_moe()
    }

    /// The feed-forward blocks' sizes.
    pub fn ffn_spec(&self) -> FfnSpec {
        FfnSpec {
            dim: self.dim,
            num_experts: self.num_experts,
            expert_hidden: self.expert_hidden,
            kind: self.ffn,
        }
    }
}

/// One post-LN transformer layer.
#[derive(Debug, Clone)]
struct Block {
    attention: MultiHeadAttention,
    ln_attention: Norm,
    ffn: FeedForward,
    ln_ffn: Norm,
}

/// The character language model.
#[derive(Debug, Clone)]
pub struct CharLm {
    spec: LmSpec,
    embedding: Embedding,
    blocks: Vec<Block>,
    head: Linear,
}

impl CharLm {
    /// Builds the model in a new `VarMap` and initialises it from `seed`: every
    /// weight (embeddings, projections, routers, experts, output) `N(0, 0.02²)`,
    /// biases 0, layer norms 1 and 0.
    pub fn build(spec: LmSpec, seed: u64, device: &Device) -> Result<(VarMap, Self)> {
        spec.validate()?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let d = spec.dim;
        let ffn = spec.ffn_spec();
        let mut blocks = Vec::with_capacity(spec.layers);
        for layer in 0..spec.layers {
            let vb = vb.pp(format!("layers.{layer}"));
            blocks.push(Block {
                attention: MultiHeadAttention::new(d, spec.heads, vb.pp("attention"))?,
                ln_attention: Norm::new(d, vb.pp("ln_attention"))?,
                ffn: FeedForward::new(
                    &ffn,
                    derive_seed(seed, &format!("eval-routes-{layer}")),
                    vb.pp("ffn"),
                )?,
                ln_ffn: Norm::new(d, vb.pp("ln_ffn"))?,
            });
        }
        let model = Self {
            spec,
            embedding: Embedding::new(spec.vocab, spec.context, d, vb.pp("embedding"))?,
            blocks,
            head: Linear::new(d, spec.vocab, vb.pp("head"))?,
        };
        init_weights(&varmap, seed)?;
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
        let d = self.spec.dim;
        let mut x = self.embedding.forward(input, mode)?;
        for block in &self.blocks {
            let attended = block.attention.forward(&x, None, true, None)?;
            x = block.ln_attention.residual(&x, &attended, mode)?;
            let fed = block.ffn.forward_sequence(&x, k, mode)?;
            x = block.ln_ffn.residual(&x, &fed, mode)?;
        }
        self.head
            .forward(&x.reshape((batch * length, d))?, Activation::Identity)
    }

    /// The MoE layers, in order (empty for a dense model).
    pub fn moe_layers(&self) -> Vec<&MoeLayer> {
        self.blocks.iter().filter_map(|b| b.ffn.moe()).collect()
    }
}

/// Whether `name` is a router parameter (`….ffn.router.weight` or `.bias`).
pub fn is_router(name: &str) -> bool {
    name.contains(".router.")
}
